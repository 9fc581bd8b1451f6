"""Dotted names for receivers, signals and senders, each resolved once and cached."""

from __future__ import annotations

import functools
import sys
import threading
import weakref
from typing import Any

from django.core.signals import request_finished, request_started
from django.dispatch import Signal

# id(key) -> (weak reference or strong object, name). Weak where possible, so the cache never
# keeps a weakly connected receiver alive; the identity check guards against id reuse.
_scan_lock = threading.Lock()
CACHE_LIMIT = 50_000


# id(receiver, or its __func__) -> dotted name. An entry lives exactly as long as its object:
# a weak reference's callback removes it when the object is finalised, before its id can be
# reused, so the hot path may trust a hit without dereferencing anything.
receiver_names: dict[int, str] = {}
_receiver_refs: dict[int, Any] = {}
_names_lock = threading.Lock()


def receiver_name(receiver: Any) -> str:
    """Return the receiver's dotted name (cached per function, never raising)."""
    key = getattr(receiver, "__func__", receiver)
    found = receiver_names.get(id(key))
    if found is not None:
        return found
    name = describe_callable(receiver)
    with _names_lock:
        if len(receiver_names) >= CACHE_LIMIT:
            return name
        ident = id(key)
        try:
            _receiver_refs[ident] = weakref.ref(key, lambda ref, ident=ident: _forget(ident))
        except TypeError:
            _receiver_refs[ident] = key  # not weakly referenceable: never collected while kept
        receiver_names[ident] = name
    return name


def _forget(ident: int) -> None:
    """Drop a finalised receiver's cached name."""
    receiver_names.pop(ident, None)
    _receiver_refs.pop(ident, None)


def describe_callable(obj: Any) -> str:
    """Name any callable: functions, bound methods, partials, callable objects, mocks, lambdas."""
    try:
        return _describe(obj, depth=0)
    except Exception:  # noqa: BLE001 - naming must never fail
        return f"<{type(obj).__qualname__}>"


def _describe(obj: Any, depth: int) -> str:
    """Describe one callable, unwrapping partials a few levels deep."""
    if isinstance(obj, functools.partial) and depth < 5:
        return f"functools.partial({_describe(obj.func, depth + 1)})"
    mock_name = _mock_name(obj)
    if mock_name is not None:
        return mock_name
    func = getattr(obj, "__func__", obj)
    qualname = getattr(func, "__qualname__", None)
    module = getattr(func, "__module__", None)
    if isinstance(qualname, str) and isinstance(module, str) and not isinstance(obj, type):
        if callable(func) and (hasattr(func, "__code__") or hasattr(func, "__self__")):
            return f"{module}.{qualname}"
    if isinstance(obj, type):
        return f"{obj.__module__}.{obj.__qualname__}"
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}()"


def _mock_name(obj: Any) -> str | None:
    """Name a unittest.mock object without touching its auto-created attributes."""
    mock_module = sys.modules.get("unittest.mock")
    if mock_module is None or not isinstance(obj, mock_module.NonCallableMock):
        return None
    name = obj._mock_name or obj._extract_mock_name()
    return f"{type(obj).__module__}.{type(obj).__qualname__}({name})"


def signal_name(signal: Signal | str) -> str:
    """Return the signal's import path, e.g. django.db.models.signals.post_save (cached).

    Records carry the name itself once the hook knows it; the first ones carry the signal. The
    hook's fast path sends only signals named here (the request signals excepted).
    """
    if isinstance(signal, str):
        return signal
    from collector import hook

    found = hook.signal_names.get(signal)
    if found is not None:
        return found
    with _scan_lock:
        found = hook.signal_names.get(signal)
        if found is None:
            found = _find_signal_name(signal)
            if len(hook.signal_names) >= CACHE_LIMIT:
                hook.signal_names.clear()
                hook.fast_names.clear()
            hook.signal_names[signal] = found
            if signal is not request_started and signal is not request_finished:
                hook.fast_names[signal] = found
    return found


_PREFERRED = ("django.db.models.signals", "django.core.signals", "django.contrib.auth.signals")


def _find_signal_name(signal: Signal) -> str:
    """Find the module attribute that holds ``signal``; fall back to its class and id."""
    candidates = []
    for module_name, module in list(sys.modules.items()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attr, value in list(namespace.items()):
            if value is signal and not attr.startswith("_"):
                candidates.append(f"{module_name}.{attr}")
    if not candidates:
        return f"{type(signal).__module__}.{type(signal).__qualname__}@{id(signal):x}"
    return min(candidates, key=_rank)


def _rank(dotted: str) -> tuple[int, int, int, str]:
    """Prefer Django's defining modules, then a module named ``signals``, then the shortest path."""
    module = dotted.rsplit(".", 1)[0]
    return (
        0 if module in _PREFERRED else 1,
        0 if module.rsplit(".", 1)[-1] == "signals" else 1,
        dotted.count("."),
        dotted,
    )


def sender_label(sender: Any) -> str:
    """Return the label of a class sender: app_label.Model for models, else module.QualName."""
    if sender is None:
        return "None"
    if isinstance(sender, str):
        return sender
    if isinstance(sender, type):
        return _class_label(sender)
    from collector.capture import safe_repr

    return safe_repr(sender)  # the hook queues strings and classes; this is only a fallback


def _class_label(sender: type) -> str:
    """Label a class sender once and tell the hook, so later records carry the label."""
    from collector import hook

    found = hook.sender_labels.get(sender)
    if found is None:
        meta = getattr(sender, "_meta", None)
        label = getattr(meta, "label", None) if meta is not None else None
        if not isinstance(label, str):
            label = f"{sender.__module__}.{sender.__qualname__}"
        if len(hook.sender_labels) >= CACHE_LIMIT:
            hook.sender_labels.clear()
        found = hook.sender_labels[sender] = label
    return found
