"""Garbage in, never a 500: hypothesis fuzzes every dashboard page's query string (filters, sort
keys, page numbers, dates, raw undecodable bytes) and path ids, and the live feed's websocket
(frames of every shape, binary frames, deeply nested JSON, bad query strings). Pages answer 200 or
404 with a bounded body; the socket answers every frame, never closes, and stays usable."""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import collector
from dashboard.consumers import LiveFeedConsumer
from tests.dashboard.conftest import make_counts, make_event, make_stats, traceback_text
from tests.reliability.conftest import Tally
from tests.reliability.test_security import dashboard_urls

pytestmark = pytest.mark.django_db(transaction=True)

MAX_BODY = 2 * 1024 * 1024
FUZZ = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PARAMS = [
    "signal", "sender", "receiver", "outcome", "exc_type", "since", "start", "end", "sort",
    "page", "per_page", "format", "view", "q", "empty", "host", "pid", "action",
]  # fmt: skip
COLUMNS = [
    "receiver", "signal", "calls", "mean_ns", "p50_ns", "p95_ns", "p99_ns", "max_ns", "failures",
    "error_rate", "last_failure", "events", "count", "last_seen", "first_seen", "timestamp",
    "exc_type", "process", "id", "pk", "__class__", "signal__icontains",
]  # fmt: skip
NASTY = [
    "", " ", "0", "-1", "1e309", "NaN", "inf", "-0", "0x10", "٣", "१२", "9" * 400, "-" + "9" * 30,
    "2024-02-30", "0000-00-00 00:00", "9999-12-31 23:59:59", "1970-01-01T00:00:00+99:00",
    "all", "csv", "list", "hide", "error", "ok", "\x00", "%00", "<script>alert(1)</script>",
    "' OR 1=1 --", "${7*7}", "{{ settings.SECRET_KEY }}", "../../etc/passwd", "\u202e", "🙂" * 50,
    ",", ",,,", "-", "--", "-signal,signal", "calls,-calls", "x" * 5000,
]  # fmt: skip
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
values = st.one_of(
    st.sampled_from(NASTY),
    texts,
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.lists(st.sampled_from(COLUMNS + ["-" + c for c in COLUMNS]), max_size=4).map(",".join),
)
queries = st.lists(
    st.tuples(st.one_of(st.sampled_from(PARAMS), texts), values), max_size=8
)  # repeated keys included
raw_queries = st.binary(max_size=200).map(lambda b: quote_from_bytes(b, safe=b"=&%+;"))


@pytest.fixture(autouse=True)
def seeded(empty_store_and_hook_off: None) -> None:
    """A store with events, failures (some of them hostile) and rollups to sort and page."""
    now = timezone.now()
    for i in range(30):
        make_event(
            signal=f"app.signals.sig{i % 4}",
            sender=f"app.Model{i % 3}",
            calls=[(f"app.receivers.r{i % 5}", 1_000 * (i + 1))]
            + ([("app.receivers.bad", 5_000, "ValueError", "<b>boom</b>", traceback_text())]
               if i % 3 == 0 else []),
            when=now - timedelta(minutes=i),
        )  # fmt: skip
    for i in range(5):
        make_stats(f"app.receivers.r{i}", [1_000 * (i + 1)] * 3, signal=f"app.signals.sig{i % 4}")
    make_counts("app.signals.sig0", [1, 2, 3, 4])


@pytest.fixture
def empty_store_and_hook_off(db: None) -> Iterator[None]:
    """No recording of the seeding; an empty store to start from."""
    from collector.models import Event, ReceiverCall, ReceiverStat, SignalCount

    collector.flush(10)
    collector.uninstall()
    for model in (Event, ReceiverCall, ReceiverStat, SignalCount):
        model.objects.all().delete()
    yield
    collector.install()


def check(response: Any, url: str) -> None:
    """A page answered: not a server error, and a bounded body."""
    assert response.status_code in (200, 404), (url, response.status_code)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert len(body) < MAX_BODY, (url, len(body))


PAGES = [url for url in dashboard_urls() if "/1/" not in url]
DETAILS = [url for url in dashboard_urls() if "/1/" in url]


@pytest.mark.parametrize("url", PAGES)
def test_query_strings(url: str, staff_client: Client, tally: Tally) -> None:
    @FUZZ
    @given(query=queries)
    def run(query: list[tuple[str, str]]) -> None:
        tally.bad_inputs[f"query {url}"] += 1
        data: dict[str, list[str]] = {}
        for key, value in query:
            data.setdefault(key, []).append(value)
        check(staff_client.get(url, data), url)

    run()


@pytest.mark.parametrize("url", PAGES)
def test_raw_undecodable_query_strings(url: str, staff_client: Client, tally: Tally) -> None:
    @settings(FUZZ, max_examples=15)
    @given(raw=raw_queries)
    def run(raw: str) -> None:
        tally.bad_inputs[f"raw {url}"] += 1
        check(staff_client.get(f"{url}?{raw}"), url)

    run()


