"""What an event holds: names, timing, outcomes, tracebacks, nesting, captured arguments."""

from __future__ import annotations

import asyncio
import functools
from typing import Any
from unittest import mock

import pytest
from django.dispatch import Signal

order_placed = Signal()
order_shipped = Signal()


class Boom(Exception):
    """A receiver failure used in these tests."""


def on_order(sender: Any, **kw: Any) -> str:
    """Nested send: placing an order ships it."""
    order_shipped.send(sender="warehouse", order_id=kw.get("order_id"))
    return "placed"


def on_ship(sender: Any, **kw: Any) -> str:
    """Leaf receiver."""
    return "shipped"


def failing(sender: Any, **kw: Any) -> None:
    """Always fails."""
    raise Boom("card declined")


async def async_on_order(sender: Any, **kw: Any) -> str:
    """Async receiver that sends a nested signal asynchronously."""
    await asyncio.sleep(0)
    await order_shipped.asend(sender="async-warehouse")
    return "async placed"


@pytest.fixture
def wired() -> Any:
    """Connect the module's receivers; disconnect afterwards."""
    order_placed.connect(on_order)
    order_shipped.connect(on_ship)
    yield
    for sig in (order_placed, order_shipped):
        for r in (on_order, on_ship, failing, async_on_order):
            sig.disconnect(r)


def test_event_fields(recorded: Any, wired: Any) -> None:
    order_placed.send(sender="shop", order_id=7, total=12.5)
    [event] = recorded("tests.collector.test_recording.order_placed")
    assert event["sender"] == "shop"
    assert event["method"] == "send"
    assert event["kwargs"] == {"order_id": 7, "total": 12.5}
    assert event["receiver_count"] == 1 and event["failure_count"] == 0
    assert event["duration_ns"] > 0 and event["timestamp"] > 1.7e9
    [call] = event["calls"]
    assert call["receiver"] == "tests.collector.test_recording.on_order"
    assert call["outcome"] == "ok" and call["is_async"] is False
    assert 0 < call["duration_ns"] <= event["duration_ns"]


def test_nesting_links_child_to_parent_call(recorded: Any, wired: Any) -> None:
    order_placed.send(sender="shop", order_id=1)
    parent = recorded("tests.collector.test_recording.order_placed")[0]
    child = recorded("tests.collector.test_recording.order_shipped")[0]
    assert child["parent_id"] == parent["id"] and child["parent_call"] == 0
    assert parent["parent_id"] is None


def test_nesting_across_async_receivers(recorded: Any, wired: Any) -> None:
    order_placed.connect(async_on_order)
    asyncio.run(order_placed.asend(sender="shop"))
    parent = recorded("tests.collector.test_recording.order_placed")[0]
    children = recorded("tests.collector.test_recording.order_shipped")
    by_sender = {c["sender"]: c for c in children}
    assert by_sender["warehouse"]["parent_id"] == parent["id"]
    assert by_sender["warehouse"]["parent_call"] == 0
    assert by_sender["async-warehouse"]["parent_id"] == parent["id"]
    assert by_sender["async-warehouse"]["parent_call"] == 1
    assert [c["is_async"] for c in parent["calls"]] == [False, True]


def test_failure_in_send_records_traceback_and_propagates(recorded: Any, wired: Any) -> None:
    order_placed.connect(failing)
    with pytest.raises(Boom):
        order_placed.send(sender="shop")
    [event] = recorded("tests.collector.test_recording.order_placed")
    assert event["failure_count"] == 1
    failed = event["calls"][-1]
    assert failed["outcome"] == "error"
    assert failed["exc_type"] == "tests.collector.test_recording.Boom"
    assert failed["exc_message"] == "card declined"
    assert 'raise Boom("card declined")' in failed["traceback"]
    assert failed["location"].startswith("tests/collector/test_recording.py:")
    assert failed["location"].endswith(" in failing")


