"""WRITER="process": a real writer process stores a real application process's events.

Each test runs a small application script in its own interpreter (settings configured in code,
so the settings go over the socket), then reads the SQLite file it wrote.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.checks.registry import registry

ROOT = Path(__file__).resolve().parents[2]
IN_MEMORY = "channels.layers.InMemoryChannelLayer"

PRELUDE = """
import asyncio, json, os, signal, sys, threading, time
import sqlite3
import django
from django.conf import settings

if DB != ":memory:":  # WAL set once, before two connections (migrate's, the writer's) race to
    wal = sqlite3.connect(DB)  # switch a new file to it ("database is locked")
    wal.execute("PRAGMA journal_mode=WAL")
    wal.close()

settings.configure(
    SECRET_KEY="x", USE_TZ=True,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "collector"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DB,
                           "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 20}}},
    SIGNAL_MONITOR={"WRITER": "process", "SINKS": SINKS, "HEALTH_INTERVAL": 0.2},
    UNPICKLABLE_SETTING=lambda: 1,
    **EXTRA,
)
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
import collector
from collector import live, pipeline, runtime
from django.dispatch import Signal

custom = Signal()
inner = Signal()
def ok(sender, **kw):
    return kw.get("n")
def bad(sender, **kw):
    raise ValueError(f"boom {kw['n']}")
def outer(sender, **kw):
    inner.send(sender="inner-sender", n=-1)
async def later(sender, **kw):
    return "async"
custom.connect(ok, weak=False)
inner.connect(ok, weak=False)
"""


def run_app(
    tmp_path: Path, body: str, *, db: str = "", sinks: str = "", extra: str = "{}", head: str = ""
) -> dict[str, Any]:
    """Run head + PRELUDE + body as an application process; return the JSON it printed last."""
    database = db or str(tmp_path / "db.sqlite3")
    sinks = sinks or '["collector.sinks.DatabaseSink"]'
    return run_script(
        tmp_path, f"{head}\nDB = {database!r}\nSINKS = {sinks}\nEXTRA = {extra}\n" + PRELUDE + body
    )


def run_script(tmp_path: Path, text: str) -> dict[str, Any]:
    """Run ``text`` as a script in ``tmp_path``; return the JSON it printed last."""
    script = tmp_path / "app.py"
    script.write_text(text)
    env = {"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120,
        cwd=str(tmp_path), env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def rows(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Return the rows of a query on the script's database (``EV``: the event table)."""
    sql = re.sub(r"\bEV\b", "signals_collector_event", sql)
    with sqlite3.connect(tmp_path / "db.sqlite3") as connection:
        return connection.execute(sql).fetchall()


def gone(pid: int) -> bool:
    """Return True when no process ``pid`` exists (a zombie counts as existing)."""
    return not Path(f"/proc/{pid}").exists()


