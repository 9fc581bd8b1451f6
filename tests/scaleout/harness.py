"""The scale-out harness: sender processes, HTTP load, sessions, and the shared store read directly.

Every process here runs the project's settings with the scale-out URLconf
(``tests.scaleout.settings``) and reads DATABASE_URL / REDIS_URL from its environment, as a
deployment does. The tests read the shared database directly (psycopg or sqlite3), never through
the test process's own Django connection. Also used by ``python -m tests.scaleout.ingest``.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, LiveServer, live_env, stop_process, tail
from tests.scaleout.wsclient import FeedClient

SETTINGS = "tests.scaleout.settings"
EVENT = "signals_collector_event"
CALL = "signals_collector_receivercall"
STAT = "signals_collector_receiverstat"
COUNT = "signals_collector_signalcount"
PING = "tests.scaleout.signals.ping"
RISKY = "tests.scaleout.signals.risky"
SEQ_MASK = 0xFFFFFFFF


def scaleout_env(db_path: Path, **env: str) -> dict[str, str]:
    """Return a subprocess environment: the scale-out settings plus ``env`` overrides."""
    return live_env(db_path, DJANGO_SETTINGS_MODULE=SETTINGS, **env)


# --- the shared store, read directly ----------------------------------------------------------


@dataclass
class Store:
    """Read-only SQL on the database the processes share (a postgres:// URL or a SQLite path)."""

    target: str

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Return the rows of one query (``%s`` placeholders on both engines)."""
        if self.target.startswith("postgres"):
            import psycopg

            with psycopg.connect(self.target, connect_timeout=5) as conn:
                return list(conn.execute(sql, params).fetchall())  # type: ignore[arg-type]
        with sqlite3.connect(self.target, timeout=20) as conn:
            return list(conn.execute(sql.replace("%s", "?"), params).fetchall())

    def value(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """Return the first column of the first row."""
        return self.rows(sql, params)[0][0]

    def sequences(self, host: str, pid: int) -> list[int]:
        """Return the per-process sequence numbers (id & 0xFFFFFFFF) stored for host/pid."""
        rows = self.rows(f"SELECT id FROM {EVENT} WHERE host = %s AND pid = %s", (host, pid))
        return sorted(event_id & SEQ_MASK for (event_id,) in rows)

    def count(self, host: str, pid: int, extra: str = "", params: tuple[Any, ...] = ()) -> int:
        """Return how many events host/pid stored (with an optional extra condition)."""
        where = f"host = %s AND pid = %s {extra}"
        return int(self.value(f"SELECT COUNT(*) FROM {EVENT} WHERE {where}", (host, pid, *params)))

    def settled(self, host: str, pid: int, *, quiet: float = 1.0, timeout: float = 20.0) -> int:
        """Wait until host/pid's stored count stops changing for ``quiet`` seconds; return it."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now = self.count(host, pid)
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
            time.sleep(0.2)
        return last


def assert_complete(store: Store, host: str, pid: int, at_least: int) -> list[int]:
    """Assert host/pid stored sequence numbers 1..n with no gap or repeat, n >= at_least."""
    seqs = store.sequences(host, pid)
    assert len(seqs) >= at_least, f"{host}:{pid} stored {len(seqs)} of {at_least} events"
    assert seqs == list(range(1, len(seqs) + 1)), f"{host}:{pid}: gaps or repeats in its events"
    return seqs


# --- sender processes ------------------------------------------------------------------------


@dataclass
class Sender:
    """A ``python -m tests.scaleout.sender --wait ...`` process: ready, go, report."""

    args: tuple[str, ...]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[str] | None = field(default=None, repr=False)
    ready: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    def start(self) -> Sender:
        """Start the process and wait for its ready line (host, pid, token)."""
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.scaleout.sender", "--wait", *self.args],
            cwd=ROOT, env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=log, text=True,
        )  # fmt: skip
        log.close()
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("{"):
            raise RuntimeError(f"sender did not start: {line!r}\n{tail(self.log_path)}")
        self.ready = json.loads(line)
        return self

    @property
    def host(self) -> str:
        """Return the host name its events carry."""
        return str(self.ready["host"])

    @property
    def pid(self) -> int:
        """Return its process id."""
        return int(self.ready["pid"])

    def go(self) -> None:
        """Let it start sending."""
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = 90.0) -> dict[str, Any]:
        """Wait for it to exit; return its report (it must exit 0)."""
        assert self.process is not None
        out, _ = self.process.communicate(timeout=timeout)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        assert self.process.returncode == 0, f"sender failed:\n{out}\n{tail(self.log_path)}"
        self.report = json.loads(lines[-1])
        return self.report

    def stop(self) -> None:
        """Stop it if it still runs."""
        if self.process is not None:
            stop_process(self.process)  # type: ignore[arg-type]


# --- HTTP load on a server ---------------------------------------------------------------------


class RequestDriver(threading.Thread):
    """GETs /scaleout-probe/<run>/<n>/ (a 404: request_started and request_finished) at a rate."""

    def __init__(self, server: LiveServer, *, run: str, rate: float, seconds: float) -> None:
        """Prepare ``rate`` requests a second for ``seconds``."""
        super().__init__(daemon=True, name=f"requests-{run}")
        self.server, self.run_name, self.rate, self.seconds = server, run, rate, seconds
        self.paths: list[str] = []
        self.errors: list[str] = []

    def run(self) -> None:
        """Send the requests; each answered one is counted (a 404 is the expected answer)."""
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < self.seconds:
            n += 1
            path = f"/scaleout-probe/{self.run_name}/{n}/"
            try:
                urllib.request.urlopen(self.server.url + path, timeout=10).close()
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    self.errors.append(f"{path}: {exc.code}")
            except OSError as exc:
                self.errors.append(f"{path}: {exc!r}")
                continue
            self.paths.append(path)
            pause = started + n / self.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)


# --- dashboard sessions ----------------------------------------------------------------------

SESSION_CODE = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
user, _ = get_user_model().objects.get_or_create(username="watcher", defaults={"is_staff": True})
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


def staff_session(server: LiveServer) -> str:
    """Return the session key of a staff user logged in on ``server``'s database."""
    return server.shell(SESSION_CODE).strip().splitlines()[-1]


# --- a dashboard and a web server on one store -------------------------------------------


@dataclass
class Cluster:
    """The dashboard and web servers, the senders' environment, the store, a staff session."""

    dashboard: LiveServer
    web: LiveServer
    env: dict[str, str]
    store: Store
    session: str
    clients: list[FeedClient] = field(default_factory=list)

    def watch(self, **filters: str) -> FeedClient:
        """Open a live-feed websocket on the dashboard (filtered) and wait for its first frame."""
        query = "&".join(f"{key}={value}" for key, value in filters.items())
        url = self.dashboard.ws_url("/ws/signals/" + (f"?{query}" if query else ""))
        client = FeedClient(url, self.session, self.dashboard.url).connect()
        self.clients.append(client)
        assert client.wait_for(lambda: "feed" in client.kinds(), timeout=10), client.kinds()
        return client

    @staticmethod
    def origin(server: LiveServer) -> tuple[str, int]:
        """Return a server's (host, pid), as its events carry them."""
        from collector.events import HOST

        assert server.process is not None
        return HOST, server.process.pid
