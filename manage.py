#!/usr/bin/env python
"""Django's command-line utility for taskcenter."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskcenter.settings")
    from taskcenter.config import ConfigError, exit_on_config_error

    try:
        # Import the settings first so that a configuration error is one clear line.
        __import__(os.environ["DJANGO_SETTINGS_MODULE"])
    except ConfigError as exc:
        exit_on_config_error(exc)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
