"""System checks for misconfigurations that hurt reliability or security (each with id and hint)."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from collector import checks as collector_checks
from dashboard import checks as dashboard_checks

REDIS_LAYER = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}


@pytest.fixture
def database(monkeypatch: Any) -> Any:
    """Return a setter of the default database's engine and init_command (patched in place)."""
    entry = settings.DATABASES["default"]

    def set_to(init_command: str, engine: str = "django.db.backends.sqlite3") -> None:
        monkeypatch.setitem(entry, "ENGINE", engine)
        monkeypatch.setitem(
            entry, "OPTIONS", {**entry.get("OPTIONS", {}), "init_command": init_command}
        )

    return set_to


def ids(messages: list[Any]) -> list[str]:
    """Return the ids of check messages."""
    return [m.id for m in messages]


def test_sqlite_without_wal_under_several_processes_is_reported(
    monkeypatch: Any, database: Any
) -> None:
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("GUNICORN_CMD_ARGS", raising=False)
    database("PRAGMA synchronous=NORMAL;")
    assert collector_checks.check_sqlite_wal() == []  # one process: fine
    with override_settings(CHANNEL_LAYERS=REDIS_LAYER):
        (warning,) = collector_checks.check_sqlite_wal()
    assert warning.id == "signals_collector.W002"
    assert "WAL" in warning.hint and "RedisChannelLayer" in warning.msg
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    assert ids(collector_checks.check_sqlite_wal()) == ["signals_collector.W002"]
    monkeypatch.setenv("WEB_CONCURRENCY", "1")
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--bind :8000 --workers 3")
    assert ids(collector_checks.check_sqlite_wal()) == ["signals_collector.W002"]
    database("PRAGMA journal_mode = WAL;")
    assert collector_checks.check_sqlite_wal() == []


@pytest.mark.django_db
def test_the_wal_check_reads_the_database_when_it_may(monkeypatch: Any) -> None:
    """With database checks (migrate, check --database) the real journal mode decides."""
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    assert collector_checks.check_sqlite_wal(databases=["default"]) == []  # the test db is WAL
    monkeypatch.setattr(collector_checks, "_journal_mode", lambda alias: "delete")
    assert ids(collector_checks.check_sqlite_wal(databases=["default"])) == [
        "signals_collector.W002"
    ]


def test_postgres_is_never_warned_about_wal(monkeypatch: Any, database: Any) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "8")
    database("", engine="django.db.backends.postgresql")
    assert collector_checks.check_sqlite_wal() == []


def test_redaction_removed_from_the_processors_is_reported() -> None:
    assert collector_checks.check_redaction() == []
    with override_settings(SIGNAL_MONITOR={"PROCESSORS": ["collector.processors.SampleProcessor"]}):
        (warning,) = collector_checks.check_redaction()
    assert warning.id == "signals_collector.W003" and "RedactProcessor" in warning.hint
    subclass = "tests.reliability.test_checks.MyRedactor"
    with override_settings(SIGNAL_MONITOR={"PROCESSORS": [subclass]}):
        assert collector_checks.check_redaction() == []


class MyRedactor(__import__("collector.processors").processors.RedactProcessor):
    """A project's own redaction, built on the shipped one."""


def test_a_database_alias_missing_from_databases_is_an_error() -> None:
    """E006: the writer, the dashboard (through MonitorRouter) and migrate need the alias."""
    with override_settings(SIGNAL_MONITOR={"DATABASE_ALIAS": "monitr"}):
        ids = [m.id for m in collector_checks.check_settings()]
    assert ids == ["signals_collector.E006"]
    with override_settings(SIGNAL_MONITOR={"DATABASE_ALIAS": "default"}):
        assert collector_checks.check_settings() == []


def test_retention_settings_must_be_sane() -> None:
    assert collector_checks.check_retention() == []
    bad = {"MAX_AGE_DAYS": -1, "PRUNE_INTERVAL": "often", "PRUNE_BATCH_SIZE": 0}
    with override_settings(SIGNAL_MONITOR=bad):
        messages = collector_checks.check_retention()
    assert ids(messages) == ["signals_collector.E004"] * 3
    assert all(m.hint for m in messages)
    with override_settings(SIGNAL_MONITOR={"MAX_AGE_DAYS": None, "MAX_EVENTS": 0}):
        assert collector_checks.check_retention() == []


def allow_all(user: Any) -> bool:
    """An access check that lets everybody in."""
    return True


def allow_logged_in(user: Any) -> bool:
    """Anyone logged in, active or not."""
    return bool(user.is_authenticated)


def allow_active_staff_or_perm(user: Any) -> bool:
    """A sensible project check."""
    return bool(user.is_active and (user.is_staff or user.has_perm("app.view_signals")))


def broken(user: Any) -> bool:
    """A check that raises (it refuses)."""
    raise RuntimeError("no")


@pytest.mark.parametrize(
    ("check", "warned"),
    [
        ("tests.reliability.test_checks.allow_all", True),
        (allow_all, True),
        (lambda user: 1, True),
        ("tests.reliability.test_checks.allow_logged_in", False),
        ("tests.reliability.test_checks.allow_active_staff_or_perm", False),
        ("tests.reliability.test_checks.broken", False),
        ("dashboard.access.is_staff_user", False),
    ],
)
def test_an_always_true_access_check_is_reported(check: Any, warned: bool) -> None:
    with override_settings(SIGNAL_MONITOR={"ACCESS_CHECK": check}):
        messages = dashboard_checks.check_access_check_refuses()
    assert ids(messages) == (["signals_dashboard.W004"] if warned else [])
    if warned:
        assert "anonymous" in messages[0].msg and messages[0].hint


def test_a_wildcard_allowed_host_weakens_the_websocket_origin_check() -> None:
    assert dashboard_checks.check_allowed_hosts() == []
    with override_settings(ALLOWED_HOSTS=["*"]):
        (warning,) = dashboard_checks.check_allowed_hosts()
    assert warning.id == "signals_dashboard.W005" and "ALLOWED_HOSTS" in warning.hint


@pytest.mark.django_db
def test_the_project_passes_its_own_checks(capsys: Any) -> None:
    call_command("check", "--fail-level", "WARNING")
    assert "no issues" in capsys.readouterr().out
