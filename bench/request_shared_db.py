"""The realistic request with the monitor's tables in the application's own SQLite file (reported).

SQLite lets one connection write at a time. When the monitor stores into the application's own
file, the application's writes wait while the writer process's transaction holds the lock: the
SQLite busy handler then sleeps 1, 2, 5, 10 ms... before each retry. ``bench.request``'s budget
rows measure the set-up ``make run`` ships and docs/deployment.md recommends (a file of the
monitor's own, with ``collector.routers.MonitorRouter``); this row runs the same sustained arms
with ``DATABASE_ALIAS`` the application's ``default``, which ``signals_collector.W005`` warns of.
"""

from __future__ import annotations

import os
from typing import Any


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Return the request's CPU and wall ratios, collector on vs off, monitor in the app's file."""
    os.environ["BENCH_SHARED_DB"] = "1"
    from bench import request

    client = request.setup_catalogue()
    request._use_writer("process")
    got = request._sustained(client, quick)
    from collector.models import Event

    got["events_in_default"] = Event.objects.using("default").count()
    tag = "WRITER='process', the application's SQLite file (W005)"
    return [
        {
            "benchmark": "request",
            "case": f"the same, {tag}: application CPU / wall",
            "figure": f"{(got['cpu'] - 1) * 100:+.1f}% ± {got['cpu_se'] * 100:.1f}% / "
            f"{(got['wall'] - 1) * 100:+.1f}% ± {got['wall_se'] * 100:.1f}% (totals "
            f"{(got['cpu_total'] - 1) * 100:+.1f}% / {(got['wall_total'] - 1) * 100:+.1f}%)",
            "budget": "(reported)",
            "pass": True,
            **{k: round(v, 4) for k, v in got.items()},
        }
    ]
