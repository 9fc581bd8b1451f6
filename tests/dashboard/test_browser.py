"""End to end: Chromium against a real daphne server, signals caused from outside the page.

Each test saves screenshots in tests/artifacts/; the live-feed test also writes the measured
time from send() to the row in the browser's DOM to tests/artifacts/live_latency.json.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import ARTIFACTS, LiveServer, live_env, run_manage

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

POST_SAVE = "django.db.models.signals.post_save"
Screenshot = Callable[["Page", str], Path]

# Records, for every row added to the feed after it is installed, the milliseconds between the
# event's wall-clock time (data-ts, taken at send()) and the row's insertion into the DOM.
LATENCY_PROBE = """() => {
  window.__latencies = [];
  const since = Date.now();
  new MutationObserver((records) => {
    const now = Date.now();
    for (const record of records) for (const node of record.addedNodes) {
      const ts = node.dataset && parseFloat(node.dataset.ts);
      if (ts && ts >= since - 50) window.__latencies.push(now - ts);
    }
  }).observe(document.getElementById("live-rows"), {childList: true});
}"""


def post(server: LiveServer, path: str, data: dict[str, str] | None = None) -> Any:
    """POST a form to the demo app on the live server; return the decoded JSON reply."""
    body = urllib.parse.urlencode(data or {}).encode()
    request = urllib.request.Request(server.url + path, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return {"status": exc.code}


def sign_up(server: LiveServer) -> None:
    """Sign a user up through the demo's HTTP endpoint (post_save of User, Profile created)."""
    password = "Corr3ct-Horse-Battery"
    post(server, "/demo/signup/", {"username": f"user{time.time_ns()}", "password1": password,
                                   "password2": password})  # fmt: skip


def open_live_feed(server: LiveServer, page: Page, query: str = "") -> list[str]:
    """Log a staff user in, open the live feed, wait for the websocket; return console errors."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    server.create_user("watcher")
    server.login(page, "watcher")
    page.goto(f"{server.url}/signals/{query}")
    page.wait_for_selector('#live-conn[data-state="live"]', state="attached")
    return errors


def policy_errors(errors: list[str]) -> list[str]:
    """Return console errors caused by the Content-Security-Policy or htmx's CSP extension."""
    words = ("Content Security Policy", "Refused to", "hx-csp", "htmx")
    return [e for e in errors if any(word in e for word in words)]


def test_live_feed_rows_filter_and_pause(
    live_daphne: LiveServer, page: Page, screenshot: Screenshot
) -> None:
    errors = open_live_feed(live_daphne, page)
    page.evaluate(LATENCY_PROBE)
    for _ in range(5):
        sign_up(live_daphne)
        time.sleep(0.3)
    page.wait_for_function("() => window.__latencies.length >= 5")
    rows = page.locator("#live-rows details.ev")
    assert "post_save" in rows.locator(".sig").all_inner_texts()
    latencies = page.evaluate("window.__latencies")
    record_latency(latencies)
    screenshot(page, "live-feed")

    rows.first.locator("summary").click()
    assert rows.first.locator(".calls table.mini tr").count() >= 1
    screenshot(page, "live-feed-expanded")

    # A signal filter: the server sends only post_save, and the URL keeps it for bookmarks.
    page.select_option("select[name=signal]", POST_SAVE)
    page.wait_for_url(f"**/signals/?signal={POST_SAVE}")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#live-rows .sig')]"
        ".every(e => e.textContent === 'post_save')"
    )
    before = page.locator("#live-rows details.ev").count()
    sign_up(live_daphne)
    page.wait_for_function(
        f"() => document.querySelectorAll('#live-rows details.ev').length > {before}"
    )
    assert set(page.locator("#live-rows .sig").all_inner_texts()) == {"post_save"}
    screenshot(page, "live-feed-filtered")

    # Pause: rows stop, the count of what arrived meanwhile is shown; resume brings rows back.
    page.click("#live-pause")
    page.wait_for_selector("#live-pause-label:text('Resume')")
    count = page.locator("#live-rows details.ev").count()
    sign_up(live_daphne)
    page.wait_for_selector("#live-status:has-text('while paused')")
    assert page.locator("#live-rows details.ev").count() == count
    page.click("#live-pause")
    page.wait_for_selector("#live-pause-label:text('Pause')")
    sign_up(live_daphne)
    page.wait_for_function(
        f"() => document.querySelectorAll('#live-rows details.ev').length > {count}"
    )

    # The bookmarked URL opens the same filtered view.
    page.reload()
    page.wait_for_selector('#live-conn[data-state="live"]', state="attached")
    assert page.input_value("select[name=signal]") == POST_SAVE
    assert policy_errors(errors) == []


def record_latency(latencies: list[float]) -> None:
    """Save and print send()-to-DOM latencies (ms)."""
    summary = {
        "samples": len(latencies),
        "median_ms": round(statistics.median(latencies), 1),
        "max_ms": round(max(latencies), 1),
        "all_ms": [round(x, 1) for x in latencies],
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "live_latency.json").write_text(json.dumps(summary, indent=2))
    print(f"send() to DOM: median {summary['median_ms']} ms, max {summary['max_ms']} ms")
    assert summary["median_ms"] < 2_000


