"""With the hook on, signals behave exactly as bare Django: each scenario runs both ways and compares."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

import django
import pytest
from django.dispatch import Signal

import collector

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def both(scenario: Callable[[], Any]) -> tuple[Any, Any]:
    """Run ``scenario`` with the hook off, then on; return both results."""
    collector.flush(10)
    collector.uninstall()
    try:
        bare = scenario()
    finally:
        collector.install()
    hooked = scenario()
    collector.flush(10)
    return bare, hooked


class Boom(Exception):
    """A receiver failure used in these tests."""


def _receivers(trace: list[str]) -> dict[str, Any]:
    """Build a set of named sync and async receivers that append to ``trace``."""

    def one(sender: Any, **kw: Any) -> str:
        trace.append("one")
        return "r1"

    def two(sender: Any, **kw: Any) -> str:
        trace.append("two")
        return "r2"

    def fails(sender: Any, **kw: Any) -> None:
        trace.append("fails")
        raise Boom("bad receiver")

    async def a_one(sender: Any, **kw: Any) -> str:
        trace.append("a_one:start")
        await asyncio.sleep(0.01)
        trace.append("a_one:end")
        return "a1"

    async def a_fails(sender: Any, **kw: Any) -> None:
        trace.append("a_fails")
        # Give concurrently started sync receivers (Django 5.2's asend) time to run, so the
        # outcome does not depend on a thread-start race in bare Django either.
        await asyncio.sleep(0.02)
        raise Boom("bad async receiver")

    return {"one": one, "two": two, "fails": fails, "a_one": a_one, "a_fails": a_fails}


def _scenario(method: str, names: list[str], **kwargs: Any) -> Callable[[], Any]:
    """Return a scenario: connect named receivers to a fresh signal and send through ``method``."""

    def run() -> Any:
        trace: list[str] = []
        pool = _receivers(trace)
        signal = Signal()
        for name in names:
            signal.connect(pool[name], weak=False)
        try:
            if method.startswith("a"):
                result = asyncio.run(getattr(signal, method)(sender=None, **kwargs))
            else:
                result = getattr(signal, method)(sender=None, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - the exception is what we compare
            # Django 5.2 lets sibling work finish after the first failure; wait for it, and
            # compare what ran, not the race between threads.
            time.sleep(0.05)
            return ("raised", type(exc), str(exc), sorted(trace))
        described = [
            (r is pool[n] if n in pool else None, n, _describe(resp))
            for (r, resp), n in zip(result, _order(names), strict=True)
        ]
        return ("returned", described, trace)

    return run


def _order(names: list[str]) -> list[str]:
    """Django lists sync receivers first, then async ones, each in connection order."""
    return [n for n in names if not n.startswith("a_")] + [n for n in names if n.startswith("a_")]


def _describe(response: Any) -> Any:
    """Make a response comparable across runs (exceptions by type and message)."""
    if isinstance(response, BaseException):
        return ("exc", type(response), str(response))
    return response


CASES = [
    ("send", ["one", "two"]),
    ("send", ["one", "fails", "two"]),
    ("send", ["one", "a_one", "two"]),
    ("send", ["a_one", "a_fails"]),
    ("send_robust", ["one", "fails", "two"]),
    ("send_robust", ["fails", "a_fails", "a_one"]),
    ("asend", ["one", "a_one", "two"]),
    ("asend", ["fails", "a_one"]),
    ("asend", ["a_fails", "one"]),
    ("asend_robust", ["one", "fails", "a_fails", "a_one"]),
    ("send", []),
    ("asend", []),
]


@pytest.mark.parametrize(("method", "names"), CASES)
def test_same_results_exceptions_and_order(method: str, names: list[str]) -> None:
    bare, hooked = both(_scenario(method, names, payload=1))
    assert hooked == bare
    if bare[0] == "returned":
        assert all(same for same, _, _ in bare[1]), "responses must hold the original receivers"


def test_two_failing_async_receivers_raise_like_django() -> None:
    bare, hooked = both(_scenario("asend", ["a_fails", "a_fails"]))
    assert hooked == bare
    if django.VERSION >= (6, 1):
        assert bare[1] is ExceptionGroup or issubclass(bare[1], BaseExceptionGroup) or bare[1] is Boom


def test_raised_exception_is_the_receivers_own_object() -> None:
    signal = Signal()
    error = Boom("exact")

    def raiser(sender: Any, **kw: Any) -> None:
        raise error

    signal.connect(raiser, weak=False)
    collector.install()
    with pytest.raises(Boom) as info:
        signal.send(sender=None)
    assert info.value is error


def test_send_robust_still_logs_to_django_dispatch(caplog: pytest.LogCaptureFixture) -> None:
    def scenario() -> list[tuple[str, str]]:
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="django.dispatch"):
            _scenario("send_robust", ["fails", "a_fails"])()
        return [(r.name, r.getMessage()) for r in caplog.records if r.name == "django.dispatch"]

    bare, hooked = both(scenario)
    assert hooked == bare
    assert len(bare) == 2


def test_async_receivers_still_run_concurrently() -> None:
    def scenario() -> str:
        signal = Signal()
        first, second = asyncio.Event(), asyncio.Event()

        async def a(sender: Any, **kw: Any) -> None:
            first.set()
            await asyncio.wait_for(second.wait(), 2)

        async def b(sender: Any, **kw: Any) -> None:
            second.set()
            await asyncio.wait_for(first.wait(), 2)

        signal.connect(a, weak=False)
        signal.connect(b, weak=False)

        async def main() -> str:
            await signal.asend(sender=None)
            await signal.asend_robust(sender=None)
            return "concurrent"

        return asyncio.run(main())

    assert both(scenario) == ("concurrent", "concurrent")


def test_sync_send_with_async_receivers_runs_them_concurrently() -> None:
    def scenario() -> int:
        signal = Signal()
        state = {"peak": 0, "now": 0}

        async def slow(sender: Any, **kw: Any) -> None:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
            await asyncio.sleep(0.02)
            state["now"] -= 1

        async def slow2(sender: Any, **kw: Any) -> None:
            await slow(sender)

        signal.connect(slow, weak=False)
        signal.connect(slow2, weak=False)
        signal.send(sender=None)
        return state["peak"]

    assert both(scenario) == (2, 2)


VAR: contextvars.ContextVar[str] = contextvars.ContextVar("test_semantics_var", default="unset")


def test_contextvars_behave_the_same() -> None:
    def scenario() -> tuple[str, str, str]:
        signal = Signal()

        async def setter(sender: Any, **kw: Any) -> None:
            VAR.set("from-async")

        def sync_setter(sender: Any, **kw: Any) -> None:
            VAR.set("from-sync")

        signal.connect(setter, weak=False)

        async def main() -> tuple[str, str, str]:
            VAR.set("before")
            await signal.asend(sender=None)
            after_async = VAR.get()
            signal.disconnect(setter)
            signal.connect(sync_setter, weak=False)
            await signal.asend(sender=None)
            after_sync = VAR.get()
            signal.send(sender=None)
            return after_async, after_sync, VAR.get()

        return asyncio.run(main())

    bare, hooked = both(scenario)
    assert hooked == bare


def test_weak_receivers_are_not_kept_alive(recorded: Any) -> None:
    signal = Signal()

    class Holder:
        def method(self, sender: Any, **kw: Any) -> str:
            return "m"

    def local(sender: Any, **kw: Any) -> str:
        return "f"

    holder = Holder()
    signal.connect(local)
    signal.connect(holder.method)
    assert len(signal.send(sender=None)) == 2
    assert len(recorded()) == 1
    func_ref, obj_ref = weakref.ref(local), weakref.ref(holder)
    del local, holder
    gc.collect()
    assert func_ref() is None and obj_ref() is None
    assert signal.send(sender=None) == []
    assert not signal.has_listeners()


def test_weak_sender_is_not_kept_alive(recorded: Any) -> None:
    signal = Signal()

    class Sender:
        pass

    sender = Sender()

    def receiver(sender: Any, **kw: Any) -> None:
        return None

    signal.connect(receiver, sender=sender, weak=False)
    signal.send(sender=sender)
    assert recorded()
    ref = weakref.ref(sender)
    del sender
    gc.collect()
    assert ref() is None


def test_caching_and_has_listeners_unchanged() -> None:
    def scenario() -> tuple[Any, ...]:
        signal = Signal(use_caching=True)

        class A:
            pass

        class B:
            pass

        def only_a(sender: Any, **kw: Any) -> str:
            return "a"

        signal.connect(only_a, sender=A, weak=False)
        first = [(r is only_a, v) for r, v in signal.send(sender=A)]
        none = signal.send(sender=B)
        cached = {k.__name__: (v if isinstance(v, list) else "NO_RECEIVERS") and len(v) if isinstance(v, list) else "NO_RECEIVERS" for k, v in signal.sender_receivers_cache.items()}
        again = [(r is only_a, v) for r, v in signal.send(sender=A)]
        return first, none, cached, again, signal.has_listeners(A), signal.has_listeners(B)

    bare, hooked = both(scenario)
    assert hooked == bare
    assert bare[2] == {"A": 1, "B": "NO_RECEIVERS"}


def test_cached_entries_of_every_kind_answer_like_django(recorded: Any) -> None:
    """A caching signal's cached entries (resolved by the hook's send itself, 5.2 and 6.x):
    weak and strong functions, bound methods (WeakMethod), a sender that died, an async
    receiver; the responses, their receivers and the order are Django's, and sends are stored."""

    def scenario() -> list[Any]:
        signal = Signal(use_caching=True)

        class Model:
            pass

        class Handler:
            def on(self, sender: Any, **kw: Any) -> str:
                return "method"

        def weak(sender: Any, **kw: Any) -> str:
            return "weak"

        async def later(sender: Any, **kw: Any) -> str:
            return "async"

        handler, gone = Handler(), type("Gone", (), {})
        signal.connect(weak, sender=Model)
        signal.connect(handler.on, sender=Model)
        signal.connect(lambda sender, **kw: "strong", weak=False, sender=Model)
        signal.connect(weak, sender=gone, dispatch_uid="gone")
        out = []
        for _ in range(3):  # the second and third sends use the cache
            out.append([(getattr(r, "__name__", "?"), v) for r, v in signal.send(sender=Model)])
        out.append([v for _, v in signal.send(sender=gone)])
        del gone
        gc.collect()
        out.append([v for _, v in signal.send(sender=Model)])
        signal.connect(later, sender=Model)
        out.append([v for _, v in signal.send(sender=Model)])
        out.append([v for _, v in signal.send(sender=Model)])
        del handler
        gc.collect()
        out.append([v for _, v in signal.send(sender=Model)])
        return out

    bare, hooked = both(scenario)
    assert hooked == bare
    assert bare[1] == [("weak", "weak"), ("on", "method"), ("<lambda>", "strong")]
    assert bare[-2] == ["weak", "method", "strong", "async"]
    assert bare[-1] == ["weak", "strong", "async"]
    stored = [len(e["calls"]) for e in recorded()]
    assert stored[:3] == [3, 3, 3] and stored[-1] == 3


