from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BatchesConfig(AppConfig):
    name = "batches"
    verbose_name = _("Statistics batches")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Registers the data source (its job types are found by the tasks app with every app's).
        from batches import assessments  # noqa: F401
        from batches.services import (
            START_PERMISSIONS,
            batch_start,
            batch_task_create,
            refuse_retry_while_batch_busy,
        )
        from tasks.runtime.registry import register_owner, register_owner_start, register_requeue_rule

        # A batch owns the tasks that run it, and has at most one active task.
        register_owner("batch_code", batch_task_create)
        # A batch schedule starts its batch as the start button does.
        register_owner_start("batch_code", batch_start, permissions=START_PERMISSIONS)
        register_requeue_rule(refuse_retry_while_batch_busy)
