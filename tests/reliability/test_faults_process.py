"""Process-level faults in real subprocesses: SIGTERM and normal exit flush the queue within a
bounded time, fork() gives the child a working writer with no lock inherited held, a project that
has not migrated runs unharmed, and ``migrate`` from an empty database stores its own signals."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, copy_sqlite, live_env, run_manage
from tests.reliability.conftest import Tally

pytestmark = pytest.mark.slow
EVENTS = 2_000
EVENT_TABLE = "signals_collector_event"
MODELS = "django.db.models.signals."


def start(scenario: str, db: Path, events: int = EVENTS, **env: str) -> subprocess.Popen[str]:
    """Start a scenario of proc_script.py against the SQLite file ``db``."""
    environment = live_env(db, DJANGO_SETTINGS_MODULE="tests.reliability.proc_settings", **env)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.proc_script", scenario, str(events)],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_ready(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """Read the scenario's facts up to its "ready" line."""
    assert proc.stdout is not None
    facts: dict[str, Any] = {}
    for line in proc.stdout:
        if line.strip() == "ready":
            return facts
        facts.update(json.loads(line))
    raise AssertionError(f"no ready line; stderr:\n{proc.stderr.read() if proc.stderr else ''}")


def rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run a query on the SQLite file."""
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql, params))


def stored(db: Path, sender: str) -> tuple[int, int]:
    """Return (events, distinct ids) stored for ``sender``."""
    ((total, distinct),) = rows(
        db,
        "SELECT count(*), count(DISTINCT id) FROM signals_collector_event WHERE sender = ?",
        sender,
    )
    return int(total), int(distinct)


@pytest.fixture
def migrated(live_db_template: Path, tmp_path: Path) -> Path:
    """Return a fresh copy of the migrated template database."""
    db = tmp_path / "proc.sqlite3"
    copy_sqlite(live_db_template, db)
    return db


def test_sigterm_flushes_the_queue_then_dies_of_sigterm(migrated: Path, tally: Tally) -> None:
    # The writer sleeps 60 s between rounds: only the SIGTERM handler can write these events.
    proc = start("sigterm", migrated, SM_FLUSH_INTERVAL="60")
    facts = wait_ready(proc)
    assert "_on_sigterm" in facts["handler"]
    assert stored(migrated, "sigterm") == (0, 0)
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)
    took = time.monotonic() - began
    tally.fault("sigterm")
    assert proc.returncode == -signal.SIGTERM  # the default action still happens
    assert took < 5 + 2  # EXIT_TIMEOUT and a margin
    total, distinct = stored(migrated, "sigterm")
    tally.events(sent=EVENTS, stored=distinct)
    assert total == distinct == EVENTS
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")


def test_normal_exit_flushes_the_queue(migrated: Path, tally: Tally) -> None:
    proc = start("exit", migrated, SM_FLUSH_INTERVAL="60")
    wait_ready(proc)
    proc.wait(15)
    tally.fault("normal_exit")
    assert proc.returncode == 0
    total, distinct = stored(migrated, "exit")
    tally.events(sent=EVENTS, stored=distinct)
    assert total == distinct == EVENTS


def test_an_application_sigterm_handler_is_left_alone(migrated: Path, tally: Tally) -> None:
    """The application's own handler wins; it exits normally and atexit flushes."""
    proc = start("sigterm-foreign", migrated, SM_FLUSH_INTERVAL="60")
    facts = wait_ready(proc)
    assert "foreign_handler" in facts["handler"]
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)
    tally.fault("sigterm_foreign_handler")
    assert proc.returncode == 3
    assert stored(migrated, "sigterm-foreign")[1] == EVENTS
    tally.events(sent=EVENTS, stored=stored(migrated, "sigterm-foreign")[1])


