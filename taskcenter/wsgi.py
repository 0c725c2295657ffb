"""WSGI entry point (gunicorn taskcenter.wsgi)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskcenter.settings")

from taskcenter.config import ConfigError, exit_on_config_error

#: gunicorn's "App failed to load" exit status: its arbiter then stops, instead of booting workers
#: that fail the same way again and again.
APP_LOAD_ERROR = 4

try:
    __import__(os.environ["DJANGO_SETTINGS_MODULE"])
    from taskcenter.plugins import import_plugins

    import_plugins()
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
except ConfigError as exc:
    exit_on_config_error(exc, status=APP_LOAD_ERROR)
