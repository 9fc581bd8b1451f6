"""The hook: Django's four send methods, re-implemented with timing, patched onto ``Signal``.

Each replacement mirrors the installed Django version's own method (5.2 and 6.0 run ``asend``'s
sync and async receivers concurrently with ``asyncio.gather``; 6.1 runs the sync ones first, then
the async ones in a ``TaskGroup`` through ``_run_parallel``). The response lists hold the original
receiver objects; exceptions propagate unchanged; sends with no receivers take Django's own fast
path. What the hot path keeps is one flat tuple of plain values appended to the runtime's queue;
naming of signals and senders, wall-clock time, processors and storage happen on the writer thread.

With the C accelerator, ``Signal.send`` is ``capture.SendMethod``: it does ``send``'s first steps
(no receivers, the sender's cache entry) without a Python frame and calls ``_send`` with the rest.

``send``/``send_robust`` to sync receivers only, outside a muted context, is the fast path: one
context-variable read, one clock read per receiver boundary (the end of one receiver is the start
of the next), no per-receiver bookkeeping beyond growing the record. Everything else (async
receivers, the request signals, muted contexts, sends nobody hears) takes ``_dispatch``.

Record layout (decoded by ``events.build``): a list while the fast path's send runs (it is also
the frame nested sends read their parent from), queued as a tuple (``capture.seal``); the general
path's are tuples ``[seq, signal, sender, method, request_path,
parent, kwargs, extra, start, name0, end0, name1, end1, ...]``. ``seq`` is this process's sequence
number (the writer turns it into the globally unique event id; the general path's records are
numbered at the send, the fast path's ``None`` unless a nested send needed the number for its
parent: the writer draws the others, a writer process in a half of its own, see
``WRITER_SEQ_BASE``); ``signal`` and ``sender`` are names, or
a signal or class the writer has not named yet; ``parent`` is ``None`` or ``(seq, call index)``;
``kwargs`` is ``None`` or the captured arguments (``capture.capture_compact``: a dict, or
``(keys, value, ...)`` of plain values that ``capture.expand`` turns into it); ``extra`` is ``None``
or a tuple of ``(name, seconds, index, is_async, failure)`` for failed and async calls. After the perf-counter ``start``
come, per sync receiver in order, its name and the time it returned (its duration is the
difference from the previous mark); a ``None`` name marks a call described in ``extra``. The last
mark is the end of the dispatch.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import os
import random
import threading
import traceback as _tb
import weakref
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from contextvars import ContextVar
from time import perf_counter
from typing import Any, Final, Generic, TypeVar

from asgiref.sync import async_to_sync, sync_to_async
from django.core.signals import request_finished as _request_finished
from django.core.signals import request_started as _request_started
from django.dispatch import Signal
from django.dispatch import dispatcher as _dispatcher

from collector import capture, naming, receivers
from collector.conf import get_config

NO_RECEIVERS = _dispatcher.NO_RECEIVERS
# Django 6.1 runs asend's sync receivers first, then the async ones in a TaskGroup.
_run_parallel: Callable[..., Coroutine[Any, Any, list[Any]]] | None = getattr(
    _dispatcher, "_run_parallel", None
)

_T = TypeVar("_T")
# What a send needs to know about its context, in one value, so the hot path reads one
# context variable: a "cell" ``(owner, slot, muted, request path, thread)``: ``thread`` is the
# key object of the thread it belongs to (``capture.thread_key``), ``owner`` the same key, or
# None in a muted cell. ``slot`` is a
# one-item list holding the frame of the send in progress in this thread (the fast path's growing
# record, whose length tells the call index, or a ``(seq, call index)`` tuple), or None.
# A send swaps its frame into the slot and puts the previous one back; nothing is pushed,
# allocated or looked up for nesting unless a send happens inside a receiver. Cells are
# replaced, never changed (ContextVar.set, a HAMT copy, happens once per context); the slot is
# shared by the cells one thread derives from each other. A context copied into another thread
# (sync_to_async) gets its own cell there, seeded with the parent it inherited; each async
# receiver gets a fresh cell naming its call.
_Cell = tuple[object | None, list[Any], bool, str, object]
_current: ContextVar[_Cell | None] = ContextVar("signal_monitor_current", default=None)
_MUTED: Final = 2
_PATH: Final = 3
_THREAD: Final = 4
# Positions in a record (see the module docstring).
_KWARGS: Final = 6
_EXTRA: Final = 7
_NAMES: Final = 8
_START: Final = 9
# Async receivers share one context under 6.1's TaskGroup, so their parent is kept per task.
_task_parents: dict[asyncio.Task[Any], tuple[int, int]] = {}

# Sequence numbers are 32 bits in an event id, in two halves that never meet: the application
# draws its own (nested sends' parents, the general path's sends, an in-process writer's) below
# WRITER_SEQ_BASE; a writer process numbers the records its application left unnumbered from
# WRITER_SEQ_BASE plus the records shipped to the writer processes before it (``link``) up. Each
# half wraps within itself.
WRITER_SEQ_BASE: Final = 1 << 31
_HALF: Final = WRITER_SEQ_BASE - 1


def numbers(start: int, base: int = 0) -> Iterator[int]:
    """Return a thread-safe counter from ``start`` that wraps within the half at ``base``
    (C iterators only: each ``next()`` is atomic under the GIL)."""
    within = map(_HALF.__and__, itertools.count(start))
    return within if not base else map(base.__or__, within)


_TOKEN = random.getrandbits(31)
_seq = numbers(1)
_seq_lock = threading.Lock()

# The runtime's queue and its capacity; records are appended here (set by runtime.attach).
_queue: Any = None
capacity = 100_000
# Counter of sends that found no live receiver, keyed by id(signal); read by the writer.
unheard: dict[int, list[Any]] = {}
# Also store unheard sends as events (SIGNAL_MONITOR["RECORD_UNHEARD"]); set by runtime.
record_unheard = False

_ORIGINALS: dict[str, Any] = {
    name: Signal.__dict__[name] for name in ("send", "send_robust", "asend", "asend_robust")
}
_lock = threading.Lock()
_installed = False
# id(receiver or its __func__) -> dotted name, valid while the object lives; see naming.
_names_get = naming.receiver_names.get
_name = naming.receiver_name
_capture = capture.capture_compact
_newest_get = capture.newest.get
_sender_ref = capture.sender_ref
# Signal._live_receivers' result without its lock in the common case (collector.receivers).
_live = receivers.live_receivers
# Django's own _live_receivers, and whether its per-sender cache entries are
# ``(receiver, sender weakref or None, is_async)`` (6.0 and later) or ``(receiver, is_async)``
# (5.2): ``send`` resolves a cached entry itself while the method in place is Django's own.
_DJANGO_LIVE = receivers._DJANGO_LIVE
_CACHE_ENTRIES_HAVE_SENDER_REFS = receivers._SENDER_REFS
_Ref = weakref.ReferenceType
# Signal -> its dotted name, and class sender -> its label, filled by the writer thread once it
# has named them. With both known, a queued record holds only plain values, which the garbage
# collector stops tracking; until then the record carries the object and the writer names it.
signal_names: dict[Signal, str] = {}
sender_labels: dict[type, str] = {}
# The names the fast path may use: every named signal except the two request signals, which
# take the general path (it follows the request path and the mute of excluded paths).
fast_names: dict[Signal, str] = {}
# Bound and unbound methods called directly: the interpreter specialises these calls, while
# ``obj.method()`` on a ContextVar or a deque builds a bound method object on every send.
_current_get = _current.get
_append = deque.append
# A finished fast-path record queued as a tuple: records wait up to FLUSH_INTERVAL, long enough
# to age into the garbage collector's oldest generation; sealed (with the C accelerator), they
# and their captured kwargs are untracked at once and never bring a full collection nearer.
# ``_ship`` seals and queues in one call (capture.ship).
_ship = capture.ship
# The running thread's key object: what a cell's owner field is compared with.
_thread_key = capture.thread_key
_signal_name = signal_names.get
_fast_name = fast_names.get
# Signal -> (its name, a snapshot of its receivers list or None, the receivers' names): what the
# fast path needs to send it (see _learn); a signal missing here takes the general path.
_known: dict[Signal, tuple[str, list[Any] | None, tuple[str, ...] | None]] = {}
_known_get = _known.get
_sender_label = sender_labels.get


def event_id(seq: int) -> int:
    """Return the id, unique across processes, of this process's event number ``seq``."""
    return (_TOKEN << 32) | (seq & 0xFFFFFFFF)


