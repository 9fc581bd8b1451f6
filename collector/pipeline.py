"""The writer thread's work: records -> event dicts -> processors -> sinks, in batches.

With WRITER="process" the thread ships the records to a writer process instead
(``collector.link``), which runs the same steps (``process_records``); if that process cannot
start or dies, the thread does them here again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from typing import Any

from django.utils.module_loading import import_string

from collector import events, hook, link, naming, runtime
from collector.conf import get_config
from collector.processors import Processor
from collector.sinks import Sink

logger = logging.getLogger("collector")


class _Pipeline:
    """Processors and sinks built from one version of the settings."""

    def __init__(self, config: dict[str, Any]) -> None:
        """Start the writer process, or instantiate the configured processors and sinks."""
        self.config = config
        runtime.configure(config)
        self.processors: list[Processor] = []
        self.sinks: list[Sink] = []
        self.link: link.WriterLink | None = None
        if config["WRITER"] == "process" and not link.IN_WRITER_PROCESS:
            self.link = link.WriterLink(config)
            if self.link.alive:
                return
        self.take_over()

    def take_over(self) -> None:
        """Build the processors and sinks here (no writer process, or it died)."""
        self.link = None
        built: list[Processor] = [import_string(p)(self.config) for p in self.config["PROCESSORS"]]
        # Processors that are no-ops under these settings (no filter lists, no sample rates).
        self.processors = [p for p in built if getattr(p, "active", True) is not False]
        self.sinks = [import_string(s)(self.config) for s in self.config["SINKS"]]

    def close(self, timeout: float = 5.0) -> None:
        """Stop the writer process (after it stored what it holds) and close every sink."""
        if self.link is not None:
            self.link.close(timeout)
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:  # noqa: BLE001
                logger.exception("signal monitor sink failed to close")

    def process(self, event: events.EventDict) -> events.EventDict | None:
        """Run the processors; one that raises is counted and skipped."""
        current: events.EventDict | None = event
        for processor in self.processors:
            try:
                current = processor.process(current)  # type: ignore[arg-type]
            except Exception as exc:
                runtime.count("processor_errors", error=f"{type(processor).__name__}: {exc!r}")
            if current is None:
                return None
        return current

    def holding(self) -> bool:
        """Return True if a sink holds a backlog it still has to write."""
        return any(getattr(sink, "backlog", None) for sink in self.sinks)

    def tick(self, force: bool) -> None:
        """Let every sink store what it gathered (when due, or now if ``force``)."""
        if self.link is not None:
            if force and not self.link.sync(SYNC_TIMEOUT) and not self.link.alive:
                self.take_over()
            return
        for sink in self.sinks:
            tick = getattr(sink, "tick", None)  # sinks written before Sink.tick may lack it
            if tick is None:
                continue
            try:
                tick(force)
            except Exception as exc:
                runtime.count("sink_errors", error=f"{type(sink).__name__}: {exc!r}")

    def deliver(self, batch: list[events.EventDict], unheard: dict[str, int]) -> None:
        """Hand the batch to every sink; one that raises is counted and the others still run."""
        for sink in self.sinks:
            try:
                sink.write(batch, unheard)
            except Exception as exc:
                runtime.count("sink_errors", error=f"{type(sink).__name__}: {exc!r}")


_current: _Pipeline | None = None
_build_lock = threading.Lock()
SYNC_TIMEOUT = 5.0  # longest wait for the writer process to answer one flush round


def current() -> _Pipeline:
    """Return the pipeline for the current settings, rebuilding it when they change.

    Rebuilding is locked: two threads seeing new settings at once must not both build one (two
    writer processes, one of them orphaned and still storing).
    """
    global _current
    config = get_config()
    pipe = _current
    if pipe is not None and pipe.config is config:
        return pipe
    with _build_lock:
        if _current is None or _current.config is not config:
            if _current is not None:
                _current.close()
            _current = _Pipeline(config)
        return _current


def tick(force: bool) -> None:
    """Run the current pipeline's sink ticks (nothing before the first batch was built)."""
    if _current is not None:
        _current.tick(force)


def flush_interval() -> float:
    """Return how long the writer sleeps between batches."""
    try:
        return float(get_config()["FLUSH_INTERVAL"])
    except Exception:  # noqa: BLE001 - settings not configured yet
        return 0.2


def _take_unheard() -> dict[str, int]:
    """Move the hook's unheard-send counters into a {signal name: count} dict."""
    taken: dict[str, int] = {}
    for slot in list(hook.unheard.values()):
        n = slot[1]
        if n:
            slot[1] -= n
            name = naming.signal_name(slot[0])
            taken[name] = taken.get(name, 0) + n
    return taken


def synced() -> bool:
    """Return False when the writer process did not answer the last flush round in time."""
    pipe = _current
    return pipe is None or pipe.link is None or pipe.link.synced


def finish(timeout: float) -> None:
    """At exit: let the writer process store, retry and report, and wait for it to exit."""
    if _current is not None and _current.link is not None:
        _current.link.close(timeout)


def drain_once(queue: deque[tuple[Any, ...]]) -> bool:
    """Process one batch from the queue; return True if a full batch was taken (more may wait)."""
    from django.apps import apps

    if not apps.ready:
        return False
    pipe = current()
    size = int(pipe.config["BATCH_SIZE"])
    records: list[Any] = []
    append, popleft = records.append, queue.popleft
    try:
        for _ in range(min(len(queue), size)):  # only this thread takes from the queue
            append(popleft())
    except IndexError:  # unless something cleared it meanwhile
        pass
    unheard = _take_unheard()
    if pipe.link is not None:
        if not (records or unheard) or pipe.link.ship(records, unheard):
            return len(records) >= size
        pipe.take_over()  # the writer process is gone: these records are processed here
    process_records(records, unheard, os.getpid())
    return len(records) >= size


def process_records(records: list[Any], unheard: dict[str, int], pid: int) -> None:
    """Build, process and deliver one batch of records sent by process ``pid``."""
    pipe = current()
    batch = []
    now_wall, now = time.time(), time.perf_counter()
    for record in records:
        try:
            event = pipe.process(events.build(record, now_wall, now, pid))
        except Exception as exc:  # noqa: BLE001 - a record that cannot be built is counted
            runtime.count_drop("build_error")
            runtime.count("build_errors", error=repr(exc))
            continue
        if event is not None:
            batch.append(event)
    if batch or unheard or pipe.holding():
        pipe.deliver(batch, unheard)


def close_connections() -> None:
    """Close the writer thread's database connections."""
    from django.db import connections

    with contextlib.suppress(Exception):
        connections.close_all()
