from django.db import models


class DataSync(models.Model):  # noqa: DJ008 - never instantiated: it has no table
    """No table: it holds the permission to run syncs, which read any database a URL names and
    write tables of taskcenter's own database — more than starting a task should allow."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("run_sync", "Can run data syncs")]
