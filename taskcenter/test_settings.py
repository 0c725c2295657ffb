"""Settings for the test suite (pytest and the qcluster processes the tests start)."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-key-not-secret-0123456789abcdefghijklmnopqrstuvwxyz")
# Property-based API tests send thousands of requests: throttling is tested on its own.
os.environ.setdefault("THROTTLE_USER", "1000000/min")
os.environ.setdefault("THROTTLE_ANON", "1000000/min")
os.environ.setdefault("TASKCENTER_VAR_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), "var"))

# The test process, its gunicorn and qcluster subprocesses share one Prometheus directory.
# ``dev.py test`` empties it before a run; tests compare counters before and after.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(os.environ["TASKCENTER_VAR_DIR"], "prometheus-test"))

from taskcenter.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
CACHES = {
    **CACHES,  # noqa: F405
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
}
SECURE_COOKIES = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
