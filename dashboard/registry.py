"""Every Signal instance loaded in this process and the receivers connected to it right now."""

from __future__ import annotations

import sys
import weakref
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.dispatch import Signal

from collector.naming import describe_callable, sender_label, signal_name

__all__ = ["ReceiverInfo", "SignalInfo", "registry_signals", "receiver_counts"]


@dataclass(frozen=True)
class ReceiverInfo:
    """One connected receiver as the dispatcher holds it."""

    name: str
    sender: str
    weak: bool
    dispatch_uid: str | None
    is_async: bool
    dead: bool = False


@dataclass(frozen=True)
class SignalInfo:
    """One signal: its import path, other names it is reachable under, its receivers."""

    name: str
    aliases: tuple[str, ...]
    use_caching: bool
    receivers: list[ReceiverInfo] = field(default_factory=list)


def registry_signals() -> list[SignalInfo]:
    """Return every signal in ``sys.modules`` with its receivers, sorted by name."""
    found = _scan_modules()
    senders = _model_labels_by_id()
    infos = [
        SignalInfo(
            name=signal_name(sig),
            aliases=tuple(sorted(names)),
            use_caching=bool(getattr(sig, "use_caching", False)),
            receivers=[_describe_entry(entry, senders) for entry in _entries(sig)],
        )
        for sig, names in found.values()
    ]
    return sorted(infos, key=lambda info: info.name)


def receiver_counts() -> dict[str, int]:
    """Return the number of live receivers per signal name."""
    return {info.name: sum(not r.dead for r in info.receivers) for info in registry_signals()}


def _scan_modules() -> dict[int, tuple[Signal, set[str]]]:
    """Find Signal instances held by module attributes (without touching lazy objects)."""
    found: dict[int, tuple[Signal, set[str]]] = {}
    for module_name, module in list(sys.modules.items()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attr, value in list(namespace.items()):
            # type() rather than isinstance(): lazy objects resolve themselves on __class__.
            if attr.startswith("_") or not issubclass(type(value), Signal):
                continue
            entry = found.setdefault(id(value), (value, set()))
            entry[1].add(f"{module_name}.{attr}")
    return found


def _entries(sig: Signal) -> list[tuple[Any, ...]]:
    """Copy the dispatcher's receivers list under its lock."""
    with sig.lock:
        return list(sig.receivers)


def _describe_entry(entry: tuple[Any, ...], senders: dict[int, str]) -> ReceiverInfo:
    """Read one receivers tuple: (key, ref, is_async) on Django 5.2, (key, ref, sender_ref,
    is_async) on 6.x."""
    lookup_key, receiver_ref = entry[0], entry[1]
    sender_ref = entry[2] if len(entry) >= 4 else None
    is_async = bool(entry[-1])
    weak = isinstance(receiver_ref, weakref.ReferenceType)
    receiver = receiver_ref() if weak else receiver_ref
    return ReceiverInfo(
        name=describe_callable(receiver) if receiver is not None else "(dead reference)",
        sender=_sender_text(lookup_key, sender_ref, senders),
        weak=weak,
        dispatch_uid=_dispatch_uid(lookup_key),
        is_async=is_async,
        dead=receiver is None,
    )


def _dispatch_uid(lookup_key: Any) -> str | None:
    """Return the dispatch_uid when the lookup key holds one instead of the receiver's id."""
    first = lookup_key[0] if isinstance(lookup_key, tuple) and lookup_key else None
    if first is None or isinstance(first, int):
        return None
    if isinstance(first, tuple) and all(isinstance(part, int) for part in first):
        return None
    return first if isinstance(first, str) else repr(first)


def _sender_text(lookup_key: Any, sender_ref: Any, senders: dict[int, str]) -> str:
    """Describe the sender filter: any sender, a known class, or an object id."""
    if sender_ref is not None:
        sender = sender_ref() if callable(sender_ref) else sender_ref
        return sender_label(sender) if sender is not None else "(collected sender)"
    sender_id = lookup_key[1] if isinstance(lookup_key, tuple) and len(lookup_key) > 1 else None
    if sender_id is None or sender_id == id(None):
        return "any"
    if isinstance(sender_id, int) and sender_id in senders:
        return senders[sender_id]
    return f"object at 0x{sender_id:x}" if isinstance(sender_id, int) else repr(sender_id)


def _model_labels_by_id() -> dict[int, str]:
    """Map id(model class) to its label, so Django 5.2's id-only keys still name models."""
    return {id(model): model._meta.label for model in apps.get_models(include_auto_created=True)}
