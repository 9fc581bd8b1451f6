"""Safe, capped, JSON-ready snapshots of a signal's sender and arguments, taken at send time.

Nothing captured refers to a live object except model classes (which live as long as the
process): instances, requests and users become small dicts of strings and numbers.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from django.db.models.query import QuerySet
from django.db.models.signals import post_init, pre_init
from django.template.context import BaseContext

MAX_REPR = 300
_INF = float("inf")
MAX_ITEMS = 20
MAX_DEPTH = 3
MAX_TRACEBACK = 20_000
_MISSING = object()
# The pure-Python ``ship`` and ``thread_key`` (the C ones do the same; tests compare them).
_threads = threading.local()


def py_ship(queue: Any, record: list[Any], capacity: int) -> int | None:
    """Queue ``record`` as a tuple unless ``queue`` holds ``capacity``; None, the length before
    when it is a multiple of 256 (check the writer), or -1 when full (nothing queued)."""
    queued = len(queue)
    if queued >= capacity:
        return -1
    queue.append(tuple(record))
    return None if queued & 255 else queued


def py_thread_key() -> object:
    """Return the running thread's key object (one per thread, compared with ``is``)."""
    try:
        return _threads.key  # type: ignore[no-any-return]
    except AttributeError:
        key = _threads.key = object()
        return key


# The C accelerator's plan type (collector/_speedups.c, built by `make venv`), or None: the plans
# are then Python code generated per shape. SIGNAL_MONITOR_PURE_PYTHON=1 turns it off. ``seal``
# turns a finished fast-path record into the tuple the hook queues (untracked by the garbage
# collector at once when it can be; without the accelerator, a plain tuple, which a later
# collection may untrack); ``ship`` seals and queues it in one call; ``thread_key`` names the
# running thread for the hook's owner check without allocating; ``SendMethod`` (or None) wraps
# the hook's ``send`` so that a send to a signal without receivers is answered in C.
seal: Any
ship: Any
thread_key: Any
SendMethod: Any
try:
    if os.environ.get("SIGNAL_MONITOR_PURE_PYTHON") == "1":
        raise ImportError("turned off by SIGNAL_MONITOR_PURE_PYTHON")
    from collector._speedups import Plan as CPlan
    from collector._speedups import SendMethod, seal, ship, thread_key
except ImportError:
    CPlan = SendMethod = None
    seal, ship, thread_key = tuple, py_ship, py_thread_key


class Snapshot(dict):  # type: ignore[type-arg]
    """A captured object whose keys are fixed by the collector (model instance, request).

    Processors can skip it: none of its keys names a secret.
    """

    def __reduce__(self) -> tuple[type[Snapshot], tuple[dict[Any, Any]]]:
        """Pickle as the class and a plain dict (half the cost of the default for a subclass)."""
        return (Snapshot, (dict(self),))
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


def _clean_text(value: str) -> str:
    """Return a captured non-ASCII string with lone surrogates escaped (cap's last step)."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def cap(text: str, limit: int) -> str:
    """Cap text to ``limit`` characters, saying how much was cut; strip lone surrogates."""
    if type(text) is not str:  # a str subclass: keep only its characters
        text = str.__str__(text)
    if len(text) > limit:
        text = f"{text[:limit]}… [{len(text) - limit} more]"
    if text.isascii():  # no surrogate possible: skip the round trip (the common case)
        return text
    return _clean_text(text)


def _key(key: Any) -> str:
    """Return a captured mapping key: a short str as it is, anything else as capped text."""
    if type(key) is str and len(key) <= 100 and key.isascii():
        return key
    return cap(str(key), 100)


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
    items = named.items() if len(named) <= MAX_ITEMS else list(named.items())[:MAX_ITEMS]
    for key, value in items:
        try:
            kind = type(value)
            # The common scalars inline (a call each would cost more than the copy).
            if kind is str and len(value) <= MAX_REPR and value.isascii():
                pass
            elif not (kind is bool or kind is int or value is None):
                handler = _handlers_get(kind)  # _value, one call less for the known types
                value = _value(value, 0, light) if handler is None else handler(value, 0, light)
            plain = type(key) is str and len(key) <= 100 and key.isascii()
            out[key if plain else _key(key)] = value
        except BaseException:  # noqa: BLE001 - one hostile argument must not lose the event
            out[cap(str(key), 100)] = f"<uncapturable {type(value).__qualname__}>"
    if len(named) > MAX_ITEMS:
        out["…"] = f"{len(named) - MAX_ITEMS} more arguments"
    return out


def _value(value: Any, depth: int, light: bool = False) -> Any:
    """Snapshot one value (by a handler chosen once per type)."""
    kind = type(value)
    handler = _handlers.get(kind)
    if handler is None:
        handler = _handler_for(kind)
        if len(_handlers) < _MAX_HANDLERS:
            _handlers[kind] = handler
    return handler(value, depth, light)


def _as_is(value: Any, depth: int, light: bool) -> Any:
    """Keep an int, bool or None."""
    return value


def _int(value: Any, depth: int, light: bool) -> Any:
    """Keep an int subclass's value as a plain int (a bool subclass as a bool)."""
    return bool(value) if isinstance(value, bool) else int(value)


