"""The hook: Django's four send methods, re-implemented with timing, patched onto ``Signal``.

Each replacement mirrors the installed Django version's own method (5.2 and 6.0 run ``asend``'s
sync and async receivers concurrently with ``asyncio.gather``; 6.1 runs the sync ones first, then
the async ones in a ``TaskGroup`` through ``_run_parallel``). The response lists hold the original
receiver objects; exceptions propagate unchanged; sends with no receivers take Django's own fast
path. What the hot path keeps is one flat tuple of plain values appended to the runtime's queue;
naming of signals and senders, wall-clock time, processors and storage happen on the writer thread.

Record layout (see ``events.build``): ``(seq, signal, sender, method, start, duration, calls,
parent_seq, parent_call, kwargs, request_path)``: times in perf-counter seconds (floats are cheaper
than nanosecond ints here), ``calls`` a tuple of ``(name, seconds)`` for a sync receiver that
returned (its index is its position) or ``(name, seconds, index, is_async, failure)``, and ``seq``
this process's sequence number (the writer turns it into the globally unique event id).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import threading
import traceback as _tb
from _thread import get_ident
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from time import perf_counter
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.core.signals import request_finished as _request_finished
from django.core.signals import request_started as _request_started
from django.dispatch import Signal
from django.dispatch import dispatcher as _dispatcher

from collector import capture, naming

NO_RECEIVERS = _dispatcher.NO_RECEIVERS
# Django 6.1 runs asend's sync receivers first, then the async ones in a TaskGroup.
_run_parallel: Callable[..., Coroutine[Any, Any, list[Any]]] | None = getattr(
    _dispatcher, "_run_parallel", None
)

# Nesting: one "cell" per thread and context: [owner thread ident, inherited parent seq,
# inherited parent call index, stack]. The stack holds one [seq, call index] cursor per send in
# progress; a send pushes its cursor and cuts the stack back when done. ContextVar.set (a HAMT copy) happens once per context,
# not per send. A context copied into another thread (sync_to_async) gets its own cell there,
# seeded with the parent it inherited; each async receiver gets a fresh cell naming its call.
_current: ContextVar[list[Any] | None] = ContextVar("signal_monitor_current", default=None)
# True while the collector must not record (its own writer, excluded request paths).
muted: ContextVar[bool] = ContextVar("signal_monitor_muted", default=False)
# The request path of the request being served in this context ("" outside requests).
request_path: ContextVar[str] = ContextVar("signal_monitor_request_path", default="")
# Async receivers share one context under 6.1's TaskGroup, so their parent is kept per task.
_task_parents: dict[asyncio.Task[Any], tuple[int, int]] = {}

_TOKEN = random.getrandbits(31)
_seq = itertools.count(1)

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
_EMPTY: dict[str, Any] = {}
# id(receiver or its __func__) -> dotted name, valid while the object lives; see naming.
_names = naming.receiver_names
# Signal -> its dotted name, and class sender -> its label, filled by the writer thread once it
# has named them. With both known, a queued record holds only plain values, which the garbage
# collector stops tracking; until then the record carries the object and the writer names it.
signal_names: dict[Signal, str] = {}
sender_labels: dict[type, str] = {}


def event_id(seq: int) -> int:
    """Return the id, unique across processes, of this process's event number ``seq``."""
    return (_TOKEN << 32) | (seq & 0xFFFFFFFF)


def _task_parent() -> tuple[int, int] | None:
    """Return the parent recorded for the running asyncio task, if any."""
    loop = asyncio._get_running_loop()
    if loop is None:
        return None
    return _task_parents.get(asyncio.current_task(loop))  # type: ignore[arg-type]


def _cell() -> list[Any]:
    """Return this thread's nesting cell in the current context, creating it once."""
    cell = _current.get()
    ident = get_ident()
    if cell is None or cell[0] != ident:
        if cell is None:
            seq, call = None, None
        elif cell[3]:
            seq, call = cell[3][-1]
        else:
            seq, call = cell[1], cell[2]
        cell = [ident, seq, call, []]
        _current.set(cell)
    return cell


def _parent() -> tuple[int | None, int | None]:
    """Return (seq, call index) of the receiver call this send happens inside, or Nones."""
    if _task_parents:
        found = _task_parent()
        if found is not None:
            return found
    cell = _cell()
    stack = cell[3]
    if stack:
        seq, call = stack[-1]
        return seq, call
    return cell[1], cell[2]


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


def _named(calls: list[Any]) -> tuple[Any, ...]:
    """Return the calls as a tuple, naming receivers still held as objects.

    A call is ``(name, seconds)`` for a sync receiver that returned (its index is its position),
    or ``(name, seconds, index, is_async, failure)`` otherwise.
    """
    for position, call in enumerate(calls):
        if type(call[0]) is not str:
            calls[position] = (naming.receiver_name(call[0]), *call[1:])
    return tuple(calls)


