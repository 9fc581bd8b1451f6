"""Processors ("signal middleware") and sinks: configured by settings, contained when they fail."""

from __future__ import annotations

from typing import Any

import pytest
from django.dispatch import Signal
from django.test import override_settings

from collector import runtime
from collector.checks import check_settings
from collector.sinks import clear_memory
from collector.conf import DEFAULTS
from collector.processors import Processor

payment_signal = Signal()
noise_signal = Signal()


def pay(sender: Any, **kw: Any) -> str:
    """A receiver that gets secrets in its arguments."""
    return "paid"


def other(sender: Any, **kw: Any) -> str:
    """A second receiver."""
    return "other"


class Tagger(Processor):
    """Adds a tag to every event (enrichment)."""

    def process(self, event: dict[str, Any]) -> dict[str, Any] | None:
        event["kwargs"]["tagged_by"] = "Tagger"
        return event


class Exploder(Processor):
    """Always raises."""

    def process(self, event: dict[str, Any]) -> dict[str, Any] | None:
        raise ZeroDivisionError("processor bug")


class BrokenSink:
    """A sink that always raises."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def write(self, events: Any, unheard: Any) -> None:
        raise OSError("sink down")

    def close(self) -> None:
        pass


@pytest.fixture
def connected() -> Any:
    """Connect the test receivers."""
    payment_signal.connect(pay)
    payment_signal.connect(other)
    noise_signal.connect(pay)
    yield
    payment_signal.disconnect(pay)
    payment_signal.disconnect(other)
    noise_signal.disconnect(pay)


def monitor(**overrides: Any) -> Any:
    """override_settings for SIGNAL_MONITOR with the memory sink only."""
    return override_settings(SIGNAL_MONITOR={"SINKS": ["collector.sinks.MemorySink"], **overrides})


def test_secrets_are_redacted_by_default(recorded: Any, connected: Any) -> None:
    payment_signal.send(
        sender="checkout", password="hunter2", api_token="t0k", card={"number": "4242", "cvv_secret": "123"},
        Authorization="Bearer abc", session_key="s", amount=10,
    )
    [event] = recorded("tests.collector.test_processors.payment_signal")
    kw = event["kwargs"]
    assert kw["password"] == kw["api_token"] == kw["Authorization"] == kw["session_key"] == "********"
    assert kw["card"] == {"number": "4242", "cvv_secret": "********"}
    assert kw["amount"] == 10


def test_extra_redaction_keys_from_settings(recorded: Any, connected: Any) -> None:
    with monitor(REDACT_KEYS=["iban"], REDACT_MARKER="[hidden]"):
        payment_signal.send(sender="checkout", iban="DE00", password="x")
        [event] = recorded("tests.collector.test_processors.payment_signal")
    assert event["kwargs"] == {"iban": "[hidden]", "password": "[hidden]"}


def test_allow_and_deny_lists(recorded: Any, connected: Any) -> None:
    with monitor(EXCLUDE_SIGNALS=["*.noise_signal"], EXCLUDE_RECEIVERS=["*.other"], EXCLUDE_SENDERS=["spam*"]):
        payment_signal.send(sender="checkout")
        payment_signal.send(sender="spammer")
        noise_signal.send(sender="checkout")
        events = [e for e in recorded() if e["signal"].startswith("tests.")]
    assert [e["signal"] for e in events] == ["tests.collector.test_processors.payment_signal"]
    assert [c["receiver"] for c in events[0]["calls"]] == ["tests.collector.test_processors.pay"]
    clear_memory()
    with monitor(INCLUDE_SIGNALS=["*.noise_signal"]):
        payment_signal.send(sender="checkout")
        noise_signal.send(sender="checkout")
        events = recorded()
    assert {e["signal"] for e in events} == {"tests.collector.test_processors.noise_signal"}


def test_sampling_per_signal_keeps_failures(recorded: Any, connected: Any) -> None:
    def fails(sender: Any, **kw: Any) -> None:
        raise ValueError("always")

    with monitor(SAMPLE_RATES={"tests.collector.test_processors.noise_signal": 0.0, "*": 1.0}):
        for _ in range(20):
            noise_signal.send(sender="s")
            payment_signal.send(sender="s")
        noise_signal.connect(fails)
        noise_signal.send_robust(sender="s")
        noise_signal.disconnect(fails)
        events = recorded()
    noise = [e for e in events if e["signal"].endswith("noise_signal")]
    assert len(noise) == 1 and noise[0]["failure_count"] == 1
    assert len([e for e in events if e["signal"].endswith("payment_signal")]) == 20


def test_custom_processor_enriches(recorded: Any, connected: Any) -> None:
    with monitor(PROCESSORS=[f"{__name__}.Tagger", *DEFAULTS["PROCESSORS"]]):
        payment_signal.send(sender="s")
        [event] = recorded("tests.collector.test_processors.payment_signal")
    assert event["kwargs"]["tagged_by"] == "Tagger"


def test_raising_processor_and_sink_are_contained(recorded: Any, connected: Any) -> None:
    errors = runtime.snapshot().get("processor_errors", 0)
    sink_errors = runtime.snapshot().get("sink_errors", 0)
    with monitor(
        PROCESSORS=[f"{__name__}.Exploder", *DEFAULTS["PROCESSORS"]],
        SINKS=[f"{__name__}.BrokenSink", "collector.sinks.MemorySink"],
    ):
        assert payment_signal.send(sender="s")[0][1] == "paid"
        events = recorded("tests.collector.test_processors.payment_signal")
    assert len(events) == 1, "the event still reaches the working sink"
    snap = runtime.snapshot()
    assert snap["processor_errors"] > errors
    assert snap["sink_errors"] > sink_errors
    assert "processor bug" in snap["last_error"] or "sink down" in snap["last_error"]


def test_system_checks_flag_bad_settings() -> None:
    with override_settings(SIGNAL_MONITOR={
        "SINKS": ["nowhere.Sink"], "QUEUE_SIZE": 0, "SAMPLE_RATES": {"*": 3}, "TYPO": 1,
    }):
        ids = {m.id for m in check_settings()}
    assert ids == {"signals_collector.E001", "signals_collector.E002", "signals_collector.E003",
                   "signals_collector.W001"}
    assert check_settings() == []
