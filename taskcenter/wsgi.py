"""WSGI entry point (gunicorn taskcenter.wsgi)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskcenter.settings")

from taskcenter.config import ConfigError, exit_on_config_error

try:
    __import__(os.environ["DJANGO_SETTINGS_MODULE"])
except ConfigError as exc:
    exit_on_config_error(exc)

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