def _enqueue(
    signal: Signal, sender: Any, method: str, named: dict[str, Any], seq: int,
    parent: tuple[int | None, int | None], start: int, end: int, calls: list[Any],
) -> None:
    """Queue one finished dispatch (the async and unheard paths; sync sends inline this)."""
    try:
        if len(_queue) >= capacity:
            runtime_state.drop("queue_full")
            return
        _queue.append((
            seq, signal_names.get(signal, signal),
            sender_labels.get(sender, sender) if isinstance(sender, type)
            else "None" if sender is None else capture.sender_ref(sender),
            method, start, end - start, _named(calls), parent[0], parent[1],
            capture.capture_kwargs(signal, named) if named else _EMPTY, request_path.get(),
        ))
        if not runtime_state.alive:
            runtime_state.start()
    except BaseException:  # noqa: BLE001 - the collector never raises into the host
        _drop_quietly("capture_error")


def _count_unheard(signal: Signal, sender: Any) -> None:
    """Count a send that reached no live receiver (and keep it if RECORD_UNHEARD asks)."""
    slot = unheard.get(id(signal))
    if slot is None:
        unheard[id(signal)] = [signal, 1]
    else:
        slot[1] += 1
    if record_unheard and not muted.get():
        now = perf_counter()
        _enqueue(signal, sender, "send", _EMPTY, next(_seq), _parent(), now, now, [])


class _RuntimeState:
    """What the hook needs from the runtime, without importing it (set by runtime.attach)."""

    alive = True

    @staticmethod
    def start() -> None:
        """Start the writer thread."""

    @staticmethod
    def drop(reason: str) -> None:
        """Count a dropped event."""


runtime_state: Any = _RuntimeState()


def _track_request(signal: Signal, named: dict[str, Any]) -> bool:
    """Follow the request path in this context; return True if this send must not be recorded.

    request_started mutes the context for excluded paths (the dashboard's own pages);
    request_finished is itself muted when its request was, and then lifts the mute.
    """
    from collector.conf import get_config

    was_muted = muted.get()
    if signal is _request_finished:
        if request_path.get():
            request_path.set("")
            muted.set(False)
        return was_muted
    path = capture.request_path_of(named)
    request_path.set(path)
    excluded = get_config()["EXCLUDE_PATHS"]
    now_muted = bool(path) and any(path.startswith(prefix) for prefix in excluded)
    muted.set(now_muted)
    return now_muted


