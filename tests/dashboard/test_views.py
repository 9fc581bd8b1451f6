"""Each page renders its data, applies its filters, and turns bad input into a message."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.dashboard.conftest import (
    ORDER_PLACED,
    POST_SAVE,
    make_counts,
    make_event,
    make_stats,
    traceback_text,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_store")]

XSS = '<script>alert("x")</script>'


class Page(HTMLParser):
    """Collects the text, the notices and the tags of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.text: list[str] = []
        self.notices: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._in_notice = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if "notice" in (dict(attrs).get("class") or "").split():
            self._in_notice += 1
            self.notices.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "p" and self._in_notice:
            self._in_notice -= 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_notice:
            self.notices[-1] += data

    @property
    def body(self) -> str:
        return " ".join(" ".join(self.text).split())

    def rows(self) -> int:
        """Return the number of body rows of the first data table."""
        return sum(1 for tag, _ in self.tags if tag == "tr") - 1


def get(client: Client, name: str, query: str = "", *args: int) -> tuple[int, Page]:
    response = client.get(reverse(f"signals_dashboard:{name}", args=args) + query)
    return response.status_code, Page(response.content.decode())


def test_live_page_wires_the_websocket_with_filters(staff_client: Client) -> None:
    status, page = get(staff_client, "live", "?signal=" + POST_SAVE + "&outcome=error")
    assert status == 200
    live = next(attrs for tag, attrs in page.tags if attrs.get("id") == "live")
    assert live["hx-ws:connect"] == f"/ws/signals/?signal={POST_SAVE}&outcome=error"
    nonces = {attrs.get("hx-nonce") for _, attrs in page.tags if "hx-nonce" in attrs}
    script_nonces = {attrs.get("nonce") for tag, attrs in page.tags if tag == "script"}
    assert len(nonces) == 1 and nonces == script_nonces  # hx-csp: every htmx element is vouched
    assert not any(tag == "script" and not attrs.get("src") for tag, attrs in page.tags)
    assert not any("style" in attrs for _, attrs in page.tags)
    assert not any(tag == "style" for tag, _ in page.tags)


def test_live_page_reports_bad_filters(staff_client: Client) -> None:
    status, page = get(staff_client, "live", "?outcome=sideways&signal=no.such.signal")
    assert status == 200
    assert any("outcome" in n for n in page.notices)
    assert any("no.such.signal" in n for n in page.notices)


def test_signals_page(staff_client: Client) -> None:
    make_counts(ORDER_PLACED, [1, 2, 3, 4])
    make_stats("demo.receivers.on_order", [1_000_000] * 20 + [50_000_000], failures=2)
    status, page = get(staff_client, "signals")
    assert status == 200
    assert ORDER_PLACED in page.body
    assert POST_SAVE in page.body  # registry signals appear even without traffic
    assert any(tag == "svg" for tag, _ in page.tags)


def test_signals_page_bad_window(staff_client: Client) -> None:
    status, page = get(staff_client, "signals", "?since=forever&page=abc&sort=nope")
    assert status == 200
    assert len(page.notices) == 3


def test_receivers_table_from_rollups(staff_client: Client) -> None:
    make_stats("demo.receivers.fast", [10_000] * 99 + [5_000_000])
    make_stats("demo.receivers.slow", [80_000_000] * 10, failures=3, signal=POST_SAVE)
    status, page = get(staff_client, "receivers", "?sort=-p95_ns")
    assert status == 200
    body = page.body
    assert body.index("demo.receivers.slow") < body.index("demo.receivers.fast")
    assert "30.0%" in body  # error rate of the slow one


def test_receivers_filters(staff_client: Client) -> None:
    make_stats("demo.receivers.fast", [10_000] * 5)
    make_stats("demo.receivers.slow", [80_000_000], signal=POST_SAVE, sender="auth.User")
    _, page = get(staff_client, "receivers", f"?signal={POST_SAVE}")
    assert "demo.receivers.slow" in page.body and "demo.receivers.fast" not in page.body
    _, page = get(staff_client, "receivers", "?sender=user")
    assert "demo.receivers.slow" in page.body and "demo.receivers.fast" not in page.body
    _, page = get(staff_client, "receivers", "?receiver=FAST")
    assert "demo.receivers.fast" in page.body and "demo.receivers.slow" not in page.body


