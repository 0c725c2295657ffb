"""Plug-in apps (``TASKCENTER_PLUGINS``) and the ``jobs`` modules of every installed app.

A plug-in that cannot be loaded stops the process with one line naming it (:class:`PluginError`,
which ``manage.py`` and ``wsgi.py`` print as they print every configuration error), not with a
traceback out of Django's start-up that an operator has to read to the bottom.
"""

from __future__ import annotations

import importlib
import traceback
from importlib import import_module

from django.utils.module_loading import module_has_submodule

from taskcenter.config import ConfigError


class PluginError(ConfigError):
    """A plug-in app named by ``TASKCENTER_PLUGINS`` cannot be loaded."""


def import_plugins() -> None:
    """Import each plug-in package and its ``apps`` module, as ``django.setup()`` is about to.

    Called once the settings are read and before Django starts; raises :class:`PluginError`
    naming the first plug-in that is missing or raises on import.
    """
    from django.conf import settings

    for name in settings.TASKCENTER_PLUGINS:
        try:
            module = import_module(name)
            if module_has_submodule(module, "apps"):
                import_module(f"{name}.apps")
        except Exception as exc:
            raise PluginError(f"TASKCENTER_PLUGINS: plug-in {name!r} cannot be imported: {_described(exc)}") from exc


def import_jobs_modules() -> None:
    """Import the ``jobs`` module of every installed app in ``INSTALLED_APPS`` order (Django's
    ``autodiscover_modules`` convention), which registers its job types.

    A plug-in's module that raises is a :class:`PluginError` naming the plug-in; taskcenter's own
    apps' errors are bugs and propagate as they are.
    """
    from django.apps import apps
    from django.conf import settings

    for app_config in apps.get_app_configs():
        if not module_has_submodule(app_config.module, "jobs"):
            continue
        try:
            import_module(f"{app_config.name}.jobs")
        except Exception as exc:
            if app_config.name not in settings.TASKCENTER_PLUGINS:
                raise
            raise PluginError(
                f"TASKCENTER_PLUGINS: plug-in {app_config.name!r}: its jobs module failed: {_described(exc)}"
            ) from exc


def _described(exc: Exception) -> str:
    """``Type: message (file, line N)``, the line being where the imported code raised: the clue a
    developer needs first, on the one line the operator sees."""
    # Not the frames of this module or of the import machinery, which every failure passes through.
    machinery = {__file__, importlib.__file__}
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename not in machinery and not frame.filename.startswith("<frozen ")
    ]
    where = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
    return f"{exc.__class__.__name__}: {exc}{where}"
