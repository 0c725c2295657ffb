"""Task, task-type and audit-log endpoints. Thin: parse, call a service, render."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC

from django.conf import settings
from django.db import close_old_connections
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import Throttled, ValidationError

from taskcenter.api.filters import ListFiltersOnlyMixin
from taskcenter.api.queries import TASK_DETAIL, task_stages
from taskcenter.api.responses import ok
from taskcenter.api.serializers import require_empty_body
from taskcenter.errors import InvalidInput, NotFound
from tasks.actors import Actor
from tasks.api.filters import AuditLogFilter, ScheduleFilter, TaskFilter, bulk_filter_queryset
from tasks.api.serializers import (
    LIST_COLUMNS,
    AuditLogSerializer,
    BatchCancelResultSerializer,
    BatchCancelSerializer,
    BulkActionOutcome,
    BulkActionSerializer,
    BulkResultSerializer,
    ScheduleCreateSerializer,
    ScheduleSerializer,
    ScheduleUpdateSerializer,
    TaskCreateSerializer,
    TaskDetailSerializer,
    TaskEventSerializer,
    TaskIdsSerializer,
    TaskLogSerializer,
    TaskSerializer,
    TaskStatisticsSerializer,
    TaskTypeLimitSerializer,
    TaskTypeSerializer,
    TaskUpdateSerializer,
    detail_item,
    list_rows,
)
from tasks.models import AuditLog, Schedule, Task, TaskLog
from tasks.runtime.registry import get_job_type, job_types
from tasks.selectors import task_statistics, task_type_queues
from tasks.services import (
    DEFAULT_BULK_LIMIT,
    MAX_BULK_LIMIT,
    MAX_CANCEL_PER_REQUEST,
    parse_task_id,
    schedule_create,
    schedule_delete,
    schedule_update,
    task_cancel,
    task_create,
    task_create_owned,
    task_delete,
    task_pause,
    task_resume,
    task_retry,
    task_type_pause,
    task_type_resume,
    task_type_set_limit,
    task_update_params,
    tasks_apply_many,
    tasks_bulk_apply,
    tasks_cancel_many,
)
from tasks.states import FINISHED_STATUSES, LOG_LEVEL_NAMES, LogLevel, TaskStatus, Trigger

UUID_REGEX = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
VIEW = ["tasks.view_task"]
#: The largest log line id (a signed 64-bit column).
MAX_LOG_ID = 2**63 - 1
# ASCII digits only: str.isdigit() also takes '²' or '١', which int() then refuses or reads.
# Leading zeros are read apart: int() refuses more than 4,300 digits, zeros included.
_DECIMAL = re.compile(r"0*([0-9]{1,19})")
LOG_ID_SCHEMA = {"type": "integer", "format": "int64", "minimum": 0, "maximum": MAX_LOG_ID}


def log_id(value: str, name: str) -> int:
    """A log line id a client sent (``after_id``, ``Last-Event-ID``): plain decimal digits of a
    number from 0 to MAX_LOG_ID, else a 400 naming ``name``."""
    match = _DECIMAL.fullmatch(value)
    if match is None or int(match.group(1)) > MAX_LOG_ID:
        raise ValidationError({name: [f"A whole number from 0 to {MAX_LOG_ID} is required."]})
    return int(match.group(1))


def _task_detail(task_id) -> dict:
    """The task's detail read by two hand-written statements (no model instances, no query
    building per request); 404 when it is gone."""
    row = TASK_DETAIL.first(task_id)
    if row is None:
        raise NotFound(f"task {task_id} not found")
    return detail_item(row, task_stages(task_id))


@extend_schema(tags=["tasks"])
@extend_schema_view(
    list=extend_schema(
        operation_id="listTasks",
        summary="List tasks (newest first)",
        parameters=[
            OpenApiParameter(
                "status",
                {"type": "array", "items": {"type": "string", "enum": list(TaskStatus.values)}},
                style="form",
                explode=True,
                description="One status or several: repeated (`status=pending&status=processing`) or comma-separated"
                " (`status=pending,processing`).",
            ),
        ],
        responses=TaskSerializer(many=True),
    ),
    retrieve=extend_schema(operation_id="getTask", summary="Task detail", responses=TaskDetailSerializer),
)
class TaskViewSet(ListFiltersOnlyMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = Task.objects.none()
    lookup_field = "pk"
    lookup_url_kwarg = "task_id"
    lookup_value_regex = UUID_REGEX
    filterset_class = TaskFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    action_permissions = {
        "list": VIEW,
        "retrieve": VIEW,
        "logs": VIEW,
        "events": VIEW,
        "statistics": VIEW,
        "create": ["tasks.add_task"],
        "partial_update": ["tasks.change_task"],
        "destroy": ["tasks.delete_task"],
        "cancel": ["tasks.cancel_task"],
        "batch_cancel": ["tasks.cancel_task"],
        "pause": ["tasks.pause_task"],
        "resume": ["tasks.pause_task"],
        "retry": ["tasks.retry_task"],
        "batch_delete": ["tasks.delete_task"],
        # The permission of the action the body names: the service checks it before reading anything.
        "bulk": [],
    }

    def perform_content_negotiation(self, request, force=False):
        # The event stream is a StreamingHttpResponse; its errors are enveloped JSON like any other.
        return super().perform_content_negotiation(request, force=force or self.action == "events")

    def get_queryset(self):
        if self.action == "list":
            # Counted and filtered without joins; list() reads the page's columns as tuples.
            return Task.objects.order_by("-created_at", "-pk")
        return Task.objects.all()  # get_object only finds the task; answers are read by _task_detail

    def list(self, request):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        rows = page.values_list(*LIST_COLUMNS.values())
        return self.get_paginated_response(list_rows(rows))

    def get_serializer_class(self):
        return TaskDetailSerializer if self.action == "retrieve" else TaskSerializer

    def get_object(self):
        self.kwargs[self.lookup_url_kwarg] = str(parse_task_id(self.kwargs[self.lookup_url_kwarg]))
        return super().get_object()

    def retrieve(self, request, task_id=None):
        return ok(_task_detail(parse_task_id(task_id)))

    def _detail(self, task_id, *, message: str, status: int = 200):
        return ok(_task_detail(task_id), message=message, status=status)

    @extend_schema(
        operation_id="createTask",
        summary="Create and queue a task",
        request=TaskCreateSerializer,
        responses={201: TaskDetailSerializer},
        description=(
            "With `batch_code`, the task belongs to that batch: 409 while the batch has an active task (as"
            " for start). A batch's `statistics` task runs the batch's config: leave `params` out (params"
            " that differ from the batch's are a 409)."
        ),
    )
    def create(self, request):
        body = TaskCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        arguments = {
            "actor": Actor.from_request(request),
            "task_type": body.validated_data["task_type"],
            "params": body.validated_data.get("params"),
            "priority": body.validated_data["priority"],
            "run_after": body.validated_data.get("run_after"),
        }
        if body.validated_data.get("batch_code"):
            # Created by the batch's rules: one active task per batch, whichever door it comes through.
            task = task_create_owned(owner_field="batch_code", owner=body.validated_data["batch_code"], **arguments)
        else:
            task = task_create(trigger=Trigger.API, **arguments)
        return self._detail(task.pk, message="Task created and queued.", status=201)

    @extend_schema(
        operation_id="updateTask",
        summary="Change a pending task's params",
        request=TaskUpdateSerializer,
        responses={200: TaskDetailSerializer},
        description="Only `params`, only while the task is pending (else 409).",
    )
    def partial_update(self, request, task_id=None):
        task = self.get_object()
        body = TaskUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        task_update_params(actor=Actor.from_request(request), task_id=task.pk, params=body.validated_data["params"])
        return self._detail(task.pk, message="Task updated.")

    @extend_schema(operation_id="deleteTask", summary="Delete a finished task", request=None, responses={200: None})
    def destroy(self, request, task_id=None):
        task = self.get_object()
        task_delete(actor=Actor.from_request(request), task_id=task.pk)
        return ok(None, message="Task deleted.")

    def _steer(self, request, operation, message: str):
        require_empty_body(request)
        task = self.get_object()
        operation(actor=Actor.from_request(request), task_id=task.pk)
        return self._detail(task.pk, message=message)

    @extend_schema(
        operation_id="cancelTask",
        summary="Cancel (pending / processing / paused → cancelled)",
        request=None,
        responses=TaskDetailSerializer,
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, task_id=None):
        return self._steer(request, task_cancel, "Task cancelled.")

    @extend_schema(
        operation_id="pauseTask", summary="Pause (processing → paused)", request=None, responses=TaskDetailSerializer
    )
    @action(detail=True, methods=["post"])
    def pause(self, request, task_id=None):
        return self._steer(request, task_pause, "Task paused.")

    @extend_schema(
        operation_id="resumeTask",
        summary="Resume (paused → pending, from its checkpoint)",
        request=None,
        responses=TaskDetailSerializer,
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, task_id=None):
        return self._steer(request, task_resume, "Task resumed.")

    @extend_schema(
        operation_id="retryTask",
        summary="Retry (failed / cancelled → pending, attempt + 1)",
        request=None,
        responses=TaskDetailSerializer,
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, task_id=None):
        return self._steer(request, task_retry, "Task queued again.")

    @extend_schema(
        operation_id="listTaskLogs",
        summary="Task logs (oldest first)",
        parameters=[
            OpenApiParameter("level", str, enum=LOG_LEVEL_NAMES, description="Minimum level."),
            OpenApiParameter("after_id", LOG_ID_SCHEMA, description="Only entries with a larger id (tailing)."),
        ],
        responses=TaskLogSerializer(many=True),
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def logs(self, request, task_id=None):
        task = self.get_object()
        logs = TaskLog.objects.filter(task=task).order_by("id")
        level = request.query_params.get("level")
        if level:
            try:
                logs = logs.filter(level__gte=LogLevel.from_name(level))
            except ValueError:
                raise ValidationError(
                    {"level": [f"Unknown level {level!r}; use debug, info, warn or error."]}
                ) from None
        after_id = request.query_params.get("after_id")
        if after_id:
            logs = logs.filter(id__gt=log_id(after_id, "after_id"))
        page = self.paginate_queryset(logs)
        return self.get_paginated_response(TaskLogSerializer(page, many=True).data)

    @extend_schema(
        operation_id="streamTaskEvents",
        summary="Server-Sent Events of a task until it finishes",
        description=(
            "Events: `status` ({status, progress, stage_details}) on every change, `log` for each new log line, "
            "`end` at a final state; a `: keep-alive` comment every 15 s; `reconnect` when the stream's time limit "
            "ends it. Each `log` event carries the log line's id as its event id, so a client that reconnects with "
            "`Last-Event-ID` (browsers' EventSource do) gets only the lines after it. "
            "A `Last-Event-ID` that is not a log line id (decimal digits of 0 to 2^63 - 1) is a 400. "
            "At most TASKCENTER_SSE_MAX_STREAMS streams per web process (more → 429); a stream ends after "
            "TASKCENTER_SSE_MAX_SECONDS (reconnect)."
        ),
        parameters=[
            OpenApiParameter(
                "Last-Event-ID",
                LOG_ID_SCHEMA,
                OpenApiParameter.HEADER,
                description="The id of the last log event seen: only later lines are sent.",
            ),
        ],
        responses={(200, "text/event-stream"): OpenApiResponse(TaskEventSerializer, description="An event stream.")},
    )
    @action(
        detail=True,
        methods=["get"],
        filterset_class=None,
    )
    def events(self, request, task_id=None):
        task = self.get_object()
        if request.method == "HEAD":  # the headers a stream would have; no stream, no slot taken
            response = HttpResponse(content_type="text/event-stream")
            response["Cache-Control"] = "no-cache"
            return response
        last_seen = request.META.get("HTTP_LAST_EVENT_ID", "")
        after_log = log_id(last_seen, "Last-Event-ID") if last_seen else 0
        response = StreamingHttpResponse(EventStream(task.pk, after_log), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response

    @extend_schema(
        operation_id="bulkCancelTasks",
        summary="Bulk cancel by ids, by task types, or all",
        description=(
            f"By task types or all: the oldest active tasks, at most {MAX_CANCEL_PER_REQUEST:,} per request;"
            " `remaining` says how many active tasks of the selection are left: call again until it is 0."
        ),
        request=BatchCancelSerializer,
        responses=BatchCancelResultSerializer,
    )
    @action(detail=False, methods=["post"], url_path="batch-cancel")
    def batch_cancel(self, request):
        body = BatchCancelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = tasks_cancel_many(
            actor=Actor.from_request(request),
            task_ids=body.validated_data.get("task_ids"),
            task_types=body.validated_data.get("task_types"),
        )
        message = _bulk_message("cancelled", result)
        if result["remaining"]:
            message += f"; {result['remaining']} active tasks remain: call again"
        return ok(result, message=message)

    @extend_schema(
        operation_id="bulkDeleteTasks",
        summary="Bulk delete finished tasks",
        request=TaskIdsSerializer,
        responses=BulkResultSerializer,
    )
    @action(detail=False, methods=["post"], url_path="batch-delete")
    def batch_delete(self, request):
        return apply_to_task_ids(request, "delete", "deleted")

    @extend_schema(
        operation_id="getTaskStatistics", summary="Task statistics", responses=TaskStatisticsSerializer, filters=False
    )
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None)
    def statistics(self, request):
        return ok(TaskStatisticsSerializer(task_statistics()).data)

    @extend_schema(
        operation_id="runBulkTaskAction",
        summary="Cancel, pause, resume, retry or delete every task a filter matches",
        description=(
            "Each action needs the permission of its own endpoint (cancelTask, pauseTask, resumeTask, retryTask,"
            " deleteTask). `filter` takes the task list's filters plus `error_category`, at least one. More matching"
            f" tasks than `limit` (1…{MAX_BULK_LIMIT:,}, default {DEFAULT_BULK_LIMIT:,}) is a 409 that changes"
            " nothing. `dry_run: true` changes nothing and answers `BulkDryRun`: how many tasks match, how many the"
            " action would change and refuse (their status, the permissions their type needs), and a sample."
            " Otherwise the action runs on each matched task, oldest first, a few dozen per transaction, and"
            " answers `BulkActionResult`: per task, and the `bulk_id` that every audit row of the action carries"
            " (in `details`; the action's own row is `task.bulk` with target `bulk:<bulk_id>`)."
        ),
        request=BulkActionSerializer,
        responses=BulkActionOutcome,
    )
    @action(detail=False, methods=["post"], filterset_class=None)
    def bulk(self, request):
        body = BulkActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = body.validated_data
        result = tasks_bulk_apply(
            actor=Actor.from_request(request),
            operation=values["action"],
            tasks=bulk_filter_queryset(values["filter"]),
            selection=request.data["filter"],
            dry_run=values["dry_run"],
            limit=values["limit"],
        )
        if values["dry_run"]:
            message = (
                f"Dry run, nothing changed: {result['matched']} tasks match; {result['would_succeed']} would be"
                f" {BULK_VERBS[values['action']]}, {result['would_fail']} refused"
            )
            return ok(result, message=message)
        return ok(result, message=_bulk_message(BULK_VERBS[values["action"]], result))


#: What a task became, by bulk action (answers' messages).
BULK_VERBS = {
    "cancel": "cancelled",
    "pause": "paused",
    "resume": "resumed",
    "retry": "queued again",
    "delete": "deleted",
}


def _bulk_message(verb: str, result: dict) -> str:
    return f"{result['success_count']}/{result['total_count']} {verb}; {result['failed_count']} refused"


def apply_to_task_ids(request, operation: str, verb: str):
    """The answer of a bulk endpoint whose body is ``{"task_ids": [...]}``: the services'
    ``operation`` on each task, per-item results in the envelope."""
    body = TaskIdsSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    actor = Actor.from_request(request)
    result = tasks_apply_many(actor=actor, operation=operation, ids=body.validated_data["task_ids"])
    return ok(result, message=_bulk_message(verb, result))


_STREAMS = threading.BoundedSemaphore(settings.TASKCENTER_SSE_MAX_STREAMS)
KEEP_ALIVE_SECONDS = 15
POLL_SECONDS = 0.5


class EventStream:
    """The events of one task (``_events``), holding one of the process's stream slots from its
    creation until the server closes the response — whether or not the stream was ever read (a
    client gone before the first byte)."""

    def __init__(self, task_id, after_log: int = 0):
        if not _STREAMS.acquire(blocking=False):
            raise Throttled(wait=5, detail="Too many event streams on this server; try again shortly.")
        self._held = True
        self._events = _events(task_id, after_log)

    def __iter__(self):
        return self._events

    def close(self) -> None:
        try:
            self._events.close()
        finally:
            if self._held:
                self._held = False
                _STREAMS.release()


def _events(task_id, after_log: int):
    """Poll the task every half second; emit what changed (log lines after ``after_log``)."""
    try:
        last_state = None
        last_log = after_log
        last_sent = time.monotonic()
        deadline = time.monotonic() + settings.TASKCENTER_SSE_MAX_SECONDS
        while time.monotonic() < deadline:
            task = Task.objects.filter(pk=task_id).prefetch_related("stages").first()
            if task is None:
                yield _event("end", {"status": None, "reason": "deleted"})
                return
            state = {
                "status": task.status,
                "progress": task.progress,
                "stage_details": [
                    {"stage": s.name, "status": s.status, "progress": s.progress} for s in task.stages.all()
                ],
            }
            if state != last_state:
                yield _event("status", state)
                last_state = state
                last_sent = time.monotonic()
            for log in TaskLog.objects.filter(task_id=task_id, id__gt=last_log).order_by("id")[:200]:
                last_log = log.id
                with timezone.override(UTC):  # streamed after ApiInUtcMiddleware let go
                    line = TaskLogSerializer(log).data
                yield _event("log", line, event_id=log.id)
                last_sent = time.monotonic()
            if task.status in FINISHED_STATUSES:
                yield _event("end", {"status": task.status})
                return
            if time.monotonic() - last_sent >= KEEP_ALIVE_SECONDS:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            time.sleep(POLL_SECONDS)
        yield _event("reconnect", {"reason": "stream time limit reached"})
    finally:
        close_old_connections()


def _event(name: str, data, *, event_id: int | None = None) -> str:
    prefix = f"id: {event_id}\n" if event_id is not None else ""
    return f"{prefix}event: {name}\ndata: {json.dumps(data, default=str, ensure_ascii=False)}\n\n"


@extend_schema(tags=["task types"])
class TaskTypeViewSet(viewsets.ViewSet):
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    http_method_names = ["get", "post", "patch", "head", "options"]
    action_permissions = {
        "list": VIEW,
        "retrieve": VIEW,
        "partial_update": ["tasks.manage_queue"],
        "pause": ["tasks.manage_queue"],
        "resume": ["tasks.manage_queue"],
    }

    @extend_schema(
        operation_id="listTaskTypes",
        summary="Registered task types, with their queue controls and counts",
        responses=TaskTypeSerializer(many=True),
    )
    def list(self, request):
        jobs = job_types()
        queues = task_type_queues([job.name for job in jobs])
        return ok(TaskTypeSerializer([_task_type(job, queues[job.name]) for job in jobs], many=True).data)

    @extend_schema(operation_id="getTaskType", summary="One task type", responses=TaskTypeSerializer)
    def retrieve(self, request, name=None):
        return self._answer(name)

    @extend_schema(
        operation_id="updateTaskType",
        summary="Set a task type's concurrency limit",
        request=TaskTypeLimitSerializer,
        responses=TaskTypeSerializer,
        description="At most `max_concurrency` tasks of the type processing at once, over every cluster"
        " (null: no limit). Running tasks beyond a lowered limit go on; no new one starts until the type is under"
        " it.",
    )
    def partial_update(self, request, name=None):
        body = TaskTypeLimitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        actor = Actor.from_request(request)
        task_type_set_limit(actor=actor, name=name, max_concurrency=body.validated_data["max_concurrency"])
        return self._answer(name, message="Concurrency limit set.")

    @extend_schema(
        operation_id="pauseTaskType",
        summary="Pause a task type: no new task of it starts",
        request=None,
        responses=TaskTypeSerializer,
        description="No worker of any cluster claims a new task of the type; running ones go on, pending ones"
        " wait. 409 if it is paused already.",
    )
    @action(detail=True, methods=["post"])
    def pause(self, request, name=None):
        require_empty_body(request)
        task_type_pause(actor=Actor.from_request(request), name=name)
        return self._answer(name, message="Task type paused.")

    @extend_schema(
        operation_id="resumeTaskType",
        summary="Resume a paused task type",
        request=None,
        responses=TaskTypeSerializer,
        description="Its pending tasks are claimed again. 409 if it is not paused.",
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, name=None):
        require_empty_body(request)
        task_type_resume(actor=Actor.from_request(request), name=name)
        return self._answer(name, message="Task type resumed.")

    def _answer(self, name: str, *, message: str | None = None):
        try:
            job = get_job_type(name)
        except InvalidInput:
            raise NotFound(f"task type {name!r} not found") from None
        return ok(TaskTypeSerializer(_task_type(job, task_type_queues([name])[name])).data, message=message)


def _task_type(job, queue: dict) -> dict:
    return {
        "name": job.name,
        "description": job.description,
        "stages": [
            {"name": stage.name, "weight": weight}
            for stage, (_, weight) in zip(job.stages, job.stage_weights(), strict=True)
        ],
        "timeout_seconds": job.timeout_seconds,
        "max_attempts": job.max_attempts,
        "user_startable": job.user_startable,
        "start_permissions": ["tasks.add_task", *job.permissions],
        "params_schema": params_json_schema(job.params_serializer),
        **queue,
    }


def params_json_schema(serializer_class) -> dict:
    """A JSON Schema of a params serializer (the fields a client may send)."""
    schema: dict = {"type": "object", "properties": {}, "additionalProperties": False, "required": []}
    if serializer_class is None:
        return schema
    types = {
        serializers.IntegerField: "integer",
        serializers.FloatField: "number",
        serializers.BooleanField: "boolean",
        serializers.CharField: "string",
        serializers.ListField: "array",
        serializers.DictField: "object",
    }
    for name, field in serializer_class().fields.items():
        if field.read_only:
            continue
        prop: dict = {}
        for klass, json_type in types.items():
            if isinstance(field, klass):
                prop["type"] = json_type
                break
        for attr, key in (("min_value", "minimum"), ("max_value", "maximum"), ("max_length", "maxLength")):
            if getattr(field, attr, None) is not None:
                prop[key] = getattr(field, attr)
        for validator in getattr(field, "validators", []):
            if getattr(validator, "regex", None) is not None:
                prop["pattern"] = validator.regex.pattern
        if field.help_text:
            prop["description"] = str(field.help_text)
        if field.default is not serializers.empty and not callable(field.default):
            prop["default"] = field.default
        if getattr(field, "allow_null", False) and "type" in prop:
            prop["type"] = [prop["type"], "null"]
        if field.required:
            schema["required"].append(name)
        schema["properties"][name] = prop
    return schema


@extend_schema(tags=["audit"])
@extend_schema_view(list=extend_schema(operation_id="listAuditLogs", summary="The audit log (newest first)"))
class AuditLogViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = AuditLog.objects.order_by("-id")
    serializer_class = AuditLogSerializer
    filterset_class = AuditLogFilter
    action_permissions = {"list": ["tasks.view_auditlog"]}


@extend_schema(tags=["schedules"])
@extend_schema_view(
    list=extend_schema(operation_id="listSchedules", summary="List schedules (by name)"),
    retrieve=extend_schema(operation_id="getSchedule", summary="Schedule detail"),
)
class ScheduleViewSet(ListFiltersOnlyMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = Schedule.objects.select_related("batch", "created_by").order_by("name", "pk")
    serializer_class = ScheduleSerializer
    filterset_class = ScheduleFilter
    lookup_url_kwarg = "id"
    lookup_value_regex = "[0-9]{1,18}"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    action_permissions = {
        "list": ["tasks.view_schedule"],
        "retrieve": ["tasks.view_schedule"],
        "create": ["tasks.add_schedule"],
        "partial_update": ["tasks.change_schedule"],
        "destroy": ["tasks.delete_schedule"],
    }

    def _detail(self, pk, *, message: str, status: int = 200):
        return ok(ScheduleSerializer(self.get_queryset().get(pk=pk)).data, message=message, status=status)

    @extend_schema(
        operation_id="createSchedule",
        summary="Create a schedule",
        request=ScheduleCreateSerializer,
        responses={201: ScheduleSerializer},
        description=(
            "Needs tasks.add_schedule and what starting its task needs (the task type's start_permissions;"
            " tasks.start_task for a batch schedule): its tasks are created by you, with your permissions at"
            " each run. A run is skipped, and the skip is in the audit log (`schedule.skip`), while the task it"
            " started last is still active. A bad cron expression is a 400 naming `cron`; both or neither of"
            " cron and interval_seconds a 400 naming both; a name in use a 409."
        ),
    )
    def create(self, request):
        body = ScheduleCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        schedule = schedule_create(actor=Actor.from_request(request), **body.validated_data)
        return self._detail(schedule.pk, message="Schedule created.", status=201)

    @extend_schema(
        operation_id="updateSchedule",
        summary="Change a schedule, or enable / disable it",
        request=ScheduleUpdateSerializer,
        responses={200: ScheduleSerializer},
        description=(
            "Changing more than `enabled` needs what creating it needs; the owner stays. A new cron or"
            " interval, and enabling, count from now."
        ),
    )
    def partial_update(self, request, id=None):
        schedule = self.get_object()
        body = ScheduleUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if not body.validated_data:
            raise ValidationError({"non_field_errors": ["Nothing to change: give at least one field."]})
        schedule_update(actor=Actor.from_request(request), schedule_id=schedule.pk, changes=body.validated_data)
        return self._detail(schedule.pk, message="Schedule updated.")

    @extend_schema(
        operation_id="deleteSchedule",
        summary="Delete a schedule (the tasks it started stay)",
        request=None,
        responses={200: None},
    )
    def destroy(self, request, id=None):
        schedule = self.get_object()
        schedule_delete(actor=Actor.from_request(request), schedule_id=schedule.pk)
        return ok(None, message="Schedule deleted.")
