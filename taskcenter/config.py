"""Reading settings from the environment.

Everything here is plain Python so that ``settings.py`` stays a list of decisions.  A bad value
raises :class:`ConfigError`; ``manage.py`` and ``wsgi.py`` turn it into one line on stderr and a
non-zero exit instead of a traceback.
"""

from __future__ import annotations

import ipaddress
import math
import os
import sys
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


class ConfigError(ImproperlyConfigured):
    """A setting read from the environment is missing or malformed."""


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name}={raw!r} is not a finite number")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_packages(name: str) -> list[str]:
    """A comma-separated list of importable package names (``shop_reports,acme.jobs``)."""
    packages = env_list(name, [])
    for package in packages:
        if not all(part.isidentifier() for part in package.split(".")):
            raise ConfigError(f"{name}: {package!r} is not a Python package name")
    return packages


def env_networks(name: str, default: list[str]) -> list[str]:
    """A comma-separated list of CIDRs (``10.0.0.0/8,::1/128``); a malformed one stops start-up."""
    networks = env_list(name, default)
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(f"{name}: {network!r} is not an IP network (use CIDRs such as 10.0.0.0/8)")
    return networks


SQLITE_OPTIONS = {
    # IMMEDIATE takes the write lock at BEGIN: with DEFERRED, a read-then-write transaction that
    # meets another writer fails with "database is locked" at its first write instead of waiting.
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    # mmap_size: pages read from the operating system's cache without a copy into each
    # connection's small page cache, which a list's COUNT(*) over the tasks' index overflows.
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA mmap_size=268435456;",
}


def parse_database_url(url: str, *, base_dir: Path) -> dict:
    """Turn ``DATABASE_URL`` into a Django ``DATABASES['default']`` entry.

    Supported: ``sqlite:///relative/or/absolute/path.sqlite3`` and
    ``postgres://user:password@host:port/name?sslmode=…`` (also ``postgresql://``).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        # sqlite:///var/db.sqlite3 → relative to the project; sqlite:////abs/path → absolute.
        raw_path = unquote(parts.path)
        if parts.netloc:
            raise ConfigError(f"DATABASE_URL {url!r}: a SQLite URL has no host (use sqlite:///path)")
        if not raw_path or raw_path == "/":
            raise ConfigError(f"DATABASE_URL {url!r}: a SQLite URL needs a file path")
        path = Path(raw_path[1:])
        if not path.is_absolute():
            path = base_dir / path
        return {
            "ENGINE": "taskcenter.db.sqlite3",
            "NAME": str(path),
            "OPTIONS": dict(SQLITE_OPTIONS),
            # django-q2's ORM broker calls close_old_connections() on every broker call: with a
            # max age of 0 that reopens the database for each enqueue and dequeue.
            "CONN_MAX_AGE": 600,
        }
    if scheme in {"postgres", "postgresql", "pgsql"}:
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ConfigError(f"DATABASE_URL {_redact(url)!r}: a PostgreSQL URL needs a database name")
        try:
            port = parts.port
        except ValueError:
            raise ConfigError(f"DATABASE_URL {_redact(url)!r}: the port is not a number") from None
        options = dict(parse_qsl(parts.query))
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            "OPTIONS": options,
            # Persistent connections: django-q2's broker and the API both gain a lot from not
            # reconnecting on every query; health checks drop broken ones.
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    shown = scheme or "(none)"
    raise ConfigError(
        f"DATABASE_URL scheme {shown!r} is not supported: use sqlite:///path or postgres://user@host/name"
    )


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def parse_redis_url(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss"}:
        raise ConfigError(f"REDIS_URL scheme {parts.scheme or '(none)'!r} is not supported: use redis://host:port/db")
    return {"url": url}


def exit_on_config_error(exc: ConfigError, *, status: int = 2) -> None:
    """Print one clear line and stop with ``status``: the operator needs the reason, not a traceback."""
    sys.stderr.write(f"taskcenter: configuration error: {exc}\n")
    raise SystemExit(status)
