#!/usr/bin/env python
"""Django's command-line utility for taskcenter."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskcenter.settings")
    from taskcenter.config import ConfigError, exit_on_config_error

    try:
        # The settings and the plug-in packages first, so that a configuration error is one clear line.
        __import__(os.environ["DJANGO_SETTINGS_MODULE"])
        from taskcenter.plugins import import_plugins

        import_plugins()
    except ConfigError as exc:
        exit_on_config_error(exc)
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as exc:  # a plug-in's jobs module, imported as Django starts
        exit_on_config_error(exc)


if __name__ == "__main__":
    main()
