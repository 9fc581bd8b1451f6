"""Safe, capped, JSON-ready snapshots of a signal's sender and arguments, taken at send time.

Nothing captured refers to a live object except model classes (which live as long as the
process): instances, requests and users become small dicts of strings and numbers.
"""

from __future__ import annotations

from typing import Any

from django.db.models.query import QuerySet
from django.db.models.signals import post_init, pre_init
from django.template.context import BaseContext

MAX_REPR = 300
_INF = float("inf")
MAX_ITEMS = 20
MAX_DEPTH = 3
MAX_TRACEBACK = 20_000
_SCALARS = (bool, int, float)


class Snapshot(dict):  # type: ignore[type-arg]
    """A captured object whose keys are fixed by the collector (model instance, request).

    Processors can skip it: none of its keys names a secret.
    """
_LIGHT = {id(pre_init), id(post_init)}  # sent per instance built: capture only model and pk


def safe_repr(value: Any, limit: int | None = None) -> str:
    """Return repr(value) capped to ``limit`` (default MAX_REPR) characters; never raises."""
    try:
        text = repr(value)
    except BaseException:  # noqa: BLE001 - a broken __repr__ must not break the host
        return f"<unrepresentable {type(value).__qualname__}>"
    return cap(text, MAX_REPR if limit is None else limit)


def safe_str(value: Any, limit: int = 2000) -> str:
    """Return str(value) capped; never raises."""
    try:
        text = str(value)
    except BaseException:  # noqa: BLE001
        return f"<unprintable {type(value).__qualname__}>"
    return cap(text, limit)


def cap(text: str, limit: int) -> str:
    """Cap text to ``limit`` characters, saying how much was cut; strip lone surrogates."""
    if len(text) > limit:
        text = f"{text[:limit]}… [{len(text) - limit} more]"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def sender_ref(sender: Any) -> Any:
    """Return what the event keeps of the sender: the class itself, None, or a capped label."""
    if sender is None or isinstance(sender, type):
        return sender
    if isinstance(sender, str):
        return cap(sender, MAX_REPR)
    return safe_repr(sender)


def capture_kwargs(signal: Any, named: dict[str, Any]) -> dict[str, Any]:
    """Return a JSON-ready, capped snapshot of a send's keyword arguments."""
    if not named:
        return {}
    light = id(signal) in _LIGHT
    out: dict[str, Any] = {}
    for index, (key, value) in enumerate(named.items()):
        if index >= MAX_ITEMS:
            out["…"] = f"{len(named) - MAX_ITEMS} more arguments"
            break
        try:
            out[cap(str(key), 100)] = _value(value, 0, light)
        except BaseException:  # noqa: BLE001 - one hostile argument must not lose the event
            out[cap(str(key), 100)] = f"<uncapturable {type(value).__qualname__}>"
    return out


def _value(value: Any, depth: int, light: bool = False) -> Any:
    """Snapshot one value."""
    if value is None or isinstance(value, _SCALARS):
        if type(value) is float and (value != value or value in (_INF, -_INF)):
            return repr(value)  # NaN and infinity are not JSON (PostgreSQL rejects them)
        return value
    if isinstance(value, str):
        return cap(value, MAX_REPR)
    meta = getattr(type(value), "_meta", None)
    if meta is not None and hasattr(value, "_state"):
        return _instance(value, meta, light)
    if isinstance(value, dict):
        return _mapping(value, depth)
    if isinstance(value, (list, tuple, set, frozenset)):
        return _sequence(value, depth)
    if hasattr(value, "path") and hasattr(value, "method") and hasattr(value, "META"):
        return Snapshot(method=safe_str(value.method, 16), path=safe_str(value.path, MAX_REPR))
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, QuerySet):  # its repr would run a query
        return f"<QuerySet {value.model._meta.label}>"
    if isinstance(value, BaseContext):  # its repr would repr every template variable
        return {"variables": sorted({cap(str(k), 100) for d in value.dicts for k in d})[:MAX_ITEMS]}
    return safe_repr(value)


def _instance(value: Any, meta: Any, light: bool) -> dict[str, Any]:
    """Snapshot a model instance: label, pk, and (unless light) its repr and username."""
    out: dict[str, Any] = Snapshot(model=meta.label)
    try:
        pk = value.pk
    except Exception:  # noqa: BLE001
        pk = None
    out["pk"] = pk if pk is None or isinstance(pk, (*_SCALARS, str)) else safe_str(pk, 100)
    if light:
        return out
    out["repr"] = safe_repr(value)
    get_username = getattr(value, "get_username", None)
    if callable(get_username):
        out["username"] = safe_str(_call(get_username), 150)
    return out


def _call(func: Any) -> Any:
    """Call a zero-argument accessor, returning a marker if it raises."""
    try:
        return func()
    except Exception:  # noqa: BLE001
        return "<error>"


def _mapping(value: dict[Any, Any], depth: int) -> Any:
    """Snapshot a dict (WSGI environ and ASGI scope become method and path)."""
    if "PATH_INFO" in value or (value.get("type") in ("http", "websocket") and "path" in value):
        return Snapshot(method=safe_str(value.get("REQUEST_METHOD", value.get("method", "")), 16),
                        path=request_path_of({"environ": value}))
    if depth >= MAX_DEPTH:
        return safe_repr(value)
    out: dict[str, Any] = {}
    for index, (key, item) in enumerate(value.items()):
        if index >= MAX_ITEMS:
            out["…"] = f"{len(value) - MAX_ITEMS} more keys"
            break
        out[cap(str(key), 100)] = _value(item, depth + 1)
    return out


def _sequence(value: Any, depth: int) -> Any:
    """Snapshot a list, tuple or set (sets sorted by repr, so pk_set reads well)."""
    if depth >= MAX_DEPTH:
        return safe_repr(value)
    items = list(value)
    if isinstance(value, (set, frozenset)):
        items.sort(key=safe_repr)
    out = [_value(item, depth + 1) for item in items[:MAX_ITEMS]]
    if len(items) > MAX_ITEMS:
        out.append(f"… {len(items) - MAX_ITEMS} more")
    return out


def request_path_of(named: dict[str, Any]) -> str:
    """Return the request path from request_started's environ (WSGI) or scope (ASGI)."""
    environ = named.get("environ") or named.get("scope")
    if not isinstance(environ, dict):
        return ""
    path = environ.get("PATH_INFO", environ.get("path", ""))
    if isinstance(path, bytes):
        path = path.decode("utf-8", "replace")
    return cap(str(path), MAX_REPR)
