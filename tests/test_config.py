"""The project's settings read from the environment (config.env)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from config.env import (
    channel_layers_from_url,
    database_from_url,
    default_monitor_file,
    env_bool,
    env_list,
    sqlite_database,
)
from tests.conftest import ROOT


def test_postgres_url_is_parsed_with_escapes_and_options() -> None:
    """A postgres:// URL gives every connection field; query parameters become OPTIONS."""
    db = database_from_url(
        "postgres://u%40x:p%2Fw@db.example:6543/shop?sslmode=require&conn_max_age=60"
    )
    assert db == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "shop",
        "USER": "u@x",
        "PASSWORD": "p/w",
        "HOST": "db.example",
        "PORT": "6543",
        "CONN_MAX_AGE": 60,
        "OPTIONS": {"sslmode": "require"},
    }


def test_postgresql_scheme_without_port_or_password() -> None:
    """postgresql:// is accepted; missing parts stay empty so libpq defaults apply."""
    db = database_from_url("postgresql://localhost/shop")
    assert (db["HOST"], db["PORT"], db["USER"], db["PASSWORD"]) == ("localhost", "", "", "")


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("sqlite:////var/lib/app/db.sqlite3", "/var/lib/app/db.sqlite3"),
        ("sqlite:///db.sqlite3", "db.sqlite3"),
    ],
)
def test_sqlite_url_keeps_wal_and_busy_timeout(url: str, name: str) -> None:
    """A sqlite:/// URL gives the tuned SQLite entry (WAL, busy timeout, immediate transactions)."""
    db = database_from_url(url)
    assert db["NAME"] == name
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]
    assert db["OPTIONS"]["timeout"] == 20
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_unknown_database_scheme_is_refused() -> None:
    """An unsupported scheme raises instead of silently using another database."""
    with pytest.raises(ValueError, match="mysql"):
        database_from_url("mysql://localhost/shop")


def test_sqlite_test_database_is_a_file() -> None:
    """The test database is a file, so threads and subprocesses share it."""
    assert sqlite_database("a.sqlite3", test_path="t.sqlite3")["TEST"] == {"NAME": "t.sqlite3"}


def test_channel_layer_follows_redis_url() -> None:
    """REDIS_URL selects channels-redis; without it the in-memory layer is used."""
    assert (
        channel_layers_from_url(None)["default"]["BACKEND"]
        == "channels.layers.InMemoryChannelLayer"
    )
    layer = channel_layers_from_url("redis://127.0.0.1:6379/0")["default"]
    assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    assert layer["CONFIG"]["hosts"] == ["redis://127.0.0.1:6379/0"]


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("yes", True), ("0", False), ("off", False)]
)
def test_env_bool(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    """Booleans accept the usual spellings."""
    monkeypatch.setenv("X_FLAG", raw)
    assert env_bool("X_FLAG", default=not expected) is expected


def test_env_bool_rejects_garbage_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unset variable gives the default; an unreadable one raises."""
    monkeypatch.delenv("X_FLAG", raising=False)
    assert env_bool("X_FLAG", default=True) is True
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ValueError, match="X_FLAG"):
        env_bool("X_FLAG", default=True)


def test_env_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """Comma-separated lists are trimmed; empty items are dropped."""
    monkeypatch.setenv("X_HOSTS", " a.example , b.example,,")
    assert env_list("X_HOSTS", ["default"]) == ["a.example", "b.example"]
    monkeypatch.delenv("X_HOSTS")
    assert env_list("X_HOSTS", ["default"]) == ["default"]


def test_the_monitor_file_sits_beside_a_sqlite_default_database(tmp_path: Any) -> None:
    """signals.sqlite3 in the default SQLite file's folder; none for PostgreSQL or memory."""
    entry = sqlite_database(tmp_path / "sub" / ".." / "db.sqlite3")
    assert default_monitor_file(entry) == str(tmp_path / "signals.sqlite3")
    assert default_monitor_file(sqlite_database(":memory:")) == ""
    assert default_monitor_file(database_from_url("postgres://localhost/shop")) == ""


def _settings_in(env: dict[str, str]) -> dict[str, Any]:
    """Import config.settings in a fresh interpreter with ``env``; return what the monitor uses."""
    code = (
        "import json, config.settings as s; print(json.dumps({'aliases': sorted(s.DATABASES), "
        "'signals': s.DATABASES.get('signals', {}).get('NAME'), "
        "'routers': getattr(s, 'DATABASE_ROUTERS', []), "
        "'alias': s.SIGNAL_MONITOR.get('DATABASE_ALIAS', 'default')}))"
    )
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SIGNAL_MONITOR", "PYTEST", "DATABASE_URL", "SQLITE"))
    }
    result = subprocess.run([sys.executable, "-c", code], env={**keep, **env}, cwd=ROOT,
                            capture_output=True, text=True, check=True)  # fmt: skip
    return dict(json.loads(result.stdout))


def test_the_project_keeps_the_monitor_in_a_sqlite_file_of_its_own(tmp_path: Any) -> None:
    """By default (what `make run` serves) the monitor's alias, router and file are set up beside
    a SQLite default database; "" keeps it in the default database, and so does a pytest run
    unless the variable is set; a PostgreSQL default needs no file of its own."""
    db = str(tmp_path / "db.sqlite3")
    own = _settings_in({"SQLITE_PATH": db})
    assert own == {
        "aliases": ["default", "signals"],
        "signals": str(tmp_path / "signals.sqlite3"),
        "routers": ["collector.routers.MonitorRouter"],
        "alias": "signals",
    }
    shared = {"aliases": ["default"], "signals": None, "routers": [], "alias": "default"}
    assert _settings_in({"SQLITE_PATH": db, "SIGNAL_MONITOR_SQLITE_PATH": ""}) == shared
    assert _settings_in({"SQLITE_PATH": db, "PYTEST_VERSION": "9"}) == shared
    assert _settings_in({"DATABASE_URL": "postgres://localhost/shop"}) == shared
    chosen = str(tmp_path / "elsewhere.sqlite3")
    assert (
        _settings_in(
            {"SQLITE_PATH": db, "PYTEST_VERSION": "9", "SIGNAL_MONITOR_SQLITE_PATH": chosen}
        )["signals"]
        == chosen
    )
