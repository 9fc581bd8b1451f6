"""HTML fragments the live feed sends over the websocket (each with explicit hx-swap-oob)."""

from __future__ import annotations

import json
from typing import Any

from django.template.loader import render_to_string

from dashboard.feed import FeedState, Frame

__all__ = ["MAX_FRAME_BYTES", "error_cleared", "error_message", "feed_message", "status_message"]

# daphne refuses websocket messages over 1 MiB; stay well below.
MAX_FRAME_BYTES = 512 * 1024


def _message(kind: str, content: str, **extra: Any) -> str:
    """Return one JSON text frame: hx-ws swaps ``content``; ``type`` is for scripts and tests."""
    return json.dumps({"type": kind, "content": content, **extra}, ensure_ascii=False)


def feed_message(state: FeedState, frame: Frame) -> str:
    """Render a frame of rows, evictions and status, shrinking it until it fits one message."""
    while True:
        content = render_to_string(
            "signals_dashboard/live/_frame.html",
            {"frame": frame, "status": state.status()},
        )
        text = _message("feed", content, rows=len(frame.rows), skipped=state.skipped)
        if len(text.encode()) <= MAX_FRAME_BYTES or not frame.rows:
            return text
        state.drop_rows(frame, keep=len(frame.rows) // 2)


def status_message(state: FeedState) -> str:
    """Render only the status bar (pause state, counters)."""
    content = render_to_string(
        "signals_dashboard/live/_status.html", {"status": state.status(), "oob": True}
    )
    return _message("status", content)


def error_cleared() -> str:
    """Remove the error notice (after a command that worked)."""
    content = render_to_string("signals_dashboard/live/_error.html", {"error": ""})
    return _message("clear", content)


def error_message(error: str) -> str:
    """Render an error notice for the page; the connection stays open."""
    content = render_to_string("signals_dashboard/live/_error.html", {"error": error})
    return _message("error", content, error=error)
