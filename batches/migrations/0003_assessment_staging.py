# Import staging: rows written by an unfinished import task are marked with it.

import django.db.models.deletion
import django.db.models.manager
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('batches', '0002_assessment_records'),
        ('tasks', '0005_leaner_indexes'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='assessmentrecord',
            options={'base_manager_name': 'with_staged', 'default_manager_name': 'objects', 'verbose_name': 'assessment record', 'verbose_name_plural': 'assessment records'},
        ),
        migrations.AlterModelManagers(
            name='assessmentrecord',
            managers=[
                ('with_staged', django.db.models.manager.Manager()),
                ('objects', django.db.models.manager.Manager()),
            ],
        ),
        migrations.AddField(
            model_name='assessmentrecord',
            name='import_task',
            field=models.ForeignKey(blank=True, db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tasks.task', verbose_name='staged by import task'),
        ),
        migrations.AddIndex(
            model_name='assessmentrecord',
            index=models.Index(condition=models.Q(('import_task__isnull', False)), fields=['import_task'], name='assessment_staged_idx'),
        ),
    ]
