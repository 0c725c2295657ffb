"""Shared pieces of the operators' admin: badges, progress bars, bulk actions through services."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.deletion import get_candidate_relations_to_delete
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from taskcenter.errors import ServiceError
from tasks.actors import Actor
from tasks.services import MAX_BULK_LIMIT, TooManyTasks, bulk_apply, tasks_apply_many, tasks_bulk_apply
from tasks.states import TaskStatus


def deletion_summary(model_admin, request, objs):
    """What ``get_deleted_objects`` returns, with the rows deleted along (by cascade) counted per
    model instead of listed: Django's default collects every row a cascade reaches to show each on
    the confirmation page — for a task with a big import staged, millions of rows, minutes and
    gigabytes (on POST too)."""
    opts = model_admin.opts
    ids = [obj.pk for obj in objs]
    model_count = {opts.verbose_name_plural: len(objs)}
    for relation in get_candidate_relations_to_delete(opts):  # what the cascade follows, hidden too
        if relation.on_delete is models.CASCADE:
            related = relation.related_model
            count = related._base_manager.filter(**{f"{relation.field.name}__in": ids}).count()
            if count:
                model_count[related._meta.verbose_name_plural] = count
    perms_needed = set() if model_admin.has_delete_permission(request) else {opts.verbose_name}
    deleted = [format_html("{}: {}", capfirst(opts.verbose_name), obj) for obj in objs]
    return deleted, model_count, perms_needed, []


def object_pk_or_404(opts, object_id: str):
    """The primary key an admin URL's ``object_id`` names, or :class:`~django.http.Http404` when
    it cannot be one of ``opts``' model (``not-a-uuid`` for a task): refused before any query."""
    try:
        return opts.pk.to_python(unquote(object_id))
    except ValidationError:
        raise Http404(f"{object_id!r} is not a {opts.verbose_name} id") from None


