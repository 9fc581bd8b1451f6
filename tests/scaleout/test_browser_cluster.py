"""The browser on a scaled-out set-up: rows from four processes, process filters, Redis outage.

Chromium opens the live feed of the dashboard daphne while a custom sender, a demo_traffic
sender, a second daphne answering requests and the dashboard itself send signals through
channels-redis and PostgreSQL. Screenshots: tests/artifacts/scaleout-*.png.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import RedisServer
from tests.scaleout.harness import Cluster, RequestDriver, Sender

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.scaleout, pytest.mark.slow]

Screenshot = Callable[["Page", str], Path]

# Counts the rows added to the feed per origin ("host:pid") in window.__origins.
ORIGIN_PROBE = """() => {
  window.__origins = {};
  new MutationObserver((records) => {
    for (const record of records) for (const node of record.addedNodes) {
      const link = node.querySelector && node.querySelector("a.origin");
      if (link) window.__origins[link.textContent] = (window.__origins[link.textContent] || 0) + 1;
    }
  }).observe(document.getElementById("live-rows"), {childList: true});
}"""


def test_browser_sees_four_processes_filters_one_and_survives_redis_restart(
    cluster: Cluster,
    redis_server: RedisServer,
    start_sender: Callable[..., Sender],
    page: Page,
    screenshot: Screenshot,
) -> None:
    custom = start_sender(cluster.env, "--count", "1500", "--rate", "60")
    demo = start_sender(cluster.env, "--demo", "8", "--demo-rate", "4")
    origins = {
        "{}:{}".format(*Cluster.origin(cluster.dashboard)),
        "{}:{}".format(*Cluster.origin(cluster.web)),
        f"{custom.host}:{custom.pid}",
        f"{demo.host}:{demo.pid}",
    }
    cluster.dashboard.create_user("browser")
    cluster.dashboard.login(page, "browser")
    page.goto(f"{cluster.dashboard.url}/signals/")
    page.wait_for_selector('#live-conn[data-state="live"]', state="attached")
    page.evaluate(ORIGIN_PROBE)
    loads = [
        RequestDriver(cluster.web, run="b-web", rate=10, seconds=20),
        RequestDriver(cluster.dashboard, run="b-dash", rate=3, seconds=20),
    ]
    custom.go()
    demo.go()
    for load in loads:
        load.start()

    # Rows from all four processes arrive in the browser.
    page.wait_for_function(
        "(wanted) => wanted.every((origin) => (window.__origins || {})[origin] > 0)",
        arg=sorted(origins),
        timeout=20_000,
    )
    screenshot(page, "scaleout-live-feed")

    # Filter by one process (host and pid): only its rows, and the URL keeps the filter.
    page.select_option("select[name=host]", custom.host)
    page.fill("input[name=pid]", str(custom.pid))
    page.locator("input[name=pid]").dispatch_event("change")
    page.wait_for_url(re.compile(rf".*pid={custom.pid}.*"))
    page.wait_for_function(
        "(origin) => { const links = [...document.querySelectorAll('#live-rows a.origin')];"
        " return links.length > 0 && links.every((a) => a.textContent === origin); }",
        arg=f"{custom.host}:{custom.pid}",
    )
    screenshot(page, "scaleout-live-feed-one-process")

    # Redis stops: the page says live events are offline; Redis returns: the feed resumes.
    redis_server.stop()
    page.wait_for_selector('#live-conn[data-state="offline"]', state="visible", timeout=15_000)
    assert "offline" in page.inner_text("#live-conn").lower()
    screenshot(page, "scaleout-live-offline")
    time.sleep(2)
    redis_server.start()
    page.wait_for_selector('#live-conn[data-state="live"]', state="attached", timeout=20_000)
    resumed = time.time() * 1000
    page.wait_for_function(
        "(since) => [...document.querySelectorAll('#live-rows details.ev')]"
        ".some((row) => parseFloat(row.dataset.ts) >= since)",
        arg=resumed,
        timeout=20_000,
    )

    # The processes page lists the four, and a process's failures are one click away.
    process_links = "tbody td a[href^='/signals/?host=']"
    page.goto(f"{cluster.dashboard.url}/signals/processes/")
    page.wait_for_selector("#processes")
    listed = set(page.locator(f"table#processes {process_links}").all_inner_texts())
    assert origins <= listed, listed
    screenshot(page, "scaleout-processes")
    page.goto(f"{cluster.dashboard.url}/signals/failures/?view=list&pid={custom.pid}")
    page.wait_for_selector(f"table.grid {process_links}")
    shown = set(page.locator(f"table.grid {process_links}").all_inner_texts())
    assert shown == {f"{custom.host}:{custom.pid}"}, shown
    screenshot(page, "scaleout-failures-one-process")
    custom.stop()
    demo.stop()
