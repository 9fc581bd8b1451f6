"""Processors ("signal middleware"): each sees every event before the sinks and may change or drop it.

List them by dotted path in SIGNAL_MONITOR["PROCESSORS"]; they run in order on the writer thread.
A processor that raises is contained and counted, and the event goes on unchanged.
"""

from __future__ import annotations

import random
import re
from fnmatch import fnmatchcase
from typing import Any

from collector.events import EventDict

__all__ = ["Processor", "FilterProcessor", "RedactProcessor", "SampleProcessor"]


class Processor:
    """Base class: ``process`` returns the event (changed or not), or None to drop it.

    A processor whose settings make it a no-op sets ``active = False``; the writer then skips it.
    """

    active = True

    def __init__(self, config: dict[str, Any]) -> None:
        """Keep the settings the processor was built from."""
        self.config = config

    def process(self, event: EventDict) -> EventDict | None:
        """Return the event to keep it, or None to drop it."""
        return event


def _matches(name: str, patterns: list[str]) -> bool:
    """Return True if ``name`` matches any glob pattern."""
    return any(fnmatchcase(name, p) for p in patterns)


def _allowed(name: str, include: list[str], exclude: list[str]) -> bool:
    """Return True if ``name`` passes an include list (empty allows all) and an exclude list."""
    return (not include or _matches(name, include)) and not _matches(name, exclude)


class FilterProcessor(Processor):
    """Allow/deny lists (glob patterns) for signals, senders and receivers.

    Events of excluded signals or senders are dropped; calls of excluded receivers are removed
    from their event, and an event left with no calls is dropped.
    """

    KEYS = ("INCLUDE_SIGNALS", "EXCLUDE_SIGNALS", "INCLUDE_SENDERS", "EXCLUDE_SENDERS",
            "INCLUDE_RECEIVERS", "EXCLUDE_RECEIVERS")

    def __init__(self, config: dict[str, Any]) -> None:
        """Note whether any list is set, so the common case costs nothing."""
        super().__init__(config)
        self.active = any(config[key] for key in self.KEYS)

    def process(self, event: EventDict) -> EventDict | None:
        """Apply INCLUDE_/EXCLUDE_ SIGNALS, SENDERS and RECEIVERS."""
        if not self.active:
            return event
        c = self.config
        if not _allowed(event["signal"], c["INCLUDE_SIGNALS"], c["EXCLUDE_SIGNALS"]):
            return None
        if not _allowed(event["sender"], c["INCLUDE_SENDERS"], c["EXCLUDE_SENDERS"]):
            return None
        if not (c["INCLUDE_RECEIVERS"] or c["EXCLUDE_RECEIVERS"]):
            return event
        calls = [
            call
            for call in event["calls"]
            if _allowed(call["receiver"], c["INCLUDE_RECEIVERS"], c["EXCLUDE_RECEIVERS"])
        ]
        if not calls and event["calls"]:
            return None
        failures = sum(call["outcome"] != "ok" for call in calls)
        return {**event, "calls": calls, "receiver_count": len(calls), "failure_count": failures}


SECRET_FRAGMENTS = (
    "password", "passwd", "secret", "token", "key", "authorization", "cookie", "session",
    "csrf", "credential", "signature", "private",
)


class RedactProcessor(Processor):
    """Replaces values under secret-looking keys (and secret settings' values) in captured kwargs.

    Keys are matched once and remembered; an event without secrets is returned untouched.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        """Compile the secret-key pattern from the built-in and configured fragments."""
        super().__init__(config)
        fragments = [*SECRET_FRAGMENTS, *config["REDACT_KEYS"]]
        self.pattern = re.compile("|".join(re.escape(f.lower()) for f in fragments), re.I)
        self.marker: str = config["REDACT_MARKER"]
        self.secret: dict[str, bool] = {}

    def is_secret(self, key: Any) -> bool:
        """Return True if ``key`` looks like it names a secret (memoised)."""
        if not isinstance(key, str):
            return False
        found = self.secret.get(key)
        if found is None:
            if len(self.secret) > 10_000:
                self.secret.clear()
            found = self.secret[key] = bool(self.pattern.search(key))
        return found

    def process(self, event: EventDict) -> EventDict | None:
        """Return the event with its kwargs redacted."""
        kwargs = event["kwargs"]
        if not kwargs:
            return event
        kwargs = self._redact(kwargs, 0)
        setting = kwargs.get("setting")
        if isinstance(setting, str) and "value" in kwargs and self.is_secret(setting):
            kwargs = {**kwargs, "value": self.marker}
        event["kwargs"] = kwargs
        return event

    def _redact(self, value: Any, depth: int) -> Any:
        """Redact a captured value recursively; containers are copied only when something changes."""
        if depth > 6:
            return value
        if isinstance(value, dict):
            changed = None
            secret = self.secret
            for key, item in value.items():
                kind = type(item)
                if kind is dict or kind is list:
                    new = self._redact(item, depth + 1)
                else:
                    found = secret.get(key) if type(key) is str else False
                    if found is None:
                        found = self.is_secret(key)
                    if not found or item is None or item == "":
                        continue
                    new = self.marker
                if new is not item:
                    if changed is None:
                        changed = dict(value)
                    changed[key] = new
            return value if changed is None else changed
        if isinstance(value, list):
            if not any(type(v) is dict or type(v) is list for v in value):
                return value
            items = [self._redact(v, depth + 1) for v in value]
            return value if all(a is b for a, b in zip(items, value, strict=True)) else items
        return value


class SampleProcessor(Processor):
    """Keeps a fraction of events per signal: SAMPLE_RATES = {"signal.path": 0.1, "*": 1.0}.

    Events with a failed receiver call are always kept.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        """Skip the processor entirely when no rate is set."""
        super().__init__(config)
        self.active = bool(config["SAMPLE_RATES"])

    def process(self, event: EventDict) -> EventDict | None:
        """Keep the event with the configured probability for its signal."""
        rates: dict[str, float] = self.config["SAMPLE_RATES"]
        if not rates or event["failure_count"]:
            return event
        rate = rates.get(event["signal"], rates.get("*", 1.0))
        if rate >= 1.0 or random.random() < rate:
            return event
        return None
