"""``python -m bench [--quick] [--json PATH]``: run the benchmarks and print one table."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

import django


def _table(rows: list[dict[str, Any]]) -> str:
    """Format the results as a fixed-width table."""
    head = f"{'benchmark':<10} {'case':<34} {'bare':>10} {'monitor':>10} {'ratio':>7} {'budget':>7}  result"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['benchmark']:<10} {r['case']:<34} {r['bare_ns']:>8.0f}ns {r['hooked_ns']:>8.0f}ns "
            f"{r['ratio']:>6.2f}x {r['budget']:>6.2f}x  {'PASS' if r['pass'] else 'FAIL'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the table, write JSON; exit 1 if a budget is missed."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about a minute)")
    parser.add_argument("--json", default="bench/results.json", help="where to write JSON")
    args = parser.parse_args(argv)

    from bench.setup import configure

    configure()
    from bench import dispatch

    rows = dispatch.run(quick=args.quick)
    print(f"Python {platform.python_version()}, Django {django.get_version()}, {platform.machine()}")
    print(_table(rows))
    Path(args.json).write_text(json.dumps({"results": rows}, indent=2))
    print(f"JSON written to {args.json}")
    return 0 if all(r["pass"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
