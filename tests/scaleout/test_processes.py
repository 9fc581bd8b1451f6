"""Which process sent what: host/pid filters (live feed, failures), the processes page, queries."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import collector
from collector import rollups
from collector.models import CollectorHealth, Event, ReceiverCall, ReceiverStat, SignalCount
from dashboard import selectors
from dashboard import urls as dashboard_urls
from dashboard.feed import FeedFilters

pytestmark = pytest.mark.scaleout

PROCESSES_URLS = "tests.scaleout.urls"
_ids = itertools.count(5_000_000)


@pytest.fixture
def empty_store(db: None) -> Iterator[None]:
    """The hook off and the store empty (migrate recorded signals of the test database).

    No flush here: inside the test's transaction the writer would wait for its lock.
    """
    collector.uninstall()
    for model in (Event, ReceiverCall, ReceiverStat, SignalCount, CollectorHealth):
        model.objects.all().delete()
    yield
    collector.install()


def store(host: str, pid: int, *, ago: float = 60.0, failed: bool = False) -> Event:
    """Store one event with one receiver call, sent by ``host``/``pid`` ``ago`` seconds ago."""
    when = timezone.now() - timedelta(seconds=ago)
    event = Event.objects.create(
        id=next(_ids), signal="app.signals.ping", sender="app.Thing", method="send",
        timestamp=when, duration_ns=9_000, receiver_count=1, failure_count=int(failed),
        host=host, pid=pid,
        calls_json=json.dumps(
            [[0, "app.receivers.on_ping", 8_000, False, *(("ValueError", "bad") if failed else ())]]
        ),
    )  # fmt: skip
    if failed:  # as the writer: only a failed call gets a row of its own
        ReceiverCall.objects.create(
            event=event, index=0, receiver="app.receivers.on_ping", duration_ns=8_000,
            outcome="error", exc_type="ValueError", exc_message="bad", signal=event.signal,
            sender=event.sender, timestamp=when,
        )  # fmt: skip
    rollups.rebuild()  # the slot rollups the writer keeps beside what it stores
    return event


class Links(HTMLParser):
    """Collects (href, text) of every link in a page's <main>."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""

    def handle_data(self, data: str) -> None:
        if self._href is not None and data.strip():
            self.links.append((self._href, data.strip()))
            self._href = None


# ---- live feed filters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value", "error"),
    [
        ("1234", "1234", ""),
        ("007", "7", ""),
        ("0", "", "Ignored pid filter '0'"),
        ("-5", "", "Ignored pid filter '-5'"),
        ("12ab", "", "Ignored pid filter '12ab'"),
        ("²", "", "Ignored pid filter '²'"),
        ("99999999999", "", "Ignored pid filter"),
    ],
)
def test_pid_filter_values(raw: str, value: str, error: str) -> None:
    filters, errors = FeedFilters.parse({"pid": raw})
    assert filters.pid == value
    assert errors[0].startswith(error) if error else errors == []


def test_host_and_pid_match_the_event_and_go_into_the_query_string() -> None:
    filters, errors = FeedFilters.parse({"host": " web-1 ", "pid": "42"})
    assert errors == [] and filters.as_dict() == {"host": "web-1", "pid": "42"}
    assert filters.querystring() == "host=web-1&pid=42"
    assert filters.matches({"host": "web-1", "pid": 42})
    assert not filters.matches({"host": "web-1", "pid": 43})
    assert not filters.matches({"host": "web-2", "pid": 42})
    only_host, _ = FeedFilters.parse({"host": "web-1"})
    assert only_host.matches({"host": "web-1", "pid": 1}) and not only_host.matches({"host": "x"})


@pytest.mark.usefixtures("empty_store")
def test_backfill_honours_host_and_pid() -> None:
    store("web-1", 1)
    wanted = store("web-1", 2)
    store("web-2", 2)
    filters, _ = FeedFilters.parse({"host": "web-1", "pid": "2"})
    assert [e["id"] for e in selectors.recent_events(filters=filters)] == [wanted.pk]


# ---- queries ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("empty_store")
def test_other_process_event_keys_skip_this_process_and_older_events() -> None:
    store("web-1", 1, ago=30)
    mine = store("web-1", 2, ago=1)
    theirs = [store("web-1", 1, ago=2), store("web-2", 2, ago=1)]
    since = (timezone.now() - timedelta(seconds=5)).timestamp()
    keys = selectors.other_process_event_keys(since=since, host="web-1", pid=2, limit=10)
    assert [event_id for event_id, _ in keys] == [e.pk for e in reversed(theirs)]
    assert mine.pk not in dict(keys)
    assert selectors.other_process_event_keys(since=since, host="x", pid=0, limit=1) == keys[:1]


