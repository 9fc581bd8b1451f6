"""``manage.py demo_traffic``: drive a realistic mix of the demo's signals through real code."""

from __future__ import annotations

import logging
import signal
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo.traffic.actions import GROUPS, DemoActions, catalog_ensure
from demo.traffic.runner import TrafficRunner
from demo.traffic.transport import session_factory, template_rendered_sent

# Loggers whose per-failure tracebacks would flood the terminal; -v 2 keeps them.
_NOISY_LOGGERS = ("django.request", "django.dispatch", "demo")


@contextmanager
def _quiet(names: tuple[str, ...]) -> Iterator[None]:
    """Raise the given loggers to CRITICAL for the duration, then restore them."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so a killed run still ends cleanly (and flushes)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave SIGTERM alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Command(BaseCommand):
    """Generate demo traffic at a fixed rate and print what was done."""

    help = (
        "Drive a weighted mix of the demo's real code paths (sign-ups, logins, product CRUD, "
        "tags, orders, async sends, reports, failing views) to make signals for the monitor."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare --rate, --seconds and --url."""
        parser.add_argument("--rate", type=float, default=20.0, help="actions per second (20)")
        parser.add_argument(
            "--seconds", type=float, default=10.0, help="how long to run; 0 runs until Ctrl-C (10)"
        )
        parser.add_argument(
            "--url",
            default=None,
            help="send the HTTP parts to this running server (e.g. http://127.0.0.1:8000) "
            "instead of through Django's test client",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Seed the catalog, run the loop until time is up or interrupted, print the summary."""
        rate, seconds, url = options["rate"], options["seconds"], options["url"]
        if rate <= 0 or seconds < 0:
            raise CommandError("--rate must be positive and --seconds zero or more.")
        failures: Counter[str] = Counter()
        actions = DemoActions(new_session=session_factory(url), failures=failures)
        runner = TrafficRunner(
            actions.weighted(), failures, groups=GROUPS, on_error=self.stderr.write
        )
        noisy = _NOISY_LOGGERS if options["verbosity"] < 2 else ()
        with _sigterm_interrupts(), template_rendered_sent(), _quiet(noisy):
            catalog_ensure()
            elapsed = self._run(runner, rate=rate, seconds=seconds)
        self.stdout.write(runner.summary(elapsed))

    def _run(self, runner: TrafficRunner, *, rate: float, seconds: float) -> float:
        """Run the loop; Ctrl-C (or SIGTERM) ends it early. Return the time it ran."""
        started = time.monotonic()
        try:
            return runner.run(rate=rate, seconds=seconds)
        except KeyboardInterrupt:
            return time.monotonic() - started
