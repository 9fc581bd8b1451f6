"""The peer: sentry-sdk's Django integration with signal spans, in a sampled transaction.

Bare Django, sentry-sdk and the collector are measured in one process, interleaved: sentry's patch
(``Signal._live_receivers``) and the collector's hook are swapped in and out between rounds. The
budget compares what each adds per receiver call: ours must be at most 1/30 of sentry's.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.timing import per_call_ns


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure send() to one no-op receiver: bare, with sentry-sdk spans, with the collector."""
    from bench.setup import configure

    configure()
    try:
        import sentry_sdk
        from sentry_sdk.integrations.django import DjangoIntegration
        from sentry_sdk.transport import Transport
    except ImportError:
        return [{"benchmark": "peers", "case": "sentry-sdk signal spans", "pass": False,
                 "figure": "sentry-sdk not installed", "budget": "(bench/requirements.txt)"}]
    from django.dispatch import Signal

    import collector
    from collector import hook, runtime

    class Discard(Transport):  # type: ignore[misc]
        """A transport that drops every envelope (no network)."""

        def capture_envelope(self, envelope: Any) -> None:
            return None

    bare_live = Signal._live_receivers
    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1",
        transport=Discard,
        traces_sample_rate=1.0,
        integrations=[DjangoIntegration(signals_spans=True)],
        default_integrations=False,
    )
    sentry_live = Signal._live_receivers
    assert sentry_live is not bare_live, "sentry-sdk did not patch Signal._live_receivers"

    signal = Signal()

    def noop(sender: Any, **kwargs: Any) -> None:
        return None

    signal.connect(noop)
    number, rounds = (3_000, 5) if quick else (10_000, 15)
    collector.install()
    signal.send(sender=None)  # steady state: the writer has named the signal and the receiver
    collector.flush(5)
    runtime._stopping = True
    hook.capacity = 10**9

    def send() -> None:
        signal.send(sender=None)

    bare, sentry, ours = [], [], []
    with sentry_sdk.start_transaction(name="bench", op="bench"):
        for _ in range(rounds):
            collector.uninstall()
            Signal._live_receivers = bare_live
            bare.append(per_call_ns(send, number))
            Signal._live_receivers = sentry_live
            sentry.append(per_call_ns(send, number))
            Signal._live_receivers = bare_live
            collector.install()
            ours.append(per_call_ns(send, number))
            hook._queue.clear()
    collector.uninstall()
    b, s, o = (statistics.median(x) for x in (bare, sentry, ours))
    sentry_added, ours_added = s - b, max(o - b, 0.0)
    share = ours_added / sentry_added if sentry_added > 0 else float("inf")
    return [
        {"benchmark": "peers", "case": "sentry-sdk 2.75 spans: send(), 1 receiver",
         "figure": f"{s / b:.1f}x bare (+{sentry_added / 1000:.1f} us/call)", "budget": "(reference)",
         "pass": True, "bare_ns": round(b), "sentry_ns": round(s)},
        {"benchmark": "peers", "case": "collector added cost / sentry's added cost",
         "figure": f"1/{1 / share:.0f} (+{ours_added:.0f} ns vs +{sentry_added:.0f} ns)"
         if share > 0 else f"0 (monitored {o - b:+.0f} ns vs bare; sentry +{sentry_added:.0f} ns)",
         "budget": "<= 1/30", "pass": share <= 1 / 30,
         "ours_ns": round(o), "share": round(share, 4)},
    ]
