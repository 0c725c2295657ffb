from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BatchesConfig(AppConfig):
    name = "batches"
    verbose_name = _("Statistics batches")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Registers the data source and the job types.
        from batches import assessments, jobs  # noqa: F401