def test_failure_in_send_robust_is_recorded_and_later_receivers_run(recorded: Any) -> None:
    order_placed.connect(failing)
    order_placed.connect(on_ship)
    try:
        result = order_placed.send_robust(sender="shop")
    finally:
        order_placed.disconnect(failing)
        order_placed.disconnect(on_ship)
    assert isinstance(result[0][1], Boom) and result[1][1] == "shipped"
    [event] = recorded("tests.collector.test_recording.order_placed")
    assert [c["outcome"] for c in event["calls"]] == ["error", "ok"]


def test_async_failures_in_asend_robust(recorded: Any) -> None:
    async def async_failing(sender: Any, **kw: Any) -> None:
        raise Boom("async declined")

    order_placed.connect(async_failing)
    try:
        [(_, response)] = asyncio.run(order_placed.asend_robust(sender=None))
    finally:
        order_placed.disconnect(async_failing)
    assert isinstance(response, Boom)
    [event] = recorded("tests.collector.test_recording.order_placed")
    assert event["method"] == "asend_robust"
    assert event["calls"][0]["is_async"] and event["calls"][0]["outcome"] == "error"


class Handler:
    """Receivers as methods and as a callable object."""

    def method(self, sender: Any, **kw: Any) -> str:
        return "method"

    @classmethod
    def klass(cls, sender: Any, **kw: Any) -> str:
        return "classmethod"

    def __call__(self, sender: Any, **kw: Any) -> str:
        return "callable"


def base(sender: Any, flavour: str = "", **kw: Any) -> str:
    """Target of a partial."""
    return flavour


def test_receiver_names_for_every_kind_of_callable(recorded: Any) -> None:
    handler = Handler()
    magic = mock.MagicMock(name="spy", return_value="mocked")
    receivers = [
        handler.method,
        Handler.klass,
        handler,
        functools.partial(base, flavour="vanilla"),
        magic,
        lambda sender, **kw: "lambda",
    ]
    signal = Signal()
    for r in receivers:
        signal.connect(r, weak=False)
    responses = signal.send(sender=None)
    assert [r for r, _ in responses] == receivers
    assert [v for _, v in responses] == ["method", "classmethod", "callable", "vanilla", "mocked", "lambda"]
    [event] = recorded()
    assert [c["receiver"] for c in event["calls"]] == [
        "tests.collector.test_recording.Handler.method",
        "tests.collector.test_recording.Handler.klass",
        "tests.collector.test_recording.Handler()",
        "functools.partial(tests.collector.test_recording.base)",
        "unittest.mock.MagicMock(spy)",
        "tests.collector.test_recording.test_receiver_names_for_every_kind_of_callable.<locals>.<lambda>",
    ]


def test_receiver_name_is_resolved_once(recorded: Any) -> None:
    from collector import naming

    signal = Signal()
    signal.connect(on_ship)
    with mock.patch.object(naming, "describe_callable", wraps=naming.describe_callable) as spy:
        naming.receiver_names.clear()
        naming._receiver_refs.clear()
        for _ in range(5):
            signal.send(sender=None)
    assert spy.call_count == 1
    signal.disconnect(on_ship)