def _task_parent() -> tuple[int, int] | None:
    """Return the parent recorded for the running asyncio task, if any."""
    loop = asyncio._get_running_loop()
    if loop is None:
        return None
    return _task_parents.get(asyncio.current_task(loop))  # type: ignore[arg-type]


def _parent_of(frame: Any) -> tuple[int, int] | None:
    """Return (seq, call index) of the receiver call a send inside ``frame`` happens in.

    A list frame is a fast-path send's record: the header up to the start time, then two items
    per finished receiver, so the receiver running now is ``(len - _START - 1) // 2``. The
    parent's sequence number is drawn here the first time a child needs it. Never raises.
    """
    try:
        if type(frame) is list:
            if frame[0] is None:
                with _seq_lock:  # the parent's own number, drawn the first time a child asks
                    if frame[0] is None:
                        frame[0] = next(_seq)
            return frame[0], _calls_in(frame)
        if _task_parents:
            found = _task_parent()
            if found is not None:
                return found
        if type(frame) is tuple and len(frame) == 2:
            return frame
    except Exception:  # noqa: BLE001 - a disturbed frame (greenlets) costs only the link
        pass
    return None


def _new_cell(thread: object, slot: list[Any], muted: bool, path: str) -> _Cell:
    """Return a cell for the thread keyed ``thread``; a muted cell's owner field is None.

    The fast path compares the owner field with the running thread's key (``is``), so one
    comparison sends both another thread's cell and a muted context to the general path.
    """
    return (None if muted else thread, slot, muted, path, thread)


