"""HTML fragments the live feed sends over the websocket (each with explicit hx-swap-oob).

A feed row is rendered once per process and reused by every viewer (``row_html`` caches the HTML
in the row, which ``feed_row`` shares between consumers for a ``SharedEvent``). The rows and
frames are built in Python rather than through the template engine (about 20 times cheaper):
``_row.html`` and ``_frame.html`` remain the reference, and tests/dashboard/test_consumers.py
checks both renderings are identical. A project that overrides either template gets the
template engine instead, so its override is honoured.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.signals import setting_changed
from django.template.loader import get_template, render_to_string
from django.urls import get_script_prefix, reverse
from django.utils.timezone import is_aware, localtime

from dashboard.feed import FeedState, Frame
from dashboard.formatting import format_duration

__all__ = [
    "MAX_FRAME_BYTES",
    "error_cleared",
    "error_message",
    "feed_message",
    "row_html",
    "status_message",
]

# daphne refuses websocket messages over 1 MiB; stay well below.
MAX_FRAME_BYTES = 512 * 1024

ROW_TEMPLATE = "signals_dashboard/live/_row.html"
FRAME_TEMPLATE = "signals_dashboard/live/_frame.html"
STATUS_TEMPLATE = "signals_dashboard/live/_status.html"
_OWN_TEMPLATES = Path(__file__).resolve().parent / "templates"
_ID_MARK = 918273645  # stands for the event id in the reversed event URL
_encode_json = json.JSONEncoder(ensure_ascii=False).encode


def _message(kind: str, content: str, **extra: Any) -> str:
    """Return one JSON text frame: hx-ws swaps ``content``; ``type`` is for scripts and tests."""
    return json.dumps({"type": kind, "content": content, **extra}, ensure_ascii=False)


def feed_message(state: FeedState, frame: Frame) -> str:
    """Render a frame of rows, evictions and status, shrinking it until it fits one message."""
    while True:
        text = _feed_text(state, frame)
        if len(text) <= MAX_FRAME_BYTES // 4 or len(text.encode()) <= MAX_FRAME_BYTES:
            return text
        if not frame.rows:
            return text
        state.drop_rows(frame, keep=len(frame.rows) // 2)


def _feed_text(state: FeedState, frame: Frame) -> str:
    """Return the JSON of a feed frame; with this app's templates the rows' JSON-escaped HTML,
    made once per row, is joined in place (the same text ``json.dumps`` makes of the whole)."""
    status = state.status()
    if not _own_templates():
        content = render_to_string(FRAME_TEMPLATE, {"frame": frame, "status": status})
        return _message("feed", content, rows=len(frame.rows), skipped=state.skipped)
    parts = [_frame_head(frame)]
    if frame.rows:
        parts.append(_AFTERBEGIN)
        parts.extend(_row_json(row) for row in frame.rows)
        parts.append(_CLOSE_DIV)
    parts.append(_json_inner(_frame_tail(frame, status)))
    rows, skipped = len(frame.rows), int(state.skipped)
    return (
        f'{{"type": "feed", "content": "{"".join(parts)}", "rows": {rows}, "skipped": {skipped}}}'
    )


def status_message(state: FeedState) -> str:
    """Render only the status bar (pause state, counters)."""
    content = render_to_string(STATUS_TEMPLATE, {"status": state.status(), "oob": True})
    return _message("status", content)


def error_cleared() -> str:
    """Remove the error notice (after a command that worked)."""
    content = render_to_string("signals_dashboard/live/_error.html", {"error": ""})
    return _message("clear", content)


def error_message(error: str) -> str:
    """Render an error notice for the page; the connection stays open."""
    content = render_to_string("signals_dashboard/live/_error.html", {"error": error})
    return _message("error", content, error=error)


# ---- frames and rows ------------------------------------------------------------------------


def _frame_html(frame: Frame, status: dict[str, Any]) -> str:
    """Return a frame's HTML: the same text as ``_frame.html`` renders."""
    if not _own_templates():
        return render_to_string(FRAME_TEMPLATE, {"frame": frame, "status": status})
    rows = ['<div hx-swap-oob="afterbegin:#live-rows">', *map(row_html, frame.rows), "</div>"]
    head = '<div hx-swap-oob="innerHTML:#live-rows"></div>\n' if frame.reset else "\n"
    return head + ("".join(rows) if frame.rows else "") + _frame_tail(frame, status)


def _frame_head(frame: Frame) -> str:
    """Return the JSON-escaped start of a frame (clearing the rows on a reset)."""
    return _RESET_HEAD if frame.reset else "\\n"


def _frame_tail(frame: Frame, status: dict[str, Any]) -> str:
    """Return the end of a frame's HTML: evictions and the status bar."""
    evicted = "".join(f'<div hx-swap-oob="delete:#ev-{int(i)}"></div>' for i in frame.evicted)
    status_html = render_to_string(STATUS_TEMPLATE, {"status": status, "oob": True})
    return f"\n{evicted}\n{status_html}\n"


def _json_inner(text: str) -> str:
    """Return ``text`` as the inside of a JSON string (as ``json.dumps`` escapes it)."""
    return _encode_json(text)[1:-1]


_RESET_HEAD = _json_inner('<div hx-swap-oob="innerHTML:#live-rows"></div>\n')
_AFTERBEGIN = _json_inner('<div hx-swap-oob="afterbegin:#live-rows">')
_CLOSE_DIV = "</div>"