def _float(value: Any, depth: int, light: bool) -> Any:
    """Keep a float; NaN and infinity are not JSON (PostgreSQL rejects them): they become text."""
    if type(value) is not float:  # a subclass: its plain value
        value = float(value)
    if value != value or value in (_INF, -_INF):
        return repr(value)
    return value


def _text(value: Any, depth: int, light: bool) -> str:
    """Cap a string."""
    return cap(value, MAX_REPR)


def _mapping_value(value: Any, depth: int, light: bool) -> Any:
    """Snapshot a dict."""
    return _mapping(value, depth)


def _sequence_value(value: Any, depth: int, light: bool) -> Any:
    """Snapshot a list, tuple or set."""
    return _sequence(value, depth)


def _class(value: Any, depth: int, light: bool) -> str:
    """Name a class."""
    return f"{value.__module__}.{value.__qualname__}"


def _queryset(value: Any, depth: int, light: bool) -> str:
    """Name a queryset's model: its repr would run a query."""
    return f"<QuerySet {value.model._meta.label}>"


def _context(value: Any, depth: int, light: bool) -> Any:
    """List a template context's variable names: its repr would repr every variable."""
    return {"variables": sorted({cap(str(k), 100) for d in value.dicts for k in d})[:MAX_ITEMS]}


def _other(value: Any, depth: int, light: bool) -> Any:
    """Snapshot a request as method and path; anything else as its capped repr."""
    if hasattr(value, "path") and hasattr(value, "method") and hasattr(value, "META"):
        return Snapshot(method=safe_str(value.method, 16), path=safe_str(value.path, MAX_REPR))
    return safe_repr(value)


def _handler_for(kind: type) -> Any:
    """Return the snapshot function for values of type ``kind``."""
    from django.db.models import Model

    if kind is type(None) or kind is bool or kind is int:
        return _as_is
    if issubclass(kind, int):  # an enum member or another subclass: its plain value
        return _int

    if issubclass(kind, float):
        return _float
    if issubclass(kind, str):
        return _text
    if issubclass(kind, Model):
        return _model_handler(kind)
    if issubclass(kind, dict):
        return _mapping_value
    if issubclass(kind, (list, tuple, set, frozenset)):
        return _sequence_value
    if issubclass(kind, type):
        return _class
    if issubclass(kind, QuerySet):
        return _queryset
    if issubclass(kind, BaseContext):
        return _context
    return _other


_handlers: dict[type, Any] = {}
_handlers_get = _handlers.get
_MAX_HANDLERS = 512


def _model_parts(kind: type) -> Any:
    """Return the function giving one model's instances as ``(label, pk)`` or ``(label, pk,
    username)``, its keys looked up once: from the instance's loaded fields only.

    Nothing is called that could run a query (``__str__`` may follow a relation and a deferred
    field loads on access), so capturing never adds a query to the host's request.
    """
    meta: Any = kind._meta  # type: ignore[attr-defined]
    label: str = meta.label
    pk_name: str | None = meta.pk.attname if meta.pk is not None else None
    username = getattr(kind, "USERNAME_FIELD", None)
    username_field = username if isinstance(username, str) else None

    def parts(value: Any, light: bool) -> tuple[Any, ...]:
        loaded = getattr(value, "__dict__", None) or {}
        pk = loaded.get(pk_name, _MISSING) if pk_name is not None else None
        if not (pk is None or type(pk) is int):
            pk = _pk_value(value, pk)
        if light or username_field is None or loaded.get(username_field) is None:
            return (label, pk)
        return (label, pk, safe_str(loaded[username_field], 150))

    return parts