def _cell() -> _Cell:
    """Return this thread's cell in the current context, creating it once per context."""
    cell = _current.get()
    thread = _thread_key()
    if cell is not None and cell[_THREAD] is thread:
        return cell
    if cell is None:
        fresh = _new_cell(thread, [None], False, "")
    else:
        fresh = _new_cell(thread, [_parent_of(cell[1][0])], cell[_MUTED], cell[_PATH])
    _current.set(fresh)
    return fresh


class _CellVar(Generic[_T]):
    """A ContextVar-like view of one field of the cell (the muted flag, the request path).

    ``set`` replaces this context's cell (keeping its frame slot) and returns the token that
    ``reset`` takes, as ``ContextVar`` does; a reset restores the whole cell from before.
    """

    __slots__ = ("_field", "_default")

    def __init__(self, field: int, default: _T) -> None:
        self._field = field
        self._default = default

    def get(self) -> _T:
        """Return the value in the current context."""
        cell: Any = _current.get()
        return self._default if cell is None else cell[self._field]

    def set(self, value: _T) -> contextvars.Token[_Cell | None]:
        """Set the value in the current context; return a token for ``reset``."""
        cell = _cell()
        fields: list[Any] = [cell[1], cell[_MUTED], cell[_PATH]]
        fields[self._field - 1] = value
        return _current.set(_new_cell(_thread_key(), *fields))

    def reset(self, token: contextvars.Token[_Cell | None]) -> None:
        """Restore the context's state from before the ``set`` that returned ``token``."""
        _current.reset(token)


# True while the collector must not record (its own writer, excluded request paths).
muted: _CellVar[bool] = _CellVar(_MUTED, False)
# The request path of the request being served in this context ("" outside requests).
request_path: _CellVar[str] = _CellVar(_PATH, "")


def _drop_quietly(reason: str) -> None:
    """Count a dropped event; if even counting fails, give up silently (never raise)."""
    try:
        runtime_state.drop(reason)
    except BaseException:  # noqa: BLE001
        pass


def _failure(exc: BaseException) -> tuple[str, str, str, str]:
    """Return (type, message, formatted traceback, location) of a receiver's exception.

    The location is "file:line in function" of the innermost frame, the key (with receiver and
    type) that groups repeated failures. Never raises.
    """
    try:
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        message = capture.safe_str(exc)
        text = capture.cap(
            "".join(_tb.format_exception(type(exc), exc, exc.__traceback__)), capture.MAX_TRACEBACK
        )
        tb = exc.__traceback__
        location = ""
        if tb is not None:
            while tb.tb_next is not None:
                tb = tb.tb_next
            code = tb.tb_frame.f_code
            path = "/".join(code.co_filename.replace("\\", "/").split("/")[-3:])
            location = f"{path}:{tb.tb_lineno} in {code.co_name}"
        return kind, message, text, location[:300]
    except BaseException:  # noqa: BLE001 - a broken exception must not break the host
        return type(exc).__qualname__, "<unprintable exception>", "", ""


def _failed_call(record: list[Any], receiver: Any, err: BaseException) -> tuple[Any, ...]:
    """Close the call that raised in ``record`` and return its ``extra`` entry. Never raises."""
    if record[_NAMES] is None:
        record += (None, perf_counter())
    else:
        record.append(perf_counter())
    index = _calls_in(record) - 1
    try:
        return (_name(receiver), record[-1] - record[-3 if record[_NAMES] is None else -2],
                index, False, _failure(err))
    except BaseException:  # noqa: BLE001
        return ("<unknown>", 0.0, index, False, _failure(err))