def test_uninstall_restores_djangos_functions() -> None:
    from django.dispatch import dispatcher

    collector.uninstall()
    try:
        assert Signal.send is dispatcher.Signal.__dict__["send"]
        from collector import hook

        for name, original in hook._ORIGINALS.items():
            assert Signal.__dict__[name] is original
    finally:
        collector.install()
    assert Signal.__dict__["send"] is not collector.hook._ORIGINALS["send"]


def test_install_and_uninstall_are_idempotent_and_thread_safe() -> None:
    import threading

    results: list[bool] = []
    collector.uninstall()
    threads = [threading.Thread(target=lambda: results.append(collector.install())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1 and collector.is_installed()
    assert collector.install() is False
    assert collector.uninstall() is True and collector.uninstall() is False
    collector.install()


def test_hook_never_raises_when_its_own_state_is_disturbed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Greenlets sharing a thread could leave junk in the nesting slot; a writer start fails."""
    from collector import hook

    signal, inner = Signal(), Signal()
    junk = iter([[], "junk", (1,), None] * 1000)

    def clobber(sender: Any, **kw: Any) -> str:
        hook._cell()[1][0] = next(junk)  # what an interleaved greenlet's send could leave
        assert inner.send(sender=None) == [(on_inner, "inner")]
        return "first"

    def on_inner(sender: Any, **kw: Any) -> str:
        return "inner"

    def second(sender: Any, **kw: Any) -> str:
        return "second"

    signal.connect(clobber, weak=False)
    signal.connect(second, weak=False)
    inner.connect(on_inner, weak=False)
    collector.install()
    assert [r for _, r in signal.send(sender=None)] == ["first", "second"]

    class Broken:
        alive = False

        @staticmethod
        def start() -> None:
            raise RuntimeError("can't start new thread")

        @staticmethod
        def drop(reason: str) -> None:
            raise RuntimeError("counting failed too")

    monkeypatch.setattr(hook, "runtime_state", Broken())
    for _ in range(300):  # crosses a writer liveness check
        assert [r for _, r in signal.send_robust(sender=None)] == ["first", "second"]
    monkeypatch.setattr(hook, "capacity", 0)
    assert [r for _, r in signal.send(sender=None)] == ["first", "second"]
