"""A processor that counts every event the collector captured in its process."""

from __future__ import annotations

import threading
from typing import Any

PATH = "tests.scaleout.counting.CountingProcessor"


class CountingProcessor:
    """Counts events and passes them on unchanged (runs on the collector's writer thread)."""

    captured = 0
    _lock = threading.Lock()

    def __init__(self, config: dict[str, Any]) -> None:
        """Nothing to configure."""

    def process(self, event: Any) -> Any:
        """Count the event; keep it."""
        with CountingProcessor._lock:
            CountingProcessor.captured += 1
        return event
