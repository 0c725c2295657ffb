"""Batch API shapes: the bodies the batch endpoints take and answer."""

from __future__ import annotations

from rest_framework import serializers

from batches.models import Batch, batch_code_validator
from batches.sources import CALCULATION_TYPES, MAX_HISTOGRAM_BINS, sources
from taskcenter.api.serializers import StrictCharField, StrictSerializer, id_list_field
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


def _source_names() -> list[str]:
    return [source.name for source in sources()]


def _dimension_names() -> list[str]:
    return sorted({dim for source in sources() for dim in source.dimensions})


class BatchFiltersSerializer(StrictSerializer):
    schools = serializers.ListField(child=StrictCharField(max_length=64, trim_whitespace=False), required=False)
    grades = serializers.ListField(child=StrictCharField(max_length=16, trim_whitespace=False), required=False)
    assessed_from = serializers.DateField(required=False)
    assessed_to = serializers.DateField(required=False, help_text="Inclusive; before assessed_from selects nothing.")


class BatchConfigSerializer(StrictSerializer):
    """What a batch computes; checked again against its data source by the service."""

    include_dimensions = serializers.ListField(child=serializers.ChoiceField(choices=_dimension_names()), min_length=1)
    calculation_types = serializers.ListField(
        child=serializers.ChoiceField(choices=list(CALCULATION_TYPES)), min_length=1
    )
    filters = BatchFiltersSerializer(required=False)
    histogram_bins = serializers.IntegerField(min_value=2, max_value=MAX_HISTOGRAM_BINS, required=False)

    def to_internal_value(self, data):
        # The service normalises the raw config (dates as strings): keep the client's values.
        super().to_internal_value(data)
        return data


class BatchCreateSerializer(StrictSerializer):
    batch_code = StrictCharField(
        max_length=64,
        validators=[batch_code_validator],
        help_text="1–64 characters of A-Z a-z 0-9 _ -; unique; cannot be changed later.",
    )
    description = StrictCharField(max_length=500, required=False, allow_blank=True, default="")
    data_source = serializers.ChoiceField(choices=_source_names())
    config = BatchConfigSerializer()


class BatchUpdateSerializer(StrictSerializer):
    """batch_code is immutable: it is the path, never part of the body."""

    description = StrictCharField(max_length=500, required=False, allow_blank=True)
    data_source = serializers.ChoiceField(choices=_source_names(), required=False)
    config = BatchConfigSerializer(required=False)


class BatchReplaceSerializer(BatchUpdateSerializer):
    """PUT: the whole editable state."""

    data_source = serializers.ChoiceField(choices=_source_names())
    config = BatchConfigSerializer()


class BatchCodesSerializer(StrictSerializer):
    batch_codes = id_list_field(max_length=MAX_BULK_IDS)


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
