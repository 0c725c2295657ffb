from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = _("Tasks")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete, post_migrate
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
        post_migrate.connect(_control_rows, sender=self, dispatch_uid="taskcenter-task-types")


def _remove_files_after_commit(sender, instance, **kwargs) -> None:
    """A deleted task's files on this machine go once the deletion has committed."""
    from django.db import transaction

    from tasks.runtime.files import remove_task_files

    task_id = instance.pk
    transaction.on_commit(lambda: remove_task_files(task_id))


def _control_rows(sender, using, apps=None, **kwargs) -> None:
    """A queue-control row for each registered task type, so that the admin lists every type
    (rows that exist keep the operators' values). After ``migrate``, and after ``flush``, which
    sends no ``apps``."""
    from django.apps import apps as installed

    from tasks.runtime.registry import job_types

    apps = apps or installed
    try:
        control = apps.get_model("tasks", "TaskType")
    except LookupError:  # migrated back before the model
        return
    control.objects.using(using).bulk_create([control(name=job.name) for job in job_types()], ignore_conflicts=True)
