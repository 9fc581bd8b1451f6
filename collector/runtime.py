"""The bounded queue between the hook and the writer thread, and the thread's life cycle.

The hook only appends tuples to a deque (no lock, no wait). A daemon writer thread wakes a few
times a second, turns records into event dicts, runs the processors and hands batches to the
sinks. It is restarted (with a growing pause) if it dies, re-created in a forked child, and drained
at exit and on SIGTERM. Drops are counted per reason without a lock: each reason has its own
``itertools.count``, whose ``next()`` is atomic.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import signal
import threading
import time
from collections import Counter, deque
from typing import Any

from collector import hook

logger = logging.getLogger("collector")

DROP_LOG_INTERVAL = 10.0  # seconds between two "dropped events" log lines
RESTART_PAUSE_MAX = 2.0  # longest pause before a writer that keeps dying is started again
# An idle writer (no record for IDLE_AFTER rounds, nothing gathered or held) waits up to
# IDLE_WAIT seconds instead of FLUSH_INTERVAL; the hook rings it awake with the first record it
# queues. Each wake costs CPU (~0.3 ms here), and an application at rest should cost nothing.
IDLE_AFTER = 10
IDLE_WAIT = 1.0

_queue: deque[tuple[Any, ...]] = deque()
_drops: dict[str, itertools.count[int]] = {}
_counters: Counter[str] = Counter()
_alive = False
_start_lock = threading.RLock()
_idle = threading.Condition()
_wake = threading.Event()
_stopping = False
_busy = False
# True while the writer waits for the doorbell (``_State.ring``), idle.
_sleeping = False
_last_drop_log = 0.0
_drop_log_lock = threading.Lock()
_last_error = ""
_failures_in_a_row = 0
_final_requested = False
_final_done = threading.Event()
_shutting_down = False
_sigterm_installed = False
# Flushes waiting now: while any is, each writer round stores what sinks have gathered.
_forcing = 0
_forcing_lock = threading.Lock()
# True once the interpreter is exiting (the writer's final round then retries every backlog).
exiting = False
started_at = time.time()
# The process whose events these are: this one, or in a writer process the application's pid,
# with that application's latest health figures (``remote``) merged into ``snapshot()``.
pid = os.getpid()
remote: dict[str, Any] | None = None


def count_drop(reason: str, n: int = 1) -> None:
    """Count events dropped for ``reason`` (exact, any thread, no lock); log at a bounded rate."""
    counter = _drops.get(reason)
    if counter is None:
        counter = _drops.setdefault(reason, itertools.count())
    for _ in range(n):
        next(counter)
    _log_drops()


def _log_drops() -> None:
    """Log the drop counts, at most once every DROP_LOG_INTERVAL seconds (never waits)."""
    global _last_drop_log
    now = time.monotonic()
    if now - _last_drop_log < DROP_LOG_INTERVAL or not _drop_log_lock.acquire(blocking=False):
        return
    try:
        if now - _last_drop_log >= DROP_LOG_INTERVAL:
            _last_drop_log = now
            logger.warning("signal monitor dropped events: %s", dropped())
    finally:
        _drop_log_lock.release()


def dropped() -> dict[str, int]:
    """Return the number of events dropped so far, per reason."""
    # repr(count) is "count(N)", N being the next value: read it without advancing the counter.
    return {reason: int(repr(c)[6:-1]) for reason, c in list(_drops.items())}


def count(name: str, n: int = 1, error: str = "") -> None:
    """Count an internal event (processor_errors, sink_errors, writer_restarts, written)."""
    global _last_error
    _counters[name] += n
    if error:
        _last_error = error


def snapshot() -> dict[str, Any]:
    """Return this process's health figures: queue length, drops by reason, counters."""
    mine = {
        "queue": len(_queue),
        "capacity": hook.capacity,
        "dropped": dropped(),
        "alive": _alive,
        "last_error": _last_error,
        "started_at": started_at,
        **_counters,
    }
    return mine if remote is None else _merged(remote, mine)


