"""Dispatch overhead: Signal.send/send_robust/asend with the collector on vs bare Django."""

from __future__ import annotations

import asyncio
from typing import Any

from bench.timing import interleaved


def noop(sender: Any, **kwargs: Any) -> None:
    """A receiver that does nothing."""


def _receivers(n: int) -> list[Any]:
    """Return ``n`` distinct no-op receivers."""
    out = []
    for _ in range(n):

        def receiver(sender: Any, **kwargs: Any) -> None:
            return None

        out.append(receiver)
    return out


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure each case; the writer thread is paused so only the hot path is timed."""
    from bench.setup import configure

    configure()
    from django.dispatch import Signal

    import collector
    from collector import hook, runtime

    number, rounds = (5_000, 5) if quick else (20_000, 15)
    empty, one, five = Signal(), Signal(), Signal()
    cached = Signal(use_caching=True)  # as Django's model signals are (ModelSignal)
    model = type("Model", (), {})
    keep = _receivers(1) + _receivers(5)
    one.connect(keep[0])
    cached.connect(keep[0], sender=model)
    for r in keep[1:]:
        five.connect(r)

    def clear() -> None:
        hook._queue.clear()

    def on() -> None:
        collector.install()
        clear()

    async def asend_many() -> None:
        for _ in range(100):
            await one.asend(sender=None)

    loop = asyncio.new_event_loop()
    cases = [
        ("send, no receivers", lambda: empty.send(sender=None), 1.05, number),
        ("send, 1 no-op receiver", lambda: one.send(sender=None), 1.3, number),
        ("send, 5 no-op receivers", lambda: five.send(sender=None), 1.3, number),
        ("send, 1 receiver, caching signal (as model signals)",
         lambda: cached.send(sender=model), 1.3, number),
        ("send_robust, 1 no-op receiver", lambda: one.send_robust(sender=None), 1.3, number),
        ("asend x100, 1 sync receiver", lambda: loop.run_until_complete(asend_many()), 1.3, max(5, number // 2000)),
    ]
    collector.install()
    for signal in (one, five):  # steady state: the writer has named the signals and receivers
        signal.send(sender=None)
    cached.send(sender=model)
    collector.flush(5)
    runtime._stopping = True  # pause the writer: records stay queued and are cleared each round
    saved_capacity, hook.capacity = hook.capacity, 10**9
    results = []
    try:
        for name, func, budget, n in cases:
            bare, hooked = interleaved(func, func, on, collector.uninstall, n, rounds)
            clear()
            per = 100 if name.startswith("asend x100") else 1
            ratio = hooked / bare
            results.append({
                "benchmark": "dispatch",
                "case": name,
                "figure": f"{ratio:.2f}x ({bare / per:.0f} -> {hooked / per:.0f} ns)",
                "budget": f"<= {budget:.2f}x",
                "pass": ratio <= budget,
                "bare_ns": round(bare / per, 1),
                "hooked_ns": round(hooked / per, 1),
                "ratio": round(ratio, 3),
                "added_ns": round((hooked - bare) / per, 1),
            })
    finally:
        hook.capacity = saved_capacity
        runtime._stopping = False
        collector.install()
        loop.close()
    return results
