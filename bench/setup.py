"""A minimal configured Django for benchmarks: no database writes unless a benchmark asks."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def configure(**overrides: Any) -> None:
    """Configure settings for an in-process benchmark and call django.setup()."""
    import django
    from django.conf import settings

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if settings.configured:
        return
    options: dict[str, Any] = {
        "DEBUG": False,
        "SECRET_KEY": "bench-only",
        "INSTALLED_APPS": [
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "collector",
        ],
        "DATABASES": {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.environ.get("BENCH_DB", ":memory:"),
            }
        },
        "SIGNAL_MONITOR": {"SINKS": ["collector.sinks.MemorySink"], "AUTO_INSTALL": False},
        "USE_TZ": True,
    }
    options.update(overrides)
    settings.configure(**options)
    django.setup()
