"""Signal.send as the C accelerator's SendMethod: every call answers as Django's and as the hook's
Python ``send`` would (results, receivers, exceptions), and it reads like the function it wraps."""

from __future__ import annotations

import gc
import inspect
import os
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.dispatch import Signal
from django.dispatch import dispatcher as _dispatcher

import collector
from collector import capture, hook


@pytest.fixture(params=["c", "python"])
def send_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test with Signal.send as the C SendMethod and as the hook's Python ``send``."""
    if request.param == "c" and capture.SendMethod is None:
        if os.environ.get("CI"):  # make venv builds it; CI must have it
            pytest.fail("collector._speedups is not built (scripts/build_speedups.sh)")
        pytest.skip("collector._speedups is not built (scripts/build_speedups.sh)")
    collector.install()
    installed = Signal.__dict__["send"]
    if request.param == "python":
        Signal.send = hook.send  # type: ignore[method-assign]
    elif capture.SendMethod is not None:
        assert isinstance(installed, capture.SendMethod)
    yield request.param
    Signal.send = installed  # type: ignore[method-assign]


def _outcome(call: Callable[[], Any]) -> Any:
    """Return what a call gave: its responses (receivers by name), or the exception it raised."""
    try:
        result = call()
    except Exception as exc:  # noqa: BLE001 - the exception is what we compare
        # The message names the function ("Signal.send()" or "send()"); compare what follows.
        return ("raised", type(exc), str(exc).split("()", 1)[-1])
    return ("returned", [(getattr(r, "__name__", r), v) for r, v in result])


def _calls() -> list[tuple[str, Callable[[], Any]]]:
    """Calls of every argument shape, to signals with and without receivers."""

    class Model:
        pass

    class Other:
        pass

    def heard(sender: Any, **kwargs: Any) -> Any:
        return sorted(kwargs)

    plain, empty, caching = Signal(), Signal(), Signal(use_caching=True)
    plain.connect(heard, weak=False)
    caching.connect(heard, sender=Model, weak=False)
    unhashable: Any = []
    sender_key = "".join(["sen", "der"])  # a keyword name that is not interned
    return [
        ("keyword sender", lambda: plain.send(sender=Model, a=1, b=2)),
        ("positional sender", lambda: plain.send(Model, a=1)),
        ("sender from a dict", lambda: plain.send(**{sender_key: Model, "a": 1})),
        ("unbound", lambda: Signal.send(plain, sender=Model, a=1)),
        ("no receivers", lambda: empty.send(sender=Model, a=1)),
        ("no receivers, positional", lambda: empty.send(Model)),
        ("caching, heard", lambda: caching.send(sender=Model, a=1)),
        ("caching, heard again", lambda: caching.send(sender=Model, a=1)),
        ("caching, not heard (NO_RECEIVERS cached)", lambda: caching.send(sender=Other)),
        ("caching, not heard again", lambda: caching.send(sender=Other)),
        ("caching, sender None (no weak reference)", lambda: caching.send(sender=None)),
        ("caching, unhashable sender", lambda: caching.send(sender=unhashable)),
        ("plain, unhashable sender", lambda: plain.send(sender=unhashable)),
        ("no sender", lambda: plain.send(a=1)),
        ("no sender, no receivers", lambda: empty.send()),
        ("sender twice", lambda: plain.send(Model, sender=Model)),
        ("sender twice, no receivers", lambda: empty.send(Model, sender=Model)),
        ("self as a keyword", lambda: plain.send(sender=Model, self=1)),
        ("self as a keyword, no receivers", lambda: empty.send(sender=Model, self=1)),
        ("one positional too many", lambda: empty.send(Model, 1)),
        ("unbound without a signal", lambda: Signal.send()),
    ]


def test_every_call_answers_as_django_and_the_python_send(send_kind: str) -> None:
    hooked = [(name, _outcome(call)) for name, call in _calls()]
    collector.flush(10)
    collector.uninstall()
    try:
        bare = [(name, _outcome(call)) for name, call in _calls()]
    finally:
        collector.install()
    assert hooked == bare
    answers = dict(bare)
    assert answers["keyword sender"] == ("returned", [("heard", ["a", "b", "signal"])])
    assert answers["caching, not heard again"] == ("returned", [])
    assert answers["no sender, no receivers"][:2] == ("raised", TypeError)
    assert answers["self as a keyword, no receivers"][:2] == ("raised", TypeError)


def test_receiver_exceptions_propagate_unchanged(send_kind: str) -> None:
    raised = ValueError("from the receiver")

    def fails(sender: Any, **kwargs: Any) -> None:
        raise raised

    signal = Signal(use_caching=True)
    signal.connect(fails, sender=int, weak=False)
    with pytest.raises(ValueError) as info:
        signal.send(sender=int)
    assert info.value is raised


