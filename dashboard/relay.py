"""Relay events stored by other processes to this server's in-memory channel layer.

With the in-memory layer (the zero-setup default) only this process's own events reach the
live-feed group: ``make run``'s demo_traffic, a shell or any other process only writes them to
the shared database. So while at least one live-feed client is connected, one task per server
process reads what *other* processes stored in the last few seconds (newest first, bounded,
deduplicated by id, through the timestamp index) and sends it to the group as one
``events.batch``, in the collector's LiveSink shape. With channels-redis every process publishes
its own events and the relay is never started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import asdict, dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer

from collector.live import GROUP
from dashboard import selectors

__all__ = ["Relay", "acquire", "relay_stats", "release", "this_process", "wanted"]

logger = logging.getLogger(__name__)


@dataclass
class RelayStats:
    """What the relay of this process has done (its cost is ``db_seconds`` over ``polls``)."""

    polls: int = 0
    scanned: int = 0
    relayed: int = 0
    skipped: int = 0
    db_seconds: float = 0.0
    running: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Return the figures with the mean database time per poll in milliseconds."""
        figures = asdict(self)
        figures["ms_per_poll"] = 1000 * self.db_seconds / self.polls if self.polls else 0.0
        return figures


class Relay:
    """Polls the store for other processes' new events and group-sends them."""

    interval = 0.5  # seconds between looks
    lookback = 3.0  # seconds: an event committed this long after it was sent is still relayed
    scan_limit = 2_000  # ids read per look, newest first
    max_batch = 200  # events sent per look; the rest are counted as skipped

    def __init__(self, layer: Any, *, host: str, pid: int) -> None:
        """Relay to ``layer``'s group everything not sent by ``host``/``pid`` (this process)."""
        self.layer = layer
        self.host = host
        self.pid = pid
        self.started = time.time()
        self.seen: dict[int, float] = {}  # relayed ids -> timestamp, within the look-back
        self.stats = RelayStats()

    async def run(self) -> None:
        """Look every ``interval`` seconds until cancelled; a failed look is logged and retried."""
        self.stats.running = True
        try:
            while True:
                await asyncio.sleep(self.interval)
                try:
                    await self.poll()
                except Exception:  # the store may be busy or not migrated yet
                    logger.exception("live relay poll failed")
        finally:
            self.stats.running = False

    async def poll(self) -> int:
        """Relay the events stored since the last look; return how many were sent."""
        events, skipped = await database_sync_to_async(self.fetch)()
        if events or skipped:
            message = {"type": "events.batch", "events": events, "skipped": skipped}
            await self.layer.group_send(GROUP, message)
        return len(events)

    def fetch(self) -> tuple[list[dict[str, Any]], int]:
        """Return (new events from other processes oldest first, how many more were skipped)."""
        begun = time.perf_counter()
        now = time.time()
        since = max(self.started, now - self.lookback)
        keys = selectors.other_process_event_keys(
            since=since, host=self.host, pid=self.pid, limit=self.scan_limit
        )
        fresh = [(event_id, ts) for event_id, ts in keys if event_id not in self.seen]
        self.seen.update(fresh)
        self.seen = {i: ts for i, ts in self.seen.items() if ts >= since}
        chosen = [event_id for event_id, _ts in fresh[: self.max_batch]]  # newest first
        events = selectors.live_event_dicts(ids=chosen) if chosen else []
        self.stats.polls += 1
        self.stats.scanned += len(keys)
        self.stats.relayed += len(events)
        self.stats.skipped += len(fresh) - len(chosen)
        self.stats.db_seconds += time.perf_counter() - begun
        return events, len(fresh) - len(chosen)


@dataclass
class _Running:
    """The relay task of one event loop and how many consumers use it."""

    relay: Relay
    task: asyncio.Task[None]
    users: int = 0


_running: dict[asyncio.AbstractEventLoop, _Running] = {}
_last_stats = RelayStats()


def this_process() -> tuple[str, int]:
    """Return (host, pid) as the collector stores them with each event of this process.

    The same value as ``collector.events.HOST``, computed here so the dashboard never imports
    the hook's modules.
    """
    return socket.gethostname()[:100], os.getpid()


def wanted(layer: Any) -> bool:
    """Return True when ``layer`` only carries this process's events (the in-memory layer)."""
    return isinstance(layer, InMemoryChannelLayer)


def acquire(layer: Any) -> bool:
    """Count one more live-feed client; start this loop's relay with the first. False: no relay."""
    if not wanted(layer):
        return False
    loop = asyncio.get_running_loop()
    running = _running.get(loop)
    if running is None or running.task.done():
        host, pid = this_process()
        relay = Relay(layer, host=host, pid=pid)
        running = _running[loop] = _Running(relay, loop.create_task(relay.run()))
    running.users += 1
    return True


async def release() -> None:
    """Count one client less; stop the relay when none is left."""
    global _last_stats
    loop = asyncio.get_running_loop()
    running = _running.get(loop)
    if running is None:
        return
    running.users -= 1
    if running.users > 0:
        return
    del _running[loop]
    _last_stats = running.relay.stats
    running.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running.task


def relay_stats() -> dict[str, Any]:
    """Return the figures of this process's running relay (or of the last one)."""
    for running in _running.values():
        return running.relay.stats.as_dict()
    return _last_stats.as_dict()
