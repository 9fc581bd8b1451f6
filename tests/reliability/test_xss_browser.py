"""A corpus of XSS payloads, captured by a real daphne server from real signals (receiver names,
signal names, sender reprs, argument values and keys, exception messages, model reprs) and put in
query strings, is inert in a real Chromium: on every dashboard page and in the live fragments no
script runs, no dialog opens, no marked element or javascript: link appears, and the browser
reports no Content-Security-Policy violation (which would mean markup got through)."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import LiveServer
from tests.reliability.conftest import Tally
from tests.reliability.test_security import dashboard_urls
from tests.reliability.xss_payloads import PAYLOADS

if TYPE_CHECKING:
    from playwright.sync_api import Page, Response

pytestmark = pytest.mark.browser

CHUNK = 3  # payloads fired at once
PLACES = ("receiver name", "signal name", "sender repr", "argument value", "argument key",
          "exception message", "model repr", "query string")  # fmt: skip
WATCH = """() => {
  window.__csp = [];
  document.addEventListener("securitypolicyviolation",
    (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
}"""
INJECTED = """() => [
  ...document.querySelectorAll("[data-xss], xss-marker, base, meta[http-equiv], iframe, object"),
  ...[...document.querySelectorAll("a[href], iframe[src], form[action]")]
      .filter((e) => /^\\s*javascript:/i.test(e.getAttribute("href") || e.getAttribute("src")
                                              || e.getAttribute("action") || "")),
  ...[...document.querySelectorAll("script")].filter((s) => !s.src),
].map((e) => e.outerHTML.slice(0, 120))"""


class Watch:
    """What the browser did that it must not: dialogs, page errors, policy violations."""

    def __init__(self, page: Page) -> None:
        """Listen on ``page``."""
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.frames: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))
        page.context.add_init_script(f"({WATCH})()")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _frame(self, payload: str | bytes) -> None:
        if isinstance(payload, str) and '"content"' in payload:
            self.frames.append(payload)

    def policy_errors(self) -> list[str]:
        """Return console errors about the Content-Security-Policy."""
        words = ("Content Security Policy", "Refused to", "hx-csp")
        return [e for e in self.errors if any(word in e for word in words)]


def check_page(page: Page, watch: Watch, where: str) -> None:
    """Nothing injected, nothing ran, nothing was blocked, on the page as it is now."""
    assert page.evaluate(INJECTED) == [], where
    assert page.evaluate("window.__csp") == [], where
    assert watch.dialogs == [], where
    assert watch.policy_errors() == [], where


def check_policy(response: Response | None, where: str) -> None:
    """The page's script-src has neither 'unsafe-inline' nor 'unsafe-eval'."""
    assert response is not None and response.status in (200, 404), where
    policy = response.headers["content-security-policy"]
    script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
    assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src, where


def fire(server: LiveServer, start: int, count: int) -> int:
    """Make the server send payloads ``start`` to ``start + count``; return how many it sent."""
    url = f"{server.url}/xss/fire/?start={start}&count={count}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return int(json.loads(response.read())["sent"])


def visit(page: Page, watch: Watch, url: str, tally: Tally) -> None:
    """Open ``url`` and check it."""
    response = page.goto(url)
    tally.xss_page_loads += 1
    check_policy(response, url)
    check_page(page, watch, url)


def test_xss_payloads_are_inert_everywhere(
    daphne_factory: Callable[..., LiveServer],
    page: Page,
    tally: Tally,
    screenshot: Callable[[Page, str], Path],
) -> None:
    server = daphne_factory(DJANGO_SETTINGS_MODULE="tests.reliability.xss_settings")
    server.create_user("auditor")
    watch = Watch(page)
    server.login(page, "auditor")

    # Live fragments first: the page is connected when the payloads are sent.
    response = page.goto(f"{server.url}/signals/")
    check_policy(response, "live")
    page.wait_for_selector('#live-conn[data-state="live"]', state="attached")
    # A few payloads at a time: the feed shows a burst of 50 rows whole but skips beyond its
    # rate (200 rows a second) and keeps the newest 200 rows, and one payload makes ~7 events.
    for start in range(0, len(PAYLOADS), CHUNK):
        chunk = PAYLOADS[start : start + CHUNK]
        assert fire(server, start, CHUNK) == len(chunk)
        page.wait_for_function(  # a row per payload, sent by a sender whose repr is the payload
            """(payloads) => new Set([...document.querySelectorAll('#live-rows .snd')]
                 .map((e) => e.textContent).filter((t) => payloads.includes(t))).size
                 >= payloads.length""",
            arg=chunk,
            timeout=20_000,
        )
        check_page(page, watch, f"live fragments {start}")
        # Expanded rows show receiver names, exception messages and arguments too.
        page.evaluate(
            "() => document.querySelectorAll('#live-rows details.ev').forEach(d => d.open = true)"
        )
        check_page(page, watch, f"live fragments {start}, expanded")
        text = page.inner_text("#live-rows")
        assert all(payload in text for payload in chunk), start  # shown, as text
    fragments = [f for f in watch.frames if any(p in f for p in ("alert(", "data-xss"))]
    assert fragments, "no live fragment carried a payload"
    live_rows = sum(f.count('class=\\"ev ') for f in fragments)
    screenshot(page, "xss-live")

    # Every page, with the stored payloads and with payloads in the query string.
    base = f"{server.url}/signals/"
    pages = [url[len("/signals/") :] + "?since=all" for url in dashboard_urls() if "/1/" not in url]
    pages.append("failures/?view=list&since=all")
    deadline = time.monotonic() + 15
    while True:  # the server's writer stores events in the background
        page.goto(f"{base}failures/?view=list&since=all&per_page=500")
        links = page.eval_on_selector_all("td.err a", "(as) => as.map((a) => a.href)")
        if len(links) >= len(PAYLOADS) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert len(links) >= len(PAYLOADS)
    for path in pages:
        visit(page, watch, base + path, tally)
    screenshot(page, "xss-failures")
    for link in links[: len(PAYLOADS)]:
        visit(page, watch, link, tally)  # each failure: message, traceback, arguments, sender
    events = page.eval_on_selector_all("a[href*='/events/']", "(as) => as.map((a) => a.href)")
    for link in sorted(set(events))[:10]:
        visit(page, watch, link, tally)
    params = ("signal", "sender", "receiver", "exc_type", "sort", "page", "since", "q")
    for first in range(0, len(PAYLOADS), len(params)):  # every payload in some parameter
        chunk = [PAYLOADS[(first + i) % len(PAYLOADS)] for i in range(len(params))]
        query = urllib.parse.urlencode(dict(zip(params, chunk, strict=True)))
        for path in ("", "receivers/", "failures/", "registry/"):
            visit(page, watch, f"{base}{path}?{query}", tally)
    # Filter the live feed by a payload signal: the fragments of that view too.
    visit(page, watch, f"{base}?{urllib.parse.urlencode({'signal': _signal_name(0)})}", tally)

    tally.xss_payloads = len(PAYLOADS)
    tally.xss_placements = len(PAYLOADS) * len(PLACES)
    tally.xss_fragments = len(fragments)
    tally.xss_live_rows = live_rows
    tally.xss_script_runs = len(watch.dialogs)
    assert watch.dialogs == []
    assert [e for e in watch.errors if re.search(r"alert|xss", e, re.I)] == []


def _signal_name(index: int) -> str:
    """Return the dotted name the collector gives payload ``index``'s signal."""
    return f"tests.reliability.xss_urls.{PAYLOADS[index]}"
