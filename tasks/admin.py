"""The operators' admin for tasks and the audit log. Every action goes through tasks.services."""

from __future__ import annotations

import json

import django_q.admin  # noqa: F401 - registers django-q2's tables first: they are restricted below
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from taskcenter.errors import PermissionDenied, ServiceError
from tasks.actors import Actor
from tasks.admin_helpers import (
    ObjectIdMixin,
    ServiceDeleteMixin,
    object_pk_or_404,
    progress_bar,
    run_bulk_action,
    run_task_operation,
    status_badge,
)
from tasks.audit import distinct_values, using_indexes
from tasks.models import AuditLog, Schedule, Task, TaskLog, TaskType
from tasks.runtime.registry import job_types
from tasks.selectors import type_paused
from tasks.services import (
    BULK_OPERATIONS,
    OPERATION_RULES,
    SCHEDULE_FIELDS,
    schedule_check,
    schedule_create,
    schedule_delete,
    schedule_set_enabled,
    schedule_update,
    task_delete,
    task_type_pause,
    task_type_resume,
    task_type_set_limit,
)
from tasks.states import LogLevel, TaskStatus

LOG_COLOURS = {LogLevel.DEBUG: "#6c757d", LogLevel.INFO: "#212529", LogLevel.WARN: "#b35c00", LogLevel.ERROR: "#dc3545"}
LOGS_PER_PAGE = 100


def pretty_json(value):
    if value in (None, {}, []):
        return "—"
    return format_html(
        "<pre style='white-space:pre-wrap;margin:0'>{}</pre>", json.dumps(value, ensure_ascii=False, indent=2)
    )


#: The buttons of a task's page (each shown to those holding its permission, when the task's
#: status allows it) and what each says once done.
TASK_PAGE_ACTIONS = {
    "cancel": _("Cancel"),
    "pause": _("Pause"),
    "resume": _("Resume"),
    "retry": _("Retry"),
    "delete": _("Delete"),
}
TASK_PAGE_DONE = {
    "cancel": _("Task cancelled."),
    "pause": _("Task paused."),
    "resume": _("Task resumed."),
    "retry": _("Task queued again."),
    "delete": _("Task deleted."),
}


