from datetime import datetime

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


#: The daily purge, until now a django-q2 schedule (0003): a schedule operators see, at night.
PURGE_NAME = "maintenance.purge"
PURGE_CRON = "30 3 * * *"
DJANGO_Q_PURGE = "taskcenter.purge"


def purge_becomes_a_schedule(apps, schema_editor):
    from croniter import croniter
    from django.utils import timezone

    first = croniter(PURGE_CRON, timezone.localtime()).get_next(datetime)
    apps.get_model("tasks", "Schedule").objects.update_or_create(
        name=PURGE_NAME,
        defaults={
            "task_type": "maintenance.purge",
            "params": {},  # days: TASKCENTER_RETENTION_DAYS at each run
            "cron": PURGE_CRON,
            "enabled": True,
            "next_run_at": first,
        },
    )
    apps.get_model("django_q", "Schedule").objects.filter(name=DJANGO_Q_PURGE).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('batches', '0003_assessment_staging'),
        ('tasks', '0010_task_type_controls'),
        ("django_q", "0014_schedule_cluster"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Schedule',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100, unique=True, verbose_name='name')),
                ('task_type', models.CharField(max_length=64, verbose_name='task type')),
                ('params', models.JSONField(blank=True, default=dict, verbose_name='parameters')),
                ('priority', models.SmallIntegerField(default=0, verbose_name='priority')),
                ('cron', models.CharField(blank=True, help_text="Five fields: minute hour day-of-month month day-of-week, in the site's time zone (0 2 * * *: at 02:00 every day); or @hourly, @daily, @weekly, @monthly, @yearly. Empty for an interval.", max_length=100, null=True, verbose_name='cron')),
                ('interval_seconds', models.PositiveIntegerField(blank=True, help_text='Seconds between runs, at least 5. Empty for a cron schedule.', null=True, validators=[django.core.validators.MinValueValidator(5), django.core.validators.MaxValueValidator(31622400)], verbose_name='interval (seconds)')),
                ('enabled', models.BooleanField(default=True, verbose_name='enabled')),
                ('next_run_at', models.DateTimeField(blank=True, null=True, verbose_name='next run')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated at')),
                ('batch', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='schedules', to='batches.batch', verbose_name='batch')),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='owner')),
                ('last_task', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='tasks.task', verbose_name='last task')),
            ],
            options={
                'verbose_name': 'schedule',
                'verbose_name_plural': 'schedules',
                'ordering': ['name'],
                'indexes': [models.Index(condition=models.Q(('next_run_at__isnull', False)), fields=['next_run_at'], name='schedule_due_idx')],
                'constraints': [models.CheckConstraint(condition=models.Q(models.Q(('cron__isnull', True), ('interval_seconds__isnull', False)), models.Q(('cron__isnull', False), ('interval_seconds__isnull', True)), _connector='OR'), name='schedule_cron_or_interval'), models.CheckConstraint(condition=models.Q(('interval_seconds__isnull', True), models.Q(('interval_seconds__gte', 5), ('interval_seconds__lte', 31622400)), _connector='OR'), name='schedule_interval_range'), models.CheckConstraint(condition=models.Q(('enabled', False), ('next_run_at__isnull', False), _connector='OR'), name='schedule_enabled_has_next_run')],
            },
        ),
        # Backwards the table goes; the daily purge then runs only when started by hand.
        migrations.RunPython(purge_becomes_a_schedule, migrations.RunPython.noop),
    ]
