"""Batch API shapes: the bodies the batch endpoints take and answer."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from batches.models import Batch, batch_code_validator
from batches.sources import CALCULATION_TYPES, MAX_HISTOGRAM_BINS, sources
from taskcenter.api.serializers import Answer, ModelAnswer, StrictCharField, StrictSerializer, id_list_field
from tasks.api.serializers import BulkItemSerializer, BulkResultSerializer
from tasks.services import MAX_BULK_IDS
from tasks.states import TaskStatus


def source_names() -> list[str]:
    """The registered data sources' names (the ``DataSourceName`` enum of the API)."""
    return [source.name for source in sources()]


def dimension_names() -> list[str]:
    """Every dimension of the registered data sources (the ``Dimension`` enum of the API)."""
    return sorted({dim for source in sources() for dim in source.dimensions})


class BatchFiltersSerializer(StrictSerializer):
    schools = serializers.ListField(child=StrictCharField(max_length=64, trim_whitespace=False), required=False)
    grades = serializers.ListField(child=StrictCharField(max_length=16, trim_whitespace=False), required=False)
    assessed_from = serializers.DateField(required=False)
    assessed_to = serializers.DateField(required=False, help_text="Inclusive; before assessed_from selects nothing.")


class BatchConfigSerializer(StrictSerializer):
    """What a batch computes; checked again against its data source by the service."""

    include_dimensions = serializers.ListField(child=serializers.ChoiceField(choices=dimension_names()), min_length=1)
    calculation_types = serializers.ListField(
        child=serializers.ChoiceField(choices=list(CALCULATION_TYPES)), min_length=1
    )
    filters = BatchFiltersSerializer(required=False)
    histogram_bins = serializers.IntegerField(min_value=2, max_value=MAX_HISTOGRAM_BINS, required=False)

    def to_internal_value(self, data):
        # The service normalises the raw config (dates as strings): keep the client's values.
        super().to_internal_value(data)
        return data


@extend_schema_field(BatchConfigSerializer)
class BatchConfigField(serializers.JSONField):
    """A batch's config as stored: the normalised shape of :class:`BatchConfigSerializer`."""


class LatestTaskSerializer(Answer):
    task_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=TaskStatus.choices)
    progress = serializers.FloatField(min_value=0, max_value=100)
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)


class BatchSerializer(ModelAnswer):
    description = serializers.CharField()
    data_source = serializers.ChoiceField(choices=source_names())
    created_by = serializers.CharField(source="created_by.username", allow_null=True)
    config = BatchConfigField(help_text="What the batch computes, as stored (normalised).")
    task_count = serializers.IntegerField(min_value=0)
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

    @extend_schema_field(LatestTaskSerializer(allow_null=True))
    def get_latest_task(self, batch):
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
    batch_code = StrictCharField(
        max_length=64,
        validators=[batch_code_validator],
        help_text="1–64 characters of A-Z a-z 0-9 _ -; unique; cannot be changed later.",
    )
    description = StrictCharField(max_length=500, required=False, allow_blank=True, default="")
    data_source = serializers.ChoiceField(choices=source_names())
    config = BatchConfigSerializer()


class BatchUpdateSerializer(StrictSerializer):
    """batch_code is immutable: it is the path, never part of the body."""

    description = StrictCharField(max_length=500, required=False, allow_blank=True)
    data_source = serializers.ChoiceField(choices=source_names(), required=False)
    config = BatchConfigSerializer(required=False)


class BatchReplaceSerializer(BatchUpdateSerializer):
    """PUT: the whole editable state."""

    data_source = serializers.ChoiceField(choices=source_names())
    config = BatchConfigSerializer()


class BatchCodesSerializer(StrictSerializer):
    batch_codes = id_list_field(max_length=MAX_BULK_IDS)


class BatchStartItemSerializer(BulkItemSerializer):
    task_id = serializers.UUIDField(allow_null=True, help_text="The task started; null if refused.")


class BatchStartResultSerializer(BulkResultSerializer):
    results = serializers.DictField(child=BatchStartItemSerializer(), help_text="Per batch code asked for.")


class DataSourceSerializer(Answer):
    name = serializers.ChoiceField(choices=source_names())
    description = serializers.CharField()
    dimensions = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), help_text="Dimension → its indicators."
    )
    calculation_types = serializers.ListField(child=serializers.ChoiceField(choices=list(CALCULATION_TYPES)))


# --- the statistics result, documented for the OpenAPI schema ----------------------------------


class StatsSerializer(Answer):
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


class DescriptiveSerializer(Answer):
    indicators = serializers.DictField(child=IndicatorStatsSerializer())
    dimensions = serializers.DictField(child=DimensionStatsSerializer())


class CorrelationSerializer(Answer):
    indicators = serializers.ListField(child=serializers.CharField())
    matrix = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text="Pearson r, pairwise-complete; null where undefined (fewer than 2 pairs, zero variance).",
    )
    n = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()), help_text="Pairs used.")


class HistogramSerializer(Answer):
    edges = serializers.ListField(child=serializers.FloatField())
    counts = serializers.ListField(child=serializers.IntegerField())
    count = serializers.IntegerField()


class GroupStatsSerializer(Answer):
    count = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True)
    std = serializers.FloatField(allow_null=True)


class IndicatorRefSerializer(Answer):
    name = serializers.CharField()
    dimension = serializers.CharField()


class StatisticsResultSerializer(Answer):
    """What a statistics task computed; a section for each of its calculation types."""

    optional_fields = ("descriptive", "correlation", "distribution", "group_comparison")

    data_source = serializers.ChoiceField(choices=source_names())
    include_dimensions = serializers.ListField(child=serializers.ChoiceField(choices=dimension_names()))
    calculation_types = serializers.ListField(child=serializers.ChoiceField(choices=list(CALCULATION_TYPES)))
    filters = BatchFiltersSerializer()
    indicators = IndicatorRefSerializer(many=True)
    records = serializers.IntegerField()
    students = serializers.IntegerField()
    computed_at = serializers.DateTimeField()
    duration_seconds = serializers.FloatField()
    descriptive = DescriptiveSerializer()
    correlation = CorrelationSerializer()
    distribution = serializers.DictField(child=HistogramSerializer())
    group_comparison = serializers.DictField(
        child=serializers.DictField(child=serializers.DictField(child=GroupStatsSerializer())),
        help_text="kind (school, grade) → label → indicator → {count, mean, std}.",
    )


class BatchResultSerializer(Answer):
    batch_code = serializers.CharField()
    task_id = serializers.UUIDField()
    completed_at = serializers.DateTimeField()
    result = StatisticsResultSerializer()