@admin.register(Task)
class TaskAdmin(ObjectIdMixin, ServiceDeleteMixin, admin.ModelAdmin):
    list_display = (
        "short_id",
        "status_badge",
        "progress_bar",
        "task_type",
        "batch",
        "attempts",
        "trigger",
        "priority",
        "started_at",
        "duration",
        "short_error",
    )
    list_filter = ("status", "task_type", "trigger", "created_at")
    search_fields = ("id", "batch__batch_code", "error_message")
    list_select_related = ("batch",)
    list_per_page = 50
    # No date hierarchy: its links cost a pass over every task (docs/performance.md); the
    # created_at filter (today, past 7 days, this month, this year) is answered from an index.
    actions = ["cancel_tasks", "pause_tasks", "resume_tasks", "retry_tasks", "delete_tasks"]
    fields = (
        "id",
        "task_type",
        "batch",
        "status_badge",
        "progress_bar",
        "stage_progress",
        "estimated",
        "attempts",
        "trigger",
        "priority",
        "run_after",
        "error_category",
        "error_message",
        "params_pretty",
        "result_pretty",
        "worker",
        "created_by",
        "created_at",
        "started_at",
        "completed_at",
        "updated_at",
    )
    readonly_fields = fields

    class Media:
        js = ("taskcenter/live.js",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("batch", "created_by").annotate(type_paused=type_paused())

    # --- columns ------------------------------------------------------------------------------

    @admin.display(description=_("task id"), ordering="id")
    def short_id(self, task):
        return str(task.pk)[:8]

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, task):
        badge = status_badge(task.status, task_id=task.pk)
        if task.status == TaskStatus.PENDING and task.type_paused:
            return format_html('{} <small class="tc-type-paused">{}</small>', badge, _("type paused"))
        return badge

    @admin.display(description=_("progress"), ordering="progress")
    def progress_bar(self, task):
        return progress_bar(task.progress, task_id=task.pk, status=task.status)

    @admin.display(description=_("attempt"))
    def attempts(self, task):
        return f"{task.attempt}/{task.max_attempts}"

    @admin.display(description=_("duration"))
    def duration(self, task):
        if not task.started_at:
            return "—"
        end = task.completed_at or task.updated_at
        seconds = max(0.0, (end - task.started_at).total_seconds())
        return f"{seconds:.1f} s"

    @admin.display(description=_("error"))
    def short_error(self, task):
        return (task.error_message[:80] + "…") if len(task.error_message) > 80 else (task.error_message or "")

    # --- detail -------------------------------------------------------------------------------

    @admin.display(description=_("stages"))
    def stage_progress(self, task):
        rows = [
            (stage.name, stage.name, status_badge(stage.status), progress_bar(stage.progress))
            for stage in task.stages.all()
        ]
        return format_html_join("", "<div class='tc-stage' data-stage='{}'><b>{}</b> {} {}</div>", rows) or "—"

    @admin.display(description=_("estimated completion"))
    def estimated(self, task):
        from tasks.api.serializers import estimated_completion

        value = estimated_completion(task)
        shown = timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "—"
        return format_html('<span id="tc-eta">{}</span>', shown)

    @admin.display(description=_("parameters"))
    def params_pretty(self, task):
        return pretty_json(task.params)

    @admin.display(description=_("result"))
    def result_pretty(self, task):
        if task.task_type == "statistics" and task.result:
            from django.utils.safestring import mark_safe

            from tasks.charts import render_statistics_result

            return mark_safe(render_statistics_result(task.result))  # rendered by an autoescaping template
        return pretty_json(task.result)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # Here, not in change_view: the task exists (its id was valid and found).
        context["task_logs"] = self._logs_page(request, obj.pk)
        # Every button the user may press; those the status does not allow are hidden, and shown
        # by live.js when the task's status comes to allow them.
        context["task_actions"] = [
            {
                "operation": operation,
                "label": label,
                "url": reverse("admin:tasks_task_steer", args=[obj.pk, operation]),
                "statuses": " ".join(OPERATION_RULES[operation][0]),
                "shown": obj.status in OPERATION_RULES[operation][0],
            }
            for operation, label in TASK_PAGE_ACTIONS.items()
            if request.user.has_perm(BULK_OPERATIONS[operation][1])
        ]
        context["task_live"] = {"id": obj.pk, "status": obj.status}
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        steer = path(
            "<path:object_id>/steer/<str:operation>/",
            self.admin_site.admin_view(self.steer_view),
            name="tasks_task_steer",
        )
        whole_log = path("<path:object_id>/log/", self.admin_site.admin_view(self.log_view), name="tasks_task_log")
        return [steer, whole_log, *super().get_urls()]

    def log_view(self, request, object_id):
        """A task's whole log as plain text, oldest first, from a minimum level (?log_level),
        stamped in the display time zone; streamed, however long it is."""
        task_id = object_pk_or_404(self.opts, object_id)
        if not self.has_view_permission(request):
            raise DjangoPermissionDenied
        if not Task.objects.filter(pk=task_id).exists():
            raise Http404("no such task")
        level = _log_level(request)[1]
        # Read now: the lines are written after the view has returned.
        zone, zone_name = timezone.get_current_timezone(), timezone.get_current_timezone_name()

        def lines():
            yield f"# task {task_id}, times in {zone_name}\n"
            logs = TaskLog.objects.filter(task_id=task_id, level__gte=level).order_by("id")
            for stamp, level_value, message in logs.values_list("timestamp", "level", "message").iterator(2000):
                when = timezone.localtime(stamp, zone).strftime("%Y-%m-%d %H:%M:%S")
                yield f"{when} [{LogLevel(level_value).label}] {message}\n"

        response = StreamingHttpResponse(lines(), content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'inline; filename="task-{task_id}.log"'
        return response

    def steer_view(self, request, object_id, operation):
        """A task page's button: the operation's service on this task (POST only; the same
        permission as the list's action), its outcome as a message."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if operation not in TASK_PAGE_ACTIONS:
            raise Http404(f"no operation {operation!r}")
        task_id = object_pk_or_404(self.opts, object_id)
        service, permission, _becomes = BULK_OPERATIONS[operation]
        if not request.user.has_perm(permission):
            raise DjangoPermissionDenied
        try:
            service(actor=Actor.from_request(request), task_id=task_id)
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, TASK_PAGE_DONE[operation], messages.SUCCESS)
            if operation == "delete":
                return redirect("admin:tasks_task_changelist")
        return redirect("admin:tasks_task_change", task_id)

    @staticmethod
    def _logs_page(request, task_id) -> dict:
        """One page of the task's logs, oldest first, from a minimum level (?log_level): the
        newest page unless ?log_page names another."""
        from django.core.paginator import Paginator

        level_name, level = _log_level(request)
        logs = TaskLog.objects.filter(task_id=task_id, level__gte=level).order_by("id")
        paginator = Paginator(logs, LOGS_PER_PAGE)
        # The tail by default: the newest lines, where live.js appends what comes next.
        page = paginator.get_page(request.GET.get("log_page") or paginator.num_pages)
        rows = list(page)
        return {
            "rows": [
                {
                    # In the display time zone, as every other time on the page.
                    "time": timezone.localtime(log.timestamp).strftime("%H:%M:%S"),
                    "name": LogLevel(log.level).label,
                    "colour": LOG_COLOURS[LogLevel(log.level)],
                    "message": log.message,
                }
                for log in rows
            ],
            "tail": not page.has_next(),
            "last_id": rows[-1].id if rows else 0,
            "colours": {LogLevel(value).label: colour for value, colour in LOG_COLOURS.items()},
            "whole_log": reverse("admin:tasks_task_log", args=[task_id]) + f"?log_level={level_name}",
            "time_zone": timezone.get_current_timezone_name(),
            "levels": [member.label for member in LogLevel],
            "level": level_name,
            "page": page.number,
            "pages": page.paginator.num_pages,
            "total": page.paginator.count,
            "previous": page.previous_page_number() if page.has_previous() else None,
            "next": page.next_page_number() if page.has_next() else None,
        }

    # --- permissions --------------------------------------------------------------------------

    def has_add_permission(self, request):
        return False  # tasks are started from batches or the API, never typed in

    def has_change_permission(self, request, obj=None):
        return False  # read-only detail: state changes go through the actions

    def has_delete_permission(self, request, obj=None):
        return request.user.has_perm("tasks.delete_task")

    def has_cancel_permission(self, request):
        return request.user.has_perm("tasks.cancel_task")

    def has_pause_permission(self, request):
        return request.user.has_perm("tasks.pause_task")

    def has_retry_permission(self, request):
        return request.user.has_perm("tasks.retry_task")

    # --- actions ------------------------------------------------------------------------------

    @admin.action(description=_("Cancel selected tasks"), permissions=["cancel"])
    def cancel_tasks(self, request, queryset):
        return run_task_operation(self, request, queryset, "cancel", _("cancelled"))

    @admin.action(description=_("Pause selected tasks"), permissions=["pause"])
    def pause_tasks(self, request, queryset):
        return run_task_operation(self, request, queryset, "pause", _("paused"))

    @admin.action(description=_("Resume selected tasks"), permissions=["pause"])
    def resume_tasks(self, request, queryset):
        return run_task_operation(self, request, queryset, "resume", _("resumed"))

    @admin.action(description=_("Retry selected tasks"), permissions=["retry"])
    def retry_tasks(self, request, queryset):
        return run_task_operation(self, request, queryset, "retry", _("queued again"))

    @admin.action(description=_("Delete selected tasks"), permissions=["delete"])
    def delete_tasks(self, request, queryset):
        return run_task_operation(self, request, queryset, "delete", _("deleted"))

    def delete_model(self, request, obj):
        task_delete(actor=Actor.from_request(request), task_id=obj.pk)

    def delete_queryset(self, request, queryset):
        run_task_operation(self, request, queryset, "delete", _("deleted"))


def _log_level(request) -> tuple[str, LogLevel]:
    """The minimum log level a task page asks for (``?log_level``; debug when absent or unknown)."""
    name = request.GET.get("log_level", "debug")
    try:
        return name, LogLevel.from_name(name)
    except ValueError:
        return "debug", LogLevel.DEBUG


def _count(status: str):
    """How many tasks of a control row's type have ``status`` (a subquery: one query a page)."""
    tasks = Task.objects.filter(task_type=OuterRef("name"), status=status).order_by().values("task_type")
    return Coalesce(Subquery(tasks.annotate(count=Count("pk")).values("count")), 0)


@admin.register(TaskType)
class TaskTypeAdmin(ObjectIdMixin, admin.ModelAdmin):
    """The queue of each task type: paused or not, its concurrency limit, what waits and runs.
    Pause, resume and the limit go through the services (audited), for ``tasks.manage_queue``."""

    list_display = ("name", "registered", "paused_badge", "limit", "pending_link", "running_link")
    list_filter = ("paused",)
    actions = ["pause_types", "resume_types"]
    fields = ("name", "paused", "max_concurrency", "updated_at")
    readonly_fields = ("name", "paused", "updated_at")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(pending=_count(TaskStatus.PENDING), running=_count(TaskStatus.PROCESSING))
        )

    @admin.display(description=_("registered"), boolean=True)
    def registered(self, control):
        return any(job.name == control.name for job in job_types())

    @admin.display(description=_("status"), ordering="paused")
    def paused_badge(self, control):
        if control.paused:
            return format_html('<span class="tc-type-paused"><b>{}</b></span>', _("Paused"))
        return _("Active")

    @admin.display(description=_("max concurrency"), ordering="max_concurrency")
    def limit(self, control):
        return control.max_concurrency or _("no limit")

    @admin.display(description=_("pending"), ordering="pending")
    def pending_link(self, control):
        return self._link(control.name, TaskStatus.PENDING, control.pending)

    @admin.display(description=_("running"), ordering="running")
    def running_link(self, control):
        return self._link(control.name, TaskStatus.PROCESSING, control.running)

    @staticmethod
    def _link(name: str, status: str, count: int):
        from django.urls import reverse
        from django.utils.http import urlencode

        url = reverse("admin:tasks_task_changelist") + "?" + urlencode({"task_type": name, "status": status})
        return format_html('<a href="{}">{}</a>', url, count)

    # --- permissions --------------------------------------------------------------------------

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("tasks.view_task")

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("tasks.manage_queue")

    def has_manage_queue_permission(self, request):
        return request.user.has_perm("tasks.manage_queue")

    def has_add_permission(self, request):
        return False  # a row per registered type, made by migrate or the first control

    def has_delete_permission(self, request, obj=None):
        return False

    # --- writes -------------------------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        task_type_set_limit(actor=Actor.from_request(request), name=obj.name, max_concurrency=obj.max_concurrency)

    @admin.action(description=_("Pause selected task types"), permissions=["manage_queue"])
    def pause_types(self, request, queryset):
        def pause(actor, name):
            task_type_pause(actor=actor, name=name)
            return "paused"

        run_bulk_action(self, request, queryset.values_list("name", flat=True), pause, _("paused"))

    @admin.action(description=_("Resume selected task types"), permissions=["manage_queue"])
    def resume_types(self, request, queryset):
        def resume(actor, name):
            task_type_resume(actor=actor, name=name)
            return "active"

        run_bulk_action(self, request, queryset.values_list("name", flat=True), resume, _("resumed"))


