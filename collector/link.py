"""The application's end of WRITER="process": start the writer process and ship records to it.

With ``SIGNAL_MONITOR["WRITER"] = "process"`` the application's writer thread does not build,
redact or store events. Each round it gives every record its signal name and sender label
(the objects stay here), marshals the batch and writes it to a socket; the writer process
numbers the records left unnumbered here (from ``hook.WRITER_SEQ_BASE`` up, above the
application's own numbers). The writer process (``collector.writer_process``), started once
per application process with this process's settings, runs the usual pipeline on them, so the
work that costs ~40 us an event runs in another interpreter, on another core, and never holds
this process's GIL.

The link keeps what an in-process writer gives: ``flush()`` is a round trip answered once the
writer process stored everything; drops and counters of both processes land in one health row
(this process's pid); live batches for an in-memory channel layer come back over the socket to
this process's dashboard hub. The writer process exits when this process closes the socket (at
exit, or when it dies); if it cannot start or dies, the writer thread does the work in-process
again (``pipeline``), and the events the dead process held are counted as dropped.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import pickle
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any

from collector import hook, naming, runtime

logger = logging.getLogger("collector")

# Set in the writer process's environment: its collector neither installs the hook nor starts
# another writer process.
ENV_FLAG = "SIGNAL_MONITOR_WRITER_PROCESS"
IN_WRITER_PROCESS = os.environ.get(ENV_FLAG) == "1"
START_TIMEOUT = 60.0  # seconds the writer process may take to set Django up
HEADER = struct.Struct("!IB")  # payload length, frame kind
# Frame kinds. To the writer process: the settings (once), a batch, a flush request, stop.
# From it: ready, a batch done (events taken), a flush done (its token), a live-feed message.
# MARSHALLED_BATCH is a batch written with marshal (send_batch); recv_frame returns it as BATCH.
SETTINGS, BATCH, FLUSH, STOP, READY, DONE, FLUSHED, LIVE, MARSHALLED_BATCH = range(9)


def send_frame(sock: socket.socket, kind: int, payload: Any) -> None:
    """Write one frame: a header and the pickled payload (blocks while the peer is behind)."""
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(HEADER.pack(len(data), kind) + data)


def send_batch(sock: socket.socket, payload: Any) -> None:
    """Write a BATCH frame, marshalled when it holds only plain values (twice as fast to write
    as a pickle; both ends run the same interpreter), else pickled."""
    try:
        data = marshal.dumps(payload)
    except ValueError:  # a Snapshot or another object marshal does not write
        send_frame(sock, BATCH, payload)
        return
    sock.sendall(HEADER.pack(len(data), MARSHALLED_BATCH) + data)


def recv_frame(sock: socket.socket) -> tuple[int, Any] | None:
    """Read one frame; None when the peer closed the socket."""
    head = _recv_exact(sock, HEADER.size)
    if head is None:
        return None
    size, kind = HEADER.unpack(head)
    body = _recv_exact(sock, size)
    if body is None:
        return None
    if kind == MARSHALLED_BATCH:
        return BATCH, marshal.loads(body)
    return kind, pickle.loads(body)  # noqa: S301 - a private socketpair between our own processes


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    """Read exactly ``size`` bytes; None at end of stream."""
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            return None
        got += n
    return bytes(buf)


def portable(record: Any) -> Any:
    """Return the record as a list with its signal and sender as names (its number stays as it
    is: the writer process draws the missing ones); a list is completed in place."""
    if type(record) is not list:
        record = list(record)
    if type(record[1]) is not str:
        record[1] = naming.signal_name(record[1])
    sender = record[2]
    if type(sender) is not str:
        label = hook.sender_labels.get(sender) if isinstance(sender, type) else None
        record[2] = label if label is not None else naming.sender_label(sender)
    return record


def portable_all(records: list[Any]) -> list[Any]:
    """Make the records portable in place and return the list (complete records, with a named
    signal and sender, as the fast path's sealed tuples are, stay as they are)."""
    for index, record in enumerate(records):
        if type(record[1]) is not str or type(record[2]) is not str:
            records[index] = portable(record)
    return records


# Records this process shipped (or tried to) to any writer process so far. Each writer process
# numbers only records shipped to it, so one started now numbers from WRITER_SEQ_BASE plus this
# count: a writer process that replaces another (new settings) never draws a number the other
# drew.
_shipped_total = 0
_shipped_lock = threading.Lock()


def after_fork() -> None:
    """In a forked child (a token of its own, hook.reseed_after_fork): start the count again,
    with a lock no thread of the parent can be holding (runtime's fork handler calls this)."""
    global _shipped_total, _shipped_lock
    _shipped_total = 0
    _shipped_lock = threading.Lock()


# Settings the writer process cannot do without: if one does not pickle, the thread writes.
ESSENTIAL = ("DATABASES", "INSTALLED_APPS", "SIGNAL_MONITOR", "CHANNEL_LAYERS", "USE_TZ")


def picklable_settings() -> tuple[dict[str, Any], list[str]]:
    """Return this process's explicitly set settings that pickle (with overrides and the test
    database names), and the names of those that do not (Django's defaults stand in for them)."""
    from django.conf import settings

    values: dict[str, Any] = {}
    skipped: list[str] = []
    for name in dir(settings):
        if not name.isupper() or not settings.is_overridden(name):  # type: ignore[misc]
            continue
        value = getattr(settings, name)
        try:
            pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - callables, sockets, classes defined in a function...
            skipped.append(name)
        else:
            values[name] = value
    return values, skipped


def unusable_reason(alias: str) -> str:
    """Return why a writer process could not store this process's events ("" when it can)."""
    from django.db import connections

    name = os.path.basename(sys.executable or "")
    if not name.startswith(("python", "pypy")):  # uWSGI sets it to its own binary
        return f"sys.executable ({sys.executable!r}) is not a Python interpreter"

    try:
        connection = connections[alias]
    except Exception as exc:  # noqa: BLE001
        return f"database alias {alias!r}: {exc}"
    if connection.vendor == "sqlite" and connection.is_in_memory_db():  # type: ignore[attr-defined]
        return "the database is an in-memory SQLite database, which another process cannot open"
    return ""


class WriterLink:
    """This process's writer process and the socket to it."""

    def __init__(self, config: dict[str, Any]) -> None:
        """Start the writer process and wait until it is ready; ``failed`` says why it is not."""
        self.config = config
        self.failed = ""
        self.sock: socket.socket | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._cond = threading.Condition()
        self._asked = self._flushed = 0
        self._shipped = self._done = 0
        self._closed = False
        self.synced = True  # the last flush round trip was answered (runtime.flush's result)
        try:
            self._start()
        except Exception as exc:  # noqa: BLE001 - the in-process writer takes over
            self.failed = f"writer process did not start: {exc!r}"
            self._kill()
        if self.failed:
            self._kill()  # one that did not answer in time must not linger
            runtime.count("writer_process_errors", error=self.failed)
            logger.warning("signal monitor: %s; writing from this process instead", self.failed)

    @property
    def alive(self) -> bool:
        """Return True while the writer process is running and connected."""
        return self.sock is not None and not self.failed and not self._closed

    def _start(self) -> None:
        """Spawn ``python -m collector.writer_process`` on one end of a socket pair."""
        self.failed = unusable_reason(self.config["DATABASE_ALIAS"])
        if self.failed:
            return
        values, skipped = picklable_settings()
        missing = [name for name in skipped if name in ESSENTIAL]
        if missing:
            self.failed = f"settings {', '.join(missing)} cannot be sent to a writer process"
            return
        if skipped:
            logger.info("signal monitor: the writer process uses Django's defaults for %s",
                        ", ".join(skipped))  # fmt: skip
        ours, theirs = socket.socketpair()
        env = {
            **os.environ,
            ENV_FLAG: "1",
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if isinstance(p, str)),
        }
        env.pop("DJANGO_SETTINGS_MODULE", None)  # the settings come over the socket
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "collector.writer_process", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            theirs.close()
        with _shipped_lock:
            seq_base = _shipped_total  # numbered from WRITER_SEQ_BASE + this (hook.numbers)
        hello = {
            "settings": values,
            "skipped": skipped,
            "pid": os.getpid(),
            "token": hook._TOKEN,
            "seq_base": seq_base,
            "started_at": runtime.started_at,
        }
        ours.settimeout(START_TIMEOUT)
        try:
            send_frame(ours, SETTINGS, hello)
            frame = recv_frame(ours)
        except OSError:  # TimeoutError included: a child that never reads or answers
            frame = None
        ours.settimeout(None)
        if frame is None or frame[0] != READY:
            self.failed = f"writer process exited during start-up (code {self.process.poll()})"
            ours.close()
            return
        self.sock = ours
        threading.Thread(target=self._read, name="signal-monitor-link", daemon=True).start()

    def ship(self, records: list[Any], unheard: dict[str, int]) -> bool:
        """Send one batch; False when the writer process is gone (the caller keeps the records)."""
        sock = self.sock
        if sock is None or not self.alive:
            return False
        global _shipped_total
        with _shipped_lock:  # counted first: a writer process started later numbers above them
            _shipped_total += len(records)
        try:
            batch = portable_all(records)
            send_batch(sock, (batch, unheard, self._meta()))
        except OSError as exc:
            self._lost(f"writer process unreachable: {exc!r}")
            return False
        except Exception as exc:  # noqa: BLE001 - a record that will not pickle: the thread
            self._lost(f"batch could not be shipped: {exc!r}")  # builds it (and counts it)
            return False
        with self._cond:
            self._shipped += len(batch)
        return True

    def sync(self, timeout: float) -> bool:
        """Ask the writer process to store everything it holds; True once it answered."""
        sock = self.sock
        if sock is None or not self.alive:
            return False
        with self._cond:
            self._asked += 1
            token = self._asked
            self.synced = False
        try:
            send_frame(sock, FLUSH, (token, self._meta()))
        except OSError as exc:
            self._lost(f"writer process unreachable: {exc!r}")
            return False
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._flushed < token and self.alive:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            self.synced = self._flushed >= token
            return self.synced

    def close(self, timeout: float = 5.0) -> None:
        """Ask the writer process to finish (store, retry, report) and wait for it to exit."""
        if self._closed:
            return
        sock = self.sock
        if sock is not None and self.alive:
            with contextlib.suppress(OSError):
                send_frame(sock, STOP, self._meta())
        self._closed = True
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                # It could not store what it holds in time (a database away at exit): what it
                # took since its last answer is counted; a backlog it held is not known here.
                with self._cond:
                    held = self._shipped - self._done
                if held > 0:
                    runtime.count_drop("exit_unwritten", held)
                logger.warning("signal monitor: the writer process did not finish within %.1f s;"
                               " stopping it", timeout)  # fmt: skip
                self._kill()
        if sock is not None:
            sock.close()

    def forget(self) -> None:
        """In a forked child: close this process's copy of the parent's socket, nothing else
        (the parent's writer process must see its end close when the parent exits)."""
        self._closed = True
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.process = None

    def _meta(self) -> dict[str, Any]:
        """Return what the writer process needs besides records: this process's health figures
        and whether a dashboard hub here wants live batches back."""
        from collector import live

        return {"snapshot": runtime.snapshot(), "listening": live.listening()}

    def _read(self) -> None:
        """On the link thread: take answers and live batches until the socket closes."""
        hook.muted.set(True)
        from collector import live

        sock = self.sock
        assert sock is not None
        why = ""
        while True:
            try:
                frame = recv_frame(sock)
            except Exception as exc:  # noqa: BLE001 - OSError, or a frame that will not load
                why, frame = f": {exc!r}", None
            if frame is None:
                break
            kind, payload = frame
            if kind == LIVE:
                try:
                    live.publish(payload)
                except Exception as exc:  # noqa: BLE001 - counted like the in-process sink's
                    runtime.count("live_errors", error=f"live batch not delivered: {exc!r}")
                continue
            with self._cond:
                if kind == DONE:
                    self._done += payload
                elif kind == FLUSHED:
                    self._flushed = max(self._flushed, payload)
                self._cond.notify_all()
        if not self._closed:
            self._lost(f"writer process exited (code {self._exit_code()}){why}")

    def _lost(self, why: str) -> None:
        """The writer process died: count what it held as dropped; the writer thread takes over."""
        with self._cond:
            if self.failed:
                return
            self.failed = why
            held = self._shipped - self._done
            self._cond.notify_all()
        if held > 0:
            runtime.count_drop("writer_process_lost", held)
        runtime.count("writer_process_errors", error=why)
        logger.warning("signal monitor: %s; writing from this process instead", why)
        self._kill()

    def _exit_code(self) -> int | None:
        """Return the writer process's exit code, waiting a moment for it."""
        if self.process is None:
            return None
        try:
            return self.process.wait(1.0)
        except subprocess.TimeoutExpired:
            return None

    def _kill(self) -> None:
        """Stop the writer process for good."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5.0)
