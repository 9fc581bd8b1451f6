"""Typed readers for settings that come from the environment (no third-party dependencies)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "channel_layers_from_url",
    "database_from_url",
    "env_bool",
    "env_list",
    "sqlite_database",
    "default_monitor_file",
]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql", "psql"}


def env_bool(name: str, default: bool) -> bool:
    """Return the environment variable `name` read as a boolean, or `default` when unset."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_list(name: str, default: list[str]) -> list[str]:
    """Return the comma-separated environment variable `name` as a list, or `default` when unset."""
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def sqlite_database(path: str | Path, test_path: str | Path | None = None) -> dict[str, Any]:
    """Return a SQLite database entry tuned for concurrent writers (WAL, busy timeout)."""
    entry: dict[str, Any] = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            # WAL lets readers (the dashboard) run while the collector's writer commits;
            # the timeout makes a locked database wait instead of failing at once.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
        },
    }
    if test_path is not None:
        # A file, not :memory:, so that background threads and subprocesses see the test data.
        entry["TEST"] = {"NAME": str(test_path)}
    return entry


def database_from_url(url: str) -> dict[str, Any]:
    """Return a Django DATABASES entry for a postgres:// or sqlite:/// URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        # sqlite:///relative.db, sqlite:////absolute/path.db
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        return sqlite_database(path or ":memory:")
    if scheme in _POSTGRES_SCHEMES:
        return _postgres_database(parts)
    raise ValueError(
        f"unsupported DATABASE_URL scheme {parts.scheme!r} (use postgres:// or sqlite:///)"
    )


def _postgres_database(parts: Any) -> dict[str, Any]:
    """Return a PostgreSQL DATABASES entry from a split URL; query parameters become OPTIONS."""
    options = dict(parse_qsl(parts.query))
    conn_max_age = int(options.pop("conn_max_age", "0"))
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": unquote(parts.hostname or ""),
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": conn_max_age,
        "OPTIONS": options,
    }


def channel_layers_from_url(redis_url: str | None) -> dict[str, Any]:
    """Return CHANNEL_LAYERS: channels-redis when a Redis URL is given, in-memory otherwise."""
    if not redis_url:
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url]},
        }
    }


def default_monitor_file(default: dict[str, Any]) -> str:
    """Return the monitor's own SQLite file beside a SQLite ``default`` database (signals.sqlite3
    in its folder), or "" when the default database is not a SQLite file."""
    name = str(default.get("NAME", ""))
    if not str(default.get("ENGINE", "")).endswith("sqlite3") or name in ("", ":memory:"):
        return ""
    if name.startswith("file:"):  # a URI filename (mode=memory and the like): keep it simple
        return ""
    return str(Path(name).resolve().parent / "signals.sqlite3")
