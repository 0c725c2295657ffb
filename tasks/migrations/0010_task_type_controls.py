import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0009_priority_and_run_after"),
    ]

    operations = [
        migrations.CreateModel(
            name="TaskType",
            fields=[
                ("name", models.CharField(max_length=64, primary_key=True, serialize=False, verbose_name="name")),
                ("paused", models.BooleanField(default=False, verbose_name="paused")),
                (
                    "max_concurrency",
                    models.PositiveIntegerField(
                        blank=True,
                        null=True,
                        validators=[
                            django.core.validators.MinValueValidator(1),
                            django.core.validators.MaxValueValidator(1000),
                        ],
                        verbose_name="max concurrency",
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True, verbose_name="updated at")),
            ],
            options={
                "verbose_name": "task type",
                "verbose_name_plural": "task types",
                "ordering": ["name"],
                "permissions": [("manage_queue", "Can pause task types and limit their concurrency")],
                "default_permissions": (),
            },
        ),
    ]
