"""The realistic request with the monitor's tables in a SQLite file of their own (reported).

SQLite lets one connection write at a time. When the monitor stores into the application's own
file (the default, which ``bench.request``'s budget rows measure), the application's writes wait
while the writer process's transaction holds the lock: the SQLite busy handler then sleeps 1, 2,
5, 10 ms... before each retry. This row runs the same sustained arms with ``DATABASE_ALIAS``
naming a second SQLite file and ``collector.routers.MonitorRouter`` installed, as
docs/deployment.md recommends for SQLite.
"""

from __future__ import annotations

import os
from typing import Any


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Return the request's CPU and wall ratios, collector on vs off, monitor in its own file."""
    os.environ["BENCH_OWN_DB"] = "1"
    from bench import request

    client = request.setup_catalogue()
    request._use_writer("process")
    got = request._sustained(client, quick)
    from django.db import connections

    from collector.models import Event

    with connections["default"].cursor() as cursor:
        tables = connections["default"].introspection.table_names(cursor)
    got["events_in_monitor"] = Event.objects.using("monitor").count()
    got["collector_tables_in_default"] = sum(t.startswith("signals_collector") for t in tables)
    tag = "WRITER='process', own SQLite file"
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
