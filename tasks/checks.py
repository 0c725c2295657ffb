"""System checks: django-q2's timeouts must sit above every job's own timeout."""

from django.conf import settings
from django.core.checks import Error, register

from tasks.runtime.queue import HARD_TIMEOUT_GRACE
from tasks.runtime.registry import longest_timeout


@register()
def q_cluster_timeouts(app_configs, **kwargs):
    errors = []
    conf = settings.Q_CLUSTER
    needed = longest_timeout() + HARD_TIMEOUT_GRACE
    if conf.get("timeout") is not None and conf["timeout"] < needed:
        errors.append(
            Error(
                f"Q_CLUSTER timeout {conf['timeout']} s is below the longest job timeout + grace ({needed} s)",
                hint="Raise Q_TIMEOUT.",
                id="taskcenter.E001",
            )
        )
    if conf.get("timeout") is not None and conf.get("retry", 0) <= conf["timeout"]:
        errors.append(
            Error("Q_CLUSTER retry must exceed timeout, or long tasks are delivered twice", id="taskcenter.E002")
        )
    return errors