def test_receivers_window_excludes_old_rollups(staff_client: Client) -> None:
    make_stats("demo.receivers.old", [1000], minute=timezone.now() - timedelta(days=2))
    _, page = get(staff_client, "receivers")
    assert "demo.receivers.old" not in page.body
    _, page = get(staff_client, "receivers", "?since=7d")
    assert "demo.receivers.old" in page.body


@pytest.mark.parametrize(
    "query, expected",
    [
        ("?signal=no.such.signal", "Signal"),
        ("?start=yesterday-ish", "Start"),
        ("?end=2024-13-45", "End"),
        ("?since=fortnight", "Window"),
        ("?page=999999999", "Page 999999999"),
        ("?page=-3", ""),
        ("?per_page=lots", "per_page"),
        ("?sort=password", "sort"),
        ("?sender=" + "x" * 400, "Sender"),
        ("?receiver=a%00b", "Receiver"),
    ],
)
def test_receivers_bad_input_gives_a_message(
    staff_client: Client, query: str, expected: str
) -> None:
    make_stats("demo.receivers.fast", [10_000])
    status, page = get(staff_client, "receivers", query)
    assert status == 200
    if expected:
        assert any(expected in n for n in page.notices), page.notices
    assert "demo.receivers.fast" in page.body  # the bad filter is ignored, the rest still shows


