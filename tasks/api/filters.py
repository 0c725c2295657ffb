"""Query filters of the task list; every invalid value is a 400 naming the parameter."""

from __future__ import annotations

import uuid
from datetime import UTC

import django_filters
from django import forms
from django.db.models import Q
from rest_framework.exceptions import ValidationError

from taskcenter.api.filters import FilterSet
from tasks.audit import using_indexes
from tasks.models import AuditLog, Schedule, Task
from tasks.states import ErrorCategory, TaskStatus, Trigger


class RepeatedValuesWidget(forms.TextInput):
    """Every value a parameter was given, repeated (``?status=a&status=b``) or not, joined by
    commas: the field splits them as it splits ``?status=a,b``."""

    def value_from_datadict(self, data, files, name):
        values = data.getlist(name) if hasattr(data, "getlist") else [data.get(name)]
        given = [value for value in values if value]
        return ",".join(given) if given else None


class CSVChoiceField(forms.Field):
    widget = RepeatedValuesWidget

    def __init__(self, *args, choices=(), **kwargs):
        self.valid = [value for value, _ in choices]
        super().__init__(*args, **kwargs)

    def clean(self, value):
        if value in (None, ""):
            return None
        items = [item.strip() for item in str(value).split(",") if item.strip()]
        unknown = [item for item in items if item not in self.valid]
        if unknown:
            raise forms.ValidationError(f"Unknown value(s): {', '.join(unknown)}; allowed: {', '.join(self.valid)}.")
        return items


class CSVChoiceFilter(django_filters.Filter):
    """``?status=pending,processing`` or ``?status=pending&status=processing``: one or several of
    the choices."""

    field_class = CSVChoiceField

    def filter(self, qs, value):
        if not value:
            return qs
        return qs.filter(**{f"{self.field_name}__in": value})


class UtcDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 date and time as the instant in UTC: the database is asked in UTC whatever the
    offset given (PostgreSQL refuses an offset past ±15:59, which ISO 8601 allows), and a time
    UTC cannot hold (year 1 at +01:00) is a 400, not a server error."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Out of range once read in UTC.") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class TaskFilter(FilterSet):
    status = CSVChoiceFilter(choices=TaskStatus.choices, help_text="One status or a comma-separated list.")
    task_type = django_filters.CharFilter()
    batch_code = django_filters.CharFilter(field_name="batch__batch_code")
    data_source = django_filters.CharFilter(field_name="batch__data_source", help_text="The batch's data source.")
    trigger = django_filters.ChoiceFilter(choices=Trigger.choices)
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    search = django_filters.CharFilter(method="filter_search", help_text="Task id, type, batch code or error text.")

    class Meta:
        model = Task
        fields = []

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        condition = Q(task_type__icontains=value) | Q(batch__batch_code__icontains=value)
        condition |= Q(error_message__icontains=value)
        try:
            condition |= Q(pk=uuid.UUID(value))
        except ValueError:
            pass
        return queryset.filter(condition)


class BulkTaskFilter(TaskFilter):
    """The tasks a bulk action applies to: the task list's filters, and the error's category."""

    error_category = django_filters.ChoiceFilter(choices=ErrorCategory.choices)


def bulk_filter_queryset(filters: dict):
    """The tasks ``filters`` (a validated ``BulkTaskFilterSerializer``'s data) match, filtered as
    the task list filters its query; a value the list would refuse is a 400 naming
    ``filter.<key>``."""
    data = {key: ",".join(value) if key == "status" else value for key, value in filters.items()}
    filterset = BulkTaskFilter(data=data, queryset=Task.objects.all())
    if not filterset.is_valid():
        raise ValidationError({"filter": filterset.errors})
    return filterset.qs


class AuditLogFilter(FilterSet):
    actor = django_filters.CharFilter(method="filter_actor", help_text="Username (or 'system').")
    action = django_filters.CharFilter(method="filter_action")
    target = django_filters.CharFilter(method="filter_target", help_text="'type:id' or just an id.")
    target_type = django_filters.CharFilter()

    class Meta:
        model = AuditLog
        fields = []

    def filter_actor(self, queryset, name, value):
        return using_indexes(queryset.filter(actor_name=value), actor=value)

    def filter_action(self, queryset, name, value):
        return using_indexes(queryset.filter(action=value), action=value)

    def filter_target(self, queryset, name, value):
        if ":" in value:
            target_type, target_id = value.split(":", 1)
            return queryset.filter(target_type=target_type, target_id=target_id)
        return queryset.filter(target_id=value)


class StrictBooleanFormField(forms.Field):
    """``true`` or ``false``; anything else is a 400 naming the parameter (Django's boolean
    filter would read it as "not given")."""

    def clean(self, value):
        if value in (None, ""):
            return None
        if value not in ("true", "false"):
            raise forms.ValidationError("Use true or false.")
        return value == "true"


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanFormField


class ScheduleFilter(FilterSet):
    enabled = StrictBooleanFilter(help_text="true: enabled schedules only; false: disabled ones.")
    task_type = django_filters.CharFilter()

    class Meta:
        model = Schedule
        fields = []