def test_events_are_stored_by_the_writer_process(tmp_path: Path) -> None:
    """Plain, failing, nested and async sends arrive whole, as the application's own events."""
    out = run_app(tmp_path, """
robust = Signal()
robust.connect(bad, weak=False)
wrapper = Signal()
wrapper.connect(outer, weak=False)
custom.connect(later, weak=False)
for i in range(200):
    assert custom.send(sender="s", n=i, password="hunter2")[0][1] == i
asyncio.run(custom.asend(sender="async-sender", n=7))
robust.send_robust(sender="r", n=1)
wrapper.send(sender="w")
assert collector.flush(30)
link = pipeline._current.link
assert link is not None and link.alive, link and link.failed
print(json.dumps({"pid": os.getpid(), "child": link.process.pid,
                  "writer_pid": link.process.pid != os.getpid()}))
""")
    pid = out["pid"]
    assert out["child"] != pid
    signals = dict(rows(tmp_path, "SELECT signal, count(*) FROM EV GROUP BY signal"))
    assert signals["__main__.custom"] == 201
    assert signals["__main__.robust"] == 1
    assert signals["__main__.inner"] == 1
    assert {p for (p,) in rows(tmp_path, "SELECT DISTINCT pid FROM EV")} == {pid}
    (kwargs,) = rows(tmp_path, "SELECT kwargs FROM EV WHERE sender='s' LIMIT 1")[0]
    assert "hunter2" not in kwargs and "password" in kwargs
    failures = rows(
        tmp_path, "SELECT exc_type, exc_message, traceback FROM signals_collector_receivercall"
    )
    assert [(f[0], f[1]) for f in failures] == [("builtins.ValueError", "boom 1")]
    assert "raise ValueError" in failures[0][2]
    (outer_id,) = rows(tmp_path, "SELECT id FROM EV WHERE signal='__main__.wrapper'")[0]
    (parent,) = rows(tmp_path, "SELECT parent_id FROM EV WHERE signal='__main__.inner'")[0]
    assert parent == outer_id
    (calls,) = rows(tmp_path, "SELECT calls_json FROM EV WHERE sender='async-sender'")[0]
    assert "later" in calls and "ok" in calls
    ids = rows(tmp_path, "SELECT count(*), count(DISTINCT id) FROM EV")[0]
    assert ids[0] == ids[1]
    health = rows(tmp_path, "SELECT pid, events_written FROM signals_collector_collectorhealth")
    assert [h[0] for h in health] == [pid]
    assert health[0][1] >= 203
    assert gone(out["child"]), "the writer process outlived its application"


def test_the_writer_process_numbers_what_the_application_left_unnumbered(
    tmp_path: Path,
) -> None:
    """Fast-path records travel unnumbered and the writer process numbers them from
    WRITER_SEQ_BASE up; numbers the application drew (a nested send's parent, the general path's
    sends) stay below, so every id is distinct and a child still finds its parent. A writer
    process that replaces another (new settings) numbers above everything shipped before it."""
    out = run_app(tmp_path, """
from collector import hook
from django.test.utils import override_settings
wrapper = Signal()
wrapper.connect(outer, weak=False)
custom.send(sender="first", n=0)
assert collector.flush(30)
for i in range(300):
    custom.send(sender="fast", n=i)
    wrapper.send(sender="w")
assert collector.flush(30)
first = pipeline._current.link.process.pid
override_settings(SIGNAL_MONITOR={**settings.SIGNAL_MONITOR, "FLUSH_INTERVAL": 0.05}).enable()
for i in range(300):
    custom.send(sender="again", n=i)
assert collector.flush(30)
second = pipeline._current.link.process.pid
print(json.dumps({"base": hook.WRITER_SEQ_BASE, "fast": hook._known.get(custom) is not None,
                  "replaced": first != second}))
""")
    assert out["fast"], "the custom signal never took the fast path"
    assert out["replaced"], "the new settings did not start another writer process"
    base = out["base"]
    numbers = [i & 0xFFFFFFFF for (i,) in rows(tmp_path, "SELECT id FROM EV WHERE sender='fast'")]
    assert len(numbers) == 300  # the first few, before the names were learned, took _dispatch
    assert sum(n >= base for n in numbers) >= 250
    again = [i & 0xFFFFFFFF for (i,) in rows(tmp_path, "SELECT id FROM EV WHERE sender='again'")]
    assert len(again) == 300 and min(again) > max(numbers)
    parents = rows(tmp_path, "SELECT id FROM EV WHERE signal='__main__.wrapper'")
    assert len(parents) == 300 and max(i & 0xFFFFFFFF for (i,) in parents) < base
    linked = rows(tmp_path, "SELECT count(*) FROM EV c JOIN EV p ON c.parent_id = p.id "
                            "WHERE c.signal='__main__.inner' AND p.signal='__main__.wrapper'")
    assert linked == [(300,)]
    ids = rows(tmp_path, "SELECT count(*), count(DISTINCT id) FROM EV")[0]
    assert ids[0] == ids[1] >= 1201


