"""The job registry: a job type is a function registered under a name with its stages and policy."""

from __future__ import annotations

import importlib
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from rest_framework import serializers

from taskcenter.errors import InvalidInput

logger = logging.getLogger(__name__)

_VALIDATORS = threading.local()


@dataclass(frozen=True)
class Stage:
    name: str
    #: Relative share of the task's overall progress (normalised over the job's stages).
    weight: float = 1.0


@dataclass(frozen=True)
class JobType:
    name: str
    func: Callable
    description: str
    stages: tuple[Stage, ...]
    #: Cooperative deadline for one execution; django-q2's timeout (+ grace) is the hard backstop.
    timeout_seconds: int
    max_attempts: int
    #: Automatic-retry backoff: ``base * 2**(attempt-1)`` seconds, capped at ``max``, with jitter.
    retry_backoff_base: float
    retry_backoff_max: float
    params_serializer: type[serializers.Serializer] | None = None
    #: Shown in the API and admin; False hides types meant only for schedules.
    user_startable: bool = True
    #: Permissions needed to create a task of this type, besides ``tasks.add_task`` (what the job
    #: does may need more than running a job does: the purge deletes tasks).
    permissions: tuple[str, ...] = ()
    #: The params are a snapshot of the task's batch (its data source and config): a task of a
    #: batch takes the batch's, and they are changed by changing the batch, never the task.
    params_from_batch: bool = False
    #: ``delete_dependents(task_ids)`` deletes what tasks of this type own in bulk (an import's
    #: staged rows), a bounded batch per transaction, before tasks are deleted (whose cascade
    #: would otherwise delete it all in the deleting transaction). It is given every task id to be
    #: deleted, of any type.
    delete_dependents: Callable[[list], object] | None = None
    extra: dict = field(default_factory=dict)

    def retry_delay(self, attempt: int) -> float:
        """Seconds before the automatic retry after failed attempt ``attempt``: exponential backoff
        with full jitter, up to ``base * 2**(attempt-1)`` capped at ``retry_backoff_max``."""
        ceiling = min(self.retry_backoff_max, self.retry_backoff_base * (2 ** max(attempt - 1, 0)))
        return settings.TASKCENTER_RETRY_BACKOFF_SCALE * (ceiling / 2 + random.uniform(0, ceiling / 2))

    def stage_weights(self) -> list[tuple[str, float]]:
        total = sum(stage.weight for stage in self.stages) or 1.0
        return [(stage.name, stage.weight / total) for stage in self.stages]

    def validate_params(self, params) -> dict:
        """Validate ``params`` with the type's serializer; :class:`InvalidInput` names each bad field."""
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise InvalidInput("params must be a JSON object", errors={"params": ["Expected a JSON object."]})
        if self.params_serializer is None:
            if params:
                raise InvalidInput(
                    f"task type {self.name!r} takes no parameters",
                    errors={"params": [f"Unknown field(s): {', '.join(sorted(params))}."]},
                )
            return {}
        serializer = self._params_validator()
        unknown = sorted(set(params) - set(serializer.fields))
        errors: dict[str, list[str]] = {}
        if unknown:
            errors["params"] = [f"Unknown field(s): {', '.join(unknown)}."]
        try:
            validated = serializer.run_validation(params)
        except serializers.ValidationError as exc:
            for key, messages in _flatten(exc.detail).items():
                errors[f"params.{key}" if key != "non_field_errors" else "params"] = messages
        if errors:
            raise InvalidInput(f"invalid params for task type {self.name!r}", errors=errors)
        return dict(validated)

    def _params_validator(self) -> serializers.Serializer:
        """One params serializer per serializer class and thread, used through ``run_validation`` (what
        ``is_valid`` calls): a new serializer deep-copies its fields, which cost more than the
        rest of creating a task."""
        validators = _VALIDATORS.__dict__.setdefault("by_class", {})
        validator = validators.get(self.params_serializer)
        if validator is None:
            validator = validators[self.params_serializer] = self.params_serializer()
        return validator


