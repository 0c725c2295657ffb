from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = _("Tasks")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Registers the built-in job types.
        from django_q.signals import post_spawn

        from tasks import checks, jobs  # noqa: F401
        from tasks.runtime.resources import start_sampler

        # Each django-q2 worker process reports its CPU, memory and task rate.
        post_spawn.connect(start_sampler, dispatch_uid="taskcenter-resources")
