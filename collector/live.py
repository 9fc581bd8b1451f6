"""Publish event batches to the channel layer group the dashboard's consumers listen on.

The in-memory layer's queues belong to the server's event loop, so batches are handed to that
loop (registered by the consumer) instead of ``async_to_sync`` from the writer thread, which can
stall delivery. When the dashboard's hub listens in this process (``register_listener``), a
batch goes straight to it on that loop: the in-memory layer would deep-copy every message for
nothing (the hub never changes it) and the writer would wait for the copy. Other layers
(channels-redis) get a dedicated publisher loop in a daemon thread, shared by every batch of the
process.

Publishing runs on the collector's writer thread, which also stores the events, so it must never
hold the writer for long: each send waits at most ``PUBLISH_TIMEOUT`` seconds and is cancelled
after that, and after a failure (Redis down or unreachable) the layer is not tried again for a
growing pause (``RETRY_DELAYS``), so an outage costs the writer almost nothing. The first send
after the pause that works puts the process back online.

Every batch is numbered (``numbered``): this process's publisher id, the number of its first
event and how many events it stands for. A batch the layer drops (a full channel, an expired
message, an outage) leaves a gap that the dashboard counts as events dropped upstream.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "GROUP",
    "PUBLISH_TIMEOUT",
    "LayerOffline",
    "health",
    "numbered",
    "publish",
    "register_listener",
    "register_loop",
    "unregister_listener",
]

GROUP = "signal_monitor.events"
PUBLISH_TIMEOUT = 0.5
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)  # pause after 1, 2, 3, 4+ consecutive failures

_server_loop: asyncio.AbstractEventLoop | None = None
_listener: tuple[asyncio.AbstractEventLoop, Callable[[dict[str, Any]], None]] | None = None
_in_flight = 0  # batches handed to the listener's loop and not yet taken
_flight_lock = threading.Lock()
MAX_IN_FLIGHT = 100  # beyond, a stalled loop gets no more batches (their events leave a gap)
_origin = ""
_next_event = 0
_number_lock = threading.Lock()
_own_loop: asyncio.AbstractEventLoop | None = None
_own_thread: threading.Thread | None = None
_own_lock = threading.Lock()
# In a writer process (WRITER="process"): sends a batch for the in-memory layer back to the
# application process, whose hub listens there; returns False when none listens.
_uplink: Callable[[dict[str, Any]], bool] | None = None


class LayerOffline(ConnectionError):
    """The channel layer failed recently; batches are not sent until the retry time."""


@dataclass
class _Health:
    """This process's publishing record (read by ``health()``)."""

    online: bool = True
    published: int = 0
    failed: int = 0
    skipped_offline: int = 0
    dropped_stalled: int = 0  # batches not handed to a listener whose loop stopped taking them
    consecutive_failures: int = 0
    retry_at: float = 0.0
    offline_since: float | None = None
    last_error: str = ""

    def succeeded(self) -> None:
        """Record a batch that reached the layer."""
        self.published += 1
        self.online = True
        self.consecutive_failures = 0
        self.offline_since = None

    def failed_with(self, exc: BaseException) -> None:
        """Record a failed batch and pause sending for the next retry delay."""
        self.failed += 1
        self.consecutive_failures += 1
        if self.online:
            self.offline_since = time.time()
        self.online = False
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        delay = RETRY_DELAYS[min(self.consecutive_failures, len(RETRY_DELAYS)) - 1]
        self.retry_at = time.monotonic() + delay


_health = _Health()


def health() -> dict[str, Any]:
    """Return this process's publishing figures: online, counts, last error, retry time."""
    figures = asdict(_health)
    figures["retry_in"] = max(0.0, figures.pop("retry_at") - time.monotonic())
    return figures


def _new_origin() -> str:
    """Return an id for this process's publisher (host, pid and a random part)."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def numbered(message: dict[str, Any], count: int) -> dict[str, Any]:
    """Return ``message`` stamped with this publisher's id, its first event's number and
    ``count``, the events it stands for (sent and skipped); the next batch starts after them."""
    global _next_event, _origin
    with _number_lock:
        if not _origin:
            _origin = _new_origin()
        seq, _next_event = _next_event, _next_event + count
        origin = _origin
    return {**message, "origin": origin, "seq": seq, "count": count}


def register_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Remember the server's event loop (called by the consumer when a client connects)."""
    global _server_loop
    _server_loop = loop


