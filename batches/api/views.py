"""Batch, statistics-task and data-source endpoints. Thin: parse, call a service, render."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import filters as drf_filters
from rest_framework import mixins, viewsets
from rest_framework.exceptions import ValidationError

from batches.api.serializers import (
    BatchCodesSerializer,
    BatchCreateSerializer,
    BatchReplaceSerializer,
    BatchResultSerializer,
    BatchSerializer,
    BatchStartResultSerializer,
    BatchUpdateSerializer,
    DataSourceSerializer,
)
from batches.models import Batch
from batches.selectors import batches_with_latest_task
from batches.services import (
    STATISTICS_JOB,
    batch_cancel,
    batch_create,
    batch_delete,
    batch_get,
    batch_start,
    batch_update,
)
from batches.sources import CALCULATION_TYPES, sources
from taskcenter.api.filters import FilterSet, ListFiltersOnlyMixin, StrictOrderingFilter
from taskcenter.api.queries import TASK_PROGRESS, task_stages
from taskcenter.api.responses import ok
from taskcenter.api.serializers import require_empty_body
from taskcenter.errors import NotFound
from tasks.actors import Actor
from tasks.api.serializers import (
    BulkResultSerializer,
    TaskIdsSerializer,
    TaskProgressSerializer,
    TaskStatusReportSerializer,
    iso,
)
from tasks.api.views import _bulk_message, apply_to_task_ids
from tasks.models import Task
from tasks.services import bulk_apply, parse_task_id
from tasks.states import TaskStatus

BATCH_CODE_REGEX = "[A-Za-z0-9_-]{1,64}"


class BatchFilter(FilterSet):
    data_source = django_filters.CharFilter()

    class Meta:
        model = Batch
        fields = []


def batch_queryset():
    return batches_with_latest_task()


@extend_schema(tags=["batches"])
@extend_schema_view(
    list=extend_schema(operation_id="listBatches", summary="List batches"),
    retrieve=extend_schema(operation_id="getBatch", summary="Batch detail (with latest task and task count)"),
)
class BatchViewSet(ListFiltersOnlyMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = BatchSerializer
    lookup_field = "batch_code"
    lookup_value_regex = BATCH_CODE_REGEX
    filterset_class = BatchFilter
    filter_backends = [
        django_filters.rest_framework.DjangoFilterBackend,
        drf_filters.SearchFilter,
        StrictOrderingFilter,
    ]
    search_fields = ["batch_code", "description"]
    ordering_fields = ["batch_code", "created_at", "updated_at"]
    action_permissions = {
        "list": ["batches.view_batch"],
        "retrieve": ["batches.view_batch"],
        "results": ["batches.view_batch"],
        "create": ["batches.add_batch"],
        "update": ["batches.change_batch"],
        "partial_update": ["batches.change_batch"],
        "destroy": ["batches.delete_batch"],
    }

    def get_queryset(self):
        return batch_queryset()

    def _detail(self, batch_code: str, *, message: str, status: int = 200):
        return ok(BatchSerializer(batch_queryset().get(batch_code=batch_code)).data, message=message, status=status)

    @extend_schema(
        operation_id="createBatch",
        summary="Create a batch",
        request=BatchCreateSerializer,
        responses={201: BatchSerializer},
    )
    def create(self, request):
        body = BatchCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        batch = batch_create(actor=Actor.from_request(request), **body.validated_data)
        return self._detail(batch.batch_code, message="Batch created.", status=201)

    def _update(self, request, batch_code: str, *, partial: bool):
        batch_get(batch_code)  # an unknown batch is a 404 whatever the body says
        body = (BatchUpdateSerializer if partial else BatchReplaceSerializer)(data=request.data)
        body.is_valid(raise_exception=True)
        if not body.validated_data:
            raise ValidationError({"non_field_errors": ["Nothing to change: give description, data_source or config."]})
        batch_update(actor=Actor.from_request(request), batch_code=batch_code, changes=body.validated_data)
        return self._detail(batch_code, message="Batch updated.")

    @extend_schema(
        operation_id="replaceBatch",
        summary="Replace a batch's description / data source / config",
        description="409 while the batch has an active task.",
        request=BatchReplaceSerializer,
    )
    def update(self, request, batch_code=None):
        return self._update(request, batch_code, partial=False)

    @extend_schema(
        operation_id="updateBatch",
        summary="Change some of a batch's fields",
        description="409 while the batch has an active task.",
        request=BatchUpdateSerializer,
    )
    def partial_update(self, request, batch_code=None):
        return self._update(request, batch_code, partial=True)

    @extend_schema(
        operation_id="deleteBatch",
        summary="Delete a batch and its finished tasks",
        description="409 while the batch has an active task.",
        request=None,
        responses={200: None},
    )
    def destroy(self, request, batch_code=None):
        batch_delete(actor=Actor.from_request(request), batch_code=batch_code)
        return ok(None, message="Batch deleted.")

    @extend_schema(
        operation_id="getBatchResults",
        summary="Result of the batch's latest completed statistics task",
        description="404 while the batch has no completed statistics task.",
        responses=BatchResultSerializer,
    )
    def results(self, request, batch_code=None):
        batch = batch_get(batch_code)
        task = (
            Task.objects.filter(batch=batch, task_type=STATISTICS_JOB, status=TaskStatus.COMPLETED)
            .order_by("-completed_at")
            .first()
        )
        if task is None:
            raise NotFound(f"batch {batch_code} has no completed statistics task")
        return ok(
            {
                "batch_code": batch_code,
                "task_id": str(task.pk),
                "completed_at": iso(task.completed_at),
                "result": task.result,
            }
        )


def _task(task_id) -> Task:
    task = Task.objects.select_related("batch").prefetch_related("stages").filter(pk=parse_task_id(task_id)).first()
    if task is None:
        raise NotFound(f"task {task_id} not found")
    return task


@extend_schema(tags=["statistics tasks"])
class StatisticsTaskViewSet(viewsets.ViewSet):
    # A batch's statistics task: start / cancel by batch code, status / progress by task id, and
    # the bulk start, cancel and delete.

    action_permissions = {
        "start": ["tasks.start_task"],
        "cancel": ["tasks.cancel_task"],
        "status": ["tasks.view_task"],
        "progress": ["tasks.view_task"],
        "batch_start": ["tasks.start_task"],
        "batch_cancel": ["tasks.cancel_task"],
        "batch_delete": ["tasks.delete_task"],
    }

    @extend_schema(
        operation_id="startBatchTask",
        summary="Start a batch's statistics task",
        description="The new task is pending; 409 while the batch has an active task.",
        request=None,
        responses={202: TaskStatusReportSerializer},
    )
    def start(self, request, batch_code=None):
        require_empty_body(request)
        task = batch_start(actor=Actor.from_request(request), batch_code=batch_code)
        return ok(TaskStatusReportSerializer(_task(task.pk)).data, message="Statistics task queued.", status=202)

    @extend_schema(
        operation_id="cancelBatchTask",
        summary="Cancel a batch's active task",
        description="409 when the batch has no active task.",
        request=None,
        responses=TaskStatusReportSerializer,
    )
    def cancel(self, request, batch_code=None):
        require_empty_body(request)
        task = batch_cancel(actor=Actor.from_request(request), batch_code=batch_code)
        return ok(TaskStatusReportSerializer(_task(task.pk)).data, message="Task cancelled.")

    @extend_schema(
        operation_id="getTaskStatus",
        summary="Task status, start time and estimated completion",
        responses=TaskStatusReportSerializer,
    )
    def status(self, request, task_id=None):
        return ok(TaskStatusReportSerializer(_task(task_id)).data)

    @extend_schema(
        operation_id="getTaskProgress", summary="Task progress with stage details", responses=TaskProgressSerializer
    )
    def progress(self, request, task_id=None):
        # Polled by frontends: two hand-written statements, the shape of TaskProgressSerializer.
        task_id = parse_task_id(task_id)
        row = TASK_PROGRESS.first(task_id)
        if row is None:
            raise NotFound(f"task {task_id} not found")
        stages = [
            {"stage": name, "status": status, "progress": progress} for name, status, progress in task_stages(task_id)
        ]
        return ok({"task_id": str(row[0]), "overall_progress": row[1], "stage_details": stages})

    @extend_schema(
        operation_id="bulkStartBatchTasks",
        summary="Start several batches' statistics tasks",
        description="One result per batch code, with the task started.",
        request=BatchCodesSerializer,
        responses=BatchStartResultSerializer,
    )
    def batch_start(self, request):
        body = BatchCodesSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        actor = Actor.from_request(request)
        actor.require("tasks.start_task")

        def start(batch_code):
            task = batch_start(actor=actor, batch_code=batch_code)
            return {"status": task.status, "task_id": str(task.pk)}

        result = bulk_apply(body.validated_data["batch_codes"], start)
        for item in result["results"].values():
            item.setdefault("task_id", None)  # a refused batch started no task
        return ok(result, message=_bulk_message("started", result))

    @extend_schema(
        operation_id="bulkCancelStatisticsTasks",
        summary="Cancel several tasks",
        request=TaskIdsSerializer,
        responses=BulkResultSerializer,
    )
    def batch_cancel(self, request):
        return apply_to_task_ids(request, "cancel", "cancelled")

    @extend_schema(
        operation_id="bulkDeleteStatisticsTasks",
        summary="Delete several finished tasks",
        request=TaskIdsSerializer,
        responses=BulkResultSerializer,
    )
    def batch_delete(self, request):
        return apply_to_task_ids(request, "delete", "deleted")


@extend_schema(tags=["data sources"])
class DataSourceViewSet(viewsets.ViewSet):
    action_permissions = {"list": ["batches.view_batch"]}

    @extend_schema(
        operation_id="listDataSources", summary="Registered data sources", responses=DataSourceSerializer(many=True)
    )
    def list(self, request):
        data = [
            {
                "name": source.name,
                "description": source.description,
                "dimensions": {dim: list(inds) for dim, inds in source.dimensions.items()},
                "calculation_types": list(CALCULATION_TYPES),
            }
            for source in sources()
        ]
        return ok(DataSourceSerializer(data, many=True).data)