def test_sequence_numbers_wrap_within_their_half() -> None:
    """The application's numbers wrap below WRITER_SEQ_BASE, a writer process's above it."""
    from collector import hook

    base = hook.WRITER_SEQ_BASE
    app = hook.numbers(base - 2)
    assert [next(app) for _ in range(4)] == [base - 2, base - 1, 0, 1]
    writer = hook.numbers(base - 1, base)
    assert [next(writer) for _ in range(3)] == [2 * base - 1, base, base + 1]
    assert [next(hook.numbers(5, base)), next(hook.numbers(5))] == [base + 5, 5]


def test_install_is_refused_in_a_writer_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """A project calling collector.install() in its ready() runs it in the writer process too:
    nothing there may be recorded (its numbers would not be counted by the application)."""
    import collector
    from collector import hook, link

    was = hook.is_installed()
    monkeypatch.setattr(link, "IN_WRITER_PROCESS", True)
    hook.uninstall()
    try:
        assert collector.install() is False
        assert not hook.is_installed()
    finally:
        if was:
            hook.install()


def test_a_dead_writer_process_hands_over_to_the_thread(tmp_path: Path) -> None:
    """SIGKILL the writer process: nothing raises, later events are stored from the thread; a
    writer process started after it (new settings) stores the next ones, every id distinct."""
    out = run_app(tmp_path, """
for i in range(50):
    custom.send(sender="before", n=i)
assert collector.flush(30)
link = pipeline._current.link
child = link.process.pid
os.kill(child, signal.SIGKILL)
deadline = time.monotonic() + 10
while link.alive and time.monotonic() < deadline:
    time.sleep(0.05)
for i in range(50):
    assert custom.send(sender="after", n=i)[0][1] == i
assert collector.flush(30)
assert pipeline._current.link is None
snapshot = runtime.snapshot()
# New settings start another writer process, which numbers above what the dead one was sent.
from django.test.utils import override_settings
override_settings(SIGNAL_MONITOR={**settings.SIGNAL_MONITOR, "FLUSH_INTERVAL": 0.05}).enable()
for i in range(50):
    custom.send(sender="later", n=i)
assert collector.flush(30)
assert pipeline._current.link is not None and pipeline._current.link.alive
print(json.dumps({"child": child, "snapshot": snapshot}))
""")
    stored = dict(rows(tmp_path, "SELECT sender, count(*) FROM EV GROUP BY sender"))
    assert stored["before"] == 50
    assert stored["after"] == 50
    assert stored["later"] == 50
    ids = rows(tmp_path, "SELECT count(*), count(DISTINCT id) FROM EV")[0]
    assert ids[0] == ids[1]
    assert out["snapshot"]["writer_process_errors"] == 1
    assert "writer process exited" in out["snapshot"]["last_error"]
    assert gone(out["child"])


def test_an_in_memory_database_keeps_the_writer_thread(tmp_path: Path) -> None:
    """Another process cannot open an in-memory SQLite database: the thread does the work."""
    out = run_app(tmp_path, """
from collector.sinks import memory_events
custom.send(sender="mem", n=1)
assert collector.flush(30)
print(json.dumps({"link": pipeline._current.link is not None,
                  "events": [e["sender"] for e in memory_events()
                             if e["signal"] == "__main__.custom"],
                  "snapshot": runtime.snapshot()}))
""", db=":memory:", sinks='["collector.sinks.MemorySink"]')
    assert out["link"] is False
    assert out["events"] == ["mem"]
    assert out["snapshot"]["writer_process_errors"] == 1
    assert "in-memory SQLite" in out["snapshot"]["last_error"]


def test_an_embedding_server_binary_is_never_started(tmp_path: Path) -> None:
    """Under uWSGI sys.executable is uwsgi itself: nothing is spawned, the thread writes."""
    out = run_app(tmp_path, """
custom.send(sender="embedded", n=1)
assert collector.flush(30)
print(json.dumps({"link": pipeline._current.link is not None, "snapshot": runtime.snapshot()}))
""", head="import sys\nsys.executable = '/usr/local/bin/uwsgi'")
    assert out["link"] is False
    assert out["snapshot"]["writer_process_errors"] == 1
    assert rows(tmp_path, "SELECT count(*) FROM EV WHERE sender='embedded'")[0][0] == 1


