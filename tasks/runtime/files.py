"""Files a job keeps for one task on the worker's disk: ``TASKCENTER_CHECKPOINT_DIR/<task id>/``.

A checkpoint in the database says where a job stopped; a job whose state is too big for it (the
statistics job's loaded chunks) keeps the rest here, so that a resume or retry continues without
redoing the work. The files live as long as the task can still continue: they are removed when
the task is deleted (here, after the deletion commits) and by the daily purge's sweep, which also
finds what a deletion on another machine left on this one, and what a task paused for longer
than the retention keeps.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)


def task_files_dir(task_id) -> Path:
    return Path(settings.TASKCENTER_CHECKPOINT_DIR) / str(task_id)


def remove_task_files(task_id) -> None:
    shutil.rmtree(task_files_dir(task_id), ignore_errors=True)


def sweep_task_files(*, paused_before) -> int:
    """Remove the files of tasks that no longer exist, have completed, or are paused since before
    ``paused_before`` (a resume loads again); return how many directories went. Directories that
    are not named after a task are left alone."""
    from tasks.models import Task
    from tasks.states import TaskStatus

    root = Path(settings.TASKCENTER_CHECKPOINT_DIR)
    try:
        entries = {entry.name: task_id for entry in os.scandir(root) if (task_id := _task_dir_id(entry))}
    except FileNotFoundError:
        return 0
    keep = set()
    ids = list(entries.values())
    for start in range(0, len(ids), 500):
        keep.update(
            Task.objects.filter(pk__in=ids[start : start + 500])
            .exclude(status=TaskStatus.COMPLETED)
            .exclude(status=TaskStatus.PAUSED, updated_at__lt=paused_before)
            .values_list("pk", flat=True)
        )
    removed = 0
    for name, task_id in entries.items():
        if task_id not in keep:
            shutil.rmtree(root / name, ignore_errors=True)
            removed += 1
    if removed:
        logger.info("removed the files of %d completed, deleted or long paused tasks from %s", removed, root)
    return removed


def _task_dir_id(entry) -> uuid.UUID | None:
    """The task id a directory is named after; None for anything else."""
    try:
        task_id = uuid.UUID(entry.name)
    except ValueError:
        return None
    return task_id if entry.is_dir() else None
