"""Turn the hook's raw tuples into event dicts: the one shape processors, sinks and the UI see."""

from __future__ import annotations

import socket
from typing import Any

from collector import hook, naming
from collector.capture import expand

HOST = socket.gethostname()[:100]

EventDict = dict[str, Any]


def build(record: Any, now_wall: float, now: float, pid: int) -> EventDict:
    """Return the event dict for one raw record; its perf-counter start becomes wall time.

    The record layout is described in ``collector.hook``'s docstring.
    """
    seq, signal, sender, method, path, parent, kwargs, extra, names, start = record[:10]
    if seq is None:  # no nested send asked for the number while the send ran: draw it now
        seq = next(hook._seq)
    if extra is None and names is not None:  # the fast path's record: sync calls that returned
        calls, failures = _returned_calls(record, names, start), 0
    else:
        calls, failures = _described_calls(record, names, extra, start)
    if type(sender) is str:  # names and labels as the hook queued them, else looked up
        label: str | None = sender
    else:
        label = hook.sender_labels.get(sender) if isinstance(sender, type) else None
    return {
        "id": (hook._TOKEN << 32) | (seq & 0xFFFFFFFF),  # hook.event_id, inlined
        "signal": signal if type(signal) is str else naming.signal_name(signal),
        "sender": label if label is not None else naming.sender_label(sender),
        "method": method,
        "timestamp": now_wall - (now - start),
        "duration_ns": round((record[-1] - start) * 1e9),
        "receiver_count": len(calls),
        "failure_count": failures,
        "parent_id": None if parent is None else hook.event_id(parent[0]),
        "parent_call": None if parent is None else parent[1],
        "kwargs": kwargs if type(kwargs) is dict else {} if kwargs is None else expand(kwargs),
        "host": HOST,
        "pid": pid,
        "request_path": path,
        "calls": calls,
    }


# A returned call's dict, copied and filled in (a copy is cheaper than a ten-key display).
_OK_CALL: dict[str, Any] = {
    "index": 0, "receiver": "", "is_async": False, "duration_ns": 0, "outcome": "ok",
    "exc_type": "", "exc_message": "", "traceback": "", "location": "",
}


def _returned_calls(record: Any, names: tuple[str, ...], start: float) -> list[dict[str, Any]]:
    """Return the call dicts of a record whose calls all returned, names learned (one end each)."""
    calls = []
    append, copy = calls.append, _OK_CALL.copy
    previous = start
    index = 10
    for name in names:
        ended = record[index]
        call = copy()
        call["index"] = index - 10
        call["receiver"] = name
        call["duration_ns"] = round((ended - previous) * 1e9)
        append(call)
        previous = ended
        index += 1
    return calls


def _described_calls(
    record: Any, names: Any, extra: Any, start: float
) -> tuple[list[dict[str, Any]], int]:
    """Return the call dicts and the failure count of any other record (calls in ``extra``)."""
    failures = 0
    calls = []
    described = {entry[2] for entry in extra} if extra else ()
    previous = start
    if names is None:  # (name, end) per call; a None name is described in extra
        ends = record[11::2]
        names = record[10::2]
    else:  # one end per call, names learned for the signal
        ends = record[10:]
    for index, ended in enumerate(ends):
        name = names[index]
        if name is not None and index not in described:
            call = _OK_CALL.copy()
            call["index"] = index
            call["receiver"] = name
            call["duration_ns"] = round((ended - previous) * 1e9)
            calls.append(call)
        previous = ended
    for name, seconds, index, is_async, failed in extra or ():
        if failed is None:
            calls.append({
                "index": index, "receiver": name, "is_async": is_async,
                "duration_ns": round(seconds * 1e9), "outcome": "ok", "exc_type": "",
                "exc_message": "", "traceback": "", "location": "",
            })
        else:
            failures += 1
            exc_type, message, text, location = failed
            calls.append({
                "index": index, "receiver": name, "is_async": is_async,
                "duration_ns": round(seconds * 1e9), "outcome": "error", "exc_type": exc_type,
                "exc_message": message, "traceback": text, "location": location,
            })
    if extra and len(calls) > 1:
        calls.sort(key=_index)
    return calls, failures


def _index(call: dict[str, Any]) -> int:
    """Sort key: a call's position in the response list."""
    return int(call["index"])