class SuperusersOnly:
    """For django-q2's own tables (its schedules, queued messages, successes and failures): they
    say nothing about taskcenter's tasks (the tasks table is the queue; django-q2 runs only the
    watchdog's schedule), so only superusers see them, as internals."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request, *args):
        return self.has_view_permission(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return self.has_view_permission(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_view_permission(request) and super().has_delete_permission(request, obj)


for _model, _model_admin in list(admin.site._registry.items()):
    if _model._meta.app_label == "django_q":
        admin.site.unregister(_model)
        admin.site.register(_model, type(type(_model_admin).__name__, (SuperusersOnly, type(_model_admin)), {}))


class IndexedValuesFilter(admin.AllValuesFieldListFilter):
    """Django's filter by the values of a column, which it finds with a DISTINCT over the whole
    audit log: here they come from the column's index (:func:`tasks.audit.distinct_values`)."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.lookup_choices = distinct_values(field_path)


@admin.register(AuditLog)
class AuditLogAdmin(ObjectIdMixin, admin.ModelAdmin):
    """Read-only for everyone, superusers included. No date hierarchy: its year and month links
    are a DISTINCT over every row's truncated time, which grows with the log; the date filter
    (today, past 7 days, this month, this year) reads the created_at index."""

    list_display = ("created_at", "actor_name", "action", "target_type", "target_id", "from_status", "to_status")
    list_filter = (
        ("actor_name", IndexedValuesFilter),
        ("action", IndexedValuesFilter),
        ("target_type", IndexedValuesFilter),
        "created_at",
    )
    search_fields = ("actor_name", "target_id", "action")
    list_per_page = 100
    # The unfiltered total would be counted on get_queryset's rows, which leave the routine
    # worker rows out when a filter allows it: a wrong figure, and a second count.
    show_full_result_count = False

    def get_ordering(self, request):
        # Filtered by date, newest first by time: the created_at index gives the range in that
        # order (the ids' order too: both grow as rows are written), where ordered by id the
        # whole range would be sorted first.
        if any(key.startswith("created_at__") for key in request.GET):
            return ("-created_at",)
        return super().get_ordering(request)

    def get_queryset(self, request):
        # The list filters by actor and action are applied after this: let them use the indexes.
        return using_indexes(
            super().get_queryset(request), actor=request.GET.get("actor_name"), action=request.GET.get("action")
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ScheduleForm(forms.ModelForm):
    """Checked as the API checks a schedule (:func:`tasks.services.schedule_check`, as the user
    who saves it); saved through the services."""

    task_type = forms.ChoiceField(label=_("task type"))
    params = forms.JSONField(
        label=_("parameters"),
        required=False,
        initial=dict,
        help_text=_("The task type's params (GET /api/v1/task-types); none for a batch schedule."),
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
    )

    class Meta:
        model = Schedule
        fields = ["name", "task_type", "params", "batch", "priority", "cron", "interval_seconds", "enabled"]

    def __init__(self, *args, actor: Actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        if "task_type" in self.fields:  # view-only users get a form without editable fields
            names = [job.name for job in job_types() if job.user_startable]
            if self.instance.task_type and self.instance.task_type not in names:
                names.append(self.instance.task_type)
            self.fields["task_type"].choices = [(name, name) for name in names]
            for name in ("cron", "interval_seconds"):
                self.fields[name].empty_value = None

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            schedule_check(actor=self.actor, values=self.values())
        except PermissionDenied as exc:
            raise forms.ValidationError(exc.message) from None
        except ServiceError as exc:
            for field, problems in (exc.errors or {None: [exc.message]}).items():
                field = field.split(".")[0] if field else None
                target = "batch" if field == "batch_code" else field if field in self.fields else None
                self.add_error(target, "; ".join(problems))
        return cleaned

    def values(self) -> dict:
        """The cleaned form as the services name a schedule's fields (and ``enabled``)."""
        cleaned = self.cleaned_data
        values = {field: cleaned.get(field) for field in SCHEDULE_FIELDS if field != "batch_code"}
        values["batch_code"] = cleaned["batch"].batch_code if cleaned.get("batch") else None
        values["params"] = values["params"] or {}
        values["enabled"] = cleaned.get("enabled", False)
        return values


@admin.register(Schedule)
class ScheduleAdmin(ObjectIdMixin, ServiceDeleteMixin, admin.ModelAdmin):
    form = ScheduleForm
    list_display = ("name", "task_type", "batch", "timing", "enabled", "next_run_at", "last_task_link", "owner")
    list_filter = ("enabled", "task_type")
    search_fields = ("name", "task_type")
    list_select_related = ("batch", "created_by", "last_task")
    list_per_page = 50
    actions = ["enable_schedules", "disable_schedules", "delete_schedules"]
    readonly_fields = ("next_run_at", "last_task_link", "owner", "created_at", "updated_at")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        actor = Actor.from_request(request)

        class FormWithActor(form):
            def __init__(self, *args, **inner):
                super().__init__(*args, actor=actor, **inner)

        return FormWithActor

    # --- columns ------------------------------------------------------------------------------

    @admin.display(description=_("when"))
    def timing(self, schedule):
        if schedule.cron:
            return schedule.cron
        return _("every %(seconds)d s") % {"seconds": schedule.interval_seconds}

    @admin.display(description=_("last task"))
    def last_task_link(self, schedule):
        task = schedule.last_task
        if task is None:
            return "—"
        return format_html(
            "<a href='{}'>{}</a> {}",
            reverse("admin:tasks_task_change", args=[task.pk]),
            str(task.pk)[:8],
            status_badge(task.status, task_id=task.pk),
        )

    @admin.display(description=_("owner"), ordering="created_by__username")
    def owner(self, schedule):
        return schedule.created_by.get_username() if schedule.created_by else _("system")

    # --- saving through the services ----------------------------------------------------------

    def save_model(self, request, obj, form, change):
        actor = Actor.from_request(request)
        values = form.values()
        if change:
            schedule_update(actor=actor, schedule_id=obj.pk, changes=values)
        else:
            obj.pk = schedule_create(actor=actor, **values).pk
        obj.__dict__.update(Schedule.objects.get(pk=obj.pk).__dict__)

    def delete_model(self, request, obj):
        schedule_delete(actor=Actor.from_request(request), schedule_id=obj.pk)

    def delete_queryset(self, request, queryset):
        self.delete_schedules(request, queryset)

    # --- actions ------------------------------------------------------------------------------

    @admin.action(description=_("Enable selected schedules"), permissions=["change"])
    def enable_schedules(self, request, queryset):
        def enable(actor, pk):
            schedule_set_enabled(actor=actor, schedule_id=pk, enabled=True)
            return "enabled"

        run_bulk_action(self, request, queryset.values_list("pk", flat=True), enable, _("enabled"))

    @admin.action(description=_("Disable selected schedules"), permissions=["change"])
    def disable_schedules(self, request, queryset):
        def disable(actor, pk):
            schedule_set_enabled(actor=actor, schedule_id=pk, enabled=False)
            return "disabled"

        run_bulk_action(self, request, queryset.values_list("pk", flat=True), disable, _("disabled"))

    @admin.action(description=_("Delete selected schedules"), permissions=["delete"])
    def delete_schedules(self, request, queryset):
        def delete(actor, pk):
            schedule_delete(actor=actor, schedule_id=pk)
            return "deleted"

        run_bulk_action(self, request, queryset.values_list("pk", flat=True), delete, _("deleted"))