def register_listener(
    loop: asyncio.AbstractEventLoop, deliver: Callable[[dict[str, Any]], None]
) -> None:
    """Hand this process's batches to ``deliver`` on ``loop`` (the dashboard's hub, with the
    in-memory layer), instead of group-sending them through the layer."""
    global _listener
    _listener = (loop, deliver)


def unregister_listener(deliver: Callable[[dict[str, Any]], None]) -> None:
    """Stop handing batches to ``deliver`` (if it is still the listener)."""
    global _listener
    if _listener is not None and _listener[1] == deliver:
        _listener = None


def listening() -> bool:
    """Return True when this process's dashboard takes batches from the in-memory layer."""
    loop = _listener[0] if _listener is not None else _server_loop
    return loop is not None and not loop.is_closed() and loop.is_running()


def set_uplink(uplink: Callable[[dict[str, Any]], bool] | None) -> None:
    """In a writer process: send in-memory-layer batches to the application with ``uplink``."""
    global _uplink
    _uplink = uplink


def _hand_to_listener(message: dict[str, Any]) -> bool:
    """Schedule ``message`` for the local listener; False when there is none to take it."""
    global _in_flight
    listener = _listener
    if listener is None:
        return False
    loop, deliver = listener
    if loop.is_closed() or not loop.is_running():
        return False
    with _flight_lock:
        if _in_flight >= MAX_IN_FLIGHT:
            _health.dropped_stalled += 1  # its events leave a gap the dashboard counts
            return True
        _in_flight += 1
    try:
        loop.call_soon_threadsafe(_take, deliver, message)
    except RuntimeError:  # the loop closed meanwhile
        _taken()
        return False
    return True


def _take(deliver: Callable[[dict[str, Any]], None], message: dict[str, Any]) -> None:
    """On the listener's loop: hand over one batch."""
    _taken()
    deliver(message)


def _taken() -> None:
    """Count one batch less in flight."""
    global _in_flight
    with _flight_lock:
        _in_flight -= 1


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """Return a long-lived event loop running in a daemon thread, for out-of-process layers."""
    global _own_loop, _own_thread
    with _own_lock:
        thread_ok = _own_thread is not None and _own_thread.is_alive()
        if _own_loop is None or _own_loop.is_closed() or not thread_ok:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="signal-monitor-publisher", daemon=True
            )
            thread.start()
            _own_loop, _own_thread = loop, thread
        return _own_loop


def _send(
    layer: Any, message: dict[str, Any], loop: asyncio.AbstractEventLoop, timeout: float
) -> None:
    """Run ``group_send`` on ``loop``; cancel it and raise TimeoutError if it takes too long."""
    future: Future[Any] = asyncio.run_coroutine_threadsafe(layer.group_send(GROUP, message), loop)
    try:
        future.result(timeout)
    except FutureTimeout:
        future.cancel()
        raise TimeoutError(f"the channel layer did not take the batch within {timeout}s") from None


def publish(message: dict[str, Any], timeout: float = PUBLISH_TIMEOUT) -> bool:
    """Send one group message; return False when no layer or no listener can receive it.

    Raises when the layer fails (the error, a timeout, or ``LayerOffline`` while paused after
    a failure); the caller counts it. Never blocks for more than ``timeout`` seconds.
    """
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return False
    if isinstance(layer, InMemoryChannelLayer):
        if _uplink is not None:
            return _uplink(message)
        if _hand_to_listener(message):
            return True
        loop = _server_loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return False
        _send(layer, message, loop, timeout)
        return True
    if time.monotonic() < _health.retry_at:
        _health.skipped_offline += 1
        raise LayerOffline(f"channel layer offline, retrying soon ({_health.last_error})")
    try:
        try:
            loop = _publisher_loop()
        except RuntimeError:  # at interpreter exit no thread can start: send from this one
            asyncio.run(asyncio.wait_for(layer.group_send(GROUP, message), timeout))
        else:
            _send(layer, message, loop, timeout)
    except Exception as exc:
        _health.failed_with(exc)
        raise
    _health.succeeded()
    return True


def _after_fork_in_child() -> None:
    """A forked child has neither the parent's server loop nor its publisher thread."""
    global _server_loop, _own_loop, _own_thread, _own_lock, _health
    global _origin, _next_event, _number_lock, _listener, _in_flight, _flight_lock
    _server_loop = _own_loop = _own_thread = _listener = None
    _in_flight, _flight_lock = 0, threading.Lock()
    _own_lock = threading.Lock()
    _origin, _next_event, _number_lock = "", 0, threading.Lock()
    _health = _Health()


os.register_at_fork(after_in_child=_after_fork_in_child)
