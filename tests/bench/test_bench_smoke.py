"""Tiny runs of the ingest, scale and memory benchmarks: they run, rows keep their shape.

The live-latency benchmark needs daphne, Redis, 20 viewers and Chromium at once; on a loaded
2-core machine its tiny run was flaky, so it is exercised by `make bench-quick`, not here.

Each benchmark configures Django its own way, so each runs in a subprocess, as ``python -m bench``
runs them. Nothing here asserts a timing: only that rows are well formed and numbers measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

KEYS = {"benchmark", "case", "figure", "budget", "pass"}


def run_tiny(name: str) -> list[dict[str, Any]]:
    """Run ``bench.<name>.run(tiny=True)`` in a fresh interpreter and return its rows."""
    code = (
        f"import json, sys; from bench import {name} as m; "
        "sys.stdout.write('@@ROWS@@' + json.dumps(m.run(quick=True, tiny=True)))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout.split("@@ROWS@@", 1)[1])
    assert rows
    for row in rows:
        assert set(row) >= KEYS, row
        assert row["benchmark"] == name
        assert isinstance(row["pass"], bool)
        assert isinstance(row["figure"], str) and row["figure"]
    return rows


def test_ingest_tiny() -> None:
    rows = run_tiny("ingest")
    for writer in ("process", "thread"):
        sqlite = [r for r in rows if r["case"].startswith(f"SQLite, WRITER='{writer}'")]
        assert len(sqlite) == 3
        stored, floor, cpu = sqlite
        assert stored["calls_stored"] == stored["calls_sent"] > 0
        assert stored["calls_per_s"] > 0 and stored["dropped"] == 0
        assert floor["floor"]["calls_per_s"] > 0 and floor["ratio"] > 0
        assert cpu["share"] > 0 and cpu["us_per_event"] > 0
    postgres = [r for r in rows if r["case"].startswith("PostgreSQL")]
    if not postgres[0]["figure"].startswith("PostgreSQL not running"):
        assert postgres[0]["calls_stored"] == postgres[0]["calls_sent"] > 0


def test_request_sustained_arms_measure_both_arms() -> None:
    """The request benchmark's sustained arms (quick) count requests, CPU and wall in both arms,
    here with the monitor in the application's SQLite file (the budget rows use its own)."""
    code = (
        "import json, sys; from bench import request_shared_db as m; "
        "sys.stdout.write('@@ROWS@@' + json.dumps(m.run(quick=True)))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = json.loads(proc.stdout.split("@@ROWS@@", 1)[1])
    assert set(row) >= KEYS and row["pairs"] == 4
    assert row["writer_ms"] > 0  # the writer process stored the on arms' events...
    assert row["events_in_default"] > 0  # ...in the application's file


def test_request_pools_arms_from_several_interpreters() -> None:
    """The budget row's arms (quick: 2 pairs in each of 2 interpreters, the monitor in its own
    SQLite file) come back from the child interpreters and are pooled: 4 pairs, one median per
    interpreter, requests counted in both arms."""
    code = (
        "import json, sys; from bench import request as m; client = m.setup_catalogue(); "
        "sys.stdout.write('@@ROWS@@' + json.dumps(m._pooled(quick=True)))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(BENCH_REQUEST_PAIRS="4", BENCH_REQUEST_INTERPRETERS="2")
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.split("@@ROWS@@", 1)[1])
    assert got["pairs"] == 4 and len(got["per_interpreter"]) == 2
    assert got["requests"] > 8 and got["cpu"] > 0 and got["wall"] > 0
    assert got["writer_ms"] > 0  # each child's writer process stored its on arms' events


def test_memory_tiny() -> None:
    growth, steady, drops, sizes = run_tiny("memory")
    assert growth["baseline"] > 0 and growth["peak"] >= growth["baseline"]
    assert growth["events"] > 0 and growth["db_errors"] > 0  # the database really was down
    assert drops["pass"]  # every event sent is held or counted as dropped
    assert sizes["per_record"] > 0 and sizes["per_event"] > 0


def test_scale_tiny() -> None:
    rows = run_tiny("scale")
    overall = rows[-1]
    assert overall["facts"]["rows"]["receivercall"] > 0
    pages = [page for r in rows[:-1] for page in r["pages"]]
    assert len(pages) >= 40
    for page in pages:
        assert page["status"] == 200, page
        assert page["p95_ms"] > 0


def test_request_parts_thread_figures() -> None:
    """bench.request_parts's per-thread CPU (the part `make bench` does not run) is measured."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.request_parts", "--run", "threads"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    per_thread = json.loads(proc.stdout.strip().splitlines()[-1])
    assert per_thread["MainThread"] > 0
    assert per_thread["signal-monitor-writer"] > 0  # the thread that ships records
    assert per_thread["writer process"] > 0
