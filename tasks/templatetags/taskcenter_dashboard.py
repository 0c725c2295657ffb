"""The admin index's summary of the dashboard: tasks by status, and the way to the dashboard."""

from __future__ import annotations

from django import template
from django.utils import timezone
from django.utils.translation import gettext as _

from tasks.dashboard import status_tiles
from tasks.selectors import tasks_by_status

register = template.Library()


@register.inclusion_tag("taskcenter/dashboard_summary.html")
def taskcenter_summary():
    return {"statuses": status_tiles(tasks_by_status())}


def short_span(seconds: float) -> str:
    """A span in its two largest units: "45 s", "3 min 20 s", "2 h 5 min", "3 d 4 h"."""
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return _("%(d)d d %(h)d h") % {"d": days, "h": hours}
    if hours:
        return _("%(h)d h %(m)d min") % {"h": hours, "m": minutes}
    if minutes:
        return _("%(m)d min %(s)d s") % {"m": minutes, "s": secs}
    return _("%(s)d s") % {"s": secs}


@register.filter
def since(value) -> str:
    """How long ago ``value`` (a datetime) was, as :func:`short_span` says it."""
    return short_span((timezone.now() - value).total_seconds()) if value else ""


@register.filter
def until(value) -> str:
    """How long until ``value`` (a datetime), as :func:`short_span` says it."""
    return short_span((value - timezone.now()).total_seconds()) if value else ""
