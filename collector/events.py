"""Turn the hook's raw tuples into event dicts: the one shape processors, sinks and the UI see."""

from __future__ import annotations


import socket
from typing import Any

from collector import naming

HOST = socket.gethostname()[:100]

EventDict = dict[str, Any]


def build(record: tuple[Any, ...], now_wall: float, now_ns: int, pid: int) -> EventDict:
    """Return the event dict for one raw record; its start (perf counter) becomes wall time."""
    (event_id, signal, sender, method, start, duration, calls, parent, kwargs, path) = record
    if len(calls) > 1:
        calls = sorted(calls, key=_index)
    failures = 0
    call_dicts = []
    for index, receiver, is_async, took, failed in calls:
        if failed is None:
            call_dicts.append({
                "index": index, "receiver": receiver, "is_async": is_async, "duration_ns": took,
                "outcome": "ok", "exc_type": "", "exc_message": "", "traceback": "",
                "location": "",
            })
        else:
            failures += 1
            exc_type, message, text, location = failed
            call_dicts.append({
                "index": index, "receiver": receiver, "is_async": is_async, "duration_ns": took,
                "outcome": "error", "exc_type": exc_type, "exc_message": message,
                "traceback": text, "location": location,
            })
    return {
        "id": event_id,
        "signal": naming.signal_name(signal),
        "sender": naming.sender_label(sender),
        "method": method,
        "timestamp": now_wall - (now_ns - start) / 1e9,
        "duration_ns": duration,
        "receiver_count": len(call_dicts),
        "failure_count": failures,
        "parent_id": parent[0] if parent else None,
        "parent_call": parent[1] if parent else None,
        "kwargs": kwargs,
        "host": HOST,
        "pid": pid,
        "request_path": path,
        "calls": call_dicts,
    }


def _index(call: tuple[Any, ...]) -> int:
    """Sort key: a call's position in the response list."""
    return int(call[0])
