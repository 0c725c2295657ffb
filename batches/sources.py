"""The data-source registry: a source declares its dimensions and indicators and loads records.

A batch names a source and a config; :func:`validate_batch_config` checks the config against
what the source and the statistics engine know, naming every unknown value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from taskcenter.errors import InvalidInput

#: What the statistics engine can compute (batches/engine).
CALCULATION_TYPES: tuple[str, ...] = ("descriptive", "correlation", "distribution", "group_comparison")
DEFAULT_HISTOGRAM_BINS = 20
MAX_HISTOGRAM_BINS = 200
CONFIG_KEYS = {"include_dimensions", "calculation_types", "filters", "histogram_bins"}
FILTER_KEYS = {"schools", "grades", "assessed_from", "assessed_to"}
#: Most values a list in a config may have (``filters.schools`` …): each is a bound parameter of
#: the statistics queries, and the config is copied into every task the batch starts.
MAX_LIST_VALUES = 1_000


@dataclass(frozen=True)
class DataSource:
    name: str
    description: str
    #: dimension → its indicators, in display order.
    dimensions: dict[str, tuple[str, ...]]
    #: ``loader(config, ctx)`` used by the statistics job (set by the source's module).
    loader: Callable | None = None

    def indicators(self, dimensions: list[str] | None = None) -> list[str]:
        names = dimensions if dimensions is not None else list(self.dimensions)
        return [indicator for dim in names for indicator in self.dimensions[dim]]


_SOURCES: dict[str, DataSource] = {}


def register_source(source: DataSource) -> DataSource:
    if source.name in _SOURCES and _SOURCES[source.name] != source:
        raise ValueError(f"data source {source.name!r} is already registered")
    _SOURCES[source.name] = source
    return source


def get_source(name) -> DataSource:
    try:
        return _SOURCES[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(_SOURCES)) or "none"
        raise InvalidInput(
            f"unknown data source {name!r}",
            errors={"data_source": [f"Unknown data source {name!r}; known: {known}."]},
        ) from None


def sources() -> list[DataSource]:
    return [_SOURCES[name] for name in sorted(_SOURCES)]


def _string_list(errors: dict, key: str, value, *, allowed=None, required=False, max_length=64) -> list[str]:
    if value is None:
        errors.setdefault(key, []).append("This field is required." if required else "Expected a list of strings.")
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        errors.setdefault(key, []).append("Expected a list of strings.")
        return []
    if len(value) > MAX_LIST_VALUES:
        errors.setdefault(key, []).append(f"At most {MAX_LIST_VALUES} values.")
        return []
    if required and not value:
        errors.setdefault(key, []).append("Give at least one value.")
    if any(not item or "\x00" in item or len(item) > max_length for item in value):
        errors.setdefault(key, []).append(f"Values have 1 to {max_length} characters, without NUL.")
        return []
    if allowed is not None:
        unknown = [item for item in value if item not in allowed]
        if unknown:
            errors.setdefault(key, []).append(f"Unknown value(s): {', '.join(unknown)}; allowed: {', '.join(allowed)}.")
    return list(dict.fromkeys(value))


def _date(errors: dict, key: str, value) -> str | None:
    if not isinstance(value, str):
        errors.setdefault(key, []).append("Expected a date as YYYY-MM-DD.")
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except (TypeError, ValueError):
        errors.setdefault(key, []).append("Expected a date as YYYY-MM-DD.")
        return None


def validate_batch_config(data_source, config) -> dict:
    """Return the normalised config, or raise :class:`InvalidInput` naming each bad value."""
    source = get_source(data_source)
    if not isinstance(config, dict):
        raise InvalidInput("config must be a JSON object", errors={"config": ["Expected a JSON object."]})
    errors: dict[str, list[str]] = {}
    unknown_keys = sorted(set(config) - CONFIG_KEYS)
    if unknown_keys:
        errors["config"] = [f"Unknown field(s): {', '.join(unknown_keys)}."]
    dimensions = _string_list(
        errors,
        "config.include_dimensions",
        config.get("include_dimensions"),
        allowed=list(source.dimensions),
        required=True,
    )
    calculations = _string_list(
        errors,
        "config.calculation_types",
        config.get("calculation_types"),
        allowed=list(CALCULATION_TYPES),
        required=True,
    )
    clean: dict = {"include_dimensions": dimensions, "calculation_types": calculations}
    if "histogram_bins" in config:
        bins = config["histogram_bins"]
        if isinstance(bins, float) and bins.is_integer():
            bins = int(bins)  # 64.0 is an integer in JSON
        if not isinstance(bins, int) or isinstance(bins, bool) or not 2 <= bins <= MAX_HISTOGRAM_BINS:
            errors["config.histogram_bins"] = [f"Expected an integer from 2 to {MAX_HISTOGRAM_BINS}."]
        else:
            clean["histogram_bins"] = bins
    if "filters" in config:
        filters = config["filters"]
        if not isinstance(filters, dict):
            errors["config.filters"] = ["Expected a JSON object."]
        else:
            unknown_filters = sorted(set(filters) - FILTER_KEYS)
            if unknown_filters:
                errors["config.filters"] = [f"Unknown filter(s): {', '.join(unknown_filters)}."]
            clean_filters: dict = {}
            if "schools" in filters:
                clean_filters["schools"] = _string_list(errors, "config.filters.schools", filters["schools"])
            if "grades" in filters:
                clean_filters["grades"] = _string_list(
                    errors, "config.filters.grades", filters["grades"], max_length=16
                )
            for key in ("assessed_from", "assessed_to"):
                if key in filters:
                    clean_filters[key] = _date(errors, f"config.filters.{key}", filters[key])
            # An inverted date range is an empty selection: the task fails with a data error
            # that says no record matched (the range is not second-guessed here).
            clean["filters"] = clean_filters
    if errors:
        first = next(iter(errors.items()))
        raise InvalidInput(f"invalid config: {first[0]}: {first[1][0]}", errors=errors)
    return clean
