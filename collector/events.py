"""Turn the hook's raw tuples into event dicts: the one shape processors, sinks and the UI see."""

from __future__ import annotations


import socket
from typing import Any

from collector import hook, naming

HOST = socket.gethostname()[:100]

EventDict = dict[str, Any]


def build(record: tuple[Any, ...], now_wall: float, now: float, pid: int) -> EventDict:
    """Return the event dict for one raw record; its perf-counter start becomes wall time."""
    (seq, signal, sender, method, start, duration, calls, parent_seq, parent_call, kwargs,
     path) = record
    failures = 0
    call_dicts = []
    for position, call in enumerate(calls):
        if len(call) == 2:
            index, is_async, failed = position, False, None
        else:
            index, is_async, failed = call[2], call[3], call[4]
        if failed is None:
            call_dicts.append({
                "index": index, "receiver": call[0], "is_async": is_async,
                "duration_ns": round(call[1] * 1e9), "outcome": "ok", "exc_type": "",
                "exc_message": "", "traceback": "", "location": "",
            })
        else:
            failures += 1
            exc_type, message, text, location = failed
            call_dicts.append({
                "index": index, "receiver": call[0], "is_async": is_async,
                "duration_ns": round(call[1] * 1e9), "outcome": "error", "exc_type": exc_type,
                "exc_message": message, "traceback": text, "location": location,
            })
    if len(call_dicts) > 1:
        call_dicts.sort(key=_index)
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


def _index(call: dict[str, Any]) -> int:
    """Sort key: a call's position in the response list."""
    return int(call["index"])
