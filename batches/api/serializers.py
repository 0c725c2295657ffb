"""Batch API shapes (API.md "Batches", seed 000)."""

from __future__ import annotations

from rest_framework import serializers

from batches.models import Batch
from taskcenter.api.serializers import StrictSerializer
from tasks.services import MAX_BULK_IDS
from tasks.states import TaskStatus


class LatestTaskSerializer(serializers.Serializer):
    task_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=TaskStatus.choices)
    progress = serializers.FloatField()
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)


class BatchSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    config = serializers.JSONField()
    task_count = serializers.IntegerField(read_only=True)
    latest_task = serializers.SerializerMethodField()

    class Meta:
        model = Batch
        fields = [
            "batch_code",
            "description",
            "data_source",
            "config",
            "created_by",
            "created_at",
            "updated_at",
            "task_count",
            "latest_task",
        ]

    def get_latest_task(self, batch) -> LatestTaskSerializer(allow_null=True):  # type: ignore[valid-type]
        if not getattr(batch, "latest_task_id", None):
            return None
        return {
            "task_id": str(batch.latest_task_id),
            "status": batch.latest_task_status,
            "progress": batch.latest_task_progress,
            "created_at": batch.latest_task_created_at,
            "completed_at": batch.latest_task_completed_at,
        }


class BatchCreateSerializer(StrictSerializer):
    batch_code = serializers.CharField(
        max_length=64, help_text="1–64 characters of A-Z a-z 0-9 _ -; unique; cannot be changed later."
    )
    description = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    data_source = serializers.CharField(max_length=64)
    config = serializers.JSONField(
        help_text="include_dimensions, calculation_types, optional filters {schools, grades, assessed_from, "
        "assessed_to} and histogram_bins."
    )


class BatchUpdateSerializer(StrictSerializer):
    batch_code = serializers.CharField(max_length=64, required=False, help_text="Immutable: must equal the path's.")
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    data_source = serializers.CharField(max_length=64, required=False)
    config = serializers.JSONField(required=False)


class BatchCodesSerializer(StrictSerializer):
    batch_codes = serializers.ListField(
        child=serializers.CharField(max_length=64), min_length=1, max_length=MAX_BULK_IDS
    )


class DataSourceSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    dimensions = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    calculation_types = serializers.ListField(child=serializers.CharField())


# --- the statistics result, documented for the OpenAPI schema ----------------------------------


class StatsSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    missing = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True)
    std = serializers.FloatField(allow_null=True, help_text="Sample standard deviation (n-1).")
    min = serializers.FloatField(allow_null=True)
    p25 = serializers.FloatField(allow_null=True)
    median = serializers.FloatField(allow_null=True)
    p75 = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)


class IndicatorStatsSerializer(StatsSerializer):
    dimension = serializers.CharField()


class DimensionStatsSerializer(StatsSerializer):
    indicators = serializers.ListField(child=serializers.CharField())


class DescriptiveSerializer(serializers.Serializer):
    indicators = serializers.DictField(child=IndicatorStatsSerializer())
    dimensions = serializers.DictField(child=DimensionStatsSerializer())


class CorrelationSerializer(serializers.Serializer):
    indicators = serializers.ListField(child=serializers.CharField())
    matrix = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text="Pearson r, pairwise-complete; null where undefined (fewer than 2 pairs, zero variance).",
    )
    n = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()), help_text="Pairs used.")


class HistogramSerializer(serializers.Serializer):
    edges = serializers.ListField(child=serializers.FloatField())
    counts = serializers.ListField(child=serializers.IntegerField())
    count = serializers.IntegerField()


class GroupStatsSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True)
    std = serializers.FloatField(allow_null=True)


class IndicatorRefSerializer(serializers.Serializer):
    name = serializers.CharField()
    dimension = serializers.CharField()


class StatisticsResultSerializer(serializers.Serializer):
    data_source = serializers.CharField()
    include_dimensions = serializers.ListField(child=serializers.CharField())
    calculation_types = serializers.ListField(child=serializers.CharField())
    filters = serializers.DictField()
    indicators = IndicatorRefSerializer(many=True)
    records = serializers.IntegerField()
    students = serializers.IntegerField()
    computed_at = serializers.DateTimeField()
    duration_seconds = serializers.FloatField()
    descriptive = DescriptiveSerializer(required=False)
    correlation = CorrelationSerializer(required=False)
    distribution = serializers.DictField(child=HistogramSerializer(), required=False)
    group_comparison = serializers.DictField(
        child=serializers.DictField(child=serializers.DictField(child=GroupStatsSerializer())),
        required=False,
        help_text="kind (school, grade) → label → indicator → {count, mean, std}.",
    )


class BatchResultSerializer(serializers.Serializer):
    batch_code = serializers.CharField()
    task_id = serializers.UUIDField()
    completed_at = serializers.DateTimeField()
    result = StatisticsResultSerializer()
