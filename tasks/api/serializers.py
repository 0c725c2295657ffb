"""Task API shapes: the tasks endpoints' bodies and answers, and a statistics task's status and progress."""

from __future__ import annotations

import re
from datetime import timedelta

from django.core.validators import RegexValidator
from django.utils import timezone
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from taskcenter.api.serializers import (
    Answer,
    AwareDateTimeField,
    BlankAsNullField,
    ModelAnswer,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StrictSerializer,
    id_list_field,
)
from tasks.models import AuditLog, Schedule, Task, TaskLog, TaskStage
from tasks.runtime.schedules import CRON_HELP, CRON_PATTERN
from tasks.selectors import type_paused
from tasks.services import (
    BULK_OPERATIONS,
    BULK_SAMPLE_SIZE,
    DEFAULT_BULK_LIMIT,
    MAX_BULK_IDS,
    MAX_BULK_LIMIT,
    SCHEDULE_NAME_MAX,
)
from tasks.states import (
    INTERVAL_SECONDS_MAX,
    INTERVAL_SECONDS_MIN,
    LOG_LEVEL_NAMES,
    MAX_CONCURRENCY_MAX,
    MAX_CONCURRENCY_MIN,
    PRIORITY_DEFAULT,
    PRIORITY_MAX,
    PRIORITY_MIN,
    ClusterStatus,
    ErrorCategory,
    LogLevel,
    StageStatus,
    TaskStatus,
    Trigger,
)


def estimated_completion(task: Task):
    """Linear estimate from this execution's pace: None unless processing with some progress."""
    return estimate_completion(task.status, task.started_at, task.progress)


def estimate_completion(status: str, started_at, progress: float):
    """:func:`estimated_completion` from the three columns it needs."""
    if status != TaskStatus.PROCESSING or not started_at or not progress:
        return None
    if progress >= 100:
        return timezone.now()
    elapsed = (timezone.now() - started_at).total_seconds()
    remaining = elapsed * (100.0 - progress) / progress
    return timezone.now() + timedelta(seconds=remaining)


class StageSerializer(ModelAnswer):
    stage = serializers.CharField(source="name", help_text="The stage's name (the task type's `stages`).")
    status = serializers.ChoiceField(choices=StageStatus.choices)
    progress = serializers.FloatField(min_value=0, max_value=100, help_text="0–100.")

    class Meta:
        model = TaskStage
        fields = ["stage", "status", "progress"]