class ObjectIdMixin:
    """For a ModelAdmin: the change, delete and history pages of an id that cannot be a primary
    key are a 404 before any query (Django's own answer is a redirect to the admin index saying
    "… doesn't exist", after a query with the bad id)."""

    def change_view(self, request, object_id, form_url="", extra_context=None):
        object_pk_or_404(self.opts, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        object_pk_or_404(self.opts, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        object_pk_or_404(self.opts, object_id)
        return super().history_view(request, object_id, extra_context)


class ServiceDeleteMixin:
    """For a ModelAdmin whose ``delete_model`` calls a service: a refusal (an active task) on the
    object's Delete page becomes an error message on the object's page, not a server error.
    Django's delete view runs in a transaction, so its log entry is rolled back with everything
    else: nothing was deleted, and nothing says it was. The confirmation page counts what goes
    along instead of listing it (:func:`deletion_summary`). Django's "delete selected" action is
    not offered: it deletes the queryset without the service (the admin's own delete action and
    ``delete_queryset`` go through it)."""

    def get_actions(self, request, action_location=None):
        # Django 6.1 asks for the actions of each place (the change list, the change form) and
        # warns about an override without ``action_location``; Django 5.2 has no such argument.
        where = () if action_location is None else (action_location,)
        actions = super().get_actions(request, *where)
        actions.pop("delete_selected", None)
        return actions

    def get_deleted_objects(self, objs, request):
        return deletion_summary(self, request, objs)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return redirect(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", object_id)


BADGE_COLOURS = {
    TaskStatus.PENDING: "#6c757d",
    TaskStatus.PROCESSING: "#0d6efd",
    TaskStatus.PAUSED: "#fd7e14",
    TaskStatus.COMPLETED: "#198754",
    TaskStatus.FAILED: "#dc3545",
    TaskStatus.CANCELLED: "#495057",
}


def status_badge(status: str | None, *, task_id=None):
    """A coloured status badge; with ``task_id`` the admin's live.js keeps it current."""
    if not status:
        return "—"
    labels = format_html_join(" ", 'data-label-{}="{}"', ((value, label) for value, label in TaskStatus.choices))
    return format_html(
        '<span class="tc-badge" data-task="{}" data-status="{}" {} style="background:{};color:#fff;'
        'padding:2px 8px;border-radius:10px;white-space:nowrap">{}</span>',
        task_id or "",
        status,
        labels,
        BADGE_COLOURS[status],
        TaskStatus(status).label,
    )


def progress_bar(progress: float | None, *, task_id=None, status: str = ""):
    """A progress bar; with ``task_id`` the admin's live.js keeps it current."""
    value = max(0.0, min(100.0, float(progress or 0.0)))
    return format_html(
        '<div class="tc-progress" data-task="{}" data-status="{}" title="{}%" style="width:120px;background:#e9ecef;'
        'border-radius:4px;height:14px;position:relative"><div class="tc-progress-bar" style="width:{}%;'
        'background:#0d6efd;height:100%;border-radius:4px"></div><span style="position:absolute;top:-1px;'
        'left:4px;font-size:10px;color:#000">{}%</span></div>',
        task_id or "",
        status,
        f"{value:.1f}",
        f"{value:.1f}",
        f"{value:.0f}",
    )


def run_bulk_action(modeladmin, request, ids, operation, verb: str) -> None:
    """Apply ``operation(actor, id)`` to each id through the services and report per item."""
    actor = Actor.from_request(request)
    report_bulk_result(modeladmin, request, bulk_apply(ids, lambda item: operation(actor, item), limit=None), verb)


def run_task_operation(modeladmin, request, queryset, operation: str, verb: str):
    """One of the services' :data:`~tasks.services.BULK_OPERATIONS` on the selected tasks; on
    all the tasks the changelist's filter matches ("select all N") after a confirmation page
    (:func:`confirm_bulk_by_filter`)."""
    if request.POST.get("select_across") == "1":
        return confirm_bulk_by_filter(modeladmin, request, queryset, operation, verb)
    ids = queryset.values_list("pk", flat=True)
    result = tasks_apply_many(actor=Actor.from_request(request), operation=operation, ids=ids, limit=None)
    report_bulk_result(modeladmin, request, result, verb)


def report_bulk_result(modeladmin, request, result: dict, verb: str) -> None:
    """Per item: "3 cancelled; 2 refused: <id>: <reason>; …"."""
    refused = [(item, outcome["error"]) for item, outcome in result["results"].items() if not outcome["success"]]
    text = _("%(count)d %(verb)s") % {"count": result["success_count"], "verb": verb}
    if refused:
        details = "; ".join(f"{item}: {error}" for item, error in refused[:10])
        more = _(" and %(n)d more") % {"n": len(refused) - 10} if len(refused) > 10 else ""
        text += _("; %(count)d refused: %(details)s%(more)s") % {
            "count": len(refused),
            "details": details,
            "more": more,
        }
    level = messages.SUCCESS if not refused else (messages.WARNING if result["success_count"] else messages.ERROR)
    modeladmin.message_user(request, text, level)


#: Query parameters of the changelist that do not change which tasks it selects.
_NOT_FILTERS = {"p", "o", "_changelist_filters"}


def confirm_bulk_by_filter(modeladmin, request, queryset, operation: str, verb: str):
    """The admin's "apply to all N tasks matching this filter", through the same service as
    ``POST /api/v1/tasks/bulk`` (:func:`~tasks.services.tasks_bulk_apply`): first a page with
    the dry run's counts and a sample, whose confirmation runs the action on the tasks the filter
    matches then — refused, changing nothing, when more match than the operator confirmed (or
    than :data:`~tasks.services.MAX_BULK_LIMIT`). Returns that page, or None (the changelist
    again, with a message)."""
    actor = Actor.from_request(request)
    selection = {key: value for key, value in request.GET.items() if key not in _NOT_FILTERS}
    confirmed = request.POST.get("confirm") == "yes"
    try:
        limit = int(request.POST["limit"]) if confirmed else MAX_BULK_LIMIT
        outcome = tasks_bulk_apply(
            actor=actor, operation=operation, tasks=queryset, selection=selection, dry_run=not confirmed, limit=limit
        )
    except TooManyTasks as exc:
        text = (
            _("%(matched)d tasks match this filter now, more than the %(limit)d confirmed: nothing was done.")
            if confirmed
            else _("%(matched)d tasks match this filter, more than %(limit)d at once: narrow the filter.")
        )
        modeladmin.message_user(request, text % {"matched": exc.matched, "limit": exc.limit}, messages.ERROR)
        return None
    except (KeyError, ValueError):
        modeladmin.message_user(request, _("The confirmation did not say how many tasks."), messages.ERROR)
        return None
    except ServiceError as exc:
        modeladmin.message_user(request, exc.message, messages.ERROR)
        return None
    if confirmed:
        report_bulk_result(modeladmin, request, outcome, verb)
        return None
    opts = modeladmin.opts
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("Apply to all matching tasks?"),
        "opts": opts,
        "action": request.POST["action"],
        # The admin action's own description (Django has checked the name is one of its actions).
        "action_label": getattr(modeladmin, request.POST["action"]).short_description,
        "selection": sorted(selection.items()),
        "outcome": outcome,
        "sample": [
            (task_id, reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[task_id]))
            for task_id in outcome["sample"]
        ],
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "changelist_url": request.get_full_path(),
    }
    return TemplateResponse(request, "admin/tasks/task/bulk_by_filter.html", context)
