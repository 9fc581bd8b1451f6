"""Turn the hook's raw tuples into event dicts: the one shape processors, sinks and the UI see."""

from __future__ import annotations

import socket
from typing import Any

from collector import hook, naming

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
        return _plain(record, seq, signal, sender, now_wall, now, pid, names, start)
    failures = 0
    call_dicts = []
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
            call_dicts.append({
                "index": index, "receiver": name, "is_async": False,
                "duration_ns": round((ended - previous) * 1e9), "outcome": "ok", "exc_type": "",
                "exc_message": "", "traceback": "", "location": "",
            })
        previous = ended
    for name, seconds, index, is_async, failed in extra or ():
        if failed is None:
            call_dicts.append({
                "index": index, "receiver": name, "is_async": is_async,
                "duration_ns": round(seconds * 1e9), "outcome": "ok", "exc_type": "",
                "exc_message": "", "traceback": "", "location": "",
            })
        else:
            failures += 1
            exc_type, message, text, location = failed
            call_dicts.append({
                "index": index, "receiver": name, "is_async": is_async,
                "duration_ns": round(seconds * 1e9), "outcome": "error", "exc_type": exc_type,
                "exc_message": message, "traceback": text, "location": location,
            })
    if extra and len(call_dicts) > 1:
        call_dicts.sort(key=_index)
    duration = record[-1] - start
    parent_seq, parent_call = (None, None) if parent is None else parent
    if kwargs is None:
        kwargs = {}
    return {
        "id": hook.event_id(seq),
        "signal": naming.signal_name(signal),
        "sender": naming.sender_label(sender),
        "method": method,
        "timestamp": now_wall - (now - start),
        "duration_ns": round(duration * 1e9),
        "receiver_count": len(call_dicts),
        "failure_count": failures,
        "parent_id": None if parent_seq is None else hook.event_id(parent_seq),
        "parent_call": parent_call,
        "kwargs": kwargs,
        "host": HOST,
        "pid": pid,
        "request_path": path,
        "calls": call_dicts,
    }


def _plain(
    record: Any, seq: int, signal: Any, sender: Any, now_wall: float, now: float, pid: int,
    names: tuple[str, ...], start: float,
) -> EventDict:  # fmt: skip
    """Return the event dict of a record whose calls all returned (the common case, inlined)."""
    call_dicts = []
    previous = start
    index = 10
    for name in names:
        ended = record[index]
        call_dicts.append({
            "index": index - 10, "receiver": name, "is_async": False,
            "duration_ns": round((ended - previous) * 1e9), "outcome": "ok", "exc_type": "",
            "exc_message": "", "traceback": "", "location": "",
        })  # fmt: skip
        previous = ended
        index += 1
    parent = record[5]
    if type(sender) is str:
        label: str | None = sender
    else:
        label = hook.sender_labels.get(sender) if isinstance(sender, type) else None
    return {
        "id": (hook._TOKEN << 32) | (seq & 0xFFFFFFFF),  # hook.event_id, inlined
        "signal": signal if type(signal) is str else naming.signal_name(signal),
        "sender": label if label is not None else naming.sender_label(sender),
        "method": record[3],
        "timestamp": now_wall - (now - start),
        "duration_ns": round((record[-1] - start) * 1e9),
        "receiver_count": len(call_dicts),
        "failure_count": 0,
        "parent_id": None if parent is None else hook.event_id(parent[0]),
        "parent_call": None if parent is None else parent[1],
        "kwargs": {} if record[6] is None else record[6],
        "host": HOST,
        "pid": pid,
        "request_path": record[4],
        "calls": call_dicts,
    }


def _index(call: dict[str, Any]) -> int:
    """Sort key: a call's position in the response list."""
    return int(call["index"])
