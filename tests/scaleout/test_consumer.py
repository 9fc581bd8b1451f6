"""The live-feed consumer across processes: host/pid filters on the server, and a channel layer
that fails (Redis down) without dropping the websocket."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import override_settings

import collector
from dashboard.consumers import GROUP, LiveFeedConsumer

pytestmark = [pytest.mark.scaleout, pytest.mark.django_db(transaction=True)]

FLAKY = "tests.scaleout.test_consumer.FlakyLayer"


class FlakyLayer(InMemoryChannelLayer):  # type: ignore[misc]
    """An in-memory layer that can be switched "down": receive and group_add then fail."""

    down = False

    async def receive(self, channel: str) -> dict[str, Any]:
        """Fail while down (as channels-redis does when Redis is gone)."""
        if FlakyLayer.down:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379")
        message: dict[str, Any] = await super().receive(channel)
        if FlakyLayer.down:  # went down while waiting
            raise ConnectionError("Connection closed by server.")
        return message

    async def group_add(self, group: str, channel: str) -> None:
        """Fail while down."""
        if FlakyLayer.down:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379")
        await super().group_add(group, channel)


def event(event_id: int, *, host: str = "web-1", pid: int = 100) -> dict[str, Any]:
    """Return a live event dict from ``host``/``pid``."""
    return {
        "id": event_id, "signal": "app.signals.ping", "sender": "app.Thing", "method": "send",
        "timestamp": time.time(), "duration_ns": 2_000, "receiver_count": 0, "failure_count": 0,
        "parent_id": None, "parent_call": None, "kwargs": {}, "host": host, "pid": pid,
        "request_path": "", "calls": [],
    }  # fmt: skip


@pytest.fixture(autouse=True)
def quiet(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Fast frames and retries; the hook off (the test writes nothing it should record)."""
    monkeypatch.setattr(LiveFeedConsumer, "frame_interval", 0.05)
    monkeypatch.setattr(LiveFeedConsumer, "layer_retry", 0.1)
    collector.flush(10)
    collector.uninstall()
    FlakyLayer.down = False
    yield
    FlakyLayer.down = False
    collector.install()


@pytest.fixture
async def open_feed(staff_user: Any) -> AsyncIterator[Any]:
    """Return ``open_feed(query)``: a connected communicator; all are closed at the end."""
    opened: list[WebsocketCommunicator] = []

    async def open_(query: str = "") -> WebsocketCommunicator:
        comm = WebsocketCommunicator(LiveFeedConsumer.as_asgi(), f"/ws/signals/{query}")
        comm.scope["user"] = staff_user
        connected, _ = await comm.connect(timeout=5)
        assert connected
        opened.append(comm)
        return comm

    yield open_
    for comm in opened:
        if not comm.future.done():
            await comm.disconnect()


async def frames_until(
    comm: WebsocketCommunicator, predicate: Any, timeout: float = 5.0
) -> list[Any]:
    """Collect frames until one satisfies ``predicate``."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = await comm.receive_json_from(timeout=max(0.01, deadline - time.monotonic()))
        seen.append(frame)
        if predicate(frame):
            return seen
    raise AssertionError(f"no matching frame in {seen}")


def row(event_id: int) -> Any:
    """Match a feed frame that holds the row of ``event_id``."""
    return lambda frame: f'id="ev-{event_id}"' in frame.get("content", "")


async def test_host_and_pid_filters_are_applied_on_the_server(open_feed: Any) -> None:
    comm = await open_feed("?host=web-2&pid=200")
    await frames_until(comm, lambda f: f["type"] == "feed")
    batch = [event(1), event(2, host="web-2", pid=100), event(3, host="web-2", pid=200)]
    await get_channel_layer().group_send(GROUP, {"type": "events.batch", "events": batch})
    frames = await frames_until(comm, row(3))
    content = "".join(f.get("content", "") for f in frames)
    assert 'id="ev-1"' not in content and 'id="ev-2"' not in content
    assert 'class="origin" href="?host=web-2&amp;pid=200"' in frames[-1]["content"]
    assert "<b>1</b> received" in frames[-1]["content"]


async def test_a_bad_pid_filter_is_reported_and_ignored(open_feed: Any) -> None:
    comm = await open_feed("?pid=12x")
    frames = await frames_until(comm, lambda f: f["type"] == "error")
    assert "Ignored pid filter '12x'" in frames[-1]["error"]
    await get_channel_layer().group_send(GROUP, {"type": "events.batch", "events": [event(4)]})
    await frames_until(comm, row(4))


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": FLAKY}})
async def test_layer_outage_is_shown_and_the_feed_recovers_without_reconnecting(
    open_feed: Any,
) -> None:
    comm = await open_feed()
    await frames_until(comm, lambda f: f["type"] == "feed")
    layer = get_channel_layer()
    await layer.group_send(GROUP, {"type": "events.batch", "events": [event(5)]})
    await frames_until(comm, row(5))

    FlakyLayer.down = True
    await layer.group_send(GROUP, {"type": "events.batch", "events": [event(6)]})  # wakes receive
    frames = await frames_until(comm, lambda f: f["type"] == "conn")
    assert frames[-1]["state"] == "offline"
    assert 'data-state="offline"' in frames[-1]["content"]
    assert 'hx-swap-oob="outerHTML:#live-conn"' in frames[-1]["content"]
    assert "Live events offline" in frames[-1]["content"]

    FlakyLayer.down = False
    frames = await frames_until(comm, lambda f: f["type"] == "conn")
    assert frames[-1]["state"] == "live"
    await layer.group_send(GROUP, {"type": "events.batch", "events": [event(7)]})
    await frames_until(comm, row(7))
    assert not comm.future.done()  # the websocket stayed open throughout


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": FLAKY}})
async def test_connecting_while_the_layer_is_down_says_offline_then_joins(open_feed: Any) -> None:
    FlakyLayer.down = True
    comm = await open_feed()
    frames = await frames_until(comm, lambda f: f["type"] == "conn")
    assert frames[-1]["state"] == "offline"
    FlakyLayer.down = False
    await frames_until(comm, lambda f: f.get("state") == "live")
    await get_channel_layer().group_send(GROUP, {"type": "events.batch", "events": [event(8)]})
    await frames_until(comm, row(8))
