from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = _("Tasks")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete
        from django_q.signals import post_spawn

        from taskcenter.plugins import import_jobs_modules
        from tasks import checks  # noqa: F401
        from tasks.runtime.resources import start_sampler

        # Every installed app's job types (this app's, the batches', the plug-ins'), in every web,
        # worker and management process.
        import_jobs_modules()

        # Each django-q2 worker process reports its CPU, memory and task rate.
        post_spawn.connect(start_sampler, dispatch_uid="taskcenter-resources")
        post_delete.connect(_remove_files_after_commit, sender="tasks.Task", dispatch_uid="taskcenter-task-files")


def _remove_files_after_commit(sender, instance, **kwargs) -> None:
    """A deleted task's files on this machine go once the deletion has committed."""
    from django.db import transaction

    from tasks.runtime.files import remove_task_files

    task_id = instance.pk
    transaction.on_commit(lambda: remove_task_files(task_id))