def _model_handler(kind: type) -> Any:
    """Return the snapshot function of one model's instances: label, pk and (unless light)
    username, as a Snapshot."""
    parts = _model_parts(kind)

    def snapshot(value: Any, depth: int, light: bool) -> dict[str, Any]:
        return _snapshot_of(parts(value, light))

    return snapshot


def _snapshot_of(parts: tuple[Any, ...]) -> Snapshot:
    """Return the Snapshot of an instance from its ``_model_parts``, or of the ``(None, (key,
    value), ...)`` a plan makes of another Snapshot (a request's method and path)."""
    if parts[0] is None:
        return Snapshot(parts[1:])
    out = Snapshot(model=parts[0], pk=parts[1])
    if len(parts) > 2:
        out["username"] = parts[2]
    return out


# Compact capture (the hot path's): a send's kwargs as one tuple ``(keys, value, value, ...)``, by
# code generated once per shape (argument names in order, value types, and whether the signal is
# light). Values are kept as they are when immutable and plain (bool, int, float, None, a str up
# to MAX_REPR); a frozenset of one such str (a save's update_fields) becomes ``(0, name)``; a model
# instance becomes the tuple of its _model_parts, another Snapshot (a request's) ``(None, (key,
# value), ...)``; tuples mean nothing else there (the other handlers give lists). So a record's
# kwargs hold no object the garbage collector must keep tracking while the record waits in the
# queue (a kept frozenset would age into the oldest generation and bring full collections
# nearer: about 1% of the benchmark's request on 2026-11-25); anything else becomes
# its handler's snapshot. One tuple and no copies: each object a send allocates is one more the
# shipping thread frees, on another core; and no Snapshot, so the batch marshals. ``expand`` (on
# the writer) makes of it the dict capture_kwargs would have made. A signal tries its last
# _MAX_SHAPES shapes' plans in turn; a shape seen before but not among them is found again by its
# key, never made anew.
_plans: dict[int, list[Any]] = {}  # id(signal) -> its recent plans, newest first
_plans_get = _plans.get
# id(signal) -> its newest plan, which the hook calls itself (one call less than capture_compact)
# before falling back to capture_compact when the plan returns None or raises.
newest: dict[int, Any] = {}
_by_shape: dict[tuple[Any, ...], Any] = {}  # shape -> its plan, or False for capture_kwargs
_MAX_PLANS = 512
_generation = [0]  # bumped by reset_plans
_MAX_SHAPES = 4


def capture_compact(signal: Any, named: dict[str, Any]) -> Any:
    """Return a send's keyword arguments captured for the queue: compact, or capture_kwargs'."""
    try:
        plans = _plans_get(id(signal))
        if plans is not None:
            for plan in plans:
                found = plan(named)
                if found is not None:
                    if plan is not plans[0]:  # the hook tries this one first from now on
                        newest[id(signal)] = plan
                    return found
        return _plan_anew(signal, named)
    except BaseException:  # noqa: BLE001 - a hostile value: capture_kwargs isolates it
        return capture_kwargs(signal, named)


def _plan_anew(signal: Any, named: dict[str, Any]) -> Any:
    """Find or make the plan of this send's shape, keep it as the signal's newest; capture."""
    light = id(signal) in _LIGHT
    shape = (light, *named, *map(type, named.values()))
    plan = _by_shape.get(shape)
    if plan is None:
        generation = _generation[0]
        plan = _make_plan(tuple(named), [type(v) for v in named.values()], light)
        if generation != _generation[0]:  # the limits changed while it was made: not kept
            return capture_kwargs(signal, named)
        if len(_by_shape) >= _MAX_PLANS:
            _by_shape.clear()
        _by_shape[shape] = plan
    if not plan:
        return capture_kwargs(signal, named)
    plans = _plans_get(id(signal))
    if plans is None:
        if len(_plans) >= _MAX_PLANS:
            _plans.clear()
            newest.clear()
        _plans[id(signal)] = [plan]
    else:  # a new list: another thread may be iterating the old one
        _plans[id(signal)] = [plan, *(p for p in plans if p is not plan)][:_MAX_SHAPES]
    newest[id(signal)] = plan
    found = plan(named)
    return found if found is not None else capture_kwargs(signal, named)


