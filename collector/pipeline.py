"""The writer thread's work: records -> event dicts -> processors -> sinks, in batches."""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from typing import Any

from django.utils.module_loading import import_string

from collector import events, hook, naming, runtime
from collector.conf import get_config
from collector.processors import Processor
from collector.sinks import Sink

logger = logging.getLogger("collector")


class _Pipeline:
    """Processors and sinks built from one version of the settings."""

    def __init__(self, config: dict[str, Any]) -> None:
        """Instantiate the configured processors and sinks."""
        self.config = config
        built: list[Processor] = [import_string(p)(config) for p in config["PROCESSORS"]]
        # Processors that are no-ops under these settings (no filter lists, no sample rates).
        self.processors = [p for p in built if getattr(p, "active", True) is not False]
        self.sinks: list[Sink] = [import_string(s)(config) for s in config["SINKS"]]
        runtime.configure(config)

    def close(self) -> None:
        """Close every sink."""
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


def current() -> _Pipeline:
    """Return the pipeline for the current settings, rebuilding it when they change."""
    global _current
    config = get_config()
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
    for key, slot in list(hook.unheard.items()):
        n = slot[1]
        if n:
            slot[1] -= n
            name = naming.signal_name(slot[0])
            taken[name] = taken.get(name, 0) + n
    return taken


def drain_once(queue: deque[tuple[Any, ...]]) -> bool:
    """Process one batch from the queue; return True if a full batch was taken (more may wait)."""
    from django.apps import apps

    if not apps.ready:
        return False
    pipe = current()
    size = int(pipe.config["BATCH_SIZE"])
    records: list[tuple[Any, ...]] = []
    while queue and len(records) < size:
        records.append(queue.popleft())
    batch = []
    now_wall, now, pid = time.time(), time.perf_counter(), os.getpid()
    for record in records:
        try:
            event = pipe.process(events.build(record, now_wall, now, pid))
        except Exception as exc:  # noqa: BLE001 - a record that cannot be built is counted
            runtime.count_drop("build_error")
            runtime.count("build_errors", error=repr(exc))
            continue
        if event is not None:
            batch.append(event)
    unheard = _take_unheard()
    if batch or unheard or pipe.holding():
        pipe.deliver(batch, unheard)
    return len(records) >= size


def close_connections() -> None:
    """Close the writer thread's database connections."""
    from django.db import connections

    try:
        connections.close_all()
    except Exception:  # noqa: BLE001
        pass