def _merged(app: dict[str, Any], writer: dict[str, Any]) -> dict[str, Any]:
    """Return the application's figures with its writer process's drops and counters added."""
    merged = {**app, "dropped": dict(app.get("dropped", {}))}
    for reason, n in writer["dropped"].items():
        merged["dropped"][reason] = merged["dropped"].get(reason, 0) + n
    for name, n in writer.items():
        if name not in ("queue", "capacity", "dropped", "alive", "last_error", "started_at"):
            merged[name] = merged.get(name, 0) + n
    merged["last_error"] = writer["last_error"] or app.get("last_error", "")
    return merged


def adopt(app_pid: int, app_started_at: float) -> None:
    """In a writer process: report as the application process that started it."""
    global pid, started_at
    pid, started_at = app_pid, app_started_at


def final_round_here() -> None:
    """In a writer process, at the end: store and retry what is held, count what is left as
    unwritten, report health; the exit handler then has nothing left to do."""
    global exiting, _shutting_down
    from collector import pipeline

    exiting = _shutting_down = True
    try:
        pipeline.tick(force=True)
        _retry_backlogs()
        left = backlog()
        if left:
            count_drop("exit_unwritten", left)
        from collector import health

        health.request_persist()
        health.maybe_persist()
    except Exception as exc:  # noqa: BLE001
        count("housekeeping_errors", error=f"exit: {exc!r}")


def configure(config: dict[str, Any]) -> None:
    """Apply queue-related settings."""
    from collector import capture

    hook.capacity = int(config["QUEUE_SIZE"])
    hook.record_unheard = bool(config["RECORD_UNHEARD"])
    capture.MAX_REPR = int(config["MAX_REPR"])
    capture.MAX_ITEMS = int(config["MAX_KWARGS"])
    capture.MAX_TRACEBACK = int(config["MAX_TRACEBACK"])
    capture.reset_plans()


class _State:
    """The view of the runtime the hook uses: is the writer alive, start it, count a drop."""

    @property
    def alive(self) -> bool:
        """Return True while the writer thread runs (or is stopping on purpose)."""
        return _alive or _stopping

    @staticmethod
    def start() -> None:
        """Start the writer thread."""
        _start()

    @staticmethod
    def drop(reason: str) -> None:
        """Count a dropped event."""
        count_drop(reason)

    @staticmethod
    def ring() -> None:
        """Wake the writer if it waits idle: a record was queued into an empty queue."""
        if _sleeping:
            _wake.set()


def attach() -> None:
    """Point the hook at this runtime's queue and state; flush on SIGTERM if asked to."""
    hook._queue = _queue
    hook.runtime_state = _State()
    install_sigterm_handler()


def _start() -> None:
    """Start the writer thread if it is not running (thread-safe, re-entrant)."""
    global _alive
    with _start_lock:
        if _alive or _stopping:
            return
        _alive = True
        thread = threading.Thread(target=_run, name="signal-monitor-writer", daemon=True)
        thread.start()


def _run() -> None:
    """The writer thread: drain, write, housekeeping; muted so nothing it does is recorded."""
    global _alive, _busy, _failures_in_a_row, _sleeping
    from collector import pipeline

    hook.muted.set(True)
    clean_exit = False
    if _failures_in_a_row:
        # A writer that keeps dying (e.g. a sink that cannot be imported) must not spin.
        time.sleep(min(RESTART_PAUSE_MAX, 0.05 * 2**_failures_in_a_row))
    idle = 0
    try:
        while True:
            interval = pipeline.flush_interval()
            if idle < IDLE_AFTER:
                _wake.wait(interval)
            else:
                _sleeping = True  # before looking at the queue: a record queued since rings
                if not _queue:
                    _wake.wait(max(interval, IDLE_WAIT))
                _sleeping = False
            _wake.clear()
            _busy = True
            try:
                idle = idle + 1 if not _queue and not _forcing and not backlog() else 0
                while pipeline.drain_once(_queue):
                    pass
                pipeline.tick(force=_forcing > 0 or exiting)
                _failures_in_a_row = 0
                if _final_requested and not _final_done.is_set():
                    _final_round()
                else:
                    _housekeeping()
            finally:
                _busy = False
                with _idle:
                    _idle.notify_all()
            if _stopping and not _queue:
                clean_exit = True
                return
    except BaseException as exc:  # noqa: BLE001 - counted, visible, and the thread restarts
        _failures_in_a_row += 1
        count("writer_restarts", error=f"writer died: {exc!r}")
        _health_due()
        if _failures_in_a_row == 1 or _failures_in_a_row % 100 == 0:
            logger.exception("signal monitor writer thread died; it will be restarted")
    finally:
        pipeline.close_connections()
        _alive = False
        if not clean_exit and not _stopping:
            _start()


