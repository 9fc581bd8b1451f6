"""A signal's live receivers, exactly as ``Signal._live_receivers`` returns them, for less.

Django's own method takes the signal's lock, clears dead receivers and walks the receivers twice
(once to filter by sender, once to resolve weak references): about 1.4 µs of a 2.5 µs send to one
receiver. ``live_receivers`` walks them once, without the lock, when nothing needs it: no
receiver died since the last clean-up (Django's weakref callback sets ``_dead_receivers``; the
lock only guards that clean-up and the per-sender cache) and ``_live_receivers`` is Django's own
(not overridden by a subclass or patched by a test). For a signal that caches per sender (the
model signals), the cache entry ``send`` already looked up is resolved the way Django resolves
it, instead of being looked up again; an entry not cached yet goes through Django's method, which
fills it. Otherwise Django's method runs. Reading the list without the lock is what Django's
cached path does too: a concurrent ``connect`` or ``disconnect`` is seen or not, as with the lock
taken a moment earlier or later.

The receivers list holds ``((receiver key, sender key), receiver, is_async)`` on Django 5.2 and
``((receiver key, sender key), receiver, sender weakref or None, is_async)`` on 6.0 and later; the
shape is read once, from a probe signal.
"""

from __future__ import annotations

import weakref
from typing import Any

from django.dispatch import Signal
from django.dispatch import dispatcher as _dispatcher

__all__ = ["live_receivers"]


def _django_method() -> Any:
    """Return Django's own ``Signal._live_receivers``, or None if a patch hides it.

    A library may have patched it before this module is imported (sentry-sdk does, in
    ``sentry_sdk.init()`` from the settings): that patch must keep running, so the fast path is
    only taken while the method in place is Django's own. Wrappers that keep ``__wrapped__`` are
    seen through; one that does not makes every send use the method in place.
    """
    found = Signal.__dict__.get("_live_receivers")
    while found is not None:
        code = getattr(found, "__code__", None)
        if (
            code is not None
            and getattr(found, "__qualname__", "") == "Signal._live_receivers"
            and code.co_filename.replace("\\", "/").endswith("django/dispatch/dispatcher.py")
        ):
            return found
        found = getattr(found, "__wrapped__", None)
    return None


_DJANGO_LIVE = _django_method()
_NONE_ID = _dispatcher.NONE_ID
_make_id: Any = vars(_dispatcher)["_make_id"]  # private in Django: not in its type stubs
_Ref = weakref.ReferenceType


def _probe_shape() -> int:
    """Return the length of an entry of ``Signal.receivers`` on this Django version."""

    def receiver(**kwargs: Any) -> None:
        """The probe's receiver."""

    probe = Signal()
    probe.connect(receiver, weak=False)
    return len(probe.receivers[0])


_SENDER_REFS = _probe_shape() == 4


def live_receivers(  # noqa: C901 - every send runs this: one function, no helper calls
    signal: Signal, sender: Any, cached: Any = None
) -> tuple[list[Any], list[Any]]:
    """Return (sync receivers, async receivers) for ``sender``, as ``signal._live_receivers``.

    ``cached`` is ``signal.sender_receivers_cache.get(sender)`` when the caller already looked it
    up (``send`` does, for Django's ``NO_RECEIVERS`` test): a caching signal's entry is then used
    as Django would use it, without a second lookup in its ``WeakKeyDictionary``.
    """
    dead = signal._dead_receivers  # type: ignore[attr-defined]
    if dead or type(signal)._live_receivers is not _DJANGO_LIVE:
        return signal._live_receivers(sender)
    # Four loops of one shape (cached entry or receivers list, with or without sender weakrefs)
    # on purpose: one pass, no intermediate list, no per-entry shape test.
    sync: list[Any] = []
    async_: list[Any] = []
    if signal.use_caching:
        if cached is None:  # not cached yet: Django's method fills the cache
            return signal._live_receivers(sender)
        if _SENDER_REFS:
            for receiver, sender_ref, is_async in cached:
                if type(receiver) is _Ref or isinstance(receiver, _Ref):
                    receiver = receiver()
                    if receiver is None:
                        continue
                if sender_ref is not None and sender_ref() is None:
                    continue
                (async_ if is_async else sync).append(receiver)
        else:
            for receiver, is_async in cached:
                if type(receiver) is _Ref or isinstance(receiver, _Ref):
                    receiver = receiver()
                    if receiver is None:
                        continue
                (async_ if is_async else sync).append(receiver)
        return sync, async_
    key = _make_id(sender)
    if _SENDER_REFS:
        for (_receiver_key, sender_key), receiver, sender_ref, is_async in signal.receivers:
            if sender_key != _NONE_ID and sender_key != key:
                continue
            if type(receiver) is _Ref or isinstance(receiver, _Ref):
                receiver = receiver()
                if receiver is None:
                    continue
            if sender_ref is not None and sender_ref() is None:
                continue
            (async_ if is_async else sync).append(receiver)
    else:
        for (_receiver_key, sender_key), receiver, is_async in signal.receivers:
            if sender_key != _NONE_ID and sender_key != key:
                continue
            if type(receiver) is _Ref or isinstance(receiver, _Ref):
                receiver = receiver()
                if receiver is None:
                    continue
            (async_ if is_async else sync).append(receiver)
    return sync, async_