def test_live_batches_come_back_to_the_applications_hub(tmp_path: Path) -> None:
    """With the in-memory channel layer, the writer process's live batches reach this process's
    listener (the dashboard's hub)."""
    out = run_app(tmp_path, """
got = []
arrived = threading.Event()
def deliver(message):
    got.append(message)
    if any(e["sender"] == "live" for e in message["events"]):
        arrived.set()
loop = asyncio.new_event_loop()
threading.Thread(target=loop.run_forever, daemon=True).start()
time.sleep(0.1)
live.register_listener(loop, deliver)
custom.send(sender="warm", n=0)
assert collector.flush(30)
custom.send(sender="live", n=1)
assert arrived.wait(10), got
message = next(m for m in got if any(e["sender"] == "live" for e in m["events"]))
print(json.dumps({"signal": message["events"][-1]["signal"], "origin": message["origin"]}))
""", sinks='["collector.sinks.DatabaseSink", "collector.sinks.LiveSink"]',
        extra=repr({"CHANNEL_LAYERS": {"default": {"BACKEND": IN_MEMORY}}}))
    assert out["signal"] == "__main__.custom"
    assert out["origin"]


def test_exit_stores_everything_and_stops_the_writer_process(tmp_path: Path) -> None:
    """Events sent just before exit (no flush) are stored by the time the application exits."""
    out = run_app(tmp_path, """
custom.send(sender="warm", n=0)
assert collector.flush(30)
child = pipeline._current.link.process.pid
for i in range(500):
    custom.send(sender="last", n=i)
print(json.dumps({"child": child}))
""")
    assert rows(tmp_path, "SELECT count(*) FROM EV WHERE sender='last'")[0][0] == 500
    deadline = time.monotonic() + 5
    while not gone(out["child"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(out["child"])


@pytest.mark.parametrize(
    ("monitor", "database", "expected"),
    [
        ({"WRITER": "processes"}, None, ["signals_collector.E005"]),
        ({"WRITER": "process"}, {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
         ["signals_collector.W004"]),
        ({"WRITER": "process", "SINKS": ["collector.sinks.MemorySink"]}, None, []),
        ({"WRITER": "thread"}, None, []),
        # W005: a writer process storing into the application's SQLite file (the default
        # alias, or another alias naming the same file) makes the application's writes wait.
        ({"WRITER": "process", "DATABASE_ALIAS": "default"}, None, ["signals_collector.W005"]),
        ({"WRITER": "process"}, "same file", ["signals_collector.W005"]),
        ({"WRITER": "process"}, "own file", []),
        ({"WRITER": "thread"}, "same file", []),
    ],
)  # fmt: skip
def test_writer_checks(
    monitor: dict[str, Any], database: Any, expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """E005: WRITER must be thread or process; W004: a process writer cannot do the job here;
    W005: a process writer would share the application's SQLite file."""
    from django.conf import settings

    from collector import checks
    from collector.checks import check_writer
    from collector.conf import DEFAULTS

    # The check reads the config through its module's get_config: patched, so the writer thread
    # of this test process never sees WRITER="process" (it would start a writer process).
    config = {**DEFAULTS, "SINKS": ["collector.sinks.DatabaseSink"], **monitor}
    if database in ("same file", "own file"):
        sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/app.sqlite3"}
        monkeypatch.setitem(settings.DATABASES, "app_file", sqlite)
        own = "./../tmp/./monitor-own.sqlite3"  # relative and indirect: compared by real path
        database = {**sqlite, "NAME": own if database == "own file" else "/tmp/../tmp/app.sqlite3"}
    if database is not None:
        monkeypatch.setitem(settings.DATABASES, "writer_check", database)
        config["DATABASE_ALIAS"] = "writer_check"
    monkeypatch.setattr(checks, "get_config", lambda: config)
    assert [m.id for m in check_writer()] == expected
    assert check_writer in registry.get_checks()


def test_a_forked_child_gets_its_own_writer_process(tmp_path: Path) -> None:
    """A forking server's worker (fork after the parent started its writer process) stores its
    events through a writer process of its own, as itself; the parent's keeps working."""
    out = run_app(tmp_path, """
import warnings
warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads running, as servers do
custom.send(sender="parent-before", n=0)
assert collector.flush(30)
parent_writer = pipeline._current.link.process.pid
pid = os.fork()
if pid == 0:
    custom.send(sender="child", n=1)
    ok = collector.flush(30)
    link = pipeline._current.link
    mine = link.process.pid if link is not None and link.alive else None
    with open("child.json", "w") as f:
        json.dump({"ok": ok, "writer": mine, "pid": os.getpid()}, f)
    sys.exit(0)
os.waitpid(pid, 0)
custom.send(sender="parent-after", n=2)
assert collector.flush(30)
assert pipeline._current.link.process.pid == parent_writer
child = json.load(open("child.json"))
print(json.dumps({"parent": os.getpid(), "parent_writer": parent_writer, **child}))
""")
    assert out["ok"] is True
    assert out["writer"] not in (None, out["parent_writer"])
    stored = dict(rows(tmp_path, "SELECT sender, pid FROM EV WHERE signal = '__main__.custom'"))
    parent = out["parent"]
    assert stored == {"parent-before": parent, "parent-after": parent, "child": out["pid"]}


def test_answers_for_a_busy_stream_are_few_and_a_flush_counts_them_all(tmp_path: Path) -> None:
    """Each DONE answer wakes a thread of the application, so batches streamed without a pause
    are answered about twice a second, not each; a flush still answers for every one first."""
    out = run_app(tmp_path, """
from collector import link as link_module
answers = []
real_read = link_module.recv_frame
def counting(sock):
    frame = real_read(sock)
    if frame is not None and frame[0] == link_module.DONE:
        answers.append(frame[1])
    return frame
link_module.recv_frame = counting
collector.flush(30)  # the writer process runs; the link thread reads through `counting`
answers.clear()
link = pipeline._current.link
with link._cond:
    done_before = link._done
started = time.monotonic()
while time.monotonic() - started < 2.0:
    custom.send(sender="s", n=1)
    time.sleep(0.001)
assert collector.flush(30)
with link._cond:
    done, shipped = link._done, link._shipped
print(json.dumps({"answers": len(answers), "done": done, "shipped": shipped,
                  "answered": sum(answers), "done_before": done_before}))
""")
    assert out["done"] >= out["shipped"], "a flush answers for everything shipped before it"
    assert out["answered"] == out["done"] - out["done_before"] > 1000
    assert 2 <= out["answers"] <= 8, out  # ~20 batches in 2 s (FLUSH_INTERVAL 0.1)


def test_a_batch_of_plain_values_is_marshalled_and_one_with_a_snapshot_pickled() -> None:
    """Both arrive as the BATCH they were, types kept (the writer process reads either)."""
    import socket

    from collector import link
    from collector.capture import Snapshot

    ours, theirs = socket.socketpair()
    try:
        plain = ([[1, "sig", "sender", "send", "", None, (("a",), 1), None, ("r",), 1.5, 2.5]],
                 {"unheard": 2}, {"snapshot": {"queue": 0}, "listening": False})
        with_snapshot = ([[2, "sig", "s", "send", "", None, {"i": Snapshot(model="m", pk=1)}]],
                         {}, {"snapshot": {}, "listening": True})
        for payload in (plain, with_snapshot):
            link.send_batch(ours, payload)
            kind, got = link.recv_frame(theirs)
            assert kind == link.BATCH and got == payload
        assert type(got[0][0][6]["i"]) is Snapshot
        link.send_batch(ours, plain)
        head = theirs.recv(link.HEADER.size, socket.MSG_PEEK)
        assert link.HEADER.unpack(head)[1] == link.MARSHALLED_BATCH
    finally:
        ours.close()
        theirs.close()


def test_the_writer_process_checkpoints_the_wal_after_each_store(tmp_path: Path) -> None:
    """The monitor's rows are copied from the WAL into the database file by the writer process,
    so the application's own commits do not pay for that checkpoint: the database file alone
    (without its -wal) holds every stored event while the application still runs."""
    out = run_app(tmp_path, """
import shutil
for i in range(300):
    custom.send(sender="s", n=i)
assert collector.flush(30)
shutil.copyfile(DB, DB + ".copy")  # the main file only: what a checkpoint wrote there
copy = sqlite3.connect(DB + ".copy")
sql = "SELECT count(*) FROM signals_collector_event WHERE sender = 's'"
stored = copy.execute(sql).fetchone()[0]
print(json.dumps({"in_file": stored}))
""")
    assert out["in_file"] == 300



OWN_FILE_APP = """
import json, shutil, sqlite3
import django
from django.conf import settings

def sqlite(path):
    wal = sqlite3.connect(path)  # WAL set once, before two connections race to switch it
    wal.execute("PRAGMA journal_mode=WAL")
    wal.close()
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": path,
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 20}}

settings.configure(
    SECRET_KEY="x", USE_TZ=True,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "collector"],
    DATABASES={"default": sqlite("db.sqlite3"), "monitor": sqlite("monitor.sqlite3")},
    DATABASE_ROUTERS=["collector.routers.MonitorRouter"],
    SIGNAL_MONITOR={"WRITER": "process", "SINKS": ["collector.sinks.DatabaseSink"],
                    "DATABASE_ALIAS": "monitor"},
)
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("migrate", "signals_collector", database="monitor", verbosity=0)
sqlite3.connect("monitor.sqlite3").execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the schema
import collector
from collector import pipeline
from collector.storage import shares_sqlite_file
from django.dispatch import Signal

custom = Signal()
custom.connect(lambda sender, **kw: kw["n"], weak=False)
for i in range(300):
    custom.send(sender="s", n=i)
assert collector.flush(30)
shutil.copyfile("monitor.sqlite3", "monitor.sqlite3.copy")  # the main file, without its WAL
sql = "SELECT count(*) FROM signals_collector_event WHERE sender = 's'"
tables = "SELECT count(*) FROM sqlite_master WHERE name LIKE 'signals_collector%'"
print(json.dumps({
    "process": pipeline._current.link is not None and pipeline._current.link.alive,
    "shared": [shares_sqlite_file("monitor"), shares_sqlite_file("default")],
    "in_file": sqlite3.connect("monitor.sqlite3.copy").execute(sql).fetchone()[0],
    "stored": sqlite3.connect("monitor.sqlite3").execute(sql).fetchone()[0],
    "tables_in_default": sqlite3.connect("db.sqlite3").execute(tables).fetchone()[0],
}))
"""


def test_in_a_file_of_its_own_the_writer_leaves_checkpoints_to_sqlite(tmp_path: Path) -> None:
    """With the monitor in a SQLite file of its own (MonitorRouter), only the writer commits
    there: it does not checkpoint after each store (only every CHECKPOINT_EVENTS events, and
    SQLite itself every 1,000 pages), so 300 events are stored, read through the WAL, while the
    database file alone does not hold them yet; the application's file has none of its tables."""
    out = run_script(tmp_path, OWN_FILE_APP)
    assert out == {"process": True, "shared": [False, True], "in_file": 0, "stored": 300,
                   "tables_in_default": 0}


def test_a_file_of_its_own_is_checkpointed_every_checkpoint_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shared file after every store; a file of the monitor's own once CHECKPOINT_EVENTS events
    were stored since the last checkpoint (at full speed that is every store)."""
    from django.conf import settings

    from collector import storage

    monkeypatch.setitem(settings.DATABASES, "own_ckpt", {
        "ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/own-ckpt.sqlite3"})  # fmt: skip
    monkeypatch.setattr(storage, "_since_checkpoint", {})
    assert all(storage._checkpoint_due("default", 1) for _ in range(3))
    step = storage.CHECKPOINT_EVENTS // 4
    assert [storage._checkpoint_due("own_ckpt", step) for _ in range(8)] == [
        False, False, False, True, False, False, False, True]  # fmt: skip
    assert storage._checkpoint_due("own_ckpt", storage.CHECKPOINT_EVENTS)