def _flatten(errors, prefix: str = "") -> dict[str, list[str]]:
    flat: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(errors, list) and errors and all(not isinstance(e, (dict, list)) for e in errors):
        flat[prefix or "non_field_errors"] = [str(e) for e in errors]
    elif isinstance(errors, list):
        for index, value in enumerate(errors):
            flat.update(_flatten(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat[prefix or "non_field_errors"] = [str(errors)]
    return flat


_REGISTRY: dict[str, JobType] = {}


def register(
    name: str,
    *,
    stages: list[tuple[str, float]] | tuple[tuple[str, float], ...],
    description: str = "",
    timeout_seconds: int = 3600,
    max_attempts: int = 3,
    retry_backoff_base: float = 5.0,
    retry_backoff_max: float = 300.0,
    params: type[serializers.Serializer] | None = None,
    user_startable: bool = True,
    permissions: tuple[str, ...] = (),
    params_from_batch: bool = False,
    delete_dependents: Callable[[list], object] | None = None,
) -> Callable[[Callable], Callable]:
    """Register ``func(ctx)`` as job type ``name``. Registering a name twice is an error."""
    if not stages:
        raise ValueError(f"job type {name!r} needs at least one stage")

    def decorator(func: Callable) -> Callable:
        if name in _REGISTRY and _REGISTRY[name].func is not func:
            raise ValueError(f"job type {name!r} is already registered")
        _REGISTRY[name] = JobType(
            name=name,
            func=func,
            description=description or (func.__doc__ or "").strip().split("\n")[0],
            stages=tuple(Stage(stage_name, float(weight)) for stage_name, weight in stages),
            timeout_seconds=int(timeout_seconds),
            max_attempts=int(max_attempts),
            retry_backoff_base=float(retry_backoff_base),
            retry_backoff_max=float(retry_backoff_max),
            params_serializer=params,
            user_startable=user_startable,
            permissions=tuple(permissions),
            params_from_batch=params_from_batch,
            delete_dependents=delete_dependents,
        )
        return func

    return decorator


def get_job_type(name: str) -> JobType:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise InvalidInput(
            f"unknown task type {name!r}", errors={"task_type": [f"Unknown task type {name!r}; known: {known}."]}
        ) from None


def load_job_type(name: str) -> JobType:
    """:func:`get_job_type`, first importing the module a dotted ``name`` names when no type of
    that name is registered yet: a Django ``@task`` function's type is registered when its module
    is imported, and a worker runs functions of modules it has not imported."""
    if name not in _REGISTRY and "." in name:
        module_path, _, attribute = name.rpartition(".")
        try:
            getattr(importlib.import_module(module_path), attribute, None)
        except Exception:  # whatever the module raises, the type stays unknown: a config failure
            logger.warning("could not import %s for task type %r", module_path, name, exc_info=True)
    return get_job_type(name)


def timeout_of(task_type: str) -> int:
    """The cooperative timeout of ``task_type``'s runs; 60 s for a type no longer registered (its
    worker fails the task with a config error at once)."""
    job = _REGISTRY.get(task_type)
    return job.timeout_seconds if job is not None else 60


def types_within_timeout_of(task_type: str | None) -> list[str]:
    """The registered types whose runs django-q2's time limit for a message of ``task_type``
    covers (their timeout is not longer): the types a worker may run in its stead."""
    if task_type is None:
        return []
    limit = timeout_of(task_type)
    return [name for name, job in _REGISTRY.items() if job.timeout_seconds <= limit]


def job_types() -> list[JobType]:
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def longest_timeout() -> int:
    return max((job.timeout_seconds for job in _REGISTRY.values()), default=0)


def dependents_cleanups() -> list[Callable[[list], object]]:
    """The registered types' ``delete_dependents`` hooks."""
    return [job.delete_dependents for job in job_types() if job.delete_dependents is not None]


# --- apps whose rows own tasks ----------------------------------------------------------------
# A domain app may own tasks (a batch owns the tasks that ran it) and keep rules about them. The
# task center knows such an app only by what it registers here.

_REQUEUE_RULES: list[Callable] = []
_OWNERS: dict[str, Callable] = {}
_STARTERS: dict[str, tuple[Callable, tuple[str, ...]]] = {}


def register_requeue_rule(rule: Callable) -> None:
    """``rule(task)`` runs in the transaction that makes a finished task pending again (a user's
    retry), before it does; it raises :class:`~taskcenter.errors.Conflict` to refuse."""
    if rule not in _REQUEUE_RULES:
        _REQUEUE_RULES.append(rule)


def requeue_rules() -> list[Callable]:
    return list(_REQUEUE_RULES)


def register_owner(field_name: str, create: Callable) -> None:
    """Tasks created through the API with ``field_name`` set (``batch_code``) belong to the row it
    names: ``create(actor=…, <field_name>=…, task_type=…, params=…)`` creates such a task by the
    owner's rules and returns it."""
    _OWNERS[field_name] = create


def owner_creator(field_name: str) -> Callable | None:
    return _OWNERS.get(field_name)


def register_owner_start(field_name: str, start: Callable, *, permissions: tuple[str, ...]) -> None:
    """The row ``field_name`` names (a batch) has a job of its own that users start (a batch's
    statistics, ``POST /api/v1/statistics/tasks/{batch_code}/start``):
    ``start(actor=…, <field_name>=…, trigger=…, priority=…)`` starts it by the owner's rules and
    returns the task; starting it needs ``permissions`` (which ``start`` checks itself)."""
    _STARTERS[field_name] = (start, tuple(permissions))


def owner_starter(field_name: str) -> tuple[Callable, tuple[str, ...]] | None:
    """``(start, permissions)`` as registered by :func:`register_owner_start`, or None."""
    return _STARTERS.get(field_name)
