"""The live feed's websocket consumer through Channels' WebsocketCommunicator."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from dashboard.consumers import GROUP, LiveFeedConsumer
from tests.dashboard.conftest import make_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_store")]

XSS = "<img src=x onerror=alert(1)>"


def live_event(
    event_id: int,
    signal: str = "app.signals.ping",
    sender: str = "app.Thing",
    receiver: str = "app.receivers.on_ping",
    failed: bool = False,
) -> dict[str, Any]:
    """Return an event dict in the LiveSink's shape."""
    return {
        "id": event_id,
        "signal": signal,
        "sender": sender,
        "method": "send",
        "timestamp": time.time(),
        "duration_ns": 2_000,
        "receiver_count": 1,
        "failure_count": int(failed),
        "parent_id": None,
        "parent_call": None,
        "kwargs": {},
        "host": "h",
        "pid": 1,
        "request_path": "",
        "calls": [
            {
                "index": 0,
                "receiver": receiver,
                "is_async": False,
                "duration_ns": 1_000,
                "outcome": "error" if failed else "ok",
                "exc_type": "E" if failed else "",
                "exc_message": "",
                "traceback": "",
            }
        ],
    }


async def publish(*events: dict[str, Any], skipped: int = 0) -> None:
    """Send one batch to the group as the collector's LiveSink does."""
    layer = get_channel_layer()
    await layer.group_send(
        GROUP, {"type": "events.batch", "events": list(events), "skipped": skipped}
    )


@pytest.fixture(autouse=True)
def fast_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames every 50 ms so the tests do not wait."""
    monkeypatch.setattr(LiveFeedConsumer, "frame_interval", 0.05)


@pytest.fixture
async def connect(staff_user: Any) -> AsyncIterator[Any]:
    """Return a function that opens a communicator for a user (staff by default)."""
    opened: list[WebsocketCommunicator] = []

    async def open_(query: str = "", user: Any = staff_user) -> WebsocketCommunicator:
        comm = WebsocketCommunicator(LiveFeedConsumer.as_asgi(), f"/ws/signals/{query}")
        comm.scope["user"] = user
        connected, _ = await comm.connect(timeout=5)
        assert connected
        opened.append(comm)
        return comm

    yield open_
    for comm in opened:
        if not comm.future.done():
            await comm.disconnect()


async def frames_until(
    comm: WebsocketCommunicator, predicate: Any, timeout: float = 3.0
) -> list[dict[str, Any]]:
    """Collect frames until one satisfies ``predicate``."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = await comm.receive_json_from(timeout=deadline - time.monotonic())
        seen.append(frame)
        if predicate(frame):
            return seen
    raise AssertionError(f"no matching frame in {seen}")


def has_row(event_id: int) -> Any:
    return lambda frame: f'id="ev-{event_id}"' in frame.get("content", "")


async def test_staff_gets_a_reset_frame_then_rows(connect: Any) -> None:
    comm = await connect()
    first = await comm.receive_json_from(timeout=3)
    assert first["type"] == "feed"
    assert 'hx-swap-oob="innerHTML:#live-rows"' in first["content"]
    await publish(live_event(1))
    frames = await frames_until(comm, has_row(1))
    content = frames[-1]["content"]
    assert 'hx-swap-oob="afterbegin:#live-rows"' in content
    assert 'hx-swap-oob="outerHTML:#live-status"' in content


