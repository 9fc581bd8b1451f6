"""``python -m bench [--quick] [--only NAME] [--json PATH]``: run the benchmarks, print one table.

Each benchmark module has ``run(quick: bool) -> list[dict]``; a row holds ``benchmark``, ``case``,
``figure`` (what was measured, as text), ``budget`` (the limit, as text), ``pass`` (bool) and any
raw numbers. Modules run in separate processes so one's settings and patches cannot bleed into
another's.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCHMARKS = [
    "dispatch", "peers", "request", "request_shared_db", "request_cost", "ingest", "latency",
    "scale", "memory",
]
# Run by the full ``make bench`` (and by ``--only``), not by ``--quick``: several minutes under callgrind.
FULL_ONLY = {"request_cost"}
ROOT = Path(__file__).resolve().parent.parent


def _table(rows: list[dict[str, Any]]) -> str:
    """Format the results as a fixed-width table."""
    head = f"{'benchmark':<9} {'case':<44} {'figure':<34} {'budget':<16} result"
    lines = [head, "-" * len(head)]
    for r in rows:
        verdict = "PASS" if r["pass"] else "FAIL"
        lines.append(f"{r['benchmark']:<9} {r['case']:<44} {r['figure']:<34} {r['budget']:<16} {verdict}")
    return "\n".join(lines)


def run_one(name: str, quick: bool) -> list[dict[str, Any]]:
    """Run one benchmark module in a fresh interpreter and return its rows."""
    code = (
        "import json, sys; from bench import {n} as m; "
        "rows = m.run(quick={q}); sys.stdout.write('\\n@@ROWS@@' + json.dumps(rows))"
    ).format(n=name, q=quick)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0 or "@@ROWS@@" not in proc.stdout:
        tail = (proc.stderr or proc.stdout)[-1500:]
        return [{"benchmark": name, "case": "(crashed)", "figure": "-", "budget": "-",
                 "pass": False, "error": tail}]
    sys.stderr.write(proc.stdout.split("@@ROWS@@")[0])
    return list(json.loads(proc.stdout.split("@@ROWS@@", 1)[1]))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the table, write JSON; exit 1 if a budget is missed."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="short runs (about a minute in all)")
    parser.add_argument("--only", action="append", choices=BENCHMARKS, help="run just these")
    parser.add_argument("--json", default="bench/results.json", help="where to write JSON")
    args = parser.parse_args(argv)

    import django

    rows: list[dict[str, Any]] = []
    for name in args.only or BENCHMARKS:
        if not (ROOT / "bench" / f"{name}.py").exists():
            continue
        if args.quick and not args.only and name in FULL_ONLY:
            print(f"skipping {name} in a quick run (make bench runs it)", file=sys.stderr)
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(run_one(name, args.quick))
    print(f"Python {platform.python_version()}, Django {django.get_version()}, "
          f"{platform.machine()}, {'quick' if args.quick else 'full'} run")
    print(_table(rows))
    for r in rows:
        if r.get("error"):
            print(f"\n{r['benchmark']} failed:\n{r['error']}")
    Path(args.json).write_text(json.dumps({"quick": args.quick, "results": rows}, indent=2))
    print(f"JSON written to {args.json}")
    return 0 if all(r["pass"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
