# The table of django-q2's cluster registry without Redis (settings.CACHES["cluster"], a database
# cache): created here so that `migrate` is all a database needs. Created whatever the cache
# setting, so a move from Redis to the database later finds it. createcachetable leaves an
# existing table alone (installations that ran it by hand).

from django.conf import settings
from django.core.management import call_command
from django.db import migrations


def create_table(apps, schema_editor):
    call_command("createcachetable", settings.CLUSTER_CACHE_TABLE, database=schema_editor.connection.alias, verbosity=0)


def drop_table(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(settings.CLUSTER_CACHE_TABLE)}")


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0007_append_friendly_indexes_and_ids"),
    ]

    operations = [migrations.RunPython(create_table, drop_table)]
