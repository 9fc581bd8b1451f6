"""System checks for SIGNAL_MONITOR (ids signals_collector.E0xx / W0xx)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Warning, register
from django.utils.module_loading import import_string

from collector.conf import DEFAULTS, get_config


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate SIGNAL_MONITOR: known keys, importable processors and sinks, sane numbers."""
    config = get_config()
    messages: list[CheckMessage] = []
    for key in sorted(set(config) - set(DEFAULTS)):
        messages.append(Warning(
            f"Unknown SIGNAL_MONITOR key {key!r}.",
            hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
            id="signals_collector.W001",
        ))
    for setting in ("PROCESSORS", "SINKS"):
        for path in config[setting]:
            try:
                import_string(path)
            except ImportError as exc:
                messages.append(Error(
                    f"SIGNAL_MONITOR[{setting!r}] names {path!r}, which cannot be imported: {exc}",
                    hint="Use a dotted path to a class, e.g. collector.sinks.DatabaseSink.",
                    id="signals_collector.E001",
                ))
    for setting in ("QUEUE_SIZE", "BATCH_SIZE", "MEMORY_SINK_SIZE"):
        value = config[setting]
        if not isinstance(value, int) or value < 1:
            messages.append(Error(
                f"SIGNAL_MONITOR[{setting!r}] must be a positive integer, not {value!r}.",
                hint=f"The default is {DEFAULTS[setting]}.",
                id="signals_collector.E002",
            ))
    for name, rate in dict(config["SAMPLE_RATES"]).items():
        if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            messages.append(Error(
                f"SIGNAL_MONITOR['SAMPLE_RATES'][{name!r}] must be a number from 0 to 1.",
                hint="1 keeps every event, 0.1 keeps one in ten.",
                id="signals_collector.E003",
            ))
    return messages
