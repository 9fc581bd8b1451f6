"""Relay live events to this server's feed consumers: one group member per process, and other
processes' stored events to the in-memory channel layer.

``Hub``: the consumers of one event loop do not join the events group themselves. One hub joins
it with a channel of its own, receives each batch once (one copy in the in-memory layer, one
message to deserialise from Redis, instead of one per viewer), turns the events into
``SharedEvent`` objects (so a row is built and rendered once for every viewer of the process)
and puts the batch in each consumer's inbox. It renews the membership, notices a failing layer
(``layer.down`` to every consumer, retried every ``retry`` seconds, then ``layer.up``) and counts
the events of batches the layer dropped (a full or expired channel): the collector's LiveSink
numbers its events, a gap is added to the batch's ``skipped`` and shown as "dropped upstream".

``Relay``: with the in-memory layer (the zero-setup default) only this process's own events
reach the live-feed group: ``make run``'s demo_traffic, a shell or any other process only writes
them to the shared database. So while at least one live-feed client is connected, one task per
server process reads what *other* processes stored in the last few seconds (newest first,
bounded, deduplicated by id, through the timestamp index) and sends it to the group as one
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
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer

from collector import live
from collector.live import GROUP
from dashboard import selectors
from dashboard.feed import SharedEvent

__all__ = [
    "Hub",
    "Relay",
    "acquire",
    "hub_stats",
    "relay_stats",
    "release",
    "subscribe",
    "this_process",
    "unsubscribe",
    "wanted",
]

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


# ---- the hub: one group member per event loop, fanning batches out to the consumers -----------


class Subscriber(Protocol):
    """What the hub needs of a consumer: a way to take a message without waiting."""

    def deliver(self, message: dict[str, Any]) -> None:
        """Take one message ("events.batch", "layer.down" or "layer.up"); never block."""


@dataclass
class HubStats:
    """What the hub of this process has done."""

    batches: int = 0
    events: int = 0
    lost: int = 0  # events of batches the channel layer dropped (sequence gaps)
    failures: int = 0
    members: int = 0


@dataclass
class _Sequence:
    """The next event number expected from each publishing LiveSink."""

    expected: dict[str, int] = field(default_factory=dict)

    def lost(self, message: dict[str, Any]) -> int:
        """Return how many events went missing before this batch (0 for unnumbered ones)."""
        origin, seq, count = message.get("origin"), message.get("seq"), message.get("count")
        if not isinstance(origin, str) or not isinstance(seq, int) or not isinstance(count, int):
            return 0
        expected = self.expected.get(origin)
        self.expected[origin] = seq + count
        if len(self.expected) > 1_000:  # many restarted publishers: forget the oldest
            self.expected.pop(next(iter(self.expected)))
        return seq - expected if expected is not None and seq > expected else 0


class Hub:
    """Joins the events group once for this event loop and hands every batch to its consumers."""

    def __init__(self, layer: Any, *, retry: float, rejoin: float) -> None:
        """Serve ``layer``; retry a failed layer every ``retry`` s, renew every ``rejoin`` s."""
        self.layer = layer
        self.retry = retry
        self.rejoin = rejoin
        self.subscribers: dict[int, Subscriber] = {}
        self.channel = ""
        self.down = False
        self.error = ""
        self.stats = HubStats()
        self.sequence = _Sequence()
        self._started: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Join the group (the first caller; the others wait for it), then start receiving."""
        if self._started is not None:
            await self._started.wait()
            return
        self._started = asyncio.Event()
        try:
            await self._join()
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._receive_loop()), loop.create_task(self._renew())]
            if wanted(self.layer):  # this process's batches come straight from its writer
                live.register_listener(loop, self.take)
        finally:
            self._started.set()

    async def stop(self) -> None:
        """Stop receiving and leave the group (best effort: membership expires anyway)."""
        live.unregister_listener(self.take)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.channel and not self.down:
            with contextlib.suppress(Exception):
                await self.layer.group_discard(GROUP, self.channel)

    def add(self, subscriber: Subscriber) -> None:
        """Start handing batches to ``subscriber``; tell it at once if the layer is down."""
        self.subscribers[id(subscriber)] = subscriber
        self.stats.members = len(self.subscribers)
        if self.down:
            subscriber.deliver({"type": "layer.down", "error": self.error})

    def remove(self, subscriber: Subscriber) -> None:
        """Stop handing batches to ``subscriber``."""
        self.subscribers.pop(id(subscriber), None)
        self.stats.members = len(self.subscribers)

    async def _join(self) -> bool:
        """(Re-)join the group; a failure marks the layer down. Return True when joined."""
        try:
            if not self.channel:
                self.channel = await self.layer.new_channel()
            await self.layer.group_add(GROUP, self.channel)
        except Exception as exc:  # the layer (Redis) is unreachable
            self._went_down(exc)
            return False
        if self.down:
            self.down = False
            logger.info("live feed: channel layer reachable again")
            self._broadcast({"type": "layer.up"})
        return True

    def _went_down(self, exc: BaseException) -> None:
        """Record a layer failure and tell every consumer (once per outage)."""
        self.stats.failures += 1
        self.error = f"{type(exc).__name__}: {exc}"[:200]
        if not self.down:
            self.down = True
            logger.warning("live feed: channel layer unreachable: %s", self.error)
            self._broadcast({"type": "layer.down", "error": self.error})

    async def _receive_loop(self) -> None:
        """Receive batches and fan them out; while the layer is down, retry joining."""
        while True:
            if self.down:
                await asyncio.sleep(self.retry)
                await self._join()
                continue
            try:
                message = await self.layer.receive(self.channel)
            except Exception as exc:
                self._went_down(exc)
                continue
            self.take(message)

    async def _renew(self) -> None:
        """Re-join every ``rejoin`` seconds: group membership expires (a day in channels)."""
        while True:
            await asyncio.sleep(self.rejoin)
            if not self.down:
                await self._join()

    def take(self, message: dict[str, Any]) -> None:
        """Hand out one message from the layer or from this process's writer; never raises."""
        try:
            self.dispatch(message)
        except Exception:  # a malformed message must not stop the feed
            logger.exception("live feed: could not hand out a batch")

    def dispatch(self, message: dict[str, Any]) -> None:
        """Share one batch with every consumer: events become ``SharedEvent``, gaps are counted."""
        if message.get("type") != "events.batch":
            return
        events = message.get("events")
        items = events if isinstance(events, list) else []
        shared = [SharedEvent(event) for event in items if isinstance(event, dict)]
        lost = self.sequence.lost(message)
        upstream = message.get("skipped")
        skipped = (upstream if isinstance(upstream, int) and upstream > 0 else 0) + lost
        self.stats.batches += 1
        self.stats.events += len(shared)
        self.stats.lost += lost
        self._broadcast({"type": "events.batch", "events": shared, "skipped": skipped})

    def _broadcast(self, message: dict[str, Any]) -> None:
        """Hand one message to every consumer (the same object: consumers never change it)."""
        for subscriber in list(self.subscribers.values()):
            subscriber.deliver(message)


_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}
_last_hub_stats = HubStats()


async def subscribe(subscriber: Subscriber, layer: Any, *, retry: float, rejoin: float) -> Hub:
    """Add a consumer to this loop's hub for ``layer`` (started, and joined if it can be)."""
    loop = asyncio.get_running_loop()
    for old in [other for other in _hubs if other.is_closed()]:
        del _hubs[old]
    hub = _hubs.get(loop)
    if hub is None or hub.layer is not layer:
        hub = _hubs[loop] = Hub(layer, retry=retry, rejoin=rejoin)
    hub.add(subscriber)
    await hub.start()
    return hub


async def unsubscribe(subscriber: Subscriber) -> None:
    """Remove a consumer; the hub of its loop stops with the last one."""
    global _last_hub_stats
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        return
    hub.remove(subscriber)
    if hub.subscribers:
        return
    del _hubs[loop]
    _last_hub_stats = hub.stats
    await hub.stop()


def hub_stats() -> dict[str, Any]:
    """Return the figures of this process's hub (or of the last one)."""
    for hub in _hubs.values():
        return asdict(hub.stats)
    return asdict(_last_hub_stats)
