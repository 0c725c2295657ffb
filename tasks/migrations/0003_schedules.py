from django.db import migrations

WATCHDOG = "taskcenter.watchdog"
PURGE = "taskcenter.purge"


def create(apps, schema_editor):
    schedule = apps.get_model("django_q", "Schedule")
    schedule.objects.update_or_create(
        name=WATCHDOG,
        defaults={"func": "tasks.runtime.schedules.run_watchdog", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )
    schedule.objects.update_or_create(
        name=PURGE,
        defaults={"func": "tasks.runtime.schedules.start_purge", "schedule_type": "D", "repeats": -1},
    )


def remove(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name__in=[WATCHDOG, PURGE]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0002_worker_and_alert"),
        ("django_q", "0014_schedule_cluster"),
    ]

    operations = [migrations.RunPython(create, remove)]
