"""Django settings for taskcenter, read from the environment (docs/configuration.md).

Defaults give a working single-machine install: SQLite under ``var/`` and django-q2's ORM broker.
``DATABASE_URL`` and ``REDIS_URL`` move the same code onto PostgreSQL and Redis.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.utils.translation import gettext_lazy

from taskcenter.config import (
    ConfigError,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_networks,
    env_packages,
    env_str,
    parse_database_url,
    parse_redis_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("TASKCENTER_VAR_DIR", str(BASE_DIR / "var")))
# The installation's private state (SQLite file, generated secrets, counters) lives here: made
# owner-only before anything is written into it, whichever process starts first.
VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)

# --- Core -------------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ConfigError("SECRET_KEY is not set; set it (or DEBUG=1 for a development key)")
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

#: Plug-in apps: importable packages (comma-separated), installed after taskcenter's own apps with
#: their models and migrations; each one's ``jobs`` module registers its job types (docs/jobs.md).
TASKCENTER_PLUGINS = env_packages("TASKCENTER_PLUGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "axes",
    "tasks.apps.TasksConfig",
    "batches.apps.BatchesConfig",
    *TASKCENTER_PLUGINS,
]

MIDDLEWARE = [
    "taskcenter.middleware.HeadWithoutBodyMiddleware",
    "taskcenter.middleware.RequestMetricsMiddleware",
    "taskcenter.middleware.ChunkedBodyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "taskcenter.middleware.ApiInUtcMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a refused login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# --- Operations -------------------------------------------------------------------------------

#: Where the processes of this host keep their Prometheus counters (summed by /metrics).
#: ``dev.py run`` empties it at start.
PROMETHEUS_MULTIPROC_DIR = Path(env_str("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "prometheus")))
#: /metrics answers requests bearing this token (``Authorization: Bearer …``) …
METRICS_TOKEN = env_str("METRICS_TOKEN")
#: … and requests from clients in these networks (comma-separated CIDRs; empty: none). A forwarded
#: request whose client the trusted proxies do not name gets nothing from its peer's network.
METRICS_ALLOWED_NETWORKS = env_networks("METRICS_ALLOWED_NETWORKS", ["127.0.0.0/8", "::1/128"])
#: Reverse proxies whose X-Forwarded-For is believed (comma-separated CIDRs; empty: none). The
#: client's address (audit log, anonymous throttle, /metrics, login lockout) is then read from it
#: (taskcenter/proxies.py); from any other peer the header is ignored.
TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES", [])
#: How often each worker process reports its CPU, memory and task count (seconds).
TASKCENTER_RESOURCE_INTERVAL = float(env_str("TASKCENTER_RESOURCE_INTERVAL", "5"))

ROOT_URLCONF = "taskcenter.urls"
WSGI_APPLICATION = "taskcenter.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'taskcenter.sqlite3'}")
DATABASES = {"default": parse_database_url(DATABASE_URL, base_dir=BASE_DIR)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Tests run a real qcluster in another process, so the test database must be a file.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-taskcenter.sqlite3")}
# SQLite: a writer gives up waiting for the write lock after this many seconds, so that a process
# holding it for good (stopped in a debugger, hung) makes the others fail clearly, not wait forever.
TASKCENTER_SQLITE_LOCK_TIMEOUT = env_float("TASKCENTER_SQLITE_LOCK_TIMEOUT", 120.0, minimum=1.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Internationalisation ---------------------------------------------------------------------

LANGUAGE_CODE = env_str("LANGUAGE_CODE", "zh-hans")
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------------------------

STATIC_URL = "static/"
# WhiteNoise serves the static files (the admin's, Swagger UI's, ReDoc's) straight from the
# installed apps, read once when a web process starts: no collectstatic step to forget or to
# repeat on every web host after an upgrade. Django's default storage, so URLs carry no hash;
# browsers keep a file for WhiteNoise's 60 s.
WHITENOISE_USE_FINDERS = True

# --- Security ---------------------------------------------------------------------------------

# Behind a TLS-terminating proxy set SECURE_COOKIES=1 (and SECURE_SSL_REDIRECT=1 if it does not
# redirect itself); the defaults keep plain-HTTP local use working.
SECURE_COOKIES = env_bool("SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 3600, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Largest request body accepted (bytes); larger bodies are answered 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BODY_BYTES", 1024 * 1024, minimum=1024)

# The admin login: django-axes counts failed logins per user name and per client address (each
# locks on its own) and refuses further attempts for a while.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "taskcenter.proxies.client_address"
AXES_LOCKOUT_CALLABLE = "taskcenter.views.login_locked_out"
# Not reset on success: a user with a login of their own could otherwise clear their address's
# count between guesses at someone else's password. Failures simply cool off.
AXES_RESET_ON_SUCCESS = False
# Successful logins are not kept (the table would only grow); failures are, until they cool off.
AXES_DISABLE_ACCESS_LOG = True
# No "BEGIN version …" line at every process start; failed logins and lockouts are still logged.
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Email and alerts -------------------------------------------------------------------------

ADMINS = [(addr.split("@")[0], addr) for addr in env_list("ADMINS", [])]
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
SERVER_EMAIL = env_str("SERVER_EMAIL", "taskcenter@localhost")
TASKCENTER_ALERT_WEBHOOK = env_str("TASKCENTER_ALERT_WEBHOOK")

# --- Caches ---------------------------------------------------------------------------------

# "default" serves API throttling; "cluster" holds django-q2's cluster statistics, which the web
# processes read (live clusters, queue depth). Both must be shared by all processes: Redis when
# REDIS_URL is set, otherwise files on this machine and a database table (created by migrate:
# tasks/migrations/0008_cluster_cache_table.py).
REDIS_URL = env_str("REDIS_URL")
#: The database table of the "cluster" cache without Redis (created by migrate).
CLUSTER_CACHE_TABLE = "taskcenter_cluster_cache"
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL},
        "cluster": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL},
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        },
        "cluster": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": CLUSTER_CACHE_TABLE},
    }

# --- REST API ---------------------------------------------------------------------------------

#: Without Redis, the API throttles count requests in small files here (one machine); with Redis,
#: in the shared cache.
TASKCENTER_THROTTLE_DIR = None if REDIS_URL else Path(env_str("TASKCENTER_THROTTLE_DIR", str(VAR_DIR / "throttle")))

REST_FRAMEWORK = {
    # Token first: an anonymous request then gets 401 with a WWW-Authenticate header, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "taskcenter.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["taskcenter.api.permissions.ActionPermissions"],
    "DEFAULT_RENDERER_CLASSES": ["taskcenter.api.renderers.EnvelopeRenderer"],
    "DEFAULT_PARSER_CLASSES": ["taskcenter.api.parsers.LimitedJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "taskcenter.api.pagination.PagePagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "taskcenter.api.schema.TaskcenterAutoSchema",
    "EXCEPTION_HANDLER": "taskcenter.api.exceptions.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "taskcenter.api.throttling.AnonRateThrottle",
        "taskcenter.api.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("THROTTLE_ANON", "60/min"),
        "user": env_str("THROTTLE_USER", "6000/min"),
    },
    "PAGE_SIZE": 20,
    # No ?format=…: the API speaks JSON (and text/event-stream on the events endpoint) only.
    "URL_FORMAT_OVERRIDE": None,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "taskcenter API",
    "DESCRIPTION": "Run, watch and steer long background jobs. Every /api/v1/ response is an envelope "
    "{success, code, message, data}; errors carry data: null (and errors: {field: [messages]} on 400).",
    "VERSION": "1.0.0",
    # 3.1: nullable values are typed (["string", "null"]), constants are `const`.
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "taskcenter.api.schema.envelope_postprocessing_hook",
        "taskcenter.api.schema.health_paths_hook",
    ],
    # Every operation carries one of these (the views' extend_schema(tags=…); tests/test_api_schema.py).
    "TAGS": [
        {"name": "batches", "description": "Statistics batches: named configurations of the statistics job."},
        {
            "name": "statistics tasks",
            "description": "A batch's statistics task: start and cancel by batch code, status and progress by task id.",
        },
        {
            "name": "tasks",
            "description": "Tasks of any type: create, list, steer (cancel, pause, resume, retry), delete, logs, "
            "event streams, statistics.",
        },
        {"name": "task types", "description": "The registered task types, their stages and parameters."},
        {
            "name": "schedules",
            "description": "Schedules that start tasks (or batches) at an interval or at cron times in TIME_ZONE.",
        },
        {"name": "audit", "description": "The audit log: every change, who made it and from where."},
        {"name": "data sources", "description": "The data sources a statistics batch can read."},
        {
            "name": "health",
            "description": "Liveness, readiness and Prometheus metrics, outside /api/v1/: no envelope, no token.",
        },
    ],
    "GET_LIB_DOC_EXCLUDES": "taskcenter.api.schema.doc_excludes",
    # One named enum per value set, shared by every field and filter that takes it.
    "ENUM_NAME_OVERRIDES": {
        "TaskStatus": "tasks.states.TaskStatus",
        "StageStatus": "tasks.states.StageStatus",
        "ErrorCategory": "tasks.states.ErrorCategory",
        "Trigger": "tasks.states.Trigger",
        "ClusterStatus": "tasks.states.ClusterStatus",
        "LogLevel": "tasks.states.LOG_LEVEL_NAMES",
        "BulkItemStatus": "tasks.api.serializers.BULK_ITEM_STATUSES",
        "BulkAction": "tasks.api.serializers.BULK_ACTIONS",
        "TaskEventName": "tasks.api.serializers.TASK_EVENTS",
        "DataSourceName": "batches.api.serializers.source_names",
        "Dimension": "batches.api.serializers.dimension_names",
        "CalculationType": "batches.sources.CALCULATION_TYPES",
    },
}

#: Concurrent Server-Sent Events streams per web process (each holds a thread); more → 429.
TASKCENTER_SSE_MAX_STREAMS = env_int("TASKCENTER_SSE_MAX_STREAMS", 4, minimum=1)
#: A stream ends after this many seconds (the client reconnects); keeps threads from leaking.
TASKCENTER_SSE_MAX_SECONDS = env_int("TASKCENTER_SSE_MAX_SECONDS", 600, minimum=1)

# --- django-q2 --------------------------------------------------------------------------------

Q_WORKERS = env_int("Q_WORKERS", 2, minimum=1)
#: Hard backstop for one django-q2 task (seconds). Must exceed the longest job timeout; each job
#: type also passes its own timeout + grace when it is enqueued.
Q_TIMEOUT = env_int("Q_TIMEOUT", 3900, minimum=10)
Q_CLUSTER = {
    "name": env_str("Q_CLUSTER_NAME", "taskcenter"),
    # django-q2's own tables in the admin (superusers only: tasks/admin.py).
    "label": gettext_lazy("Internals (django-q2)"),
    "workers": Q_WORKERS,
    # A cluster pre-fetches at most one task per worker, so a task never waits long in a local
    # queue while its broker lease (retry) runs out.
    "queue_limit": Q_WORKERS,
    # The pusher takes up to this many messages / due tasks per broker call: one query serves a
    # worker each, so a single pusher keeps up with the workers of a busy cluster.
    "bulk": Q_WORKERS,
    "timeout": Q_TIMEOUT,
    # Broker lease: a message not acknowledged after this many seconds is delivered again. It must
    # exceed timeout, or a long task would be delivered twice (fencing would make that harmless,
    # but it wastes a worker).
    "retry": Q_TIMEOUT + 300,
    # taskcenter owns retries (backoff, categories, attempts): django-q2 runs each message once
    # and acknowledges failures instead of redelivering them forever.
    "max_attempts": 1,
    "ack_failures": True,
    # Successful runs are recorded on our Task rows; do not also store them in django_q_task.
    "save_limit": -1,
    "catch_up": False,
    "poll": 0.1,
    "log_level": env_str("Q_LOG_LEVEL", "WARNING").upper(),
    "recycle": 500,
    "cache": "cluster",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = parse_redis_url(REDIS_URL)["url"]
    # django-q2's Redis broker, whose pusher also runs the due schedules (tasks/runtime/broker.py).
    Q_CLUSTER["broker_class"] = "tasks.runtime.broker.RedisBroker"
else:
    Q_CLUSTER["orm"] = "default"
    # The ORM broker with the tasks table as the queue of tasks (tasks/runtime/broker.py).
    Q_CLUSTER["broker_class"] = "tasks.runtime.broker.TaskTableBroker"

# Django's Tasks API (django.tasks; the django-tasks backport on Django 5.2): @task functions run
# as taskcenter tasks (taskcenter/tasks_backend.py).
TASKS = {"default": {"BACKEND": "taskcenter.tasks_backend.TaskcenterBackend"}}

# --- taskcenter runtime -----------------------------------------------------------------------

#: A processing task whose heartbeat is older than this many seconds is considered lost.
TASKCENTER_LEASE_SECONDS = env_int("TASKCENTER_LEASE_SECONDS", 60, minimum=2)
#: How often the heartbeat is refreshed and progress/logs are flushed (seconds, float ok).
TASKCENTER_FLUSH_INTERVAL = float(env_str("TASKCENTER_FLUSH_INTERVAL", "0.25"))
#: A pending task that no worker claimed for this long is handed to the broker again (a broker
#: can lose a message; a duplicate is harmless).
TASKCENTER_REQUEUE_AFTER_SECONDS = env_int("TASKCENTER_REQUEUE_AFTER_SECONDS", 600, minimum=1)
#: Multiplies every automatic-retry backoff (tests use a small value).
TASKCENTER_RETRY_BACKOFF_SCALE = float(env_str("TASKCENTER_RETRY_BACKOFF_SCALE", "1.0"))
#: Finished tasks older than this many days are deleted by the daily maintenance.purge task.
TASKCENTER_RETENTION_DAYS = env_int("TASKCENTER_RETENTION_DAYS", 30, minimum=1)
#: Audit rows older than this many days are deleted by the same purge.
TASKCENTER_AUDIT_RETENTION_DAYS = env_int("TASKCENTER_AUDIT_RETENTION_DAYS", 365, minimum=1)
#: Diagnostics: when set, the canary job appends each finished step to <dir>/<task id>.steps so
#: that end-to-end tests can count executed steps across workers.
TASKCENTER_CANARY_TRACE_DIR = env_str("TASKCENTER_CANARY_TRACE_DIR")
#: Where the statistics job keeps the arrays it has loaded, so pause/resume and retry do not
#: load again. Use shared storage when clusters run on several machines (a worker that does not
#: find the files loads again).
TASKCENTER_CHECKPOINT_DIR = Path(env_str("TASKCENTER_CHECKPOINT_DIR", str(VAR_DIR / "checkpoints")))
#: Records per chunk (and per loading checkpoint) of the statistics job.
TASKCENTER_STATS_CHUNK_ROWS = env_int("TASKCENTER_STATS_CHUNK_ROWS", 50_000, minimum=100)
#: Where ``import_assessments`` task params may point (never an arbitrary path from the API).
TASKCENTER_IMPORT_DIR = Path(env_str("TASKCENTER_IMPORT_DIR", str(VAR_DIR / "imports")))

# --- Logging ----------------------------------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
#: ``plain`` (default) or ``json``: one JSON object a line, with the structured fields.
LOG_FORMAT = env_str("LOG_FORMAT", "plain").lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise ConfigError(f"LOG_FORMAT={LOG_FORMAT!r} must be plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "taskcenter.logformat.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "taskcenter.logformat.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django-q": {"level": env_str("Q_LOG_LEVEL", "WARNING").upper()},
        # One line per API call and per state change (INFO); set to WARNING to silence them.
        "taskcenter.access": {"level": env_str("ACCESS_LOG_LEVEL", "INFO").upper()},
        "taskcenter.audit": {"level": env_str("ACCESS_LOG_LEVEL", "INFO").upper()},
    },
}
