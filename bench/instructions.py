"""Instructions per send() under valgrind's callgrind: a load-independent view of the hot path.

Timing ratios on a shared 2-core machine swing with whatever else runs; instruction counts do
not. ``python -m bench.instructions [--receivers N] [--caching]`` runs this module under callgrind
four times (bare and hooked, 10k and 50k sends) and prints the per-send difference, so start-up
cost cancels out. ``--caching`` sends a signal that caches receivers per sender, as model signals
do. The writer thread is stopped first, and the queue is emptied every 1,000 sends as the writer
would.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _workload(mode: str, n: int, receivers: int = 1, caching: bool = False) -> None:
    """Send ``n`` times to ``receivers`` no-op receivers, bare or hooked.

    ``caching``: a signal that caches receivers per sender, sent by a class, as Django's model
    signals are (``ModelSignal(use_caching=True)``).
    """
    import time

    from bench.setup import configure

    configure()
    from django.dispatch import Signal

    import collector
    from collector import hook, runtime

    signal = Signal(use_caching=caching)
    sender = type("Sender", (), {}) if caching else None
    keep = []
    for _ in range(receivers):

        def noop(sender: Any, **kwargs: Any) -> None:
            return None

        keep.append(noop)
        signal.connect(noop)
    collector.install()
    for _ in range(50):
        signal.send(sender=sender)
    collector.flush()
    runtime._stopping = True
    hook.capacity = 10**9
    while runtime._alive:
        runtime._wake.set()
        time.sleep(0.05)
    if mode == "bare":
        collector.uninstall()
    for _ in range(2000):
        signal.send(sender=sender)
    hook._queue.clear()
    for _ in range(n // 1000):
        for _ in range(1000):
            signal.send(sender=sender)
        hook._queue.clear()


def _count(mode: str, n: int, receivers: int, caching: bool = False) -> int:
    """Run the workload under callgrind and return the instructions executed."""
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         "-m", "bench.instructions", "--run", mode, str(n), str(receivers),
         "caching" if caching else "plain"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    found = re.search(r"refs:\s+([\d,]+)", proc.stderr)
    if found is None:
        raise RuntimeError(proc.stderr[-2000:])
    return int(found.group(1).replace(",", ""))


def main() -> int:
    """Print instructions per send, bare and hooked, and their ratio (see the module docstring)."""
    if len(sys.argv) == 6 and sys.argv[1] == "--run":
        _workload(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "caching")
        return 0
    args = sys.argv[1:]
    caching = "--caching" in args
    receivers = int(args[args.index("--receivers") + 1]) if "--receivers" in args else 1
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)")
        return 1
    per = {}
    for mode in ("bare", "hook"):
        small = _count(mode, 10_000, receivers, caching)
        large = _count(mode, 50_000, receivers, caching)
        per[mode] = (large - small) / 40_000
    what = "1 no-op receiver" if receivers == 1 else f"{receivers} no-op receivers"
    if caching:
        what += " (a caching signal, as the model signals are)"
    print(f"send() to {what}: bare {per['bare']:.0f} instructions, "
          f"collector {per['hook']:.0f} instructions, ratio {per['hook'] / per['bare']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