def _make_plan(keys: tuple[Any, ...], kinds: list[type], light: bool) -> Any:
    """Generate the capture function of one shape (None when a send does not have it; the C
    accelerator's plan when it takes every value's kind), or return False when capture_kwargs
    must take this shape (too many or unusual keys)."""
    from django.db.models import Model

    if not 0 < len(keys) <= MAX_ITEMS or not all(
        type(k) is str and len(k) <= 100 and k.isascii() for k in keys
    ):
        return False
    if CPlan is not None:  # the same plan in C, when the accelerator takes every value's kind
        c_plan = _c_plan(keys, kinds, light)
        if c_plan is not None:
            return c_plan
    items = ", ".join(f"(k{i}, v{i})" for i in range(len(keys)))
    # Names and values reach the code through its namespace only, never as source text.
    names: dict[str, Any] = {"_keys": keys, "_cap": cap, "_M": _MISSING, "_pk": _pk_value,
                             "_ss": safe_str, "_repr": MAX_REPR, "_S": Snapshot}  # fmt: skip
    names.update((f"_k{i}", key) for i, key in enumerate(keys))
    # Keys in the send's order: the same (interned) objects, or else equal.
    same = " or ".join(f"k{i} is not _k{i}" for i in range(len(keys)))
    lines = [f"    if len(n) != {len(keys)}:", "        return None",
             f"    {items}, = n.items()",
             f"    if ({same}) and tuple(n) != _keys:", "        return None"]  # fmt: skip
    checks = " or ".join(f"type(v{i}) is not _t{i}" for i in range(len(keys)))
    lines += [f"    if {checks}:", "        return None"]
    out = []
    for i, kind in enumerate(kinds):
        names[f"_t{i}"] = kind
        if kind is bool or kind is int or kind is float or kind is type(None):
            out.append(f"v{i}")
        elif kind is str:
            out.append(f"(v{i} if len(v{i}) <= _repr else _cap(v{i}, _repr))")
        elif kind is frozenset:  # update_fields: one plain field name, or the handler
            names[f"_h{i}"] = _handler_for(kind)
            lines.append(f"    c{i} = None")
            lines.append(f"    if len(v{i}) == 1:")
            lines.append(f"        for f{i} in v{i}:")
            plain = f"type(f{i}) is str and len(f{i}) <= _repr and f{i}.isascii()"
            lines.append(f"            if {plain}:")
            lines.append(f"                c{i} = (0, f{i})")
            lines.append(f"    if c{i} is None:")
            lines.append(f"        c{i} = _h{i}(v{i}, 0, {bool(light)})")
            out.append(f"c{i}")
        elif isinstance(kind, type) and issubclass(kind, Model):
            meta: Any = kind._meta  # type: ignore[attr-defined]
            names[f"_l{i}"] = meta.label
            names[f"_a{i}"] = meta.pk.attname if meta.pk is not None else None
            lines.append(f"    p{i} = v{i}.__dict__.get(_a{i}, _M) if _a{i} is not None else None")
            lines.append(f"    if not (p{i} is None or type(p{i}) is int):")
            lines.append(f"        p{i} = _pk(v{i}, p{i})")
            username = getattr(kind, "USERNAME_FIELD", None)
            if type(username) is str and not light:
                names[f"_u{i}"] = username
                lines.append(f"    u{i} = v{i}.__dict__.get(_u{i})")
                out.append(f"((_l{i}, p{i}) if u{i} is None else (_l{i}, p{i}, _ss(u{i}, 150)))")
            else:
                out.append(f"(_l{i}, p{i})")
        else:  # a Snapshot made here (a request's environ) as a tuple: marshal writes it
            names[f"_h{i}"] = _handler_for(kind)
            if kind is dict:  # request_started's environ (or scope): its parts directly
                names["_rq"] = _request_parts
                lines.append(f"    c{i} = _rq(v{i})")
                lines.append(f"    if c{i} is None:")
                lines.append(f"        c{i} = _h{i}(v{i}, 0, {bool(light)})")
            else:
                lines.append(f"    c{i} = _h{i}(v{i}, 0, {bool(light)})")
            lines.append(f"    if type(c{i}) is _S:")
            lines.append(f"        c{i} = (None, *c{i}.items())")
            out.append(f"c{i}")
    lines.append(f"    return (_keys, {', '.join(out)})")
    exec("def plan(n):\n" + "\n".join(lines) + "\n", names)  # noqa: S102 - fixed fragments
    return names["plan"]