def test_receivers_csv_export(staff_client: Client) -> None:
    make_stats("=cmd|' /C calc'!A0", [10_000] * 3)
    make_stats("demo.receivers.fast", [10_000] * 3)
    response = staff_client.get(reverse("signals_dashboard:receivers") + "?format=csv&per_page=1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][0] == "Receiver"
    assert len(rows) == 3  # every row, not only the page
    assert {row[0] for row in rows[1:]} == {"demo.receivers.fast", "'=cmd|' /C calc'!A0"}


def failing_call(
    receiver: str = "demo.receivers.charge", line: int = 42, message: str = "declined"
) -> tuple[str, int, str, str, str]:
    return (
        receiver,
        2_000_000,
        "demo.exceptions.PaymentError",
        message,
        traceback_text(line=line, message=message),
    )


def test_failures_grouped_by_receiver_type_and_location(staff_client: Client) -> None:
    now = timezone.now()
    for minutes in (30, 20, 10):
        make_event(calls=[failing_call()], when=now - timedelta(minutes=minutes))
    make_event(calls=[failing_call(line=99)], when=now)
    status, page = get(staff_client, "failures")
    assert status == 200
    assert "receivers.py:42 in charge" in page.body and "receivers.py:99 in charge" in page.body
    assert page.rows() == 2


def test_failures_list_view_and_filters(staff_client: Client) -> None:
    make_event(calls=[failing_call()], signal=POST_SAVE, sender="auth.User")
    make_event(calls=[failing_call("demo.receivers.other")])
    make_event(calls=[("demo.receivers.ok", 1000)])
    _, page = get(staff_client, "failures", "?view=list")
    assert page.rows() == 2
    for query in (f"&signal={POST_SAVE}", "&sender=USER", "&receiver=charge", "&exc_type=Payment"):
        _, page = get(staff_client, "failures", "?view=list" + query)
        assert page.rows() == (2 if query == "&exc_type=Payment" else 1), query


def test_failures_time_range(staff_client: Client) -> None:
    make_event(calls=[failing_call()], when=timezone.now() - timedelta(days=3))
    _, page = get(staff_client, "failures", "?view=list&since=24h")
    assert "No failures match." in page.body
    day = (timezone.now() - timedelta(days=4)).strftime("%Y-%m-%d")
    _, page = get(staff_client, "failures", f"?view=list&since=all&start={day}")
    assert page.rows() == 1


@pytest.mark.parametrize(
    "query",
    [
        "?start=garbage",
        "?end=31/31/31",
        "?signal=unknown",
        "?page=999999999",
        "?sort=x,-y",
        "?view=list&page=999999999",
        "?view=list&sort=traceback",
        "?since=%00",
    ],
)
def test_failures_bad_input(staff_client: Client, query: str) -> None:
    make_event(calls=[failing_call()])
    status, page = get(staff_client, "failures", query)
    assert status == 200
    assert page.notices


def test_failure_detail(staff_client: Client) -> None:
    root = make_event(
        signal=POST_SAVE,
        sender="auth.User",
        request_path="/demo/signup/",
        calls=[("demo.receivers.create_profile", 1000)],
    )
    event = make_event(calls=[failing_call(message=XSS)], parent=(root, 0), kwargs={"order": XSS})
    call = event.calls.get()
    response = staff_client.get(reverse("signals_dashboard:failure", args=[call.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert XSS not in html and "&lt;script&gt;" in html
    page = Page(html)
    assert "Traceback (most recent call last)" in page.body
    assert "receivers.py:42 in charge" in page.body
    assert "demo.receivers.create_profile" in page.body  # the parent chain
    assert "/demo/signup/" in page.body


def test_failure_detail_missing(staff_client: Client) -> None:
    assert get(staff_client, "failure", "", 123456)[0] == 404
    assert get(staff_client, "failure", "", 2**70)[0] == 404


def test_event_detail_with_causal_tree(staff_client: Client) -> None:
    root = make_event(
        signal=POST_SAVE,
        sender="auth.User",
        calls=[("demo.receivers.create_profile", 1000), ("demo.receivers.log", 10)],
    )
    child = make_event(
        signal=POST_SAVE,
        sender="demo.Profile",
        parent=(root, 0),
        calls=[("demo.receivers.slugify", 100)],
    )
    make_event(signal=ORDER_PLACED, sender="demo.Profile", parent=(child, 0), calls=[])
    status, page = get(staff_client, "event", "", root.pk)
    assert status == 200
    body = page.body
    assert body.index("demo.receivers.create_profile") < body.index("demo.Profile")
    assert "demo.receivers.slugify" in body and "order_placed" in body
    status, page = get(staff_client, "event", "", child.pk)
    assert "demo.receivers.create_profile" in page.body  # ancestors shown


def test_event_detail_missing_and_huge_ids(staff_client: Client) -> None:
    assert get(staff_client, "event", "", 42)[0] == 404
    assert get(staff_client, "event", "", 2**64)[0] == 404


def test_registry_page(staff_client: Client) -> None:
    status, page = get(staff_client, "registry")
    assert status == 200
    assert POST_SAVE in page.body
    status, page = get(staff_client, "registry", "?q=request_started&empty=hide")
    assert status == 200
    assert "django.core.signals.request_started" in page.body
    assert POST_SAVE not in page.body


def test_captured_text_is_escaped_everywhere(staff_client: Client) -> None:
    make_stats(XSS, [1000])
    make_event(sender=XSS, calls=[failing_call(XSS, message=XSS)])
    for name, query in (("receivers", ""), ("failures", ""), ("failures", "?view=list")):
        html = staff_client.get(reverse(f"signals_dashboard:{name}") + query).content.decode()
        assert XSS not in html, name


def test_failures_list_pages_count_from_the_rollups(staff_client: Client) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    now = timezone.now()
    for minutes in (3, 2, 1):
        make_event(calls=[failing_call()], when=now - timedelta(minutes=minutes))
    make_event(calls=[failing_call()], when=now - timedelta(days=2))  # outside 24h
    with CaptureQueriesContext(connection) as queries:
        _, page = get(staff_client, "failures", "?view=list&per_page=2&since=24h")
    assert page.rows() == 2 and "page 1 of 2 · 3 rows" in page.body
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert not any("receivercall" in sql for sql in counts)  # no COUNT over stored calls
    _, page = get(staff_client, "failures", "?view=list&per_page=2&since=24h&page=2")
    assert page.rows() == 1


def test_a_store_without_the_collector_tables_answers_503_with_the_migrate_command(
    staff_client: Client, empty_store: None
) -> None:
    """The monitor's database not migrated (`migrate --database <alias>` forgotten): every page
    says what to run instead of failing with a server error; the dropped table comes back with
    the test's transaction."""
    from django.db import connection

    with connection.cursor() as cursor:  # the page reads minutes, slots or both (by the clock)
        cursor.execute("DROP TABLE signals_collector_receiverstat")
        cursor.execute("DROP TABLE signals_collector_receiverrollup")
    response = staff_client.get(reverse("signals_dashboard:receivers"))
    assert response.status_code == 503
    text = response.content.decode()
    assert "migrate --database default" in text and "Traceback" not in text


def test_a_database_error_with_the_tables_in_place_is_not_hidden(
    staff_client: Client, empty_store: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only missing tables become the 503 page: any other database error propagates as it was."""
    from django.db import OperationalError

    from dashboard import selectors

    def broken(*args: object, **kwargs: object) -> None:
        raise OperationalError("disk I/O error")

    monkeypatch.setattr(selectors, "signal_overview", broken)
    with pytest.raises(OperationalError, match="disk I/O"):
        staff_client.get(reverse("signals_dashboard:signals"))
