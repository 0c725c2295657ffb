from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BatchesConfig(AppConfig):
    name = "batches"
    verbose_name = _("Statistics batches")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Registers the data source and the job types.
        from batches import assessments, jobs  # noqa: F401
        from batches.importer import discard_staged_by
        from tasks.services import BULK_DEPENDENTS

        if discard_staged_by not in BULK_DEPENDENTS:
            BULK_DEPENDENTS.append(discard_staged_by)