class TopLevel(HTMLParser):
    """Collects the attributes of a fragment's top-level elements."""

    VOID = {"br", "img", "input", "meta", "link", "hr", "wbr"}

    def __init__(self, html: str) -> None:
        super().__init__()
        self.depth = 0
        self.top: list[dict[str, str | None]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth == 0:
            self.top.append(dict(attrs))
        if tag not in self.VOID:
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        self.depth -= 1


async def test_every_fragment_has_an_explicit_oob_target(connect: Any) -> None:
    comm = await connect("?outcome=bogus")
    await publish(live_event(1))
    frames = await frames_until(comm, has_row(1))
    await comm.send_to(text_data='{"action": "toggle"}')
    frames += await frames_until(comm, lambda f: f["type"] == "status")
    kinds = {frame["type"] for frame in frames}
    assert kinds == {"feed", "error", "status"}
    for frame in frames:
        top = TopLevel(frame["content"]).top
        assert top
        for attrs in top:
            style, _, target = (attrs.get("hx-swap-oob") or "").partition(":")
            assert style and target.startswith("#"), attrs


@pytest.mark.parametrize("who", ["plain", "anonymous"])
async def test_others_are_closed_with_4403(plain_user: Any, who: str) -> None:
    comm = WebsocketCommunicator(LiveFeedConsumer.as_asgi(), "/ws/signals/")
    comm.scope["user"] = plain_user if who == "plain" else AnonymousUser()
    connected, _ = await comm.connect(timeout=5)
    assert connected  # accepted only to deliver the close code
    closed = await comm.receive_output(timeout=3)
    assert closed == {"type": "websocket.close", "code": 4403}
    layer = get_channel_layer()
    assert not layer.groups.get(GROUP)


async def test_backfill_comes_from_the_store(connect: Any) -> None:
    stored = await database_sync_to_async(make_event)(sender=XSS)
    comm = await connect()
    first = await comm.receive_json_from(timeout=3)
    assert f'id="ev-{stored.pk}"' in first["content"]
    assert XSS not in first["content"] and "&lt;img src=x" in first["content"]


async def test_query_string_filters_are_applied_on_the_server(connect: Any) -> None:
    comm = await connect("?signal=app.signals.pong&receiver=audit")
    await comm.receive_json_from(timeout=3)
    await publish(
        live_event(1),
        live_event(2, signal="app.signals.pong"),
        live_event(3, signal="app.signals.pong", receiver="app.audit.log"),
    )
    frames = await frames_until(comm, has_row(3))
    content = "".join(f["content"] for f in frames)
    assert 'id="ev-1"' not in content and 'id="ev-2"' not in content


async def test_filters_change_over_the_socket(connect: Any) -> None:
    comm = await connect()
    await comm.receive_json_from(timeout=3)
    # What htmx's hx-ws:send sends for the filter form: its values plus "headers".
    await comm.send_json_to(
        {
            "action": "filters",
            "signal": "",
            "sender": "Order",
            "receiver": "",
            "outcome": "error",
            "headers": {"HX-Request": "true"},
        }
    )
    await frames_until(comm, lambda f: "innerHTML:#live-rows" in f["content"])
    await publish(
        live_event(1, sender="shop.Order"),
        live_event(2, sender="shop.Order", failed=True),
        live_event(3, sender="shop.Cart", failed=True),
    )
    frames = await frames_until(comm, has_row(2))
    content = "".join(f["content"] for f in frames)
    assert 'id="ev-1"' not in content and 'id="ev-3"' not in content


async def test_batches_a_few_frames_a_second_and_reports_skips(
    connect: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LiveFeedConsumer, "frame_interval", 0.25)
    comm = await connect()
    await comm.receive_json_from(timeout=3)
    started = time.monotonic()
    for batch in range(40):  # 2,000 events within about a second
        await publish(*(live_event(batch * 50 + i) for i in range(50)), skipped=1)
        await asyncio.sleep(0.02)
    frames = []
    while time.monotonic() - started < 1.6:
        # receive_nothing() waits without cancelling the consumer (a receive timeout would).
        if not await comm.receive_nothing(timeout=0.05):
            frames.append(await comm.receive_json_from(timeout=1))
    assert 3 <= len(frames) <= 8, len(frames)  # ~4 a second, not one per batch
    assert all(frame["rows"] <= 50 for frame in frames)
    assert frames[-1]["skipped"] > 1000
    assert "dropped upstream" in frames[-1]["content"]
    assert "skipped (rate)" in frames[-1]["content"]


async def test_rows_on_the_page_stay_bounded(connect: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LiveFeedConsumer, "max_rows", 10)
    comm = await connect()
    await comm.receive_json_from(timeout=3)
    for i in range(1, 26):
        await publish(live_event(i))
        await asyncio.sleep(0.01)
    frames = await frames_until(comm, has_row(25))
    deleted = "".join(f["content"] for f in frames).count('hx-swap-oob="delete:#ev-')
    assert deleted == 15


@pytest.mark.parametrize(
    "frame, message",
    [
        ("not json", "not JSON"),
        ("[1, 2]", "expected an object"),
        ('{"action": "explode"}', "Unknown action"),
        ('{"action": "filters", "outcome": "sideways"}', "outcome"),
        ('{"action": "filters", "sender": 12}', "sender"),
        ("x" * 20_000, "too large"),
        (" ", "not JSON"),
        ("null", "expected an object"),
    ],
)
async def test_malformed_frames_get_an_error_and_the_socket_stays(
    connect: Any, frame: str, message: str
) -> None:
    comm = await connect()
    await comm.receive_json_from(timeout=3)
    await comm.send_to(text_data=frame)
    errors = await frames_until(comm, lambda f: f["type"] == "error")
    assert message in errors[-1]["error"]
    assert 'hx-swap-oob="outerHTML:#live-error"' in errors[-1]["content"]
    await publish(live_event(7))
    await frames_until(comm, has_row(7))  # still connected and working


async def test_binary_frames_are_refused_politely(connect: Any) -> None:
    comm = await connect()
    await comm.receive_json_from(timeout=3)
    await comm.send_to(bytes_data=b"\x00\x01")
    errors = await frames_until(comm, lambda f: f["type"] == "error")
    assert "Binary" in errors[-1]["error"]


async def test_pause_and_resume(connect: Any) -> None:
    comm = await connect()
    await comm.receive_json_from(timeout=3)
    await comm.send_json_to({"action": "pause"})
    status = await frames_until(comm, lambda f: f["type"] == "status")
    assert ">Resume<" in status[-1]["content"]
    await publish(live_event(1), live_event(2))
    frames = await frames_until(comm, lambda f: "while paused" in f["content"])
    assert not any('id="ev-1"' in f["content"] for f in frames)
    await comm.send_json_to({"action": "resume"})
    await frames_until(comm, lambda f: ">Pause<" in f["content"])
    await publish(live_event(3))
    await frames_until(comm, has_row(3))


async def test_captured_text_is_escaped_in_fragments(connect: Any) -> None:
    comm = await connect()
    await comm.receive_json_from(timeout=3)
    event = live_event(1, sender=XSS, receiver=XSS, failed=True)
    event["calls"][0]["exc_message"] = XSS
    event["kwargs"] = {"note": XSS}
    await publish(event)
    frames = await frames_until(comm, has_row(1))
    assert XSS not in frames[-1]["content"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in frames[-1]["content"]


async def test_group_membership_is_renewed(connect: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LiveFeedConsumer, "rejoin_interval", 0.1)
    layer = get_channel_layer()
    comm = await connect()
    await comm.receive_json_from(timeout=3)
    ((channel, joined),) = layer.groups[GROUP].items()
    layer.groups[GROUP][channel] = joined - 86_000  # nearly a day old
    await asyncio.sleep(0.4)
    assert layer.groups[GROUP][channel] > joined - 10


async def test_full_stack_with_session_cookie_and_origin(staff_user: Any) -> None:
    from config.asgi import application

    client = Client()
    await database_sync_to_async(client.force_login)(staff_user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    good = WebsocketCommunicator(
        application,
        "/ws/signals/",
        headers=[(b"origin", b"http://testserver"), (b"cookie", cookie), (b"host", b"testserver")],
    )
    connected, _ = await good.connect(timeout=5)
    assert connected
    assert (await good.receive_json_from(timeout=3))["type"] == "feed"
    await good.disconnect()

    evil = WebsocketCommunicator(
        application,
        "/ws/signals/",
        headers=[(b"origin", b"http://evil.example"), (b"cookie", cookie)],
    )
    connected, _ = await evil.connect(timeout=5)
    assert not connected

    anonymous = WebsocketCommunicator(
        application, "/ws/signals/", headers=[(b"origin", b"http://testserver")]
    )
    assert (await anonymous.connect(timeout=5))[0]
    assert (await anonymous.receive_output(timeout=3))["code"] == 4403
    await anonymous.disconnect()


def test_frames_are_json_with_content() -> None:
    from dashboard import fragments
    from dashboard.feed import FeedFilters, FeedState

    state = FeedState(FeedFilters())
    frame = state.take_frame()
    assert frame is not None
    decoded = json.loads(fragments.feed_message(state, frame))
    assert decoded["type"] == "feed" and "content" in decoded and "target" not in decoded


def test_rows_built_in_python_match_the_templates() -> None:
    from django.template.loader import render_to_string

    from dashboard import fragments
    from dashboard.feed import FeedFilters, FeedState, feed_row

    odd = "<img src=x onerror=alert('1')>&\" x/y?z=1"
    plain = live_event(1)
    bare = {**live_event(2), "calls": [], "receiver_count": 0, "kwargs": {}}
    hostile = live_event(3, sender=odd, signal=odd, receiver=odd, failed=True)
    hostile.update(host=odd, pid=odd, method=odd, request_path=odd, parent_id=9)
    hostile["kwargs"] = {"note": odd}
    hostile["calls"][0].update(index=None, is_async=True, duration_ns=None, exc_message=odd)
    slow = {**live_event(4), "timestamp": 0, "duration_ns": 3_000_000_000}
    events = [plain, bare, hostile, slow]
    for event in events:
        row = feed_row(event)
        assert row is not None
        assert fragments.row_html(dict(row)) == render_to_string(
            fragments.ROW_TEMPLATE, {"row": row}
        )
    state = FeedState(FeedFilters(), max_rows=3)
    state.add_batch({"events": events[:2]})
    first = state.take_frame()
    state.add_batch({"events": events[2:], "skipped": 2})
    second = state.take_frame()
    assert first is not None and first.reset
    assert second is not None and second.evicted == [1] and len(second.rows) == 2
    for frame in (first, second):
        context = {"frame": frame, "status": state.status()}
        expected = render_to_string(fragments.FRAME_TEMPLATE, context)
        assert json.loads(fragments.feed_message(state, frame))["content"] == expected
        assert odd not in expected


async def test_one_group_member_serves_every_viewer_and_renders_each_row_once(
    connect: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard import fragments

    rendered: list[int] = []
    real = fragments._render_row

    def counting(row: dict[str, Any]) -> str:
        rendered.append(row["id"])
        return real(row)

    monkeypatch.setattr(fragments, "_render_row", counting)
    comms = [await connect() for _ in range(3)]
    for comm in comms:
        await comm.receive_json_from(timeout=3)
    assert len(get_channel_layer().groups[GROUP]) == 1  # the hub, not one member per viewer
    await publish(live_event(1), live_event(2))
    for comm in comms:
        await frames_until(comm, has_row(2))
    assert sorted(rendered) == [1, 2]


async def test_batches_the_layer_dropped_are_counted_as_dropped_upstream(connect: Any) -> None:
    comm = await connect()
    await comm.receive_json_from(timeout=3)
    layer = get_channel_layer()
    base = {"type": "events.batch", "origin": "web-1:7:ab", "skipped": 0}
    await layer.group_send(GROUP, {**base, "events": [live_event(1)], "seq": 100, "count": 1})
    # events 101-140 were in batches the layer dropped (a full or expired channel)
    await layer.group_send(GROUP, {**base, "events": [live_event(2)], "seq": 141, "count": 1})
    frames = await frames_until(comm, lambda f: "dropped upstream" in f["content"])
    assert "<b>40</b> dropped upstream" in frames[-1]["content"]


async def test_this_process_hands_batches_to_the_hub_without_the_layer(
    connect: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collector import live

    comm = await connect()
    await comm.receive_json_from(timeout=3)
    layer = get_channel_layer()

    async def no_group_send(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the in-memory layer is not used for this process's batches")

    monkeypatch.setattr(layer, "group_send", no_group_send)
    message = {"type": "events.batch", "events": [live_event(1)], "skipped": 0}
    assert await asyncio.to_thread(live.publish, live.numbered(message, 1))  # the writer's side
    await frames_until(comm, has_row(1))
    await comm.disconnect()
    assert live._listener is None  # the hub stopped with its last viewer
