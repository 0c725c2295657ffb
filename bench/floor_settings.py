"""The product's settings serving bench/floor_urls.py: ``bench/api.py`` starts gunicorn with
``DJANGO_SETTINGS_MODULE=bench.floor_settings`` so the floor view runs in the API's processes."""

from taskcenter.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"
