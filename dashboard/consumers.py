"""The live feed's websocket consumer: staff only, filtered server-side, batched, bounded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.template.loader import render_to_string

from dashboard import fragments, relay, selectors
from dashboard.access import user_has_access
from dashboard.feed import FeedFilters, FeedState

__all__ = ["GROUP", "LiveFeedConsumer"]

logger = logging.getLogger(__name__)

GROUP = "signal_monitor.events"
CLOSE_FORBIDDEN = 4403
MAX_INCOMING = 8 * 1024


class LiveFeedConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Takes the process's shared batches, keeps what the client's filters match, sends at most
    ``1 / frame_interval`` frames a second.

    Client frames (JSON objects; htmx's hx-ws:send adds form values and "headers"):
    {"action": "filters", "signal": ..., "sender": ..., "receiver": ..., "outcome": ...,
    "host": ..., "pid": ...},
    {"action": "pause"}, {"action": "resume"}, {"action": "toggle"}.

    The consumer does not join the events group itself: this event loop's ``relay.Hub`` does,
    once for all of them, and hands each batch to every consumer (``deliver``). When the channel
    layer fails (Redis down), the hub says "layer.down" through the consumer's inbox (which
    Channels reads in place of the consumer's own channel): the page is told the live feed is
    offline and the connection stays up; the hub re-joins every ``layer_retry`` seconds and says
    "layer.up", then the page is told and the events stored meanwhile are backfilled.
    """

    frame_interval = 0.05  # seconds between frames: at most twenty a second per client
    rejoin_interval = 600.0  # group membership expires (a day in channels); the hub renews it
    layer_retry = 1.0  # seconds between re-join attempts while the channel layer is down
    backfill = 50  # stored events shown on connect and after a filter change
    max_rows = 200
    rows_per_second = 200.0  # as four frames of 50 were; a burst of 50 is still shown at once

    state: FeedState
    _flusher: asyncio.Task[None] | None = None
    _hub: relay.Hub | None = None
    _inbox: asyncio.Queue[dict[str, Any]] | None = None
    _last_frame = 0.0
    _loading = False
    _layer_down = False
    _relayed = False
    _wake: asyncio.Event

    # Channels assigns ``channel_receive`` (the layer's receive for this consumer's channel) in
    # AsyncConsumer.__call__ and waits on it. Nothing is sent to that channel: the hub delivers
    # layer notices into the inbox, so hand Channels the inbox instead and never wait on the layer.
    @property
    def channel_receive(self) -> Callable[[], Awaitable[dict[str, Any]]]:
        """Return the inbox's receive, which Channels waits on."""
        return self._inbox_receive

    @channel_receive.setter
    def channel_receive(self, receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        """Ignore the layer's receive (see above)."""

    def _queue(self) -> asyncio.Queue[dict[str, Any]]:
        """Return the inbox, created on first use."""
        if self._inbox is None:
            self._inbox = asyncio.Queue()
        return self._inbox

    async def _inbox_receive(self) -> dict[str, Any]:
        """Wait for the next message the hub delivered."""
        return await self._queue().get()

    def deliver(self, message: dict[str, Any]) -> None:
        """Take a message from the hub without waiting.

        A batch is filtered into the feed state at once (cheap, bounded, skips counted): going
        through Channels' dispatch would cost a thread hop per batch and viewer, as dispatch
        closes old database connections before every handler. Layer notices go to the inbox.
        """
        if message.get("type") == "events.batch":
            self.state.add_batch(message)
            self._wake.set()
        else:
            self._queue().put_nowait(message)

    async def connect(self) -> None:
        """Accept staff only (others get close code 4403), then subscribe and backfill."""
        user = self.scope.get("user")
        if not await database_sync_to_async(user_has_access)(user):
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        _register_loop()
        filters, errors = FeedFilters.parse(_query(self.scope))
        self.state = FeedState(
            filters, max_rows=self.max_rows, rows_per_second=self.rows_per_second
        )
        self._wake = asyncio.Event()
        if self.channel_layer is not None:  # before accepting: no batch is missed after it
            self._hub = await relay.subscribe(
                self, self.channel_layer, retry=self.layer_retry, rejoin=self.rejoin_interval
            )
        await self.accept()
        if self.channel_layer is None:
            await self.send(
                fragments.error_message(
                    "No channel layer is configured: the feed cannot receive live events."
                )
            )
        self._relayed = relay.acquire(self.channel_layer)
        for error in errors:
            await self.send(fragments.error_message(error))
        await self._load_backfill()
        self._wake.set()
        self._flusher = asyncio.create_task(self._flush_loop())

    async def disconnect(self, code: int) -> None:
        """Stop the flush task and leave the hub (and the relay)."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self._relayed:
            self._relayed = False
            await relay.release()
        if self._hub is not None:
            self._hub = None
            await relay.unsubscribe(self)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Decode a client frame; anything malformed gets an error frame, never a disconnect."""
        if not hasattr(self, "state"):
            return
        if text_data is None:
            await self.send(fragments.error_message("Binary frames are not supported."))
            return
        if len(text_data) > MAX_INCOMING:
            await self.send(fragments.error_message("Message too large."))
            return
        try:
            content = json.loads(text_data)
        except (ValueError, RecursionError):  # "[[[[..." nested deeper than Python recurses
            await self.send(fragments.error_message("Malformed message: not JSON."))
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Apply one client command."""
        if not isinstance(content, dict):
            await self.send(fragments.error_message("Malformed message: expected an object."))
            return
        action = content.get("action", "filters")
        if action in ("pause", "resume", "toggle"):
            paused = not self.state.paused if action == "toggle" else action == "pause"
            self.state.set_paused(paused)
            await self.send(fragments.status_message(self.state))
        elif action == "filters":
            await self._change_filters(content)
        else:
            await self.send(fragments.error_message(f"Unknown action {str(action)[:40]!r}."))

    async def layer_down(self, message: dict[str, Any]) -> None:
        """The channel layer failed: tell the page (once per outage)."""
        if not hasattr(self, "state") or self._layer_down:
            return
        self._layer_down = True
        await self.send(
            _connection_message(
                "offline",
                "Live events offline: the channel layer is unreachable. Events are still "
                "being stored; the feed resumes by itself when the layer is back.",
            )
        )

    async def layer_up(self, message: dict[str, Any]) -> None:
        """The hub joined the group again: tell the page and backfill what was missed."""
        if not hasattr(self, "state") or not self._layer_down:
            return
        self._layer_down = False
        await self.send(_connection_message("live", "Connected"))
        await self._load_backfill()
        self._wake.set()

    async def _change_filters(self, content: dict[str, Any]) -> None:
        """Switch filters: clear the page, report bad values, backfill the new selection."""
        filters, errors = FeedFilters.parse(content)
        await self.send(fragments.error_cleared())
        for error in errors:
            await self.send(fragments.error_message(error))
        self.state.set_filters(filters)
        await self._load_backfill()
        self._wake.set()

    async def _load_backfill(self) -> None:
        """Queue the newest stored events that match (the flush loop waits meanwhile)."""
        self._loading = True
        try:
            events = await database_sync_to_async(_recent)(self.state.filters, self.backfill)
            self.state.add_backfill(events)
        except Exception:  # the store may be missing or busy; the live feed still works
            logger.exception("live feed backfill failed")
        finally:
            self._loading = False

    async def _flush_loop(self) -> None:
        """Send a frame when events arrive, at most one per interval (the first one at once,
        so a quiet feed shows an event without waiting)."""
        while True:
            await self._wake.wait()
            delay = self._last_frame + self.frame_interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # what arrives meanwhile joins this frame
            self._wake.clear()
            try:
                await self._flush()
            except Exception:
                logger.exception("live feed frame failed")

    async def _flush(self) -> None:
        """Send the pending frame, if any."""
        if self._loading:
            return
        frame = self.state.take_frame()
        if frame is not None:
            await self.send(fragments.feed_message(self.state, frame))
            self._last_frame = time.monotonic()


def _connection_message(state: str, text: str) -> str:
    """Return a frame that replaces the connection banner (state "offline" or "live")."""
    content = render_to_string(
        "signals_dashboard/live/_conn.html", {"state": state, "text": text, "oob": True}
    )
    return json.dumps({"type": "conn", "state": state, "content": content}, ensure_ascii=False)


def _query(scope: dict[str, Any]) -> dict[str, list[str]]:
    """Return the websocket URL's query parameters."""
    raw = scope.get("query_string", b"")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        return parse_qs(text, max_num_fields=20)
    except ValueError:  # undecodable bytes or too many fields
        return {}


def _recent(filters: FeedFilters, limit: int) -> list[dict[str, Any]]:
    """Return the newest stored events matching ``filters``."""
    return selectors.recent_events(filters=filters, limit=limit)


def _register_loop() -> None:
    """Tell the collector which loop serves the websockets (the in-memory layer lives there)."""
    try:
        from collector.live import register_loop
    except ImportError:
        return
    register_loop(asyncio.get_running_loop())