def _sender_value(sender: Any) -> Any:
    """Return what a record holds of the sender: a label, or a class not labelled yet."""
    if sender is None:
        return "None"
    if isinstance(sender, type):
        return _sender_label(sender, sender)
    return _sender_ref(sender)


def _enqueue(
    signal: Signal, sender: Any, method: str, named: dict[str, Any], seq: int,
    parent: tuple[int, int] | None, start: float, end: float, calls: list[Any], path: str,
) -> None:
    """Queue one finished dispatch of the general path (calls as ``extra`` entries)."""
    try:
        queued = len(_queue)
        if queued >= capacity:
            runtime_state.drop("queue_full")
            return
        _append(_queue, (
            seq, _signal_name(signal, signal), _sender_value(sender), method, path, parent,
            _capture(signal, named) if named else None, tuple(calls), None, start, None, end,
        ))
        _after_queueing(queued)
    except BaseException:  # noqa: BLE001 - the collector never raises into the host
        _drop_quietly("capture_error")


def _count_unheard(signal: Signal, sender: Any) -> None:
    """Count a send that reached no live receiver (and keep it if RECORD_UNHEARD asks)."""
    slot = unheard.get(id(signal))
    if slot is None:
        unheard[id(signal)] = [signal, 1]
    else:
        slot[1] += 1
    if record_unheard:
        cell = _cell()
        if not cell[_MUTED]:
            now = perf_counter()
            _enqueue(signal, sender, "send", {}, next(_seq), _parent_of(cell[1][0]), now, now, [],
                     cell[_PATH])


class _RuntimeState:
    """What the hook needs from the runtime, without importing it (set by runtime.attach)."""

    alive = True

    @staticmethod
    def start() -> None:
        """Start the writer thread."""

    @staticmethod
    def drop(reason: str) -> None:
        """Count a dropped event."""

    @staticmethod
    def ring() -> None:
        """Wake the writer if it waits idle (the first record queued into an empty queue)."""


runtime_state: Any = _RuntimeState()


def _track_request(signal: Signal, named: dict[str, Any]) -> bool:
    """Follow the request path in this context; return True if this send must not be recorded.

    request_started mutes the context for excluded paths (the dashboard's own pages);
    request_finished is itself muted when its request was, and then lifts the mute.
    """
    cell = _cell()
    was_muted = cell[_MUTED]
    if signal is _request_finished:
        if cell[_PATH]:
            _current.set(_new_cell(_thread_key(), cell[1], False, ""))
        return was_muted
    path = capture.request_path_of(named)
    now_muted = bool(path) and path.startswith(_excluded_paths())
    _current.set(_new_cell(_thread_key(), cell[1], now_muted, path))
    return now_muted


# (the config dict, its EXCLUDE_PATHS as a tuple for str.startswith), replaced as one value.
_excluded: list[tuple[Any, tuple[str, ...]]] = [(None, ())]


def _excluded_paths() -> tuple[str, ...]:
    """Return SIGNAL_MONITOR["EXCLUDE_PATHS"] as a tuple, read again when the settings change."""
    config = get_config()
    seen, prefixes = _excluded[0]
    if config is not seen:
        prefixes = tuple(str(prefix) for prefix in config["EXCLUDE_PATHS"])
        _excluded[0] = (config, prefixes)
    return prefixes


