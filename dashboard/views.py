"""Dashboard pages. Thin: parse the request, call selectors, render. Staff only, strict CSP."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from collector.conf import get_config
from collector.live import health as live_health
from collector.models import ReceiverCall, ReceiverStat
from collector.storage import tables_exist
from dashboard import registry as signal_registry
from dashboard import selectors
from dashboard.access import staff_required
from dashboard.csp import csp_protected
from dashboard.feed import FeedFilters, FeedState
from dashboard.filters import FailureFilter, ReceiverStatFilter, filter_messages
from dashboard.paging import configure_table, csv_response
from dashboard.relay import relay_stats, this_process
from dashboard.routing import WEBSOCKET_PATH
from dashboard.tables import (
    FailureGroupTable,
    FailureTable,
    ProcessTable,
    ReceiverTable,
    SignalTable,
)
from dashboard.windows import WINDOW_CHOICES, window_start

View = Callable[..., HttpResponse]


def dashboard_view(view: View) -> View:
    """Every page: GET/HEAD only, staff only, never cached, with the CSP header."""
    return csp_protected(staff_required(never_cache(require_safe(_store_migrated(view)))))


def _store_migrated(view: View) -> View:
    """Render the page now; if the monitor's database lacks the collector's tables, answer 503
    with the command that creates them instead of a server error."""

    @functools.wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            response = view(request, *args, **kwargs)
            if isinstance(response, TemplateResponse) and not response.is_rendered:
                response.render()  # the tables' queries run here
            return response
        except DatabaseError:
            alias = str(get_config()["DATABASE_ALIAS"])
            try:
                missing = not tables_exist(alias)
            except DatabaseError:  # the database itself is away: the error as it was
                missing = False
            if not missing:
                raise
            return _render(request, "unmigrated.html", {"alias": alias}, status=503)

    return checked


def _render(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> TemplateResponse:
    """Render a dashboard template inside the shared layout (with the collector's health)."""
    context = {"collector_health": _collector_health(), **context}
    return TemplateResponse(request, f"signals_dashboard/{template}", context, status=status)


def _collector_health() -> dict[str, Any] | None:
    """Return the collector's health of the last hour (None when the store cannot tell)."""
    from collector.health import summary

    try:
        return summary()
    except Exception:  # tables missing or the database away: the page still renders
        return None


def _not_found(request: HttpRequest, what: str) -> TemplateResponse:
    """Answer 404 with a page that says what was not found."""
    return _render(request, "not_found.html", {"what": what}, status=404)


@dashboard_view
def live(request: HttpRequest) -> HttpResponse:
    """The landing page: newest events stream in over the websocket, filtered on the server."""
    filters, notices = FeedFilters.parse(request.GET)
    signals = selectors.known_signals()
    if filters.signal and filters.signal not in signals:
        notices.append(
            f"Signal {filters.signal[:80]!r} has not been seen yet; the feed shows "
            "it when it is sent."
        )
    hosts = selectors.known_hosts()
    if filters.host and filters.host not in hosts:
        notices.append(
            f"Host {filters.host[:80]!r} has not stored events yet; the feed shows "
            "its events when they are sent."
        )
    base = get_config().get("WEBSOCKET_URL") or WEBSOCKET_PATH
    query = filters.querystring()
    return _render(
        request,
        "live.html",
        {
            "filters": filters,
            "notices": notices,
            "signals": signals,
            "hosts": hosts,
            "ws_url": f"{base}?{query}" if query else base,
            "nav": "live",
            "status": FeedState(filters).status(),
        },
    )


def _window(request: HttpRequest, default: str) -> tuple[str, list[str]]:
    """Return the ?since= window (default when missing or unknown) and a message if unknown."""
    raw = request.GET.get("since") or default
    if raw in dict(WINDOW_CHOICES):
        return raw, []
    return default, [f"Ignored window {raw[:40]!r}; showing {dict(WINDOW_CHOICES)[default]}."]


@dashboard_view
def signals(request: HttpRequest) -> HttpResponse:
    """One row per signal with counts, p95 and the last hour's rate."""
    window, notices = _window(request, "24h")
    table = SignalTable(selectors.signal_overview(start=window_start(window)))
    notices += configure_table(request, table, per_page=100)
    return _render(
        request,
        "signals.html",
        {
            "table": table,
            "window": window,
            "windows": WINDOW_CHOICES,
            "notices": notices,
            "nav": "signals",
        },
    )


@dashboard_view
def receivers(request: HttpRequest) -> HttpResponse:
    """Per-receiver timing from the rollups; filterable, sortable, paginated, CSV export."""
    filterset = ReceiverStatFilter(request.GET, queryset=ReceiverStat.objects.none())
    table = ReceiverTable(selectors.receiver_timings(where=filterset.query()))
    notices = filter_messages(filterset)
    if request.GET.get("format") == "csv":
        configure_table(request, table)
        return csv_response(table, "receivers.csv")
    notices += configure_table(request, table)
    return _render(
        request,
        "receivers.html",
        {
            "filter": filterset,
            "table": table,
            "notices": notices,
            "nav": "receivers",
            "csv_query": _with_param(request, "format", "csv"),
        },
    )


@dashboard_view
def failures(request: HttpRequest) -> HttpResponse:
    """Failed receiver calls: grouped (default) or one row each (?view=list)."""
    filterset = FailureFilter(request.GET, queryset=ReceiverCall.objects.all())
    notices = filter_messages(filterset)
    as_list = request.GET.get("view") == "list"
    truncated = False
    if filterset.by_process:  # host and pid are not kept in the rollups: scan, bounded
        calls = filterset.qs
        total = None
        if not as_list:
            groups, truncated = selectors.failure_groups(calls=calls)
    else:
        where, now = filterset.query(), timezone.now()
        groups = selectors.failure_groups_in_window(where=where, now=now, link=not as_list)
        calls = selectors.narrow_to_groups(filterset.qs, where, groups, now)
        total = sum(group["count"] for group in groups)
    if as_list:
        table: Any = FailureTable(selectors.failure_list(calls=calls), count=total)
    else:
        table = FailureGroupTable(groups)
    notices += configure_table(request, table)
    return _render(
        request,
        "failures.html",
        {
            "filter": filterset,
            "table": table,
            "notices": notices,
            "as_list": as_list,
            "truncated": truncated,
            "scan_limit": selectors.FAILURE_SCAN_LIMIT,
            "nav": "failures",
            "list_query": _with_param(request, "view", "list"),
            "group_query": _with_param(request, "view", ""),
            "keep": [("view", "list")] if as_list else [],
        },
    )


@dashboard_view
def processes(request: HttpRequest) -> HttpResponse:
    """Every process (host, pid) that stored events in the window, with its collector health."""
    window, notices = _window(request, "1h")
    here = _this_process()
    table = ProcessTable(
        selectors.process_overview(start=window_start(window)),
        current=(here["host"], here["pid"]),
    )
    notices += configure_table(request, table, per_page=100)
    return _render(
        request,
        "processes.html",
        {
            "table": table,
            "window": window,
            "windows": WINDOW_CHOICES,
            "notices": notices,
            "nav": "processes",
            "this_process": here,
            "relay": relay_stats(),
        },
    )


def _this_process() -> dict[str, Any]:
    """Return the host and pid serving this page and how it publishes live events."""
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    backend = str(layers.get("default", {}).get("BACKEND", "none")).rsplit(".", 1)[-1]
    host, pid = this_process()
    return {"host": host, "pid": pid, "layer": backend, "publish": live_health()}


@dashboard_view
def failure(request: HttpRequest, call_id: int) -> HttpResponse:
    """One failed call: traceback, message, arguments, sender, parent chain and request."""
    found = selectors.parse_event_id(call_id)
    detail = selectors.failure_detail(call_id=found) if found is not None else None
    if detail is None:
        return _not_found(request, f"receiver call {call_id}")
    return _render(request, "failure_detail.html", {**detail, "nav": "failures"})


@dashboard_view
def event(request: HttpRequest, event_id: int) -> HttpResponse:
    """One event with its calls, where it came from and the signals its receivers sent."""
    found = selectors.parse_event_id(event_id)
    tree = selectors.event_tree(event_id=found) if found is not None else None
    if tree is None:
        return _not_found(request, f"event {event_id}")
    return _render(
        request,
        "event_detail.html",
        {
            "tree": tree,
            "event": tree.event,
            "chain": selectors.event_ancestors(tree.event),
            "nav": "live",
        },
    )


@dashboard_view
def registry(request: HttpRequest) -> HttpResponse:
    """Every signal loaded in this process and its connected receivers right now."""
    query = (request.GET.get("q") or "").strip()[:200]
    infos = signal_registry.registry_signals()
    if query:
        needle = query.casefold()
        infos = [
            info
            for info in infos
            if needle in info.name.casefold()
            or any(needle in r.name.casefold() for r in info.receivers)
        ]
    hide_empty = request.GET.get("empty") == "hide"
    if hide_empty:
        infos = [info for info in infos if info.receivers]
    return _render(
        request,
        "registry.html",
        {
            "signals": infos,
            "query": query,
            "hide_empty": hide_empty,
            "nav": "registry",
            "receiver_total": sum(len(info.receivers) for info in infos),
        },
    )


def _with_param(request: HttpRequest, name: str, value: str) -> str:
    """Return the current query string with ``name`` set to ``value`` (removed when empty)."""
    params = request.GET.copy()
    params.pop("page", None)
    if value:
        params[name] = value
    else:
        params.pop(name, None)
    return params.urlencode()