def _c_plan(keys: tuple[str, ...], kinds: list[type], light: bool) -> Any:
    """Return the C accelerator's plan for this shape (what ``_make_plan``'s code does), or None
    when a value's kind needs a handler only the generated code calls."""
    from django.db.models import Model

    ops: list[int] = []
    extras: list[Any] = []
    for kind in kinds:
        extra: Any = None
        if kind is bool or kind is int or kind is float or kind is type(None):
            op = 0
        elif kind is str:
            op = 1
        elif isinstance(kind, type) and issubclass(kind, Model):
            meta: Any = kind._meta  # type: ignore[attr-defined]
            username = getattr(kind, "USERNAME_FIELD", None)
            op, extra = 2, (
                meta.label, meta.pk.attname if meta.pk is not None else None,
                username if type(username) is str and not light else None,
            )  # fmt: skip
        elif kind is frozenset:
            op, extra = 3, (_handler_for(kind), bool(light))
        else:
            return None
        ops.append(op)
        extras.append(extra)
    assert CPlan is not None
    return CPlan(keys, tuple(kinds), tuple(ops), tuple(extras), _pk_value, cap, safe_str,
                 _MISSING, MAX_REPR)  # fmt: skip


def _pk_value(value: Any, pk: Any) -> Any:
    """Return a primary key as captured: a composite one read whole, an unusual type as text."""
    if pk is _MISSING:  # a composite primary key: a tuple of loaded fields
        try:
            pk = value.pk
        except Exception:  # noqa: BLE001
            pk = None
    kind = type(pk)
    if pk is None or kind is int or kind is str or kind is float or kind is bool:
        return pk
    if isinstance(pk, str):  # a str subclass: its characters only
        return cap(pk, 100)
    if isinstance(pk, int) and not isinstance(pk, bool):  # an int subclass (an enum member)
        return int(pk)
    return safe_str(pk, 100)


def reset_plans() -> None:
    """Forget the capture functions (the limits they were made with changed)."""
    _generation[0] += 1  # a plan being made meanwhile is not kept
    newest.clear()
    _plans.clear()
    _by_shape.clear()


def expand(compact: Any) -> dict[str, Any]:
    """Return the kwargs dict of a ``capture_compact`` result (a dict is returned as it is)."""
    if type(compact) is not tuple:
        return compact  # type: ignore[no-any-return]
    expander = _expanders_get(compact[0])
    if expander is None:
        expander = _make_expander(compact[0])
    return expander(compact)  # type: ignore[no-any-return]


def _unpack(value: tuple[Any, ...]) -> Any:
    """Return what a tuple in a compact capture stands for: update_fields' ``(0, name)`` as a
    list of the name, else the Snapshot of an instance's or a request's parts."""
    if type(value[0]) is int:
        return list(value[1:])
    return _snapshot_of(value)


def _expand_any(compact: tuple[Any, ...]) -> dict[str, Any]:
    """Return the kwargs dict of any compact capture (what the generated expanders do, looped)."""
    out: dict[str, Any] = {}
    for key, value in zip(compact[0], compact[1:], strict=True):
        kind = type(value)
        if kind is tuple:
            value = _unpack(value)
        elif kind is float:
            value = _float(value, 0, False)
        elif kind is str and not value.isascii():  # lone surrogates out (cap's last step)
            value = _clean_text(value)
        out[key] = value
    return out


# Writer-side expanders, generated once per argument names (``_make_plan``'s keys), so a record
# costs straight-line code: one type test per value and a dict display.
_expanders: dict[tuple[Any, ...], Any] = {}
_expanders_get = _expanders.get


