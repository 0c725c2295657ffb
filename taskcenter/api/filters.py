"""Filter backends shared by the API views."""

from __future__ import annotations

import django_filters
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter


class FilterSet(django_filters.FilterSet):
    """A filter set whose form class is built once per filter set class, not per request.

    django-filter builds the form class on every request from fresh copies of the filters (each
    filter making its form field and looking up its label on the model), a large part of a task
    list request's time (docs/performance.md). Our filters' fields depend on nothing but their
    declaration, so one form class serves every request (each form instance still gets its own
    copies of the fields).
    """

    def get_form_class(self):
        form_class = type(self).__dict__.get("_form_class")
        if form_class is None:
            form_class = super().get_form_class()
            type(self)._form_class = form_class  # a race builds it twice, harmlessly
        return form_class


class StrictOrderingFilter(OrderingFilter):
    """``?ordering=`` accepts only the view's ``ordering_fields`` (± prefix); anything else is a 400."""

    def get_ordering(self, request, queryset, view):
        raw = request.query_params.get(self.ordering_param)
        if not raw:
            return self.get_default_ordering(view)
        allowed = self.allowed_values(view)
        terms = [term.strip() for term in raw.split(",")]
        unknown = [term for term in terms if term not in allowed]
        if unknown:
            raise ValidationError(
                {self.ordering_param: [f"Unknown ordering {', '.join(unknown)}; use one of {', '.join(allowed)}."]}
            )
        return terms

    @staticmethod
    def allowed_values(view) -> list[str]:
        return [prefix + field for field in view.ordering_fields for prefix in ("", "-")]

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": "Sort by one of the listed fields; a leading '-' reverses.",
                "schema": {"type": "string", "enum": self.allowed_values(view)},
            }
        ]


class ListFiltersOnlyMixin:
    """Query-string filters narrow the list; one object is found by its id whatever the query
    string says. (DRF's ``get_object`` runs the list's filters too: each detail request built a
    filter set and its form for nothing, and ``?status=…`` could hide the object as a 404.)"""

    def filter_queryset(self, queryset):
        if self.detail:
            return queryset
        return super().filter_queryset(queryset)
