from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BatchesConfig(AppConfig):
    name = "batches"
    verbose_name = _("Statistics batches")
    default_auto_field = "django.db.models.BigAutoField"
