"""A realistic request through Django's full handler, collector on vs off, interleaved.

The view builds 500 model instances (1000 pre_init/post_init sends, no receivers: Django's fast
path) and saves 20 of them (pre_save with one receiver, post_save with two), through the test
client's full WSGI handler (request_started/finished, middleware). The collector's writer thread
runs and stores into the same SQLite file (WAL), so its cost is included.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Any


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Return the request-time ratio with the collector on vs off."""
    from bench.setup import configure

    db = os.path.join(tempfile.mkdtemp(prefix="bench-request-"), "db.sqlite3")
    configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "collector", "bench.app"],
        ROOT_URLCONF="bench.app.urls",
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
        ALLOWED_HOSTS=["testserver"],
        DATABASES={"default": {
            "ENGINE": "django.db.backends.sqlite3", "NAME": db,
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                        "transaction_mode": "IMMEDIATE", "timeout": 20},
        }},
        SIGNAL_MONITOR={"SINKS": ["collector.sinks.DatabaseSink"], "AUTO_INSTALL": False},
    )
    from django.core.management import call_command
    from django.test import Client

    import collector
    from bench.app.models import Item
    from collector.models import Event

    call_command("migrate", run_syncdb=True, verbosity=0)
    Item.objects.bulk_create(Item(name=f"item {i}", price=i) for i in range(600))
    client = Client()
    per_round, rounds = (20, 6) if quick else (50, 16)

    def timed_round() -> float:
        started = time.perf_counter()
        for _ in range(per_round):
            assert client.get("/catalogue/").status_code == 200
        return (time.perf_counter() - started) / per_round

    collector.install()
    timed_round()  # warm up both paths
    collector.uninstall()
    timed_round()
    off, on = [], []
    for i in range(rounds):
        order = (False, True) if i % 2 == 0 else (True, False)
        for enabled in order:
            if enabled:
                collector.install()
                on.append(timed_round())
            else:
                collector.uninstall()
                off.append(timed_round())
    collector.uninstall()
    collector.install()
    assert collector.flush(30)
    stored = Event.objects.count()
    collector.uninstall()
    b, o = statistics.median(off), statistics.median(on)
    ratio = o / b
    return [{
        "benchmark": "request",
        "case": "list 500 + save 20, full handler",
        "figure": f"{(ratio - 1) * 100:+.1f}% ({b * 1000:.2f} -> {o * 1000:.2f} ms)",
        "budget": "<= +3%",
        "pass": ratio <= 1.03,
        "off_ms": round(b * 1000, 3),
        "on_ms": round(o * 1000, 3),
        "events_stored": stored,
    }]