class Unprintable:
    """An argument whose repr raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class Recursive:
    """An argument whose repr recurses forever."""

    def __repr__(self) -> str:
        return repr(self)


class Huge:
    """An argument whose repr is 10 MB."""

    def __repr__(self) -> str:
        return "x" * 10_000_000


def test_hostile_arguments_are_captured_safely(recorded: Any) -> None:
    signal = Signal()
    signal.connect(on_ship)
    nested: list[Any] = []
    nested.append(nested)
    signal.send(
        sender=Unprintable(), bad=Unprintable(), deep=Recursive(), huge=Huge(),
        raw=b"\xff\xfe\x00bytes", surrogate="\udcff", loop=nested, many=set(range(100)),
    )
    signal.disconnect(on_ship)
    [event] = recorded()
    kw = event["kwargs"]
    assert event["sender"] == "<unrepresentable Unprintable>"
    assert kw["bad"] == "<unrepresentable Unprintable>"
    assert kw["deep"] == "<unrepresentable Recursive>"
    assert len(kw["huge"]) < 400 and kw["huge"].endswith("9999700 more]")
    assert "\\xff" in kw["raw"]
    assert kw["surrogate"] == "\\udcff"
    assert len(kw["many"]) == 21
    import json

    json.dumps(event)  # everything is JSON-ready


unheard_signal = Signal()


@pytest.mark.django_db(transaction=True)
def test_sends_with_no_receivers_are_counted_not_stored(recorded: Any) -> None:
    from django.db.models import Sum

    from collector.models import SignalCount

    class Only:
        pass

    unheard_signal.connect(on_ship, sender=Only)
    for _ in range(3):
        unheard_signal.send(sender="someone else")
    unheard_signal.send(sender=Only)
    unheard_signal.disconnect(on_ship, sender=Only)
    name = "tests.collector.test_recording.unheard_signal"
    assert len(recorded(name)) == 1
    totals = SignalCount.objects.filter(signal=name).aggregate(e=Sum("events"), u=Sum("unheard"))
    assert totals == {"e": 1, "u": 3}


def test_custom_signal_named_by_its_signals_module() -> None:
    import sys
    import types

    from collector.naming import _find_signal_name

    shared = Signal()
    defining = types.ModuleType("shop.signals")
    defining.order_paid = shared  # type: ignore[attr-defined]
    user_a = types.ModuleType("shop.audit")
    user_a.order_paid = shared  # type: ignore[attr-defined]
    user_b = types.ModuleType("a.b")
    user_b.order_paid = shared  # type: ignore[attr-defined]
    modules = {"shop.signals": defining, "shop.audit": user_a, "a.b": user_b}
    with mock.patch.dict(sys.modules, modules):
        assert _find_signal_name(shared) == "shop.signals.order_paid"


class Trap:
    """An argument every attribute access of which raises."""

    def __getattribute__(self, name: str) -> Any:
        raise RuntimeError(f"no {name} for you")


def test_an_argument_whose_attributes_all_raise_is_captured(recorded: Any) -> None:
    signal = Signal()
    signal.connect(on_ship)
    signal.send(sender="trap", trap=Trap(), n=1)
    signal.disconnect(on_ship)
    [event] = recorded()
    assert event["kwargs"]["n"] == 1
    assert event["kwargs"]["trap"].startswith("<")


def test_non_finite_floats_become_text(recorded: Any) -> None:
    signal = Signal()
    signal.connect(on_ship)
    signal.send(sender=None, nan=float("nan"), inf=float("inf"), fine=1.5)
    signal.disconnect(on_ship)
    [event] = recorded()
    assert event["kwargs"] == {"nan": "nan", "inf": "inf", "fine": 1.5}


def _learned(signal: Signal, *senders: Any, method: str = "send") -> None:
    """Send until the hook's fast path knows the signal's receivers (named by the writer)."""
    from collector import hook

    for _ in range(3):
        for sender in senders or (None,):
            getattr(signal, method)(sender=sender)
        collector_flush()
    assert signal in hook._known


def collector_flush() -> None:
    """Wait for the writer to drain the queue."""
    import collector

    assert collector.flush(10)


def test_learned_receiver_names_follow_connect_and_disconnect(recorded: Any) -> None:
    signal = Signal()

    def first(sender: Any, **kw: Any) -> str:
        return "first"

    def second(sender: Any, **kw: Any) -> str:
        return "second"

    def third(sender: Any, **kw: Any) -> str:
        return "third"

    signal.connect(first)
    _learned(signal)
    signal.disconnect(first)
    signal.connect(second)  # same count, same list object: the names must not be reused
    assert signal.send(sender=None) == [(second, "second")]
    signal.connect(third)
    for _ in range(3):
        assert [r for _, r in signal.send(sender=None)] == ["second", "third"]
    prefix = "tests.collector.test_recording.test_learned_receiver_names_follow_connect_and_disconnect"
    events = recorded()
    assert [c["receiver"] for c in events[-4]["calls"]] == [f"{prefix}.<locals>.second"]
    for event in events[-3:]:
        assert [(c["index"], c["receiver"]) for c in event["calls"]] == [
            (0, f"{prefix}.<locals>.second"), (1, f"{prefix}.<locals>.third"),
        ]
        assert all(c["duration_ns"] > 0 for c in event["calls"])
        assert sum(c["duration_ns"] for c in event["calls"]) <= event["duration_ns"]


def test_learned_path_with_a_sender_filter_names_only_the_receivers_reached(recorded: Any) -> None:
    signal = Signal()

    class Shop:
        pass

    def everyone(sender: Any, **kw: Any) -> str:
        return "everyone"

    def shops_only(sender: Any, **kw: Any) -> str:
        return "shop"

    signal.connect(everyone)
    signal.connect(shops_only, sender=Shop)
    _learned(signal, Shop, "someone")
    assert [r for _, r in signal.send(sender="someone")] == ["everyone"]
    assert [r for _, r in signal.send(sender=Shop)] == ["everyone", "shop"]
    *_, other, shop = recorded()
    assert [c["receiver"].rsplit(".", 1)[-1] for c in other["calls"]] == ["everyone"]
    assert [c["receiver"].rsplit(".", 1)[-1] for c in shop["calls"]] == ["everyone", "shops_only"]


def test_learned_path_failures_and_nesting(recorded: Any) -> None:
    outer, inner = Signal(), Signal()

    def ok(sender: Any, **kw: Any) -> str:
        return "ok"

    def nested(sender: Any, **kw: Any) -> str:
        inner.send(sender="inside")
        return "nested"

    def fails(sender: Any, **kw: Any) -> None:
        raise Boom("learned")

    inner.connect(ok)
    outer.connect(ok)
    outer.connect(fails)
    outer.connect(nested)
    _learned(inner)
    _learned(outer, method="send_robust")
    result = outer.send_robust(sender=None)
    assert [r for _, r in result][0] == "ok" and isinstance(result[1][1], Boom)
    assert result[2][1] == "nested"
    with pytest.raises(Boom):
        outer.send(sender=None)
    events = recorded()
    robust = [e for e in events if e["method"] == "send_robust"][-1]
    plain = [e for e in events if e["method"] == "send" and e["signal"] == robust["signal"]]
    assert [c["outcome"] for c in robust["calls"]] == ["ok", "error", "ok"]
    assert robust["calls"][1]["exc_type"] == "tests.collector.test_recording.Boom"
    assert [c["index"] for c in robust["calls"]] == [0, 1, 2]
    child = [e for e in events if e["sender"] == "inside" and e["parent_id"] == robust["id"]]
    assert len(child) == 1 and child[0]["parent_call"] == 2
    [raised] = plain[-1:]
    assert [c["outcome"] for c in raised["calls"]] == ["ok", "error"]
    assert raised["failure_count"] == 1


class _RaisesOnLookup:
    """Every attribute lookup raises a BaseException (hasattr does not catch it)."""

    def __getattr__(self, name: str) -> Any:
        raise KeyboardInterrupt(name)


def test_a_value_whose_capture_plan_raises_is_recorded_through_capture_kwargs(
    recorded: Any,
) -> None:
    """The hook calls a signal's newest capture plan itself; when that raises, the send still
    returns the receiver's response and the event keeps the other arguments."""
    from collector import capture, hook

    hostile = Signal()
    hostile.connect(on_ship)
    try:
        _learned(hostile)  # the fast path's signal from now on
        recorded()  # (forget the learning sends)
        from collector.sinks import clear_memory

        clear_memory()
        for _ in range(3):  # the first send makes the plan, the later ones call it directly
            responses = hostile.send(sender="x", bad=_RaisesOnLookup(), n=1)
            assert [r for _, r in responses] == ["shipped"]
        assert hostile in hook._known and id(hostile) in capture.newest
        events = recorded()
        assert len(events) == 3
        for event in events:
            assert event["kwargs"] == {"bad": "<uncapturable _RaisesOnLookup>", "n": 1}
    finally:
        hostile.disconnect(on_ship)
