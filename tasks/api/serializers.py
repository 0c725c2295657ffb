"""Task API shapes: the tasks endpoints' bodies and answers, and a statistics task's status and progress."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from taskcenter.api.serializers import StrictCharField, StrictSerializer, id_list_field
from tasks.models import AuditLog, Task, TaskLog, TaskStage
from tasks.services import MAX_BULK_IDS
from tasks.states import LogLevel, StageStatus, TaskStatus


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


class StageSerializer(serializers.ModelSerializer):
    stage = serializers.CharField(source="name")
    status = serializers.ChoiceField(choices=StageStatus.choices)

    class Meta:
        model = TaskStage
        fields = ["stage", "status", "progress"]


def iso(value, tz=None) -> str | None:
    """A datetime as DRF renders it (ISO 8601 in the current time zone, 'Z' for UTC).

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
    "created_by": "created_by__username",
    "created_at": "created_at",
    "started_at": "started_at",
    "completed_at": "completed_at",
    "updated_at": "updated_at",
}
_DATETIMES = {"created_at", "started_at", "completed_at", "updated_at"}
_LIST_NAMES = list(LIST_COLUMNS)
#: The detail's columns: the list's, then the task's params and result.
DETAIL_COLUMNS = {**LIST_COLUMNS, "params": "params", "result": "result"}


def _list_item(row, tz) -> dict:
    item = dict(zip(_LIST_NAMES, row[: len(_LIST_NAMES)], strict=True))
    item["task_id"] = str(item["task_id"])
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


class TaskListSerializer(serializers.ModelSerializer):
    """A task as the task list shows it."""

    # Describes the schema only: the items are built by list_rows().

    task_id = serializers.UUIDField(source="id")
    batch_code = serializers.CharField(source="batch.batch_code", allow_null=True, default=None)
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)

    class Meta:
        model = Task
        fields = list(LIST_COLUMNS)


class TaskDetailSerializer(TaskListSerializer):
    """A task's detail: the list's fields, its stages in order, params, result and estimated completion."""

    # Describes the schema only: the answer is built by detail_item().

    stage_details = StageSerializer(source="stages", many=True)
    estimated_completion = serializers.SerializerMethodField()
    params = serializers.JSONField()
    result = serializers.JSONField(allow_null=True)

    class Meta(TaskListSerializer.Meta):
        fields = [*TaskListSerializer.Meta.fields, "stage_details", "params", "result", "estimated_completion"]

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_estimated_completion(self, task):
        return iso(estimated_completion(task))


class TaskStatusSerializer(serializers.Serializer):
    """A statistics task's status (``GET /api/v1/statistics/tasks/{task_id}/status``)."""

    task_id = serializers.UUIDField(source="id")
    batch_code = serializers.CharField(source="batch.batch_code", allow_null=True, default=None)
    status = serializers.ChoiceField(choices=TaskStatus.choices)
    progress = serializers.FloatField()
    started_at = serializers.DateTimeField(allow_null=True)
    estimated_completion = serializers.SerializerMethodField()
    error_message = serializers.CharField(allow_null=True)

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_estimated_completion(self, task):
        value = estimated_completion(task)
        return value.isoformat() if value else None

    def to_representation(self, task):
        data = super().to_representation(task)
        data["error_message"] = task.error_message or None
        return data


class TaskProgressSerializer(serializers.Serializer):
    """A statistics task's progress (``GET /api/v1/statistics/tasks/{task_id}/progress``)."""

    task_id = serializers.UUIDField(source="id")
    overall_progress = serializers.FloatField(source="progress")
    stage_details = StageSerializer(source="stages", many=True)


class TaskCreateSerializer(StrictSerializer):
    task_type = StrictCharField(max_length=64, help_text="A registered task type (GET /api/v1/task-types).")
    params = serializers.DictField(
        required=False, default=dict, help_text="Validated against the task type's params_schema."
    )
    batch_code = StrictCharField(max_length=64, required=False, allow_null=True)


class TaskUpdateSerializer(StrictSerializer):
    params = serializers.DictField(help_text="Validated against the task type's params_schema.")


class TaskLogSerializer(serializers.ModelSerializer):
    level = serializers.SerializerMethodField()
    data = serializers.JSONField(allow_null=True)

    class Meta:
        model = TaskLog
        fields = ["id", "timestamp", "level", "message", "data"]

    @extend_schema_field(serializers.ChoiceField(choices=[m.label for m in LogLevel]))
    def get_level(self, log) -> str:
        return LogLevel(log.level).label


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


class BulkItemSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    status = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    task_id = serializers.UUIDField(required=False, allow_null=True)


class BulkResultSerializer(serializers.Serializer):
    total_count = serializers.IntegerField()
    success_count = serializers.IntegerField()
    failed_count = serializers.IntegerField()
    results = serializers.DictField(child=BulkItemSerializer())


class TaskTypeStageSerializer(serializers.Serializer):
    name = serializers.CharField()
    weight = serializers.FloatField()


class TaskTypeSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    stages = TaskTypeStageSerializer(many=True)
    timeout_seconds = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    user_startable = serializers.BooleanField()
    start_permissions = serializers.ListField(
        child=serializers.CharField(), help_text="What creating a task of this type needs (tasks.add_task and more)."
    )
    params_schema = serializers.DictField()


class CountSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()


class DurationSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    mean_seconds = serializers.FloatField(allow_null=True)
    p95_seconds = serializers.FloatField(allow_null=True)


class ClusterSerializer(serializers.Serializer):
    name = serializers.CharField()
    host = serializers.CharField()
    status = serializers.CharField()
    workers = serializers.IntegerField()
    task_queue = serializers.IntegerField()
    uptime_seconds = serializers.FloatField()


class ResourceSerializer(serializers.Serializer):
    host = serializers.CharField()
    workers = serializers.IntegerField(help_text="Worker processes reporting.")
    cpu_percent = serializers.FloatField(help_text="CPU of the host's workers; 100 = one core.")
    memory_bytes = serializers.IntegerField(help_text="Resident memory of the host's workers.")
    tasks_per_minute = serializers.FloatField(help_text="Tasks run per minute (last minute).")
    updated_at = serializers.DateTimeField()


class TaskStatisticsSerializer(serializers.Serializer):
    by_status = serializers.DictField(child=serializers.IntegerField())
    by_type = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))
    last_24h = CountSerializer()
    success_rate = serializers.FloatField(allow_null=True, help_text="completed / (completed + failed), last 24 h")
    duration_by_type = serializers.DictField(child=DurationSerializer(), help_text="Completed in the last 24 h.")
    queue_depth = serializers.IntegerField(help_text="Messages waiting in the broker.")
    clusters = ClusterSerializer(many=True)
    resources = ResourceSerializer(many=True, help_text="Worker CPU, memory and task rate per cluster host.")


class AuditLogSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name")
    details = serializers.JSONField()

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