def iso(value, tz=None) -> str | None:
    """A datetime as DRF renders it (ISO 8601 in the current time zone, 'Z' for UTC: the API
    answers in UTC, ``taskcenter.middleware.ApiInUtcMiddleware``).

    ``tz``: the current time zone, when the caller formats many values (looked up once).
    """
    if value is None:
        return None
    text = value.astimezone(tz or timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


#: The list's fields and the columns they come from (``values_list`` paths): one place for both.
LIST_COLUMNS = {
    "task_id": "id",
    "task_type": "task_type",
    "batch_code": "batch__batch_code",
    "status": "status",
    "progress": "progress",
    "error_message": "error_message",
    "error_category": "error_category",
    "attempt": "attempt",
    "max_attempts": "max_attempts",
    "trigger": "trigger",
    "priority": "priority",
    "run_after": "run_after",
    "created_by": "created_by__username",
    "created_at": "created_at",
    "started_at": "started_at",
    "completed_at": "completed_at",
    "updated_at": "updated_at",
    # A pending task of a paused type waits until the type is resumed.
    "type_paused": type_paused(),
}
_DATETIMES = {"run_after", "created_at", "started_at", "completed_at", "updated_at"}
_LIST_NAMES = list(LIST_COLUMNS)
#: The detail's columns: the list's, then the task's params and result.
DETAIL_COLUMNS = {**LIST_COLUMNS, "params": "params", "result": "result"}


def _list_item(row, tz) -> dict:
    item = dict(zip(_LIST_NAMES, row[: len(_LIST_NAMES)], strict=True))
    item["task_id"] = str(item["task_id"])
    item["error_message"] = item["error_message"] or None
    for name in _DATETIMES:
        item[name] = iso(item[name], tz)
    return item


def list_rows(rows) -> list[dict]:
    """Task list items from ``values_list(*LIST_COLUMNS.values())`` tuples: no model instances,
    no per-field serializer machinery (the list is the hottest endpoint)."""
    tz = timezone.get_current_timezone()
    return [_list_item(row, tz) for row in rows]


def detail_item(row, stages) -> dict:
    """A task's detail from a ``values_list(*DETAIL_COLUMNS.values())`` tuple and its stages'
    ``(name, status, progress)`` in order (the detail and every steering action answer with it)."""
    item = _list_item(row, timezone.get_current_timezone())
    columns = dict(zip(DETAIL_COLUMNS, row, strict=True))
    item["stage_details"] = [
        {"stage": name, "status": status, "progress": progress} for name, status, progress in stages
    ]
    item["params"] = columns["params"]
    item["result"] = columns["result"]
    item["estimated_completion"] = iso(
        estimate_completion(columns["status"], columns["started_at"], columns["progress"])
    )
    return item


class TaskSerializer(ModelAnswer):
    """A task as the task list shows it."""

    # Describes the schema only: the items are built by list_rows().

    task_id = serializers.UUIDField(source="id")
    task_type = serializers.CharField(help_text="A registered task type (GET /api/v1/task-types).")
    batch_code = serializers.CharField(
        source="batch.batch_code", allow_null=True, help_text="The batch the task belongs to, if any."
    )
    status = serializers.ChoiceField(choices=TaskStatus.choices)
    progress = serializers.FloatField(min_value=0, max_value=100, help_text="0–100, weighted over the stages.")
    error_message = serializers.CharField(allow_null=True, help_text="Why it failed; null when it did not.")
    error_category = serializers.ChoiceField(choices=ErrorCategory.choices, allow_null=True)
    attempt = serializers.IntegerField(min_value=1, help_text="1 for the first run; each retry adds one.")
    max_attempts = serializers.IntegerField(min_value=1)
    trigger = serializers.ChoiceField(choices=Trigger.choices)
    priority = serializers.IntegerField(
        min_value=PRIORITY_MIN, max_value=PRIORITY_MAX, help_text="Workers claim the highest first, then the oldest."
    )
    run_after = serializers.DateTimeField(allow_null=True, help_text="Not claimed before this time; null: at once.")
    created_by = serializers.CharField(source="created_by.username", allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField()
    type_paused = serializers.BooleanField(
        help_text="The task's type is paused: a pending task of it waits until the type is resumed."
    )

    class Meta:
        model = Task
        fields = list(LIST_COLUMNS)


class TaskDetailSerializer(TaskSerializer):
    """A task's detail: the list's fields, its stages in order, params, result and estimated completion."""

    # Describes the schema only: the answer is built by detail_item().

    stage_details = StageSerializer(source="stages", many=True)
    params = serializers.DictField(help_text="The task's parameters (the task type's `params_schema`).")
    result = serializers.DictField(allow_null=True, help_text="What the job returned; null until it completes.")
    estimated_completion = serializers.DateTimeField(
        allow_null=True, help_text="Linear estimate from this execution's pace; null unless processing."
    )

    class Meta(TaskSerializer.Meta):
        fields = [*TaskSerializer.Meta.fields, "stage_details", "params", "result", "estimated_completion"]


class TaskStatusReportSerializer(Answer):
    """A task's status, start time and estimated completion."""

    task_id = serializers.UUIDField(source="id")
    batch_code = serializers.CharField(source="batch.batch_code", allow_null=True)
    status = serializers.ChoiceField(choices=TaskStatus.choices)
    progress = serializers.FloatField(min_value=0, max_value=100, help_text="0–100.")
    started_at = serializers.DateTimeField(allow_null=True)
    estimated_completion = serializers.SerializerMethodField()
    error_message = BlankAsNullField(help_text="Why it failed; null when it did not.")

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_estimated_completion(self, task):
        return iso(estimated_completion(task))


class TaskProgressSerializer(Answer):
    """A task's overall progress and each stage's."""

    task_id = serializers.UUIDField(source="id")
    overall_progress = serializers.FloatField(source="progress", min_value=0, max_value=100, help_text="0–100.")
    stage_details = StageSerializer(source="stages", many=True)


class TaskCreateSerializer(StrictSerializer):
    task_type = StrictCharField(max_length=64, help_text="A registered task type (GET /api/v1/task-types).")
    params = serializers.DictField(
        required=False, default=dict, help_text="Validated against the task type's params_schema."
    )
    batch_code = StrictCharField(max_length=64, required=False, allow_null=True)
    priority = StrictIntegerField(
        min_value=PRIORITY_MIN,
        max_value=PRIORITY_MAX,
        required=False,
        default=PRIORITY_DEFAULT,
        help_text="Workers claim the highest first, then the oldest.",
    )
    run_after = AwareDateTimeField(required=False, allow_null=True, help_text="Not claimed before this time.")


class TaskUpdateSerializer(StrictSerializer):
    params = serializers.DictField(help_text="Validated against the task type's params_schema.")


class TaskLogSerializer(ModelAnswer):
    level = serializers.SerializerMethodField()
    data = serializers.DictField(allow_null=True, help_text="Structured fields the job logged with the line.")

    class Meta:
        model = TaskLog
        fields = ["id", "timestamp", "level", "message", "data"]

    @extend_schema_field(serializers.ChoiceField(choices=LOG_LEVEL_NAMES))
    def get_level(self, log) -> str:
        return LogLevel(log.level).label


#: The events of a task's stream.
TASK_EVENTS = ["status", "log", "end", "reconnect"]


class TaskEventSerializer(Answer):
    """One Server-Sent Event of a task's stream."""

    optional_fields = ("id",)

    event = serializers.ChoiceField(
        choices=TASK_EVENTS,
        help_text=(
            "`status`: {status, progress, stage_details} on every change; `log`: a TaskLog; `end`: a final state"
            " ({status}, or {status: null, reason: deleted}); `reconnect`: the stream's time limit ended it."
        ),
    )
    data = serializers.CharField(help_text="The event's JSON.")
    id = serializers.CharField(help_text="`log` events: the log line's id (send it back as Last-Event-ID).")


class TaskIdsSerializer(StrictSerializer):
    task_ids = id_list_field(max_length=MAX_BULK_IDS)


class BatchCancelSerializer(StrictSerializer):
    """Exactly one of the three selectors: by ids, by task types, or all."""

    task_ids = id_list_field(max_length=MAX_BULK_IDS, required=False)
    task_types = serializers.ListField(child=StrictCharField(max_length=64), min_length=1, required=False)
    all = serializers.BooleanField(required=False)

    def validate(self, attrs):
        chosen = [key for key in ("task_ids", "task_types", "all") if key in attrs]
        if len(chosen) != 1:
            raise serializers.ValidationError("Give exactly one of task_ids, task_types or all.")
        if "all" in attrs and attrs["all"] is not True:
            raise serializers.ValidationError({"all": ["Must be true."]})
        return attrs


#: What a bulk result says an item became: a task status, or ``deleted``.
BULK_ITEM_STATUSES = [*TaskStatus.values, "deleted"]


class BulkItemSerializer(Answer):
    success = serializers.BooleanField()
    status = serializers.ChoiceField(
        choices=BULK_ITEM_STATUSES,
        allow_null=True,
        help_text="What the item became (a task status, or deleted); null if refused.",
    )
    error = serializers.CharField(allow_null=True, help_text="Why the item was refused; null on success.")


class BulkResultSerializer(Answer):
    total_count = serializers.IntegerField(min_value=0, help_text="Distinct ids asked for.")
    success_count = serializers.IntegerField(min_value=0)
    failed_count = serializers.IntegerField(min_value=0)
    results = serializers.DictField(child=BulkItemSerializer(), help_text="Per id asked for.")


class TaskTypeStageSerializer(Answer):
    name = serializers.CharField()
    weight = serializers.FloatField(help_text="The stage's share of the overall progress (the weights add up to 1).")


LIMIT_HELP = "At most this many of the type's tasks run at once, over every cluster; null: no limit."


class TaskTypeSerializer(Answer):
    name = serializers.CharField()
    description = serializers.CharField()
    stages = TaskTypeStageSerializer(many=True)
    timeout_seconds = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    user_startable = serializers.BooleanField()
    start_permissions = serializers.ListField(
        child=serializers.CharField(), help_text="What creating a task of this type needs (tasks.add_task and more)."
    )
    params_schema = serializers.DictField(help_text="A JSON Schema of the `params` a task of this type takes.")
    paused = serializers.BooleanField(help_text="No worker claims a new task of a paused type; running ones go on.")
    max_concurrency = serializers.IntegerField(
        min_value=MAX_CONCURRENCY_MIN,
        max_value=MAX_CONCURRENCY_MAX,
        allow_null=True,
        help_text=LIMIT_HELP,
    )
    pending = serializers.IntegerField(min_value=0, help_text="Tasks of the type waiting (pending).")
    running = serializers.IntegerField(min_value=0, help_text="Tasks of the type processing now.")


class TaskTypeLimitSerializer(StrictSerializer):
    max_concurrency = StrictIntegerField(
        min_value=MAX_CONCURRENCY_MIN,
        max_value=MAX_CONCURRENCY_MAX,
        allow_null=True,
        help_text=LIMIT_HELP,
    )


class CountSerializer(Answer):
    created = serializers.IntegerField()
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()


class DurationSerializer(Answer):
    count = serializers.IntegerField()
    mean_seconds = serializers.FloatField(allow_null=True)
    p95_seconds = serializers.FloatField(allow_null=True)


class ClusterSerializer(Answer):
    name = serializers.CharField()
    host = serializers.CharField()
    status = serializers.ChoiceField(choices=ClusterStatus.choices)
    workers = serializers.IntegerField()
    task_queue = serializers.IntegerField()
    uptime_seconds = serializers.FloatField()


class ResourceSerializer(Answer):
    host = serializers.CharField()
    workers = serializers.IntegerField(help_text="Worker processes reporting.")
    cpu_percent = serializers.FloatField(help_text="CPU of the host's workers; 100 = one core.")
    memory_bytes = serializers.IntegerField(help_text="Resident memory of the host's workers.")
    tasks_per_minute = serializers.FloatField(help_text="Tasks run per minute (last minute).")
    updated_at = serializers.DateTimeField()


#: Tasks per status: one count for each status.
StatusCountsSerializer = type(
    "StatusCountsSerializer",
    (Answer,),
    {status: serializers.IntegerField(min_value=0) for status in TaskStatus.values},
)


class TaskStatisticsSerializer(Answer):
    by_status = StatusCountsSerializer(help_text="Tasks per status.")
    by_type = serializers.DictField(child=StatusCountsSerializer(), help_text="Task type → tasks per status.")
    last_24h = CountSerializer()
    success_rate = serializers.FloatField(allow_null=True, help_text="completed / (completed + failed), last 24 h")
    duration_by_type = serializers.DictField(child=DurationSerializer(), help_text="Completed in the last 24 h.")
    queue_depth = serializers.IntegerField(help_text="Messages waiting in the broker.")
    clusters = ClusterSerializer(many=True)
    resources = ResourceSerializer(many=True, help_text="Worker CPU, memory and task rate per cluster host.")


class AuditLogSerializer(ModelAnswer):
    actor = serializers.CharField(source="actor_name")
    from_status = BlankAsNullField(help_text="The status before a status change; null for other changes.")
    to_status = BlankAsNullField(help_text="The status after a status change; null for other changes.")
    details = serializers.DictField(help_text="What changed (fields, counts, reasons), by action.")

    class Meta:
        model = AuditLog
        fields = [
            "id",
            "created_at",
            "actor",
            "action",
            "target_type",
            "target_id",
            "from_status",
            "to_status",
            "details",
            "client_address",
        ]


class BatchCancelResultSerializer(BulkResultSerializer):
    """``POST /api/v1/tasks/batch-cancel``: the bulk result, and what is left of the selection."""

    remaining = serializers.IntegerField(
        min_value=0,
        help_text=(
            "Active tasks of the selection (task_types or all) still left after this request, which cancels a"
            " bounded number of them: call again until it is 0. Always 0 for task_ids."
        ),
    )


class ScheduleSerializer(ModelAnswer):
    """A schedule: the task it starts, when, and what it last did."""

    task_type = serializers.CharField(help_text="A registered task type (GET /api/v1/task-types).")
    params = serializers.DictField(help_text="The params of each task it starts, as given (defaults: the type's).")
    batch_code = serializers.CharField(
        source="batch.batch_code", allow_null=True, help_text="A batch schedule starts this batch; null: none."
    )
    priority = serializers.IntegerField(min_value=PRIORITY_MIN, max_value=PRIORITY_MAX)
    cron = serializers.CharField(allow_null=True, help_text=f"{CRON_HELP} Null for an interval schedule.")
    interval_seconds = serializers.IntegerField(
        min_value=INTERVAL_SECONDS_MIN,
        max_value=INTERVAL_SECONDS_MAX,
        allow_null=True,
        help_text="Seconds between runs; null for a cron schedule.",
    )
    enabled = serializers.BooleanField()
    next_run_at = serializers.DateTimeField(allow_null=True, help_text="When the next run is due; null while disabled.")
    last_task_id = serializers.UUIDField(
        allow_null=True, help_text="The task its latest run started (a run is skipped while it is active)."
    )
    created_by = serializers.CharField(
        source="created_by.username",
        allow_null=True,
        help_text="The owner: its tasks are created by this user, with this user's permissions; null: the system.",
    )

    class Meta:
        model = Schedule
        fields = [
            "id",
            "name",
            "task_type",
            "params",
            "batch_code",
            "priority",
            "cron",
            "interval_seconds",
            "enabled",
            "next_run_at",
            "last_task_id",
            "created_by",
            "created_at",
            "updated_at",
        ]


def _cron_field(**kwargs) -> StrictCharField:
    return StrictCharField(
        max_length=100,
        allow_null=True,
        validators=[RegexValidator(CRON_PATTERN, message=CRON_HELP)],
        help_text=f"{CRON_HELP} Exactly one of cron and interval_seconds is set (the other null).",
        **kwargs,
    )


def _interval_field(**kwargs) -> StrictIntegerField:
    return StrictIntegerField(
        min_value=INTERVAL_SECONDS_MIN,
        max_value=INTERVAL_SECONDS_MAX,
        allow_null=True,
        help_text="Seconds between runs (the first one interval after creation).",
        **kwargs,
    )


class ScheduleCreateSerializer(StrictSerializer):
    name = StrictCharField(max_length=SCHEDULE_NAME_MAX, help_text="Unique.")
    task_type = StrictCharField(max_length=64, help_text="A task type users may start (GET /api/v1/task-types).")
    params = serializers.DictField(
        required=False, default=dict, help_text="Validated against the task type's params_schema."
    )
    batch_code = StrictCharField(
        max_length=64,
        required=False,
        allow_null=True,
        default=None,
        help_text="Starts this batch as POST /api/v1/statistics/tasks/{batch_code}/start does (no params).",
    )
    priority = StrictIntegerField(
        min_value=PRIORITY_MIN, max_value=PRIORITY_MAX, required=False, default=PRIORITY_DEFAULT
    )
    cron = _cron_field(required=False, default=None)
    interval_seconds = _interval_field(required=False, default=None)
    enabled = StrictBooleanField(required=False, default=True)


class ScheduleUpdateSerializer(StrictSerializer):
    """The fields to change; the rest stay. To switch between cron and interval_seconds, null the other."""

    name = StrictCharField(max_length=SCHEDULE_NAME_MAX, required=False)
    task_type = StrictCharField(max_length=64, required=False)
    params = serializers.DictField(required=False, help_text="Validated against the task type's params_schema.")
    batch_code = StrictCharField(max_length=64, required=False, allow_null=True)
    priority = StrictIntegerField(min_value=PRIORITY_MIN, max_value=PRIORITY_MAX, required=False)
    cron = _cron_field(required=False)
    interval_seconds = _interval_field(required=False)
    enabled = StrictBooleanField(required=False, help_text="false: no run until enabled again.")


# --- bulk by filter ---------------------------------------------------------------------------

#: The actions of ``POST /api/v1/tasks/bulk``.
BULK_ACTIONS = list(BULK_OPERATIONS)
#: The characters ``str.strip()`` removes (Python's whitespace), as a regex class: a filter's text
#: made only of them filters nothing (the task list strips its values), so it is refused.
_SPACE = r"\t\n\u000b\u000c\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
#: Text with something besides whitespace, and no NUL.
NOT_BLANK = rf"\A[^\u0000]*[^\u0000{_SPACE}][^\u0000]*\Z"
_STATUS = "(?:" + "|".join(TaskStatus.values) + ")"
#: One status or several separated by commas, as the task list's ``?status=`` takes them.
STATUS_TEXT = rf"\A{_STATUS}(?:,{_STATUS})*\Z"


def _filter_text(max_length: int, help_text: str = "") -> StrictCharField:
    return StrictCharField(
        max_length=max_length,
        required=False,
        validators=[RegexValidator(NOT_BLANK, "Give some text (not only spaces).")],
        help_text=help_text,
    )


@extend_schema_field(
    {
        "oneOf": [
            {"type": "array", "items": {"$ref": "#/components/schemas/TaskStatus"}, "minItems": 1},
            {"type": "string", "pattern": STATUS_TEXT.replace(r"\A", "^").replace(r"\Z", "$")},
        ],
        "description": "One status or several: a list, or text separated by commas (`failed,cancelled`).",
    }
)
class StatusesField(serializers.Field):
    """Task statuses as a list or as comma-separated text; the list of them."""

    def to_internal_value(self, data):
        if isinstance(data, str) and re.fullmatch(STATUS_TEXT, data):
            return data.split(",")
        if isinstance(data, list) and data and all(item in TaskStatus.values for item in data):
            return data
        statuses = ", ".join(TaskStatus.values)
        raise serializers.ValidationError(f"A list of task statuses, or text of them separated by commas: {statuses}.")


class BulkTaskFilterSerializer(StrictSerializer):
    """Which tasks: the task list's filters (each given one narrows the selection), plus
    `error_category`. At least one."""

    status = StatusesField(required=False)
    task_type = _filter_text(64, "A registered task type (GET /api/v1/task-types).")
    batch_code = _filter_text(64, "The batch the tasks belong to.")
    data_source = _filter_text(64, "The data source of the tasks' batch.")
    trigger = serializers.ChoiceField(choices=Trigger.choices, required=False)
    error_category = serializers.ChoiceField(choices=ErrorCategory.choices, required=False)
    created_after = serializers.DateTimeField(required=False, help_text="Created at or after (no offset: UTC).")
    created_before = serializers.DateTimeField(required=False, help_text="Created before (no offset: UTC).")
    search = _filter_text(200, "Task id, type, batch code or error text.")


class BulkActionSerializer(StrictSerializer):
    action = serializers.ChoiceField(choices=BULK_ACTIONS, help_text="Each needs the permission of its own endpoint.")
    filter = BulkTaskFilterSerializer(help_text='At least one key, e.g. {"status": "failed"}.')
    dry_run = StrictBooleanField(
        required=False, default=False, help_text="Count what would happen and show a sample; change nothing."
    )
    limit = StrictIntegerField(
        min_value=1,
        max_value=MAX_BULK_LIMIT,
        required=False,
        default=DEFAULT_BULK_LIMIT,
        help_text="More matching tasks than this is a 409 and changes nothing.",
    )

    def validate_filter(self, value):
        if not value:
            raise serializers.ValidationError('Name at least one filter key, e.g. {"status": "failed"}.')
        return value


class BulkDryRunSerializer(Answer):
    """What a bulk action would do: nothing was changed."""

    matched = serializers.IntegerField(min_value=0, help_text="Tasks the filter matches.")
    would_succeed = serializers.IntegerField(
        min_value=0, help_text="Of them, those the action applies to (their status, the type's permissions)."
    )
    would_fail = serializers.IntegerField(min_value=0, help_text="Those it would refuse.")
    sample = serializers.ListField(
        child=serializers.UUIDField(),
        max_length=BULK_SAMPLE_SIZE,
        help_text="The first matched task ids, oldest first.",
    )


class BulkActionResultSerializer(BulkResultSerializer):
    """A bulk action's outcome per task, and the id every audit row of it carries."""

    total_count = serializers.IntegerField(min_value=0, help_text="Tasks the filter matched.")
    results = serializers.DictField(child=BulkItemSerializer(), help_text="Per matched task, by its id.")
    bulk_id = serializers.UUIDField(help_text="In the details of every audit row this action wrote.")


#: The answer of ``POST /api/v1/tasks/bulk``: a dry run's counts, or the action's result.
BulkActionOutcome = PolymorphicProxySerializer(
    component_name="BulkActionOutcome",
    serializers=[BulkDryRunSerializer, BulkActionResultSerializer],
    resource_type_field_name=None,
)
