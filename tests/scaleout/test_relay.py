"""The zero-setup path (SQLite, in-memory layer): other processes' events reach the live feed.

``make run`` starts demo_traffic as a process of its own; with the in-memory channel layer its
events only reach the shared database, so the dashboard's server relays them from the store
(dashboard/relay.py). End to end here, and the relay's rules in-process below.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import pytest
from channels.layers import InMemoryChannelLayer

import collector
from collector.events import HOST
from collector.models import Event, ReceiverCall
from dashboard import relay
from tests.conftest import ARTIFACTS, ROOT, LiveServer
from tests.scaleout.harness import (
    SETTINGS,
    Sender,
    Store,
    scaleout_env,
    staff_session,
)
from tests.scaleout.wsclient import FeedClient

pytestmark = pytest.mark.scaleout

RELAY_RE = re.compile(r"([\d,]+) relayed in ([\d,]+) looks, ([\d.]+) ms each")


def cpu_seconds(pid: int) -> float:
    """Return the user+system CPU time a process has used (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def page_text(server: LiveServer, path: str, session: str) -> str:
    """GET a dashboard page with a session cookie; return the HTML."""
    request = urllib.request.Request(server.url + path, headers={"Cookie": f"sessionid={session}"})
    with urllib.request.urlopen(request, timeout=15) as response:
        return str(response.read().decode())


@pytest.mark.slow
def test_in_memory_layer_feed_shows_other_processes(
    daphne_factory: Callable[..., LiveServer], start_sender: Callable[..., Sender]
) -> None:
    server = daphne_factory(DJANGO_SETTINGS_MODULE=SETTINGS)  # SQLite, in-memory layer
    env = scaleout_env(server.db_path)
    store = Store(str(server.db_path))
    session = staff_session(server)
    sender = start_sender(env, "--count", "300", "--rate", "100")
    time.sleep(0.5)
    ws = server.ws_url("/ws/signals/")
    one = FeedClient(f"{ws}?host={sender.host}&pid={sender.pid}", session, server.url).connect()
    everything = FeedClient(ws, session, server.url).connect()
    try:
        for client in (one, everything):
            assert client.wait_for(lambda c=client: "feed" in c.kinds(), timeout=10)
        assert server.process is not None
        cpu_before, began = cpu_seconds(server.process.pid), time.time()
        demo = subprocess.Popen(
            [sys.executable, "manage.py", "demo_traffic", "--seconds", "3", "--rate", "5"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        sender.go()
        report = sender.finish()
        assert demo.wait(60) == 0
        time.sleep(1.5)  # the relay's next looks
        elapsed, cpu = time.time() - began, cpu_seconds(server.process.pid) - cpu_before
        watched = store.count(
            sender.host, sender.pid, "AND timestamp >= %s",
            (datetime.fromtimestamp(began, tz=timezone.utc).replace(tzinfo=None).isoformat(" "),),
        )  # fmt: skip
        assert report["captured"] == store.count(sender.host, sender.pid)
        assert one.matched == watched, (one.matched, watched)
        assert f"{HOST}:{demo.pid}" in everything.origins(began), everything.origins(began)
        stats = RELAY_RE.search(page_text(server, "/signals/processes/", session))
        assert stats is not None, "the processes page shows the relay's figures"
    finally:
        one.close()
        everything.close()
    figures = {
        "sender_stored_while_watched": watched,
        "sender_seen_live": one.matched,
        "demo_traffic_rows_seen": everything.origins(began).get(f"{HOST}:{demo.pid}", 0),
        "relayed": int(stats.group(1).replace(",", "")),
        "polls": int(stats.group(2).replace(",", "")),
        "ms_per_poll": float(stats.group(3)),
        "server_cpu_percent_while_relaying": round(100 * cpu / elapsed, 1),
        "seconds": round(elapsed, 2),
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "scaleout-relay.json").write_text(json.dumps(figures, indent=2))
    print(f"\nrelay: {json.dumps(figures)}")


# ---- the relay's rules, in-process ------------------------------------------------------------

_ids = iter(range(9_000_000, 10_000_000))


@pytest.fixture
def hook_off() -> Iterator[None]:
    """Keep the collector from recording the test's own writes."""
    collector.flush(10)
    collector.uninstall()
    yield
    collector.install()


def store_event(
    *, host: str = "other", pid: int = 7, ago: float = 0.0, failed: bool = False
) -> int:
    """Store one event with one call; return its id."""
    when = datetime.now(tz=timezone.utc) - timedelta(seconds=ago)
    event = Event.objects.create(
        id=next(_ids), signal="app.signals.ping", sender="app.Thing", method="send",
        timestamp=when, duration_ns=5_000, receiver_count=1, failure_count=int(failed),
        kwargs={"n": 1}, host=host, pid=pid,
    )  # fmt: skip
    ReceiverCall.objects.create(
        event=event, index=0, receiver="app.receivers.on_ping", duration_ns=4_000,
        outcome="error" if failed else "ok", exc_type="E" if failed else "",
        signal=event.signal, sender=event.sender, timestamp=when,
    )  # fmt: skip
    return int(event.pk)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("hook_off")
def test_relay_sends_only_new_events_of_other_processes() -> None:
    layer = InMemoryChannelLayer()
    here = relay.Relay(layer, host=HOST, pid=os.getpid())
    here.started -= 10
    store_event(ago=30)  # before the relay started: the backfill's business
    mine = store_event(host=HOST, pid=os.getpid())  # this process: its LiveSink sends it
    theirs = [store_event(pid=7), store_event(host="web-2", pid=os.getpid(), failed=True)]

    events, skipped = here.fetch()
    assert [e["id"] for e in events] == theirs and skipped == 0
    assert mine not in [e["id"] for e in events]
    first = events[1]
    assert first["host"] == "web-2" and first["failure_count"] == 1
    assert first["calls"][0]["receiver"] == "app.receivers.on_ping"
    assert first["calls"][0]["outcome"] == "error"
    assert set(first) >= {"id", "signal", "sender", "method", "timestamp", "duration_ns",
                          "receiver_count", "kwargs", "pid", "request_path", "calls"}  # fmt: skip

    again, _ = here.fetch()
    assert again == []  # nothing relayed twice
    late = store_event(ago=2)  # committed late, sent 2 s ago: within the look-back
    assert [e["id"] for e in here.fetch()[0]] == [late]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("hook_off")
def test_relay_caps_a_look_and_counts_the_rest_as_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relay.Relay, "max_batch", 3)
    here = relay.Relay(InMemoryChannelLayer(), host=HOST, pid=os.getpid())
    here.started -= 10
    ids = [store_event() for _ in range(5)]
    events, skipped = here.fetch()
    assert [e["id"] for e in events] == ids[-3:] and skipped == 2
    assert here.stats.as_dict()["skipped"] == 2 and here.stats.relayed == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("hook_off")
async def test_relay_runs_while_clients_are_connected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relay.Relay, "interval", 0.05)
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add(relay.GROUP, channel)
    assert relay.acquire(layer) and relay.acquire(layer)  # two clients, one relay task
    await asyncio.sleep(0.1)
    event_id = await asyncio.to_thread(store_event)
    message = await asyncio.wait_for(layer.receive(channel), timeout=5)
    assert message["type"] == "events.batch"
    assert [e["id"] for e in message["events"]] == [event_id]
    assert relay.relay_stats()["running"] is True
    await relay.release()
    assert relay.relay_stats()["running"] is True  # one client left
    await relay.release()
    await asyncio.sleep(0)
    assert relay.relay_stats()["running"] is False and relay.relay_stats()["relayed"] == 1


def test_relay_is_only_for_the_in_memory_layer() -> None:
    class RedisLike:
        """Any other layer carries every process's events itself."""

    assert relay.wanted(InMemoryChannelLayer())
    assert not relay.wanted(RedisLike())
    assert not relay.acquire(RedisLike())


def test_this_process_is_the_host_and_pid_the_collector_stores() -> None:
    assert relay.this_process() == (HOST, os.getpid())