def test_live_feed_says_when_it_reconnects(live_daphne: LiveServer, page: Page) -> None:
    open_live_feed(live_daphne, page)
    live_daphne.stop()
    page.wait_for_selector('#live-conn[data-state="reconnecting"]', state="visible")
    assert "reconnecting" in page.inner_text("#live-conn")
    live_daphne.start()
    page.wait_for_selector('#live-conn[data-state="live"]', state="attached", timeout=30_000)
    before = page.locator("#live-rows details.ev").count()
    sign_up(live_daphne)
    page.wait_for_function(
        f"() => document.querySelectorAll('#live-rows details.ev').length > {before}"
    )


def cause_failure(server: LiveServer) -> None:
    """Generate stock reports until the demo's flaky upload receiver fails once."""
    for _ in range(200):
        if post(server, "/demo/reports/").get("delivered") is False:
            return
    raise AssertionError("the demo's upload receiver never failed")


def test_failure_traceback_and_every_page(
    live_daphne: LiveServer, page: Page, screenshot: Screenshot
) -> None:
    errors = open_live_feed(live_daphne, page)
    cause_failure(live_daphne)
    sign_up(live_daphne)
    deadline = time.monotonic() + 15
    while True:  # the collector's writer stores events in the background
        page.goto(f"{live_daphne.url}/signals/failures/")
        if page.locator("td.err a").count() or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    screenshot(page, "failures")
    page.locator("td.err a").first.click()
    page.wait_for_selector("pre.traceback")
    traceback = page.inner_text("pre.traceback")
    assert "Traceback (most recent call last)" in traceback
    assert "StorageUnavailableError" in traceback and "upload_report" in traceback
    assert "receivers.py" in page.inner_text("dl.facts")
    screenshot(page, "failure-detail")

    page.locator("dl.facts a[href*='/events/']").click()
    page.wait_for_selector("ul.tree")
    screenshot(page, "event-detail")
    pages = {"signals": "signals/", "receivers": "receivers/",
             "failures-list": "failures/?view=list", "registry": "registry/"}  # fmt: skip
    for name, path in pages.items():
        page.goto(f"{live_daphne.url}/signals/{path}")
        page.wait_for_selector("main table:visible, main section:visible")
        screenshot(page, name)
    assert policy_errors(errors) == []


def test_non_staff_sees_403_and_the_socket_closes_4403(live_daphne: LiveServer, page: Page) -> None:
    live_daphne.create_user("visitor", staff=False)
    live_daphne.login(page, "visitor")
    response = page.goto(f"{live_daphne.url}/signals/")
    assert response is not None and response.status == 403
    code = page.evaluate(
        """(url) => new Promise((resolve) => {
             const ws = new WebSocket(url);
             ws.onclose = (e) => resolve(e.code);
           })""",
        live_daphne.ws_url("/ws/signals/"),
    )
    assert code == 4403


def test_live_feed_and_failures_with_a_writer_process(
    daphne_factory: Callable[..., LiveServer], page: Page, tmp_path: Path
) -> None:
    """`make run`'s set-up (WRITER="process", the monitor in a SQLite file of its own): daphne's
    events are stored by its writer process into the monitor's file, none into the application's,
    and their live rows come back to daphne's hub over the socket (in-memory channel layer)."""
    monitor = tmp_path / "signals.sqlite3"
    env = {"SIGNAL_MONITOR_WRITER": "process", "SIGNAL_MONITOR_SQLITE_PATH": str(monitor)}
    run_manage(["migrate", "--noinput", "--database", "signals"],
               env=live_env(tmp_path / "unused.sqlite3", **env))  # fmt: skip
    server = daphne_factory(**env)
    in_app_before = _events_in(server.db_path)  # the template's, recorded by its migrate
    assert "W005" not in server.manage("check").stderr
    errors = open_live_feed(server, page)
    sign_up(server)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#live-rows .sig')]"
        ".some(e => e.textContent === 'post_save')"
    )
    cause_failure(server)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # stored within STORE_INTERVAL by the writer process
        page.goto(f"{server.url}/signals/failures/")
        if "StorageUnavailableError" in page.content():
            break
        time.sleep(0.5)
    assert "StorageUnavailableError" in page.content()
    writers = server.shell(
        "from collector.models import Event\n"
        "print(sorted(set(Event.objects.values_list('pid', flat=True))))"
    )
    assert server.process is not None
    assert str(server.process.pid) in writers
    with sqlite3.connect(monitor) as monitor_db:
        stored = monitor_db.execute(EVENTS).fetchone()[0]
    assert _events_in(server.db_path) == in_app_before and stored > 0
    children = [
        proc for proc in Path("/proc").iterdir()
        if proc.name.isdigit() and f"PPid:\t{server.process.pid}\n" in _read(proc / "status")
    ]  # fmt: skip
    assert any(b"collector.writer_process" in _read(c / "cmdline").encode() for c in children)
    assert not policy_errors(errors), errors


EVENTS = "SELECT count(*) FROM signals_collector_event"


def _events_in(path: Path) -> int:
    """Return how many events the SQLite file at ``path`` holds."""
    with sqlite3.connect(path) as db:
        return int(db.execute(EVENTS).fetchone()[0])


def _read(path: Path) -> str:
    """Return a /proc file's text ("" if the process is gone)."""
    try:
        return path.read_bytes().decode(errors="replace")
    except OSError:
        return ""