def _housekeeping() -> None:
    """Persist health figures and prune old rows when they are due (never raises)."""
    from collector import health, retention

    for job in (health.maybe_persist, retention.maybe_prune):
        try:
            job()
        except Exception as exc:  # noqa: BLE001 - housekeeping must never stop the writer
            count("housekeeping_errors", error=f"{job.__module__}: {exc!r}")


def _final_round() -> None:
    """At exit: retry the sinks' backlogs, then report health if anything happened."""
    try:
        _retry_backlogs()
        from collector import pipeline

        pipeline.finish(max(0.5, _exit_timeout() / 2))  # a writer process does the same there
        if _counters or _drops:
            from collector import health

            health.request_persist()
            health.maybe_persist()
    except Exception as exc:  # noqa: BLE001
        count("housekeeping_errors", error=f"exit: {exc!r}")
    finally:
        _final_done.set()


def _health_due() -> None:
    """Ask for the health row to be written at the next opportunity (after a restart)."""
    try:
        from collector import health

        health.request_persist()
    except Exception:  # noqa: BLE001
        pass


def _sinks() -> list[Any]:
    """Return the sinks of the current pipeline (empty before the first batch)."""
    from collector import pipeline

    current = pipeline._current
    return list(current.sinks) if current is not None else []


def backlog() -> int:
    """Return the number of events sinks hold for a retry (a database that is away)."""
    return sum(int(getattr(sink, "pending", lambda: 0)()) for sink in _sinks())


def _retry_backlogs() -> None:
    """Give every sink that holds a backlog one immediate try (at exit, on the writer thread)."""
    for sink in _sinks():
        retry = getattr(sink, "retry_now", None)
        if callable(retry):
            try:
                retry()
            except Exception as exc:  # noqa: BLE001
                count("sink_errors", error=f"{type(sink).__name__}: {exc!r}")


def flush(timeout: float = 5.0) -> bool:
    """Wait until everything queued so far is processed and written; return True if it was.

    While a flush waits, every writer round also stores what sinks gathered (``Sink.tick``).
    """
    global _forcing
    with _forcing_lock:
        _forcing += 1
    try:
        return _flush(timeout)
    finally:
        with _forcing_lock:
            _forcing -= 1


def _flush(timeout: float) -> bool:
    """Wake the writer until the queue is empty and a whole round has run since (with a writer
    process: and it answered that round's flush)."""
    from collector import pipeline

    deadline = time.monotonic() + timeout
    if _queue and not _alive:
        _start()
    while time.monotonic() < deadline:
        _wake.set()
        with _idle:
            _idle.wait(0.05)
        if not _queue and not _busy:
            # One more round so a batch taken just before we looked is finished too.
            _wake.set()
            with _idle:
                _idle.wait(min(0.5, max(0.0, deadline - time.monotonic())))
            if not _queue and not _busy and pipeline.synced():
                return True
    return not _queue and pipeline.synced()