@pytest.mark.usefixtures("empty_store")
def test_process_overview_counts_each_process_and_joins_its_health() -> None:
    for _ in range(3):
        store("web-1", 10)
    store("web-1", 10, failed=True, ago=5)
    store("worker", 20, ago=120)
    store("old", 30, ago=3 * 3600)
    now = timezone.now()
    CollectorHealth.objects.create(
        host="web-1", pid=10, started=now - timedelta(hours=1), updated=now,
        events_written=1234, dropped={"queue_full": 3, "db_backlog_full": 2}, last_error="boom",
    )  # fmt: skip
    CollectorHealth.objects.create(host="idle", pid=40, started=now, updated=now)
    rows = selectors.process_overview(start=now - timedelta(hours=1))
    by_key = {(r["host"], r["pid"]): r for r in rows}
    assert set(by_key) == {("web-1", 10), ("worker", 20), ("idle", 40)}
    assert (by_key["web-1", 10]["events"], by_key["web-1", 10]["failed"]) == (4, 1)
    assert by_key["web-1", 10]["health"].events_written == 1234
    assert by_key["idle", 40]["events"] == 0 and by_key["worker", 20]["health"] is None
    assert rows[-1]["host"] == "worker"  # the least recently heard of comes last
    assert selectors.known_hosts() == ["old", "web-1", "worker"]


# ---- pages ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("empty_store")
def test_live_page_offers_the_known_hosts_and_keeps_the_filters(staff_client: Client) -> None:
    store("web-1", 10)
    store("web-2", 11)
    response = staff_client.get(reverse("signals_dashboard:live"), {"host": "web-2", "pid": "11"})
    html = response.content.decode()
    assert response.status_code == 200
    assert '<option value="web-2" selected>web-2</option>' in html
    assert '<option value="web-1">web-1</option>' in html
    assert 'name="pid" value="11"' in html
    assert "/ws/signals/?host=web-2&amp;pid=11" in html


@pytest.mark.usefixtures("empty_store")
def test_live_page_says_when_a_host_has_not_been_seen(staff_client: Client) -> None:
    response = staff_client.get(reverse("signals_dashboard:live"), {"host": "nowhere"})
    assert "Host &#x27;nowhere&#x27; has not stored events yet" in response.content.decode()


@pytest.mark.usefixtures("empty_store")
def test_failures_filter_by_process_and_show_it(staff_client: Client) -> None:
    store("web-1", 10, failed=True)
    store("web-2", 20, failed=True)
    url = reverse("signals_dashboard:failures")
    html = staff_client.get(url, {"view": "list", "host": "web-2", "pid": "20"}).content.decode()
    processes = [text for href, text in Links(html).links if href.startswith("/signals/?host=")]
    assert processes == ["web-2:20"]
    counts = re.compile(r'<td class="num">(\d+)</td>')
    assert counts.findall(staff_client.get(url).content.decode()) == ["2"]
    assert counts.findall(staff_client.get(url, {"pid": "10"}).content.decode()) == ["1"]
    bad = staff_client.get(url, {"pid": "abc", "host": "mars"}).content.decode()
    assert "Ignored PID filter" in bad and "Ignored Host filter" in bad


@pytest.mark.urls(PROCESSES_URLS)
@pytest.mark.usefixtures("empty_store")
def test_processes_page_lists_processes_with_links(staff_client: Client) -> None:
    store("web-1", 10)
    store("web-1", 10, failed=True)
    store("worker", 20)
    response = staff_client.get(reverse("signals_dashboard:processes"))
    html = response.content.decode()
    assert response.status_code == 200
    links = Links(html).links
    assert ("/signals/?host=web-1&pid=10", "web-1:10") in links
    assert ("/signals/failures/?host=web-1&pid=10", "1") in links
    assert "Collector error" not in html  # no process reports its health: no empty columns
    assert 'aria-current="page">Processes</a>' in html
    assert "This page is served by" in html


@pytest.mark.urls(PROCESSES_URLS)
@pytest.mark.usefixtures("empty_store")
def test_processes_page_shows_collector_health_and_bad_windows(staff_client: Client) -> None:
    now = timezone.now()
    CollectorHealth.objects.create(
        host="web-1", pid=10, started=now, updated=now, events_written=4321,
        dropped={"queue_full": 7}, last_error="database write failed",
    )  # fmt: skip
    html = staff_client.get(reverse("signals_dashboard:processes"), {"since": "1y"}).content
    text = html.decode()
    assert "4,321" in text and ">7<" in text and "database write failed" in text
    assert "Ignored window &#x27;1y&#x27;" in text


@pytest.mark.urls(PROCESSES_URLS)
@pytest.mark.usefixtures("empty_store")
def test_processes_page_is_staff_only(client: Client, user_client: Client) -> None:
    url = reverse("signals_dashboard:processes")
    assert client.get(url).status_code == 302
    assert user_client.get(url).status_code == 403


@pytest.mark.usefixtures("empty_store")
def test_nav_has_no_processes_link_until_the_url_exists(staff_client: Client) -> None:
    html = staff_client.get(reverse("signals_dashboard:signals")).content.decode()
    has_route = any(getattr(p, "name", None) == "processes" for p in dashboard_urls.urlpatterns)
    assert (">Processes</a>" in html) is has_route