def test_sends_through_it_are_recorded(send_kind: str, recorded: Any) -> None:
    if send_kind == "python":
        Signal.send = hook.send  # type: ignore[method-assign]  # recorded re-installed the hook
    signal = Signal(use_caching=True)

    class Model:
        pass

    def heard(sender: Any, **kwargs: Any) -> str:
        return "ok"

    signal.connect(heard, sender=Model, weak=False)
    for _ in range(3):
        assert [v for _, v in signal.send(sender=Model, number=7)] == ["ok"]
    assert signal.send(sender=int) == []
    events = [e for e in recorded() if e["sender"].endswith("Model")]
    assert len(events) == 3
    assert all(e["kwargs"] == {"number": 7} and len(e["calls"]) == 1 for e in events)


def test_it_reads_like_the_function_it_wraps() -> None:
    if capture.SendMethod is None:
        pytest.skip("collector._speedups is not built")
    collector.install()
    method = Signal.__dict__["send"]
    django_send = hook._ORIGINALS["send"]
    signal = Signal()
    assert Signal.send is method
    assert signal.send.__self__ is signal and signal.send.__func__ is method
    assert method.__func__ is hook.send
    assert method.__wrapped__ is django_send
    assert method.__name__ == "send" and method.__doc__ == django_send.__doc__
    assert inspect.signature(Signal.send) == inspect.signature(django_send)
    assert signal.send(sender=None) == []


def test_a_cache_of_another_kind_is_read_by_the_python_send(send_kind: str) -> None:
    """A cache that is neither a dict nor a WeakKeyDictionary: its own ``get`` answers."""

    class Cache(dict):  # type: ignore[type-arg]
        reads = 0

        def get(self, key: Any, default: Any = None) -> Any:
            Cache.reads += 1
            return _dispatcher.NO_RECEIVERS if key is str else super().get(key, default)

    signal = Signal()
    signal.connect(lambda sender, **kw: "heard", weak=False)
    signal.sender_receivers_cache = Cache()
    assert signal.send(sender=str) == []
    assert [v for _, v in signal.send(sender=int)] == ["heard"]
    assert Cache.reads == 2


def test_a_weak_key_cache_entry_dies_with_its_sender(send_kind: str) -> None:
    signal = Signal(use_caching=True)

    class Model:
        pass

    model = Model()  # an instance: class senders' labels are kept (hook.sender_labels)
    signal.connect(lambda sender, **kw: "heard", sender=model, weak=False)
    assert [v for _, v in signal.send(sender=model)] == ["heard"]
    assert isinstance(signal.sender_receivers_cache, weakref.WeakKeyDictionary)
    assert len(signal.sender_receivers_cache) == 1
    del model
    collector.flush(10)
    gc.collect()
    assert len(signal.sender_receivers_cache) == 0


def test_a_patched_cache_get_is_obeyed(send_kind: str) -> None:
    """mock.patch of a signal's cache ``get`` (on the instance or on WeakKeyDictionary)."""
    from unittest import mock

    signal = Signal(use_caching=True)

    class Model:
        pass

    signal.connect(lambda sender, **kw: "heard", sender=Model, weak=False)
    cache = signal.sender_receivers_cache
    with mock.patch.object(cache, "get", return_value=_dispatcher.NO_RECEIVERS):
        assert signal.send(sender=Model) == []
    with mock.patch.object(weakref.WeakKeyDictionary, "get", return_value=_dispatcher.NO_RECEIVERS):
        assert signal.send(sender=Model) == []
    assert [v for _, v in signal.send(sender=Model)] == ["heard"]


class _Key(str):
    """A keyword name that never equals another (CPython binds arguments with its __eq__)."""

    __hash__ = str.__hash__

    def __eq__(self, other: object) -> bool:
        return False


class _Flaky:
    """A sender whose hash raises once, then works; counts the calls."""

    calls = 0

    def __hash__(self) -> int:
        _Flaky.calls += 1
        if _Flaky.calls == 1:
            raise LookupError("hash failed")
        return 1


def test_odd_keywords_and_failing_hashes_answer_as_the_python_send(send_kind: str) -> None:
    signal = Signal()
    signal.connect(lambda sender, **kw: "heard", weak=False)
    outcomes = [_outcome(lambda: signal.send(**{_Key("sender"): 1}))]
    _Flaky.calls = 0
    outcomes.append(_outcome(lambda: signal.send(sender=_Flaky())))
    outcomes.append(_Flaky.calls)  # the hash ran once: nothing is evaluated twice
    outcomes.append(_outcome(lambda: signal.send(sender=_Flaky())))
    collector.flush(10)
    collector.uninstall()
    try:
        expected = [_outcome(lambda: signal.send(**{_Key("sender"): 1}))]
        _Flaky.calls = 0
        expected.append(_outcome(lambda: signal.send(sender=_Flaky())))
        expected.append(_Flaky.calls)
        expected.append(_outcome(lambda: signal.send(sender=_Flaky())))
    finally:
        collector.install()
    assert outcomes == expected
    assert expected[0][:2] == ("raised", TypeError) and expected[1][:2] == ("raised", LookupError)
    assert expected[2] == 1 and expected[3] == ("returned", [("<lambda>", "heard")])


def test_attribute_reads_never_fail_oddly() -> None:
    if capture.SendMethod is None:
        pytest.skip("collector._speedups is not built")
    collector.install()
    assert getattr(Signal.send, "\ud800", None) is None
    assert getattr(Signal.send, "missing", "default") == "default"