def _make_expander(keys: tuple[Any, ...]) -> Any:
    """Return (and remember) the function expanding the values of one argument-name tuple."""
    if type(keys) is not tuple or not 0 < len(keys) <= MAX_ITEMS:
        return _expand_any
    names: dict[str, Any] = {"_unpack": _unpack, "_clean": _clean_text}
    params = []
    lines = [f"    _, {', '.join(f'v{i}' for i in range(len(keys)))} = compact"]
    for i, key in enumerate(keys):
        names[f"_k{i}"] = key  # names reach the code through its namespace only
        params.append(f"k{i}=_k{i}")
        lines += [
            f"    t = type(v{i})",
            "    if t is str:",
            f"        if not v{i}.isascii():",
            f"            v{i} = _clean(v{i})",
            "    elif t is float:",
            f"        if v{i} - v{i}:",  # NaN or infinity: not JSON, kept as its repr
            f"            v{i} = repr(v{i})",
            "    elif t is tuple:",
            f"        v{i} = _unpack(v{i})",
        ]  # fmt: skip
    lines.append(f"    return {{{', '.join(f'k{i}: v{i}' for i in range(len(keys)))}}}")
    source = f"def expand(compact, {', '.join(params)}):\n" + "\n".join(lines) + "\n"
    exec(source, names)  # noqa: S102 - fixed fragments
    if len(_expanders) >= _MAX_PLANS:
        _expanders.clear()
    _expanders[keys] = names["expand"]
    return names["expand"]


def _call(func: Any) -> Any:
    """Call a zero-argument accessor, returning a marker if it raises."""
    try:
        return func()
    except Exception:  # noqa: BLE001
        return "<error>"


def _mapping(value: dict[Any, Any], depth: int) -> Any:
    """Snapshot a dict (WSGI environ and ASGI scope become method and path)."""
    parts = _request_parts(value)
    if parts is not None:
        return _snapshot_of(parts)
    if depth >= MAX_DEPTH:
        return safe_repr(value)
    out: dict[str, Any] = {}
    for index, (key, item) in enumerate(value.items()):
        if index >= MAX_ITEMS:
            out["…"] = f"{len(value) - MAX_ITEMS} more keys"
            break
        out[_key(key)] = _value(item, depth + 1)
    return out


def _sequence(value: Any, depth: int) -> Any:
    """Snapshot a list, tuple or set (sets sorted by repr, so pk_set reads well)."""
    if depth >= MAX_DEPTH:
        return safe_repr(value)
    if type(value) is frozenset and len(value) == 1:  # update_fields of a save(): the common case
        (item,) = value
        if type(item) is str and len(item) <= MAX_REPR and item.isascii():
            return [item]
        return [_value(item, depth + 1)]
    items = list(value)
    if len(items) > 1 and isinstance(value, (set, frozenset)):
        try:
            items.sort()  # field names, pks: their natural order, without a repr each
        except Exception:  # noqa: BLE001 - mixed or unorderable items
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
    return _path_text(environ)


def _path_text(environ: dict[str, Any]) -> str:
    """Return the capped path of a WSGI environ (PATH_INFO) or an ASGI scope (path)."""
    path = environ.get("PATH_INFO", _MISSING)
    if path is _MISSING:
        path = environ.get("path", "")
    if type(path) is str and len(path) <= MAX_REPR and path.isascii():
        return path  # what cap(str(path)) gives, without the calls
    if isinstance(path, bytes):
        path = path.decode("utf-8", "replace")
    return cap(str(path), MAX_REPR)


def _request_parts(value: dict[Any, Any]) -> tuple[Any, ...] | None:
    """Return a WSGI environ or ASGI scope as ``(None, ("method", ...), ("path", ...))`` (the
    compact form of its Snapshot), or None for any other mapping."""
    if "PATH_INFO" not in value and not (
        value.get("type") in ("http", "websocket") and "path" in value
    ):
        return None
    method = value.get("REQUEST_METHOD", _MISSING)
    if method is _MISSING:
        method = value.get("method", "")
    if not (type(method) is str and len(method) <= 16 and method.isascii()):
        method = safe_str(method, 16)
    return (None, ("method", method), ("path", _path_text(value)))