def _make_sync_send(method: str, robust: bool) -> Callable[..., list[tuple[Any, Any]]]:
    """Build Django's send() (robust=False) or send_robust() (robust=True), timed.

    One closure per method keeps the hot path flat: receivers are timed with chained clock
    reads (one per receiver plus one), named from the cache, and the record is queued inline.
    """
    original = _ORIGINALS[method]

    def send(self: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
        if not self.receivers or self.sender_receivers_cache.get(sender) is NO_RECEIVERS:
            return []
        sync_receivers, async_receivers = self._live_receivers(sender)
        if not sync_receivers and not async_receivers:
            _count_unheard(self, sender)
            return []
        if self is _request_started or self is _request_finished:
            if _track_request(self, named):
                return original(self, sender, **named)  # type: ignore[no-any-return]
        elif muted.get():
            return original(self, sender, **named)  # type: ignore[no-any-return]
        seq = next(_seq)
        cell = _current.get()
        if cell is None or cell[0] != get_ident():
            cell = _cell()
        stack = cell[3]
        depth = len(stack)
        if depth:
            parent_seq, parent_call = stack[-1]
        else:
            parent_seq, parent_call = cell[1], cell[2]
        if _task_parents:
            found = _task_parent()
            if found is not None:
                parent_seq, parent_call = found
        calls: list[Any] = []
        responses: list[tuple[Any, Any]] = []
        # A cursor object, not ints written at fixed positions: nothing here can raise even if
        # something interleaves on this stack (greenlets sharing a thread).
        cursor = [seq, 0]
        stack.append(cursor)
        index = 0
        unnamed = False
        start = mark = perf_counter()
        try:
            for receiver in sync_receivers:
                cursor[1] = index
                try:
                    response = receiver(signal=self, sender=sender, **named)
                except Exception as err:
                    ended = perf_counter()
                    calls.append((receiver, ended - mark, index, False, _failure(err)))
                    unnamed = True
                    if not robust:
                        raise
                    self._log_robust_failure(receiver, err)
                    response = err
                except BaseException as err:
                    ended = perf_counter()
                    calls.append((receiver, ended - mark, index, False, _failure(err)))
                    unnamed = True
                    raise
                else:
                    ended = perf_counter()
                    name = _names.get(id(receiver))
                    if name is None:
                        calls.append((receiver, ended - mark))
                        unnamed = True
                    else:
                        calls.append((name, ended - mark))
                responses.append((receiver, response))
                mark = ended
                index += 1
            if async_receivers:
                unnamed = True
                del stack[depth:]
                dispatch = _Dispatch(
                    self, sender, method, named, seq, (parent_seq, parent_call), calls
                )
                responses.extend(_send_async(dispatch, async_receivers, index, robust))
                mark = perf_counter()
            return responses
        finally:
            del stack[depth:]
            try:
                if len(_queue) < capacity:
                    _queue.append((
                        seq, signal_names.get(self, self),
                        "None" if sender is None else sender_labels.get(sender, sender)
                        if isinstance(sender, type) else capture.sender_ref(sender),
                        method, start, mark - start, _named(calls) if unnamed else tuple(calls),
                        parent_seq, parent_call,
                        capture.capture_kwargs(self, named) if named else _EMPTY,
                        request_path.get(),
                    ))
                    if not seq & 255 and not runtime_state.alive:
                        runtime_state.start()
                else:
                    runtime_state.drop("queue_full")
            except BaseException:  # noqa: BLE001 - the collector never raises into the host
                _drop_quietly("capture_error")

    send.__name__ = send.__qualname__ = method
    return send


send = _make_sync_send("send", robust=False)
send_robust = _make_sync_send("send_robust", robust=True)


class _Dispatch:
    """An async dispatch in flight: what its timed receiver coroutines need."""

    __slots__ = ("signal", "sender", "method", "named", "seq", "parent", "start", "calls")

    def __init__(
        self, signal: Signal, sender: Any, method: str, named: dict[str, Any],
        seq: int, parent: tuple[int | None, int | None], calls: list[Any],
    ) -> None:
        self.signal = signal
        self.sender = sender
        self.method = method
        self.named = named
        self.seq = seq
        self.parent = parent
        self.calls = calls
        self.start = perf_counter()

    def run_sync(self, receivers: list[Any], robust: bool) -> list[tuple[Any, Any]]:
        """Call sync receivers in order, timing each (asend's sync_send, in a worker thread)."""
        signal, sender, named, calls = self.signal, self.sender, self.named, self.calls
        responses: list[tuple[Any, Any]] = []
        stack = _cell()[3]
        depth = len(stack)
        cursor = [self.seq, 0]
        stack.append(cursor)
        try:
            for index, receiver in enumerate(receivers):
                cursor[1] = index
                began = perf_counter()
                try:
                    response = receiver(signal=signal, sender=sender, **named)
                except Exception as err:
                    calls.append((receiver, perf_counter() - began, index, False, _failure(err)))
                    if not robust:
                        raise
                    signal._log_robust_failure(receiver, err)
                    responses.append((receiver, err))
                except BaseException as err:
                    calls.append((receiver, perf_counter() - began, index, False, _failure(err)))
                    raise
                else:
                    calls.append((receiver, perf_counter() - began, index, False, None))
                    responses.append((receiver, response))
        finally:
            del stack[depth:]
        return responses

    async def run_async(
        self, receiver: Any, index: int, robust: bool, outer: list[Any] | None
    ) -> Any:
        """Await one async receiver, timing it; Django's coroutine or asend_and_wrap_exception."""
        task = asyncio.current_task()
        if task is not None:
            _task_parents[task] = (self.seq, index)
        _current.set([get_ident(), self.seq, index, []])
        began = perf_counter()
        try:
            response = await receiver(signal=self.signal, sender=self.sender, **self.named)
        except Exception as err:
            self.calls.append((receiver, perf_counter() - began, index, True, _failure(err)))
            if not robust:
                raise
            self.signal._log_robust_failure(receiver, err)
            return err
        except BaseException as err:
            self.calls.append((receiver, perf_counter() - began, index, True, _failure(err)))
            raise
        finally:
            # Restore the value from before the whole group, never a sibling's (shared context).
            _current.set(outer)
            if task is not None:
                _task_parents.pop(task, None)
        self.calls.append((receiver, perf_counter() - began, index, True, None))
        return response

    def async_coros(self, receivers: list[Any], first: int, robust: bool) -> list[Any]:
        """Return the timed coroutines for the async receivers, numbered after the sync ones."""
        outer = _current.get()
        return [self.run_async(r, first + i, robust, outer) for i, r in enumerate(receivers)]

    def finish(self) -> None:
        """Queue the finished dispatch."""
        _enqueue(self.signal, self.sender, self.method, self.named, self.seq, self.parent,
                 self.start, perf_counter(), self.calls)


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
    sync_receivers, async_receivers = signal._live_receivers(sender)
    if not sync_receivers and not async_receivers:
        _count_unheard(signal, sender)
        return []
    if signal is _request_started or signal is _request_finished:
        if _track_request(signal, named):
            return await _ORIGINALS[method](signal, sender, **named)  # type: ignore[no-any-return]
    elif muted.get():
        return await _ORIGINALS[method](signal, sender, **named)  # type: ignore[no-any-return]
    dispatch = _Dispatch(signal, sender, method, named, next(_seq), _parent(), [])

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
            replacement.__wrapped__ = _ORIGINALS[name]  # type: ignore[attr-defined]
            replacement.__doc__ = _ORIGINALS[name].__doc__
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
    global _TOKEN, _seq
    _TOKEN = random.getrandbits(31)
    _seq = itertools.count(1)
    _task_parents.clear()
    unheard.clear()


def process_token() -> tuple[int, int]:
    """Return (token, pid) identifying this process's event ids."""
    return _TOKEN, os.getpid()
