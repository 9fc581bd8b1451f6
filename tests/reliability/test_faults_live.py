"""The channel layer unavailable (Redis down): signals are still stored, sends do not wait, every
page works, the collector's health says the live publishing failed, and a live-feed client is
told it is offline instead of being disconnected."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.dispatch import Signal
from django.test import Client, override_settings

import collector
from collector.models import Event
from dashboard.consumers import LiveFeedConsumer
from tests.reliability.conftest import HostGuard, Tally, counter, monitor, wait_for
from tests.reliability.test_faults_host import parse_health
from tests.reliability.test_security import dashboard_urls

pytestmark = pytest.mark.django_db(transaction=True)
news = Signal()


def closed_port() -> int:
    """Return a local port nobody listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_down() -> Iterator[None]:
    """Point the channel layer at a Redis that is not there."""
    address = f"redis://127.0.0.1:{closed_port()}/0"
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": address, "socket_connect_timeout": 0.5}]},
        }
    }
    with override_settings(CHANNEL_LAYERS=layers):
        yield


def reader(sender: Any, **kw: Any) -> None:
    """A receiver, so sends are recorded."""


def test_signals_are_stored_and_pages_work_while_the_layer_is_down(
    redis_down: None, host: HostGuard, tally: Tally, staff_client: Client
) -> None:
    news.connect(reader)
    live_errors = counter("live_errors") + counter("live_skipped")
    try:
        with monitor(FLUSH_INTERVAL=0.05, HEALTH_INTERVAL=0.1):
            began = time.perf_counter()
            for i in range(300):
                host.call(news.send, sender="while-redis-down", n=i)
            took = time.perf_counter() - began
            wait_for(lambda: counter("live_errors") + counter("live_skipped") > live_errors)
            assert collector.flush(15)
            stored = Event.objects.filter(sender="while-redis-down")
            wait_for(lambda: stored.count() >= 300)
            tally.fault("channel_layer_down")
            tally.events(sent=300, stored=stored.values("id").distinct().count())
            assert stored.count() == 300
            assert took < 1.0  # the sends never waited for Redis
            strip = wait_for(
                lambda: parse_health(staff_client.get("/signals/signals/").content.decode())
            )
            assert "sink error" in strip and "channel layer" in strip
            for url in dashboard_urls():
                assert staff_client.get(url).status_code in (200, 404), url
    finally:
        news.disconnect(reader)


async def test_a_live_client_is_told_the_feed_is_offline(redis_down: None, staff_user: Any) -> None:
    comm = WebsocketCommunicator(LiveFeedConsumer.as_asgi(), "/ws/signals/")
    comm.scope["user"] = staff_user
    connected, _ = await comm.connect(timeout=5)
    assert connected
    states = []
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and "offline" not in states:
        output = await comm.receive_output(timeout=deadline - time.monotonic())
        assert output["type"] == "websocket.send", output  # never closed
        frame = json.loads(output["text"])
        states.append(frame.get("state", frame["type"]))
    assert "offline" in states
    await comm.send_json_to({"action": "pause"})
    while True:  # the socket still answers commands
        frame = json.loads((await comm.receive_output(timeout=5))["text"])
        if frame["type"] == "status":
            break
    await comm.disconnect()
