"""collector.receivers.live_receivers returns what Signal._live_receivers returns, in every case."""

from __future__ import annotations

import gc
from typing import Any
from unittest import mock

from django.dispatch import Signal

from collector import receivers
from collector.receivers import live_receivers


class Sender:
    """A class sender."""

    def method(self) -> None:
        """A bound method used as a sender."""


def plain(sender: Any, **kwargs: Any) -> None:
    """A module-level receiver."""


async def coroutine(sender: Any, **kwargs: Any) -> None:
    """An async receiver."""


class Handler:
    """Receivers as bound methods (weakly connected through WeakMethod)."""

    def on(self, sender: Any, **kwargs: Any) -> None:
        """A bound-method receiver."""

    async def on_async(self, sender: Any, **kwargs: Any) -> None:
        """An async bound-method receiver."""


def _same(signal: Signal, sender: Any) -> tuple[list[Any], list[Any]]:
    """Assert both ways agree for ``sender``; return the result."""
    expected = signal._live_receivers(sender)
    got = live_receivers(signal, sender)
    assert got == expected  # bound methods compare equal (each weakref call makes a new one)
    return got


def test_every_kind_of_receiver_and_sender_filter() -> None:
    """Weak and strong, functions and bound methods, sync and async, filtered by sender."""
    signal = Signal()
    handler, instance = Handler(), Sender()
    bound_sender = instance.method
    signal.connect(plain)
    signal.connect(coroutine)
    signal.connect(handler.on, sender=Sender)
    signal.connect(handler.on_async, sender=Sender)
    signal.connect(lambda sender, **kw: None, weak=False, sender=instance)
    signal.connect(lambda sender, **kw: None, weak=False, sender=bound_sender)
    signal.connect(lambda sender, **kw: None, weak=False, dispatch_uid="strong")
    for sender in (None, Sender, instance, bound_sender, "text", 1):
        _same(signal, sender)
    sync, async_ = _same(signal, Sender)
    assert len(sync) == 3 and len(async_) == 2


def test_a_dead_receiver_is_left_out_and_django_clears_it() -> None:
    """A receiver that died: Django's own method runs (it clears the list under its lock)."""
    signal = Signal()

    def short_lived(sender: Any, **kwargs: Any) -> None:
        """Dies when the test drops it."""

    signal.connect(plain)
    signal.connect(short_lived)
    del short_lived
    gc.collect()
    assert signal._dead_receivers
    assert live_receivers(signal, None) == ([plain], [])
    assert not signal._dead_receivers  # Django's method cleaned up, as it would have


def test_a_dead_sender_drops_its_receivers() -> None:
    """A receiver connected to a sender that died is not returned (Django 6.x keeps a weakref)."""
    signal = Signal()
    sender = Sender()
    signal.connect(lambda sender, **kw: None, weak=False, sender=sender)
    signal.connect(plain)
    _same(signal, sender)
    del sender
    gc.collect()
    assert live_receivers(signal, None)[0] == [plain]


def test_connect_and_disconnect_between_sends() -> None:
    """The result follows the list as it changes, same length or not."""
    signal = Signal()
    signal.connect(plain)
    assert _same(signal, None)[0] == [plain]
    signal.disconnect(plain)
    handler = Handler()
    signal.connect(handler.on)
    assert _same(signal, None)[0] == [handler.on]
    signal.receivers = []
    assert _same(signal, None) == ([], [])


def test_a_caching_signal_s_cache_entry_resolves_as_django_resolves_it() -> None:
    """Model signals cache per sender: the entry send looked up gives Django's answer."""
    signal = Signal(use_caching=True)
    handler, instance = Handler(), Sender()
    signal.connect(plain, sender=Sender)
    signal.connect(handler.on)
    signal.connect(handler.on_async, sender=Sender)
    signal.connect(lambda sender, **kw: None, weak=False, sender=instance)
    for sender in (Sender, instance):  # (None cannot be a weak key: Django raises too)
        expected = signal._live_receivers(sender)  # fills the cache
        cached = signal.sender_receivers_cache.get(sender)
        assert cached is not None
        assert live_receivers(signal, sender, cached) == expected
    del handler, expected, cached
    gc.collect()  # a receiver died: Django's method runs and cleans up
    assert live_receivers(signal, Sender, signal.sender_receivers_cache.get(Sender)) == (
        [plain], []
    )


def test_caching_signals_use_django_s_cached_path() -> None:
    """A use_caching signal (model signals are) goes through Django's method and its cache."""
    signal = Signal(use_caching=True)
    signal.connect(plain, sender=Sender)
    assert Sender not in signal.sender_receivers_cache
    assert live_receivers(signal, Sender) == ([plain], [])
    assert Sender in signal.sender_receivers_cache  # filled by Django's own method


def test_an_overridden_or_patched_method_is_respected() -> None:
    """A subclass's _live_receivers, or one patched by a test, is called instead."""

    class Quiet(Signal):
        def _live_receivers(self, sender: Any) -> tuple[list[Any], list[Any]]:
            return [], []

    quiet = Quiet()
    quiet.connect(plain)
    assert live_receivers(quiet, None) == ([], [])
    signal = Signal()
    signal.connect(plain)
    with mock.patch.object(Signal, "_live_receivers", return_value=(["patched"], [])):
        assert live_receivers(signal, None) == (["patched"], [])


def test_the_probe_reads_this_django_s_entry_shape() -> None:
    """The entry shape probed at import matches a real connected entry."""
    signal = Signal()
    signal.connect(plain)
    assert receivers._SENDER_REFS is (len(signal.receivers[0]) == 4)


def test_a_patch_made_before_import_keeps_running() -> None:
    """sentry-sdk patches _live_receivers in sentry_sdk.init(), before the collector is imported:
    the patch must still run on every send, and Django's method is still recognised under a
    wrapper that keeps __wrapped__."""
    import functools
    import importlib

    original = Signal.__dict__["_live_receivers"]
    seen: list[Any] = []

    def opaque(self: Signal, sender: Any) -> Any:  # as sentry-sdk's: no __wrapped__
        seen.append(sender)
        return original(self, sender)

    @functools.wraps(original)
    def transparent(self: Signal, sender: Any) -> Any:
        seen.append(sender)
        return original(self, sender)

    signal = Signal()
    signal.connect(plain)
    try:
        for patch, recognised in ((opaque, None), (transparent, original)):
            Signal._live_receivers = patch  # type: ignore[method-assign]
            fresh = importlib.reload(receivers)
            assert fresh._DJANGO_LIVE is recognised
            seen.clear()
            assert fresh.live_receivers(signal, None) == ([plain], [])
            assert seen == [None]  # the patch ran
            Signal._live_receivers = original  # type: ignore[method-assign]
            seen.clear()
            assert fresh.live_receivers(signal, None) == ([plain], [])
            assert seen == []
    finally:
        Signal._live_receivers = original  # type: ignore[method-assign]
        importlib.reload(receivers)
    assert receivers._DJANGO_LIVE is original
