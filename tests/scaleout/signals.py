"""The custom signals the scale-out senders send, and their receivers (one fails on purpose)."""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal, receiver

ping = Signal()
risky = Signal()

FAIL_EVERY = 7


class Flaky(Exception):
    """Raised by ``on_risky`` for every FAIL_EVERY-th number."""


@receiver(ping, dispatch_uid="scaleout_on_ping")
def on_ping(sender: Any, n: int, **kwargs: Any) -> int:
    """A cheap receiver."""
    return n


@receiver(ping, dispatch_uid="scaleout_on_ping_twice")
def on_ping_twice(sender: Any, n: int, **kwargs: Any) -> int:
    """A second receiver, so each event has two calls."""
    return 2 * n


@receiver(risky, dispatch_uid="scaleout_on_risky")
def on_risky(sender: Any, n: int, **kwargs: Any) -> int:
    """Fail for every FAIL_EVERY-th ``n`` (sent with send_robust, so the sender never sees it)."""
    if n % FAIL_EVERY == 0:
        raise Flaky(f"number {n} is unlucky")
    return n