@pytest.mark.parametrize("url", DETAILS)
def test_path_ids(url: str, staff_client: Client, tally: Tally) -> None:
    @settings(FUZZ, max_examples=25)
    @given(
        number=st.one_of(st.integers(min_value=0, max_value=10**40), st.sampled_from([0, 2**63]))
    )
    def run(number: int) -> None:
        tally.bad_inputs[f"path {url}"] += 1
        target = url.replace("/1/", f"/{number}/")
        check(staff_client.get(target, {"since": "all", "page": str(number)}), target)

    run()


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(texts, children, max_size=4)
    ),
    max_leaves=20,
)
commands = st.fixed_dictionaries(
    {"action": st.one_of(st.sampled_from(["filters", "pause", "resume", "toggle"]), json_values)},
    optional={key: st.one_of(values, json_values) for key in ("signal", "sender", "receiver",
                                                               "outcome", "host", "pid")},
)  # fmt: skip
text_frames = st.one_of(
    commands.map(json.dumps),
    json_values.map(lambda v: json.dumps(v)),
    texts,
    st.sampled_from([
        "[" * 5000, "{" * 3000, '{"a":' * 2000, "[" * 100_000, "x" * 10_000, '"\\ud800"',
        "NaN", "-Infinity", '{"action": NaN}', "{}", "[]", "null", '{"action": "filters",'
        ' "signal": "' + "s" * 5000 + '"}', "\x00", "\ufeff{}",
    ]),
)  # fmt: skip
frames = st.lists(st.one_of(text_frames, st.binary(max_size=64)), min_size=1, max_size=6)


async def drain(comm: WebsocketCommunicator) -> list[dict[str, Any]]:
    """Return every output queued so far (waiting briefly for more)."""
    out = []
    while not await comm.receive_nothing(timeout=0.02, interval=0.005):
        out.append(await comm.receive_output(timeout=1))
    return out


async def talk(user: Any, sent: list[str | bytes], query: bytes) -> list[dict[str, Any]]:
    """Connect, send the frames, then check the socket still answers a command."""
    comm = WebsocketCommunicator(LiveFeedConsumer.as_asgi(), "/ws/signals/")
    comm.scope["user"] = user
    comm.scope["query_string"] = query
    connected, _ = await comm.connect(timeout=5)
    assert connected
    outputs = await drain(comm)
    for frame in sent:  # one at a time: every frame gets its answer before the next is sent
        key = "bytes" if isinstance(frame, bytes) else "text"
        await comm.send_input({"type": "websocket.receive", key: frame})
        outputs.append(await comm.receive_output(timeout=5))
        outputs += await drain(comm)
    await comm.send_json_to({"action": "toggle"})
    outputs.append(await comm.receive_output(timeout=5))
    outputs += await drain(comm)
    await comm.disconnect()
    return outputs


def test_websocket_frames(staff_user: Any, tally: Tally) -> None:
    @settings(FUZZ, max_examples=60)
    @given(sent=frames, query=st.one_of(st.just(b""), st.binary(max_size=80)))
    def run(sent: list[str | bytes], query: bytes) -> None:
        tally.bad_inputs["websocket frames"] += len(sent) + 1
        outputs = async_to_sync(talk)(staff_user, sent, query)
        closes = [o for o in outputs if o["type"] == "websocket.close"]
        assert closes == [], closes  # never a closed connection
        decoded = [json.loads(o["text"]) for o in outputs if o["type"] == "websocket.send"]
        assert all("type" in d and "content" in d for d in decoded)
        assert any(d["type"] == "status" for d in decoded)  # still answering after the garbage
        errors = [d for d in decoded if d["type"] == "error"]
        bad = [f for f in sent if isinstance(f, bytes) or not _is_command(f)]
        assert len(errors) >= len(bad)  # every malformed frame got its error frame
        assert all(len(o.get("text", "")) < 1024 * 1024 for o in outputs)

    run()


def _is_command(frame: str) -> bool:
    """Return True for a frame the consumer accepts as a command."""
    if len(frame) > 8 * 1024:
        return False
    try:
        content = json.loads(frame)
    except (ValueError, RecursionError):
        return False
    return isinstance(content, dict) and content.get("action", "filters") in (
        "filters", "pause", "resume", "toggle",
    )  # fmt: skip


def test_the_alphabet_of_garbage_is_wide() -> None:
    """The fuzzers really send control characters, RTL marks and non-ASCII digits."""
    assert {"\x00", "\u202e", "٣"} <= set("".join(NASTY))
    assert set(string.punctuation) - set("".join(NASTY)) != set(string.punctuation)
