"""Publish event batches to the channel layer group the dashboard's consumers listen on.

The in-memory layer's queues belong to the server's event loop, so batches are handed to that
loop (registered by the consumer) instead of ``async_to_sync`` from the writer thread, which can
stall delivery. Other layers (channels-redis) get a dedicated publisher loop in a thread.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import Any

GROUP = "signal_monitor.events"
_server_loop: asyncio.AbstractEventLoop | None = None
_own_loop: asyncio.AbstractEventLoop | None = None
_own_lock = threading.Lock()
_pending: Future[Any] | None = None


def register_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Remember the server's event loop (called by the consumer when a client connects)."""
    global _server_loop
    _server_loop = loop


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """Return a long-lived event loop running in a daemon thread, for out-of-process layers."""
    global _own_loop
    with _own_lock:
        if _own_loop is None or _own_loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="signal-monitor-publisher", daemon=True
            )
            thread.start()
            _own_loop = loop
        return _own_loop


def publish(message: dict[str, Any], timeout: float = 2.0) -> bool:
    """Send one group message; return False when no layer or no listener can receive it."""
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return False
    if isinstance(layer, InMemoryChannelLayer):
        loop = _server_loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return False
    else:
        loop = _publisher_loop()
    future = asyncio.run_coroutine_threadsafe(layer.group_send(GROUP, message), loop)
    future.result(timeout)
    return True
