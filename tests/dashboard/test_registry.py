"""The registry reads Django's dispatcher as it is, on Django 5.2's and 6.x's tuple shapes."""

from __future__ import annotations

import sys
import types
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.dispatch import Signal

from dashboard.registry import _describe_entry, registry_signals

registry_test_signal = Signal()


class Handler:
    """Receivers as bound methods."""

    def on_event(self, sender: Any, **kwargs: Any) -> None:
        """A bound-method receiver."""


def plain(sender: Any, **kwargs: Any) -> None:
    """A plain function receiver."""


async def coroutine(sender: Any, **kwargs: Any) -> None:
    """An async receiver."""


@pytest.fixture
def connected() -> Iterator[Handler]:
    """Connect one receiver of each kind to the module's signal; disconnect afterwards."""
    handler = Handler()
    registry_test_signal.connect(plain, sender=User, dispatch_uid="my-uid")
    registry_test_signal.connect(coroutine, weak=False)
    registry_test_signal.connect(handler.on_event)
    yield handler
    registry_test_signal.receivers.clear()
    registry_test_signal.sender_receivers_cache.clear()


def find(name: str) -> Any:
    return next(info for info in registry_signals() if info.name == name)


def test_registry_lists_receivers_with_their_details(connected: Handler) -> None:
    info = find(f"{__name__}.registry_test_signal")
    by_name = {r.name.rsplit(".", 1)[-1]: r for r in info.receivers}
    assert by_name["plain"].sender == "auth.User"
    assert by_name["plain"].dispatch_uid == "my-uid"
    assert by_name["plain"].weak and not by_name["plain"].is_async
    assert by_name["coroutine"].is_async and not by_name["coroutine"].weak
    assert by_name["coroutine"].sender == "any" and by_name["coroutine"].dispatch_uid is None
    assert by_name["on_event"].name.endswith("Handler.on_event") and by_name["on_event"].weak


def test_dead_weak_receivers_are_marked() -> None:
    def temporary(sender: Any, **kwargs: Any) -> None:
        """Goes away."""

    signal = Signal()
    signal.connect(temporary)
    (entry,) = signal.receivers
    del temporary
    assert _describe_entry(entry, {}).dead


def test_both_dispatcher_tuple_shapes() -> None:
    ref = weakref.ref(plain)
    key = ("uid-1", id(User))
    django52 = _describe_entry((key, ref, False), {id(User): "auth.User"})
    django6 = _describe_entry((key, ref, weakref.ref(User), True), {})
    assert django52.sender == django6.sender == "auth.User"
    assert django52.dispatch_uid == django6.dispatch_uid == "uid-1"
    assert not django52.is_async and django6.is_async
    assert _describe_entry(((id(plain), id(None)), plain, None, False), {}).sender == "any"


def test_lazy_objects_in_modules_are_not_evaluated() -> None:
    from django.utils.functional import SimpleLazyObject

    def explode() -> Any:
        raise AssertionError("the registry evaluated a lazy object")

    module = types.ModuleType("registry_lazy_module")
    module.thing = SimpleLazyObject(explode)  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        assert registry_signals()
    finally:
        del sys.modules[module.__name__]


def test_builtin_signals_are_known() -> None:
    names = {info.name for info in registry_signals()}
    assert {"django.db.models.signals.post_save", "django.core.signals.request_started"} <= names