def shutdown() -> None:
    """Drain queue and backlogs within EXIT_TIMEOUT; count what is left as dropped.

    Runs at interpreter exit (atexit) and from the SIGTERM handler; only the first call works.
    """
    global _stopping, _final_requested, _shutting_down, exiting
    if _shutting_down:
        return
    _shutting_down = exiting = True  # sinks stop waiting between retries: this is their last chance
    timeout = _exit_timeout()
    deadline = time.monotonic() + timeout
    if _queue or _busy:
        flush(timeout)
    if _alive:
        # One last round on the writer thread: retry any backlog, report health.
        _final_requested = True
        _wake.set()
        _final_done.wait(max(0.0, deadline - time.monotonic()))
    left = len(_queue) + backlog()
    if left:
        count_drop("exit_unwritten", left)
    _stopping = True
    _wake.set()


def _exit_timeout() -> float:
    """Return EXIT_TIMEOUT, or 5 seconds when settings are gone."""
    from collector.conf import get_config

    try:
        return float(get_config()["EXIT_TIMEOUT"])
    except Exception:  # noqa: BLE001 - settings may be gone at exit
        return 5.0


def install_sigterm_handler() -> bool:
    """Flush on SIGTERM, if FLUSH_ON_SIGTERM and nobody else handles it; return True if installed.

    Python's default SIGTERM action kills the process without running ``atexit``, so the queue
    would be lost. Only the main thread may set handlers, and a handler someone else installed
    (daphne, gunicorn, uvicorn) is left alone: those servers exit normally and ``atexit`` runs.
    """
    global _sigterm_installed
    if _sigterm_installed or not hasattr(signal, "SIGTERM"):
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        from collector.conf import get_config

        if not get_config()["FLUSH_ON_SIGTERM"]:
            return False
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return False
        signal.signal(signal.SIGTERM, _on_sigterm)
    except Exception:  # noqa: BLE001 - settings not configured yet, or an exotic platform
        return False
    _sigterm_installed = True
    return True


def _on_sigterm(signum: int, frame: Any) -> None:
    """Flush within EXIT_TIMEOUT, then die of SIGTERM exactly as the default action would."""
    try:
        shutdown()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _after_fork_in_child() -> None:
    """Give a forked child its own empty queue, fresh locks and no inherited writer thread.

    Locks another thread held at the moment of the fork stay held forever in the child, so every
    lock the writer path takes is replaced, and the parent's pipeline is forgotten: its sinks'
    backlogs are the parent's to write (collector.live resets its own event loops).
    """
    global _alive, _start_lock, _idle, _wake, _busy, _stopping, _drop_log_lock, started_at
    global _final_requested, _final_done, _shutting_down, _failures_in_a_row, _last_error, exiting
    global _forcing, _forcing_lock, pid, remote, _sleeping
    pid, remote = os.getpid(), None
    _queue.clear()
    _drops.clear()
    _counters.clear()
    _alive = _busy = _stopping = _final_requested = _shutting_down = exiting = _sleeping = False
    _failures_in_a_row = 0
    _last_error = ""
    _start_lock = threading.RLock()
    _drop_log_lock = threading.Lock()
    _idle = threading.Condition()
    _wake = threading.Event()
    _final_done = threading.Event()
    _forcing, _forcing_lock = 0, threading.Lock()
    started_at = time.time()
    hook.reseed_after_fork()
    _forget_parent_state()


def _forget_parent_state() -> None:
    """Reset other modules' state that a forked child must not share with its parent."""
    from collector import link, naming, pipeline

    hook._lock = threading.Lock()  # install()/uninstall() mid-way in another thread
    naming._scan_lock = threading.Lock()  # the writer naming a signal at the moment of the fork
    inherited = pipeline._current
    if inherited is not None and inherited.link is not None:
        inherited.link.forget()
    link.after_fork()
    pipeline._current = None
    pipeline._build_lock = threading.Lock()
    try:
        from collector import health, retention

        health.after_fork()
        retention.after_fork()
    except Exception:  # noqa: BLE001
        pass


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(shutdown)
attach()
