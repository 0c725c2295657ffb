"""Django ``@task`` functions for tests/test_tasks_backend.py (module level, as the framework asks)."""

from __future__ import annotations

try:
    from django.tasks import task
except ImportError:  # Django 5.2: the django-tasks backport
    from django_tasks import task


@task
def add(a, b):
    """Adds two numbers."""
    return a + b


@task
def divide(a, b):
    return a / b


@task(takes_context=True)
def count(context, up_to):
    """Counts, reporting progress and stopping where a cancel or pause asks."""
    for n in range(up_to):
        context.progress(n, up_to)
        context.check()
    context.log("info", "counted", up_to=up_to, attempt=context.attempt)
    return {"counted": up_to, "task_id": context.task_result.id}