def test_without_the_handler_sigterm_loses_the_queue(migrated: Path) -> None:
    """Why the handler exists: Python's default SIGTERM action skips atexit."""
    proc = start("sigterm-off", migrated, SM_FLUSH_INTERVAL="60", SM_FLUSH_ON_SIGTERM="0")
    facts = wait_ready(proc)
    assert facts["handler"] == repr(signal.SIG_DFL)
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)
    assert proc.returncode == -signal.SIGTERM
    assert stored(migrated, "sigterm-off") == (0, 0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX only")
def test_a_forked_child_has_a_working_writer(migrated: Path, tally: Tally) -> None:
    """Another thread holds the runtime's, the hook's and the naming lock at the fork."""
    proc = start("fork", migrated, events="300")
    out, err = proc.communicate(timeout=60)
    facts: dict[str, Any] = {}
    for line in out.splitlines():
        facts.update(json.loads(line))
    tally.fault("fork_with_locks_held")
    assert proc.returncode == 0, err
    assert facts["child_status"] == 0, facts
    assert facts["flushed"] and facts["took"] < 4
    assert facts["snapshot"]["dropped"] == {}
    assert facts["snapshot"].get("live_errors", 0) == 0  # the parent's event loop is not used
    parent, child = stored(migrated, "parent"), stored(migrated, "child")
    tally.events(sent=600, stored=parent[1] + child[1])
    assert parent == (300, 300) and child == (300, 300)
    pids = rows(migrated, "SELECT DISTINCT sender, pid FROM signals_collector_event WHERE sender "
                          "IN ('parent', 'child') ORDER BY sender")  # fmt: skip
    assert pids == [("child", facts["child_pid"]), ("parent", facts["parent_pid"])]
    ((ids,),) = rows(
        migrated, "SELECT count(DISTINCT id) FROM signals_collector_event WHERE sender IN "
                  "('parent', 'child')",
    )  # fmt: skip
    assert ids == 600  # the child's ids never collide with the parent's


def test_a_project_that_has_not_migrated_runs_unharmed(tmp_path: Path, tally: Tally) -> None:
    db = tmp_path / "never-migrated.sqlite3"
    began = time.monotonic()
    proc = start("unmigrated", db, events="500")
    facts = wait_ready(proc)
    out, err = proc.communicate(timeout=30)
    took = time.monotonic() - began
    tally.fault("tables_never_migrated")
    assert proc.returncode == 0
    assert "Traceback" not in err
    assert facts["snapshot"]["alive"]
    assert took < 10  # no long wait at exit for a database that cannot take the events
    assert "dropped events" in err and "exit_unwritten" in err  # honest about what it dropped
    assert err.count("dropped events") == 1  # and said once
    tables = rows(db, "SELECT name FROM sqlite_master WHERE name LIKE 'signals_collector%'")
    assert tables == []


def test_migrate_from_an_empty_database_with_the_collector_on(tmp_path: Path, tally: Tally) -> None:
    db = tmp_path / "empty.sqlite3"
    result = run_manage(["migrate", "--noinput"], env=live_env(db), timeout=120)
    tally.fault("migrate_from_empty")
    assert "Traceback" not in result.stderr
    ((total, distinct),) = rows(db, "SELECT count(*), count(DISTINCT id) FROM " + EVENT_TABLE)
    assert total == distinct > 0
    signals = {s for (s,) in rows(db, "SELECT DISTINCT signal FROM " + EVENT_TABLE)}
    assert {MODELS + "pre_migrate", MODELS + "post_migrate"} <= signals
    # pre_migrate of the first app was sent before the collector's tables existed: held, stored.
    ((first,),) = rows(
        db, "SELECT min(timestamp) FROM signals_collector_event WHERE signal = ?",
        "django.db.models.signals.pre_migrate",
    )  # fmt: skip
    ((created,),) = rows(db, "SELECT min(applied) FROM django_migrations")
    assert first < created.replace("T", " ")
    health = rows(db, "SELECT events_written FROM signals_collector_collectorhealth")
    assert health and health[-1][0] >= total


def test_nul_characters_postgresql_refuses_cost_only_their_own_events(
    postgres_database: str, tmp_path: Path, tally: Tally
) -> None:
    env = {"DATABASE_URL": postgres_database}
    run_manage(["migrate", "--noinput"], env=live_env(tmp_path / "unused.sqlite3", **env))
    proc = start("nul", tmp_path / "unused.sqlite3", events="200", **env)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "writer thread died" not in err  # (the tracebacks in err are send_robust's own log)
    snapshot = json.loads(out.splitlines()[-1])["snapshot"]
    import psycopg

    with psycopg.connect(postgres_database) as conn:
        counts = dict(
            conn.execute(
                "SELECT sender, count(*) FROM signals_collector_event GROUP BY sender"
            ).fetchall()
        )
    tally.fault("nul_characters_postgresql", 60)
    assert counts.get("ordinary") == 200  # the rest of every batch was stored
    tally.events(sent=200, stored=counts.get("ordinary", 0))
    special = sum(counts.get(s, 0) for s in ("nul-argument", "nul\x00sender", "nul-exception"))
    rejected = snapshot["dropped"].get("db_rejected", 0)
    print(f"NUL events: {special} stored, {rejected} rejected by PostgreSQL and counted")
    assert special + rejected == 20 + 20 + 20  # stored, or dropped and counted: never silent