def _row_json(row: dict[str, Any]) -> str:
    """Return a row's HTML escaped for a JSON string, made once and kept in the row."""
    text = row.get("json")
    if not isinstance(text, str):
        text = row["json"] = _json_inner(row_html(row))
    return text


def row_html(row: dict[str, Any]) -> str:
    """Return one feed row's HTML, rendered on first use and kept in the row (shared rows are
    rendered once per process)."""
    html = row.get("html")
    if not isinstance(html, str):
        html = row["html"] = _render_row(row) if _own_templates() else _template_row(row)
    return html


def _template_row(row: Mapping[str, Any]) -> str:
    """Render a row through the (overridden) template."""
    return render_to_string(ROW_TEMPLATE, {"row": row})


@cache
def _own_templates() -> bool:
    """Return True when the live templates in use are this app's own (not overridden)."""
    try:
        templates = [get_template(name) for name in (ROW_TEMPLATE, FRAME_TEMPLATE)]
        origins = [getattr(getattr(t, "origin", None), "name", "") for t in templates]
    except Exception:  # no template engine configured as expected: keep to the templates
        return False
    return all(Path(str(origin)).resolve().is_relative_to(_OWN_TEMPLATES) for origin in origins)


def _reset(*, setting: str, **kwargs: Any) -> None:
    """Look at the templates again when TEMPLATES or INSTALLED_APPS change (tests)."""
    if setting in ("TEMPLATES", "INSTALLED_APPS"):
        _own_templates.cache_clear()
        _event_url_parts.cache_clear()


setting_changed.connect(_reset, dispatch_uid="signals_dashboard_fragments_reset")


@cache
def _event_url_parts(prefix: str) -> tuple[str, str]:
    """Return the event detail URL around its id, for the script prefix ``prefix``."""
    url = escape(reverse("signals_dashboard:event", args=[_ID_MARK]))
    before, _, after = url.partition(str(_ID_MARK))
    return before, after


def _event_url(event_id: int) -> str:
    """Return the escaped URL of an event's detail page."""
    before, after = _event_url_parts(get_script_prefix())
    return f"{before}{int(event_id)}{after}"


def _text(value: Any) -> str:
    """Return a value as the template engine prints it, escaped."""
    return escape(str(value))


def _render_row(row: Mapping[str, Any]) -> str:
    """Return the HTML of ``_row.html`` for ``row``, built directly."""
    when = row["time"]
    if settings.USE_TZ and is_aware(when):  # as the template's date filter shows it
        when = localtime(when)
    outcome = _text(row["outcome"])
    failures = row["failure_count"]
    signal, sender = _text(row["signal"]), _text(row["sender"])
    calls, kwargs_text, path = row["calls"], row["kwargs_text"], row["request_path"]
    host, pid = _text(quote(str(row["host"]))), _text(quote(str(row["pid"])))
    return "".join(
        (
            f'<details id="ev-{_text(row["id"])}" class="ev {outcome}" ',
            f'data-ts="{_text(row["ts_ms"])}">\n<summary class="row" role="row">\n',
            f'  <time datetime="{_text(when.isoformat())}">',
            f"{_text(when.strftime('%H:%M:%S.%f')[:12])}</time>\n",
            f'  <span class="sig" title="{signal}">{_text(row["signal_short"])}</span>\n',
            f'  <span class="snd" title="{sender}">{sender}</span>\n',
            f'  <span class="num">{_text(row["receiver_count"])}</span>\n',
            f'  <span class="num">{_text(format_duration(row["duration_ns"]))}</span>\n',
            f'  <span class="out {outcome}">',
            f"{_text(failures)} failed" if failures else outcome,
            '</span>\n</summary>\n<div class="calls">\n  ',
            _calls_html(calls) if calls else '<p class="dim">No receiver was connected.</p>',
            "\n  ",
            f'<pre class="kwargs">{_text(kwargs_text)}</pre>' if kwargs_text else "",
            f'\n  <p class="meta dim">{_text(row["method"])} · {signal}',
            f" · {_text(path)}" if path else "",
            f' · <a class="origin" href="?host={host}&amp;pid={pid}" title="only this process">',
            f"{_text(row['origin'])}</a>",
            " · nested" if row["parent_id"] else "",
            f' · <a href="{_event_url(row["id"])}">event details →</a></p>\n</div>\n</details>\n',
        )
    )


def _calls_html(calls: list[Mapping[str, Any]]) -> str:
    """Return the receiver calls' table of a row (the ``{% if row.calls %}`` branch)."""
    parts = ['\n  <table class="mini">\n    ']
    for call in calls:
        outcome = _text(call["outcome"])
        tag = ' <span class="tag">async</span>' if call["is_async"] else ""
        if call["outcome"] == "error":
            result = (
                f'<span class="err">{_text(call["exc_type"])}</span> {_text(call["exc_message"])}'
            )
        else:
            result = "ok"
        parts.append(
            f'\n    <tr class="{outcome}">\n'
            f'      <td class="num dim">{_text(call["index"])}</td>\n'
            f'      <td class="name">{_text(call["receiver"])}{tag}</td>\n'
            f'      <td class="num">{_text(format_duration(call["duration_ns"]))}</td>\n'
            f"      <td>{result}</td>\n"
            "    </tr>\n    "
        )
    parts.append("\n  </table>\n  ")
    return "".join(parts)
