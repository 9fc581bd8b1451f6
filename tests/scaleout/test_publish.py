"""collector.live.publish with channels-redis: fast when Redis is up, fails fast when it is down
or hangs, never holds the caller (the collector's writer) longer than its timeout, recovers."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.conf import settings
from django.test import override_settings

import collector
from collector import live
from tests.conftest import RedisServer

pytestmark = pytest.mark.scaleout

MESSAGE = {"type": "events.batch", "events": [], "skipped": 0}
IN_MEMORY = "channels.layers.InMemoryChannelLayer"


def redis_layers(url: str) -> dict[str, Any]:
    """Return CHANNEL_LAYERS for channels-redis at ``url`` with the project's socket options."""
    hosts = [{"address": url, **settings.REDIS_OPTIONS}]
    return {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                        "CONFIG": {"hosts": hosts}}}  # fmt: skip


@pytest.fixture(autouse=True)
def fresh_health(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts online, with no pause after a failure; this process's own collector is
    off, so it neither publishes into the layers under test nor counts their failures."""
    collector.flush(10)
    collector.uninstall()
    monkeypatch.setattr(live, "_health", live._Health())
    yield
    collector.install()


def timed(function: Any, *args: Any) -> tuple[float, Any]:
    """Return (seconds, result or raised exception) of one call."""
    began = time.monotonic()
    try:
        result: Any = function(*args)
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        result = exc
    return time.monotonic() - began, result


def receive_one(url: str) -> tuple[threading.Event, list[dict[str, Any]]]:
    """Listen on the events group in a thread of its own; return (ready, messages)."""
    ready, got = threading.Event(), []

    async def listen() -> None:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(live.GROUP, channel)
        ready.set()
        while True:  # until ours arrives (the test process's own collector may publish too)
            message = await asyncio.wait_for(layer.receive(channel), timeout=10)
            if message.get("skipped") == 7:
                got.append(message)
                return

    threading.Thread(target=asyncio.run, args=(listen(),), daemon=True).start()
    return ready, got


def test_publish_through_redis_then_outage_then_recovery(redis_server: RedisServer) -> None:
    with override_settings(CHANNEL_LAYERS=redis_layers(redis_server.url)):
        ready, got = receive_one(redis_server.url)
        assert ready.wait(10)
        assert live.publish({**MESSAGE, "skipped": 7}) is True
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        assert got and got[0]["type"] == "events.batch"

        redis_server.stop()
        took, result = timed(live.publish, MESSAGE)
        assert isinstance(result, Exception) and took < 1.0, (took, result)
        took, result = timed(live.publish, MESSAGE)  # paused: not even tried
        assert isinstance(result, live.LayerOffline) and took < 0.05
        health = live.health()
        assert health["online"] is False and health["failed"] == 1
        assert health["skipped_offline"] == 1 and "Error" in health["last_error"]

        redis_server.start()
        deadline = time.monotonic() + 10
        while live.health()["online"] is False and time.monotonic() < deadline:
            time.sleep(0.1)
            timed(live.publish, MESSAGE)
        assert live.health()["online"] is True and live.health()["published"] >= 2


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung Redis)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


def test_publish_to_a_hung_redis_gives_up_at_its_timeout(silent_port: int) -> None:
    url = f"redis://127.0.0.1:{silent_port}/0"
    with override_settings(CHANNEL_LAYERS=redis_layers(url)):
        took, result = timed(live.publish, MESSAGE)
        assert isinstance(result, TimeoutError), result
        assert live.PUBLISH_TIMEOUT <= took < live.PUBLISH_TIMEOUT + 0.5
        took, result = timed(live.publish, MESSAGE)
        assert isinstance(result, live.LayerOffline) and took < 0.05  # paused after the timeout


def test_in_memory_layer_without_a_server_loop_is_not_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "_server_loop", None)
    layers = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    with override_settings(CHANNEL_LAYERS=layers):
        assert live.publish(MESSAGE) is False
    with override_settings(CHANNEL_LAYERS={}):
        assert live.publish(MESSAGE) is False


def test_batches_are_numbered_so_the_dashboard_can_count_gaps() -> None:
    first = live.numbered(dict(MESSAGE), 3)
    second = live.numbered(dict(MESSAGE), 2)
    assert first["origin"] == second["origin"] and str(os.getpid()) in first["origin"]
    assert second["seq"] == first["seq"] + 3 and (first["count"], second["count"]) == (3, 2)
    assert "origin" not in MESSAGE  # the caller's message is not changed


async def test_a_stalled_listener_loop_gets_no_more_than_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken: list[dict[str, Any]] = []
    monkeypatch.setattr(live, "MAX_IN_FLIGHT", 3)
    live.register_listener(asyncio.get_running_loop(), taken.append)
    try:
        with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": IN_MEMORY}}):
            # this loop is busy in the test, as a stalled server loop would be
            results = [live.publish({**MESSAGE, "n": n}) for n in range(5)]
            assert results == [True] * 5 and taken == []
            assert live.health()["dropped_stalled"] == 2
            await asyncio.sleep(0.01)
            assert [m["n"] for m in taken] == [0, 1, 2]
    finally:
        live.unregister_listener(taken.append)
    assert live._listener is None