def send(self: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
    """Django's Signal.send, timed (the fast path; see the module docstring)."""
    if not self.receivers:
        return []
    cached = self.sender_receivers_cache.get(sender)
    if cached is NO_RECEIVERS:
        return []
    return _send(self, sender, cached, named)


def _send(  # noqa: C901 - hot path
    self: Signal, sender: Any, cached: Any, named: dict[str, Any]
) -> list[tuple[Any, Any]]:
    """``send`` once the signal has receivers and ``cached`` is the sender's cache entry (or None).

    With the C accelerator, ``Signal.send`` does ``send``'s first lines itself and calls this
    (``capture.SendMethod``): a send nobody hears then costs no Python frame.
    """
    if (cached is not None and not self._dead_receivers  # type: ignore[attr-defined]
            and type(self)._live_receivers is _DJANGO_LIVE):
        # A model signal's cached entry resolved here, as receivers.live_receivers would: a send
        # to a model signal is Django's cheapest path, where a call more shows. Anything else
        # (an async receiver, a dead reference) is left to live_receivers.
        sync_receivers: list[Any] = []
        async_receivers: Any = ()  # none: nothing to allocate
        if _CACHE_ENTRIES_HAVE_SENDER_REFS:
            for receiver, sender_ref, is_async in cached:
                if type(receiver) is _Ref or isinstance(receiver, _Ref):  # WeakMethod too
                    receiver = receiver()
                if (is_async or receiver is None
                        or (sender_ref is not None and sender_ref() is None)):
                    sync_receivers, async_receivers = _live(self, sender, cached)
                    break
                sync_receivers.append(receiver)
        else:
            for receiver, is_async in cached:
                if type(receiver) is _Ref or isinstance(receiver, _Ref):
                    receiver = receiver()
                if is_async or receiver is None:
                    sync_receivers, async_receivers = _live(self, sender, cached)
                    break
                sync_receivers.append(receiver)
    else:
        sync_receivers, async_receivers = _live(self, sender, cached)
    cell = _current_get()
    known = _known_get(self)
    if (cell is None or cell[0] is not _thread_key() or known is None or async_receivers
            or not sync_receivers):
        return _dispatch(self, sender, named, sync_receivers, async_receivers, "send", False)
    slot = cell[1]
    parent = slot[0]
    names = known[2]
    if names is not None and (len(names) != len(sync_receivers) or known[1] != self.receivers):
        names = _names_changed(self, known)
    try:
        record = [
            None, known[0],
            "None" if sender is None else _sender_label(sender) or _sender_ref(sender), "send",
            cell[3], None if parent is None else _parent_of(parent), None, None, names,
            perf_counter(),
        ]
    except Exception:  # noqa: BLE001 - a sender that cannot even be hashed twice
        return _dispatch(self, sender, named, sync_receivers, async_receivers, "send", False)
    responses = []
    slot[0] = record
    try:
        if names is None:
            for receiver in sync_receivers:
                response = receiver(signal=self, sender=sender, **named)
                record.append(_names_get(id(receiver)) or _name(receiver))
                record.append(perf_counter())
                responses.append((receiver, response))
        else:
            for receiver in sync_receivers:
                response = receiver(signal=self, sender=sender, **named)
                record.append(perf_counter())
                responses.append((receiver, response))
    except BaseException as err:
        slot[0] = parent
        record[_EXTRA] = (_failed_call(record, receiver, err),)
        _queue_record(self, named, record)
        raise
    slot[0] = parent
    try:
        if named:
            plan = _newest_get(id(self))
            try:  # the signal's newest capture plan first: one call less than _capture
                captured = None if plan is None else plan(named)
            except BaseException:  # noqa: BLE001 - _capture isolates a hostile value
                captured = None
            record[_KWARGS] = captured if captured is not None else _capture(self, named)
        queued = _ship(_queue, record, capacity)
        if queued is not None:
            _after_queueing(queued)
    except BaseException:  # noqa: BLE001 - the collector never raises into the host
        _drop_quietly("capture_error")
    return responses


def send_robust(self: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
    """Django's Signal.send_robust, timed (the fast path; see the module docstring)."""
    if not self.receivers:
        return []
    cached = self.sender_receivers_cache.get(sender)
    if cached is NO_RECEIVERS:
        return []
    sync_receivers, async_receivers = _live(self, sender, cached)
    cell = _current_get()
    known = _known_get(self)
    if (cell is None or cell[0] is not _thread_key() or known is None or async_receivers
            or not sync_receivers):
        return _dispatch(self, sender, named, sync_receivers, async_receivers, "send_robust", True)
    slot = cell[1]
    parent = slot[0]
    names = known[2]
    if names is not None and (len(names) != len(sync_receivers) or known[1] != self.receivers):
        names = _names_changed(self, known)
    try:
        record = [
            None, known[0],
            "None" if sender is None else _sender_label(sender) or _sender_ref(sender),
            "send_robust", cell[3], None if parent is None else _parent_of(parent), None, None,
            names, perf_counter(),
        ]
    except Exception:  # noqa: BLE001 - a sender that cannot even be hashed twice
        return _dispatch(self, sender, named, sync_receivers, async_receivers, "send_robust", True)
    failed: tuple[Any, ...] | None = None
    responses = []
    slot[0] = record
    try:
        for receiver in sync_receivers:
            try:
                response = receiver(signal=self, sender=sender, **named)
            except Exception as err:
                failed = (*(failed or ()), _failed_call(record, receiver, err))
                self._log_robust_failure(receiver, err)  # type: ignore[attr-defined]
                response = err
            else:
                if names is None:
                    record.append(_names_get(id(receiver)) or _name(receiver))
                record.append(perf_counter())
            responses.append((receiver, response))
    except BaseException as err:
        slot[0] = parent
        if _calls_in(record) == len(responses):  # the receiver raised, not the failure log
            failed = (*(failed or ()), _failed_call(record, receiver, err))
        record[_EXTRA] = failed
        _queue_record(self, named, record)
        raise
    slot[0] = parent
    try:
        record[_EXTRA] = failed
        if named:
            plan = _newest_get(id(self))
            try:  # as in send
                captured = None if plan is None else plan(named)
            except BaseException:  # noqa: BLE001
                captured = None
            record[_KWARGS] = captured if captured is not None else _capture(self, named)
        queued = _ship(_queue, record, capacity)
        if queued is not None:
            _after_queueing(queued)
    except BaseException:  # noqa: BLE001 - the collector never raises into the host
        _drop_quietly("capture_error")
    return responses


def _after_queueing(queued: int) -> None:
    """After a record was offered to a queue of ``queued`` records (``_ship`` answers this only
    every 256 records): count it dropped if the queue was full (-1), or start the writer if it
    is not running, or ring it if the queue was empty (an idle writer waits for that)."""
    if queued < 0:
        runtime_state.drop("queue_full")
    elif not runtime_state.alive:
        runtime_state.start()
    elif not queued:
        runtime_state.ring()


def _calls_in(record: list[Any]) -> int:
    """Return how many receiver calls a fast-path record has closed so far."""
    closed = len(record) - _START - 1
    return closed if record[_NAMES] is not None else closed >> 1


def _names_changed(signal: Signal, known: tuple[Any, ...]) -> tuple[str, ...] | None:
    """Return None: this send names its receivers inline (a subset reached, or others connected).

    A send to a subset of the receivers (a sender filter, a receiver that just died) keeps the
    learned names; changed receivers drop them, and the next send learns again.
    """
    try:
        if known[1] != signal.receivers:
            _known.pop(signal, None)
    except Exception:  # noqa: BLE001 - an entry's receiver compared by its own __eq__
        _known.pop(signal, None)
    return None


def _learn(signal: Signal, sync_receivers: list[Any]) -> None:
    """Remember a named signal's receiver names, valid while its receivers stay the same.

    Only when this send reached every connected receiver (no sender filter, all alive) and all
    are weakly connected: the snapshot of ``signal.receivers`` then holds weak references only,
    and an equal list later means the same receivers, in the same order. Never raises.
    """
    try:
        name = fast_names.get(signal)
        if name is None:
            return
        entries = signal.receivers
        if len(sync_receivers) == len(entries) and all(
            isinstance(entry[1], weakref.ReferenceType) for entry in entries
        ):
            learned: tuple[str, list[Any] | None, tuple[str, ...] | None] = (
                name, list(entries), tuple(_name(r) for r in sync_receivers)
            )
        else:
            learned = (name, None, None)
        if len(_known) >= naming.CACHE_LIMIT:
            _known.clear()
        _known[signal] = learned
    except Exception:  # noqa: BLE001
        pass


def _queue_record(signal: Signal, named: dict[str, Any], record: list[Any]) -> None:
    """Queue a fast-path record whose dispatch ended in an exception (never raises)."""
    try:
        if named:
            record[_KWARGS] = _capture(signal, named)
        queued = _ship(_queue, record, capacity)
        if queued is not None:
            _after_queueing(queued)
    except BaseException:  # noqa: BLE001 - the collector never raises into the host
        _drop_quietly("capture_error")


def _dispatch(
    signal: Signal, sender: Any, named: dict[str, Any], sync_receivers: list[Any],
    async_receivers: list[Any], method: str, robust: bool,
) -> list[tuple[Any, Any]]:
    """The general send/send_robust: unheard sends, request signals, muted contexts, async."""
    if not sync_receivers and not async_receivers:
        _count_unheard(signal, sender)
        return []
    if signal is _request_started or signal is _request_finished:
        if _track_request(signal, named):
            return _ORIGINALS[method](signal, sender, **named)  # type: ignore[no-any-return]
    elif muted.get():
        return _ORIGINALS[method](signal, sender, **named)  # type: ignore[no-any-return]
    cell = _cell()
    slot = cell[1]
    parent = slot[0]
    parent_call = _parent_of(parent)
    seq = next(_seq)
    calls: list[Any] = []
    responses: list[tuple[Any, Any]] = []
    index = 0
    start = mark = perf_counter()
    try:
        for receiver in sync_receivers:
            slot[0] = (seq, index)
            try:
                response = receiver(signal=signal, sender=sender, **named)
            except Exception as err:
                ended = perf_counter()
                calls.append((_name(receiver), ended - mark, index, False, _failure(err)))
                if not robust:
                    raise
                signal._log_robust_failure(receiver, err)  # type: ignore[attr-defined]
                response = err
            except BaseException as err:
                calls.append((_name(receiver), perf_counter() - mark, index, False, _failure(err)))
                raise
            else:
                ended = perf_counter()
                calls.append((_name(receiver), ended - mark, index, False, None))
            responses.append((receiver, response))
            mark = ended
            index += 1
        if async_receivers:
            slot[0] = parent
            dispatch = _Dispatch(
                signal, sender, method, named, seq, parent_call, calls, cell[_PATH]
            )
            responses.extend(_send_async(dispatch, async_receivers, index, robust))
        return responses
    finally:
        slot[0] = parent
        _enqueue(signal, sender, method, named, seq, parent_call, start, perf_counter(), calls,
                 cell[_PATH])
        if not async_receivers and _known_get(signal) is None:
            _learn(signal, sync_receivers)


class _Dispatch:
    """An async dispatch in flight: what its timed receiver coroutines need."""

    __slots__ = ("signal", "sender", "method", "named", "seq", "parent", "start", "calls", "path")

    def __init__(
        self, signal: Signal, sender: Any, method: str, named: dict[str, Any],
        seq: int, parent: tuple[int, int] | None, calls: list[Any], path: str,
    ) -> None:
        self.signal = signal
        self.sender = sender
        self.method = method
        self.named = named
        self.seq = seq
        self.parent = parent
        self.calls = calls
        self.path = path
        self.start = perf_counter()

    def run_sync(self, receivers: list[Any], robust: bool) -> list[tuple[Any, Any]]:
        """Call sync receivers in order, timing each (asend's sync_send, in a worker thread)."""
        signal, sender, named, calls = self.signal, self.sender, self.named, self.calls
        responses: list[tuple[Any, Any]] = []
        slot = _cell()[1]
        parent = slot[0]
        try:
            for index, receiver in enumerate(receivers):
                slot[0] = (self.seq, index)
                began = perf_counter()
                try:
                    response = receiver(signal=signal, sender=sender, **named)
                except Exception as err:
                    calls.append((_name(receiver), perf_counter() - began, index, False,
                                  _failure(err)))
                    if not robust:
                        raise
                    signal._log_robust_failure(receiver, err)  # type: ignore[attr-defined]
                    responses.append((receiver, err))
                except BaseException as err:
                    calls.append((_name(receiver), perf_counter() - began, index, False,
                                  _failure(err)))
                    raise
                else:
                    calls.append((_name(receiver), perf_counter() - began, index, False, None))
                    responses.append((receiver, response))
        finally:
            slot[0] = parent
        return responses

    async def run_async(
        self, receiver: Any, index: int, robust: bool, outer: _Cell | None
    ) -> Any:
        """Await one async receiver, timing it; Django's coroutine or asend_and_wrap_exception."""
        task = asyncio.current_task()
        if task is not None:
            _task_parents[task] = (self.seq, index)
        muted_now = False if outer is None else outer[_MUTED]
        _current.set(_new_cell(_thread_key(), [(self.seq, index)], muted_now, self.path))
        began = perf_counter()
        try:
            response = await receiver(signal=self.signal, sender=self.sender, **self.named)
        except Exception as err:
            self.calls.append((_name(receiver), perf_counter() - began, index, True,
                               _failure(err)))
            if not robust:
                raise
            self.signal._log_robust_failure(receiver, err)  # type: ignore[attr-defined]
            return err
        except BaseException as err:
            self.calls.append((_name(receiver), perf_counter() - began, index, True,
                               _failure(err)))
            raise
        finally:
            # Restore the value from before the whole group, never a sibling's (shared context).
            _current.set(outer)
            if task is not None:
                _task_parents.pop(task, None)
        self.calls.append((_name(receiver), perf_counter() - began, index, True, None))
        return response

    def async_coros(self, receivers: list[Any], first: int, robust: bool) -> list[Any]:
        """Return the timed coroutines for the async receivers, numbered after the sync ones."""
        outer = _current.get()
        return [self.run_async(r, first + i, robust, outer) for i, r in enumerate(receivers)]

    def finish(self) -> None:
        """Queue the finished dispatch."""
        _enqueue(self.signal, self.sender, self.method, self.named, self.seq, self.parent,
                 self.start, perf_counter(), self.calls, self.path)


def _send_async(
    dispatch: _Dispatch, receivers: list[Any], first: int, robust: bool
) -> list[tuple[Any, Any]]:
    """Run async receivers from sync send() as Django does: one async_to_sync, concurrently."""

    async def asend() -> Any:
        coros = dispatch.async_coros(receivers, first, robust)
        if _run_parallel is not None:
            results = await _run_parallel(*coros)
        else:
            results = await asyncio.gather(*coros)
        return zip(receivers, results, strict=True)

    return list(async_to_sync(asend)())


async def asend(self: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
    """Django's Signal.asend, timed."""
    return await _asend(self, sender, named, "asend", robust=False)


async def asend_robust(self: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
    """Django's Signal.asend_robust, timed."""
    return await _asend(self, sender, named, "asend_robust", robust=True)


async def _asend(
    signal: Signal, sender: Any, named: dict[str, Any], method: str, robust: bool
) -> list[tuple[Any, Any]]:
    """The shared body of asend/asend_robust, following the installed Django's ordering."""
    if not signal.receivers or signal.sender_receivers_cache.get(sender) is NO_RECEIVERS:
        return []
    sync_receivers, async_receivers = _live(signal, sender)
    if not sync_receivers and not async_receivers:
        _count_unheard(signal, sender)
        return []
    if signal is _request_started or signal is _request_finished:
        if _track_request(signal, named):
            return await _ORIGINALS[method](signal, sender, **named)  # type: ignore[no-any-return]
    elif muted.get():
        return await _ORIGINALS[method](signal, sender, **named)  # type: ignore[no-any-return]
    cell = _cell()
    dispatch = _Dispatch(
        signal, sender, method, named, next(_seq), _parent_of(cell[1][0]), [], cell[_PATH]
    )

    if sync_receivers:

        @sync_to_async
        def sync_send() -> list[tuple[Any, Any]]:
            return dispatch.run_sync(sync_receivers, robust)

    else:

        async def sync_send() -> list[tuple[Any, Any]]:
            return []

    first = len(sync_receivers)
    try:
        if _run_parallel is not None:
            responses = await sync_send()
            async_responses = await _run_parallel(
                *dispatch.async_coros(async_receivers, first, robust)
            )
        else:
            responses, async_responses = await asyncio.gather(
                sync_send(), asyncio.gather(*dispatch.async_coros(async_receivers, first, robust))
            )
        responses.extend(zip(async_receivers, async_responses, strict=True))
        return responses
    finally:
        dispatch.finish()


_REPLACEMENTS: dict[str, Any] = {
    "send": send,
    "send_robust": send_robust,
    "asend": asend,
    "asend_robust": asend_robust,
}


def install() -> bool:
    """Patch Signal's send methods; return False if already installed."""
    global _installed
    with _lock:
        if _installed:
            return False
        for name, replacement in _REPLACEMENTS.items():
            replacement.__wrapped__ = _ORIGINALS[name]
            replacement.__doc__ = _ORIGINALS[name].__doc__
            if name == "send" and capture.SendMethod is not None:  # its first steps in C
                replacement = capture.SendMethod(
                    send, _send, NO_RECEIVERS, weakref.WeakKeyDictionary
                )
            setattr(Signal, name, replacement)
        _installed = True
        return True


def uninstall() -> bool:
    """Restore Django's own send methods; return False if the hook was not installed."""
    global _installed
    with _lock:
        if not _installed:
            return False
        for name, original in _ORIGINALS.items():
            setattr(Signal, name, original)
        _installed = False
        return True


def is_installed() -> bool:
    """Return True while the hook is patched in."""
    return _installed


def reseed_after_fork() -> None:
    """Give a forked child its own id token and sequence, and forget the parent's state."""
    global _TOKEN, _seq, _seq_lock
    _TOKEN = random.getrandbits(31)
    _seq = numbers(1)
    _seq_lock = threading.Lock()  # another thread may have held it at the fork
    _task_parents.clear()
    unheard.clear()


def process_token() -> tuple[int, int]:
    """Return (token, pid) identifying this process's event ids."""
    return _TOKEN, os.getpid()
