"""Serializer bases shared by the apps' APIs."""

from __future__ import annotations

from django.utils.dateparse import parse_datetime
from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """Rejects fields it does not declare: an unknown JSON field is a 400, never silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class StrictModelSerializer(StrictSerializer, serializers.ModelSerializer):
    pass


class AnswerFieldsMixin:
    """For a serializer that describes an answer: every field is always sent, so each is
    read-only and the OpenAPI schema lists it as required; ``optional_fields`` names those an
    answer may leave out."""

    optional_fields: tuple[str, ...] = ()

    def get_fields(self):
        fields = super().get_fields()
        for name, field in fields.items():
            if name in self.optional_fields:
                field.required = False
            else:
                field.read_only = True
        return fields


class Answer(AnswerFieldsMixin, serializers.Serializer):
    """The shape of an answer (:class:`AnswerFieldsMixin`)."""


class ModelAnswer(AnswerFieldsMixin, serializers.ModelSerializer):
    """The shape of an answer built from a model's fields (:class:`AnswerFieldsMixin`)."""


class StrictCharField(serializers.CharField):
    """A string, and only a string: 0 or true is refused rather than turned into "0" / "True".
    Taken as given (no whitespace trimming), so what the schema allows is what is accepted."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date and time with its offset (``Z`` or ``+08:00``); one without is refused
    rather than read in some time zone."""

    def to_internal_value(self, value):
        given = parse_datetime(value) if isinstance(value, str) else None
        if given is not None and given.tzinfo is None:
            raise serializers.ValidationError("Give the time zone (2025-09-04T10:00:00Z).")
        return super().to_internal_value(value)


class BlankAsNullField(serializers.CharField):
    """A text column where "" means none, answered as null: one representation of "none"."""

    def __init__(self, **kwargs):
        super().__init__(allow_null=True, **kwargs)

    def to_representation(self, value):
        return value or None


def id_list_field(**kwargs) -> serializers.ListField:
    """A list of ids as strings; an id that names nothing is a per-item "not found", not a 400."""
    return serializers.ListField(
        child=StrictCharField(max_length=64, trim_whitespace=False, allow_blank=True), min_length=1, **kwargs
    )


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: 5 or 5.0 (the same integer in JSON); "5", 5.5 and true are refused."""

    def to_internal_value(self, data):
        if isinstance(data, float) and data.is_integer():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A JSON number only: "1.5" and true are refused."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """true or false only: "yes", 1 and "true" are refused."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


def require_empty_body(request) -> None:
    """For a write endpoint that takes no body: none, or ``{}``. Any field is unknown: a 400, as
    on every write endpoint, never silently ignored."""
    data = request.data
    if isinstance(data, dict):
        if data:
            raise serializers.ValidationError({name: ["Unknown field."] for name in sorted(data)})
        return
    raise serializers.ValidationError({"non_field_errors": ["This endpoint takes no body (or {})."]})
