from django.apps import AppConfig


class DatasyncConfig(AppConfig):
    name = "datasync"
    verbose_name = "Data sync"
    default_auto_field = "django.db.models.BigAutoField"
