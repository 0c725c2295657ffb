from django.db import migrations, models


class Migration(migrations.Migration):
    """task_finished_idx also holds each finished task's type and start time: the dashboard's
    charts (and the durations per type) read the index alone."""

    dependencies = [
        ("tasks", "0011_schedules"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="task", name="task_finished_idx"),
        migrations.AddIndex(
            model_name="task",
            index=models.Index(
                condition=models.Q(("completed_at__isnull", False)),
                fields=["status", "completed_at", "task_type", "started_at"],
                name="task_finished_idx",
            ),
        ),
    ]
