"""django-tables2 tables: receivers, signals, failure groups and individual failures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import django_tables2 as tables
from django.template.defaultfilters import date as date_filter
from django.urls import reverse
from django.utils.encoding import force_str
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.timezone import template_localtime  # type: ignore[attr-defined]
from django_tables2.utils import AttributeDict, signature

from dashboard.formatting import format_duration, format_rate
from dashboard.sparkline import sparkline_svg

__all__ = ["FailureGroupTable", "FailureTable", "ProcessTable", "ReceiverTable", "SignalTable"]

NUM = {"td": {"class": "num"}, "th": {"class": "num"}}
TEMPLATE = "signals_dashboard/partials/table.html"


def _failures_url(**params: str) -> str:
    """Return the failures page filtered by ``params``."""
    return f"{reverse('signals_dashboard:failures')}?{urlencode(params)}"


def _live_url(**params: str) -> str:
    """Return the live feed filtered by ``params``."""
    return f"{reverse('signals_dashboard:live')}?{urlencode(params)}"


def process_link(host: str | None, pid: int | None, live: str | None = None) -> SafeString | str:
    """Return "host:pid" linking to the live feed of that process ("–" when unknown).

    ``live``: the live feed's URL when already reversed (a table reverses it once).
    """
    if host is None or pid is None:
        return "–"
    params = urlencode({"host": host, "pid": str(pid)})
    url = f"{live}?{params}" if live is not None else _live_url(host=host, pid=str(pid))
    return format_html('<a href="{}" title="watch this process live">{}:{}</a>', url, host, pid)


def _id_url(name: str) -> Callable[[int], str]:
    """Return pk -> reverse(name, args=[pk]), reversing once (only the id part changes)."""
    marker = 987654321
    head, _, tail = reverse(name, args=[marker]).rpartition(str(marker))
    return lambda pk: f"{head}{int(pk)}{tail}"


class UrlCacheMixin:
    """Reverses the failure page and live feed URLs once per table, not once per cell."""

    @cached_property
    def failure_url(self) -> Callable[[int], str]:
        """Return pk -> the failure page of that call."""
        return _id_url("signals_dashboard:failure")

    @cached_property
    def live_url(self) -> str:
        """Return the live feed's URL."""
        return reverse("signals_dashboard:live")


_CELL_ARGS = ("value", "record", "column", "bound_column", "bound_row", "table")


@dataclass
class _Attrs:
    """A cell's attributes, already as HTML (the template reads ``attrs.td.as_html``)."""

    as_html: SafeString


@dataclass
class _FastColumn:
    """What the table template reads of a column per cell, computed once per page."""

    attrs: dict[str, _Attrs]
    localize: bool | None
    name: str


class _FastRow:
    """A rendered row: the template's ``row.attrs`` and ``row.items``."""

    def __init__(self, attrs: AttributeDict, items: list[tuple[_FastColumn, Any]]) -> None:
        """Keep the row's attributes and its (column, cell) pairs."""
        self.attrs = attrs
        self._items = items

    def items(self) -> list[tuple[_FastColumn, Any]]:
        """Return (column, rendered cell) pairs."""
        return self._items


class FastRowsMixin:
    """Renders cells (and CSV values) with each column's method resolved once per table.

    django-tables2 inspects a render method's signature and rebuilds the column's attributes
    for every cell (~0.15 ms a cell: 80 ms for 50 rows of 11 columns). Here the signatures and
    ``td`` attributes are read once per column and each cell is one call; the markup (the
    shared table template) and every render_* / value_* method stay as they are.
    """

    @property
    def paginated_rows(self) -> list[_FastRow]:
        """Return the rows of the current page (or all rows), rendered."""
        table: Any = self
        rows = table.page.object_list if hasattr(table, "page") else table.rows
        plan = [
            (_FastColumn({"td": _Attrs(bound.attrs["td"].as_html())}, bound.column.localize,
                         bound.name),
             self._cell(bound, bound.render, bound.default))
            for bound in table.columns
        ]  # fmt: skip
        return [_FastRow(row.attrs, [(fast, cell(row)) for fast, cell in plan]) for row in rows]

    def as_values(self, exclude_columns: Any = None) -> Iterator[list[Any]]:
        """Yield the header, then every row's export values (as django-tables2 does)."""
        table: Any = self
        exclude = exclude_columns or ()
        columns = [
            bound for bound in table.columns.iterall()
            if not (bound.column.exclude_from_export or bound.name in exclude)
        ]  # fmt: skip
        yield [force_str(bound.header, strings_only=True) for bound in columns]
        cells = [self._cell(bound, _export_method(bound), None) for bound in columns]
        for row in table.rows:
            yield [force_str(cell(row), strings_only=True) for cell in cells]

    def _cell(self, bound: Any, method: Any, default: Any) -> Any:
        """Return a function giving ``method``'s result for a row's cell in column ``bound``."""
        column = bound.column
        wanted, catch_all = signature(method)
        names = _CELL_ARGS if catch_all else tuple(a for a in _CELL_ARGS if a in wanted)
        complete = catch_all or all(a in _CELL_ARGS for a in wanted)
        accessor, empty = bound.accessor, column.empty_values

        def cell(row: Any) -> Any:
            try:
                value = accessor.resolve(row.record)
            except Exception:  # noqa: BLE001 - as django-tables2: a missing value is empty
                value = None
            if value in empty:
                return default
            if not complete:
                return None
            args = {"value": value, "record": row.record, "column": column,
                    "bound_column": bound, "bound_row": row, "table": self}  # fmt: skip
            return method(**{name: args[name] for name in names})

        return cell


def _export_method(bound: Any) -> Any:
    """Return what exports a column's cell: value_<name>, render_<name> or the column's value
    (whose default is the column's own render)."""
    method = bound.value
    if getattr(method, "__func__", None) is tables.Column.value:
        return bound.column.render
    return method


class TimeColumn(tables.DateTimeColumn):  # type: ignore[misc]
    """A DateTimeColumn formatted in Python (what its ``{{ value|date }}`` template does),
    not by compiling and rendering a template for every cell."""

    def __init__(self, *args: Any, format: str, **kwargs: Any) -> None:
        """Keep the format; export stays ISO 8601 (DateTimeColumn.value)."""
        super().__init__(format, *args, **kwargs)
        self.date_format = format

    def render(self, value: Any) -> str:
        """Format in the current time zone, as the ``date`` filter does."""
        return str(date_filter(template_localtime(value), self.date_format))


class DurationColumn(tables.Column):  # type: ignore[misc]
    """Nanoseconds shown as "3.4 ms"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Right-align the numbers."""
        kwargs.setdefault("attrs", NUM)
        super().__init__(*args, **kwargs)

    def render(self, value: int | None) -> str:
        """Format the duration."""
        return format_duration(value)

    def value(self, value: int | None) -> int | None:
        """Export raw nanoseconds."""
        return value


class CountColumn(tables.Column):  # type: ignore[misc]
    """A right-aligned integer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Right-align the numbers."""
        kwargs.setdefault("attrs", NUM)
        super().__init__(*args, **kwargs)

    def render(self, value: int) -> str:
        """Group thousands."""
        return f"{value:,}"


class ReceiverTable(FastRowsMixin, tables.Table):  # type: ignore[misc]
    """Per-receiver timing from the rollups."""

    receiver = tables.Column(attrs={"td": {"class": "name"}})
    signals = tables.Column(verbose_name="Signal(s)", attrs={"td": {"class": "name dim"}})
    calls = CountColumn()
    mean_ns = DurationColumn(verbose_name="Mean")
    p50_ns = DurationColumn(verbose_name="p50")
    p95_ns = DurationColumn(verbose_name="p95")
    p99_ns = DurationColumn(verbose_name="p99")
    max_ns = DurationColumn(verbose_name="Max")
    failures = CountColumn()
    error_rate = tables.Column(verbose_name="Error rate", attrs=NUM)
    last_failure = TimeColumn(
        verbose_name="Last failure", format="Y-m-d H:i", default="–"
    )

    class Meta:
        template_name = TEMPLATE
        attrs = {"class": "grid"}
        order_by = ("-calls",)
        empty_text = "No receiver calls in this window."

    def render_error_rate(self, value: float) -> str:
        """Format the fraction as a percentage."""
        return format_rate(value)

    def value_error_rate(self, value: float) -> float:
        """Export the raw fraction."""
        return value

    def render_failures(self, value: int, record: dict[str, Any]) -> SafeString | str:
        """Link a non-zero count to the receiver's failures."""
        if not value:
            return "0"
        return format_html(
            '<a href="{}">{}</a>', _failures_url(receiver=record["receiver"]), f"{value:,}"
        )


class SignalTable(FastRowsMixin, tables.Table):  # type: ignore[misc]
    """One row per signal: activity from the per-minute counts, p95 from the rollups."""

    signal = tables.Column(attrs={"td": {"class": "name"}})
    events = CountColumn()
    receivers = tables.Column(verbose_name="Receivers", attrs=NUM, default="–")
    calls = CountColumn(verbose_name="Receiver calls")
    failures = CountColumn()
    p95_ns = DurationColumn(verbose_name="p95")
    rate = tables.Column(
        verbose_name="Last hour", orderable=False, attrs={"td": {"class": "spark"}}
    )

    class Meta:
        template_name = TEMPLATE
        attrs = {"class": "grid"}
        order_by = ("-events",)
        empty_text = "No signals seen yet."

    def render_signal(self, value: str) -> SafeString:
        """Link to the live feed filtered by this signal."""
        url = f"{reverse('signals_dashboard:live')}?{urlencode({'signal': value})}"
        return format_html('<a href="{}" title="watch live">{}</a>', url, value)

    def render_failures(self, value: int, record: dict[str, Any]) -> SafeString | str:
        """Link a non-zero count to the signal's failures."""
        if not value:
            return "0"
        return format_html(
            '<a href="{}">{}</a>', _failures_url(signal=record["signal"]), f"{value:,}"
        )

    def render_rate(self, value: list[int]) -> SafeString:
        """Draw the last hour as a sparkline."""
        return sparkline_svg(value, label=f"{sum(value):,} events in the last hour")

    def value_rate(self, value: list[int]) -> int:
        """Export the last hour's total."""
        return sum(value)


class FailureGroupTable(UrlCacheMixin, FastRowsMixin, tables.Table):  # type: ignore[misc]
    """Failures grouped by receiver, exception type and location."""

    count = CountColumn()
    receiver = tables.Column(attrs={"td": {"class": "name"}})
    exc_type = tables.Column(verbose_name="Exception", attrs={"td": {"class": "name err"}})
    location = tables.Column(attrs={"td": {"class": "name dim"}}, default="–")
    message = tables.Column(
        verbose_name="Latest message", orderable=False, attrs={"td": {"class": "msg"}}
    )
    first_seen = TimeColumn(verbose_name="First seen", format="Y-m-d H:i:s")
    last_seen = TimeColumn(verbose_name="Last seen", format="Y-m-d H:i:s")

    class Meta:
        template_name = TEMPLATE
        attrs = {"class": "grid"}
        order_by = ("-last_seen",)
        empty_text = "No failures match."

    def render_exc_type(self, value: str, record: dict[str, Any]) -> SafeString | str:
        """Link to the newest failure of the group (plain text once that call was pruned)."""
        if record.get("latest_id") is None:
            return value or "(unknown)"
        url = self.failure_url(record["latest_id"])
        return format_html('<a href="{}">{}</a>', url, value or "(unknown)")


class FailureTable(UrlCacheMixin, FastRowsMixin, tables.Table):  # type: ignore[misc]
    """Individual failed calls, newest first."""

    timestamp = TimeColumn(verbose_name="Time", format="Y-m-d H:i:s")
    receiver = tables.Column(attrs={"td": {"class": "name"}})
    exc_type = tables.Column(verbose_name="Exception", attrs={"td": {"class": "name err"}})
    exc_message = tables.Column(
        verbose_name="Message", orderable=False, attrs={"td": {"class": "msg"}}
    )
    signal = tables.Column(attrs={"td": {"class": "name dim"}})
    sender = tables.Column(attrs={"td": {"class": "name dim"}})
    origin = tables.Column(
        verbose_name="Process", accessor="origin_host", orderable=False,
        attrs={"td": {"class": "name dim"}},
    )  # fmt: skip
    duration_ns = DurationColumn(verbose_name="Took")

    class Meta:
        template_name = TEMPLATE
        attrs = {"class": "grid"}
        order_by = ("-timestamp",)
        empty_text = "No failures match."

    def __init__(self, data: Any, *args: Any, count: int | None = None, **kwargs: Any) -> None:
        """``count``: the number of matching calls when known (from the failure rollups), so
        paging needs no COUNT over millions of calls."""
        super().__init__(data, *args, **kwargs)
        if count is not None:
            self.data._length = count

    def render_origin(self, value: str, record: Any) -> SafeString | str:
        """Show where the failing event was sent: host and process id."""
        return process_link(value, getattr(record, "origin_pid", None), self.live_url)

    def render_exc_type(self, value: str, record: Any) -> SafeString:
        """Link to the failure's page."""
        url = self.failure_url(record.pk)
        return format_html('<a href="{}">{}</a>', url, value or "(unknown)")

    def render_exc_message(self, value: str) -> str:
        """Cap long messages."""
        return value if len(value) <= 160 else value[:160] + "…"


class ProcessTable(FastRowsMixin, tables.Table):  # type: ignore[misc]
    """One row per process (host, pid) that reported events or collector health."""

    process = tables.Column(empty_values=(), verbose_name="Process", order_by=("host", "pid"),
                            attrs={"td": {"class": "name"}})  # fmt: skip
    events = CountColumn()
    failed = CountColumn(verbose_name="Failed events")
    first_seen = TimeColumn(
        verbose_name="First event", format="Y-m-d H:i:s", default="–"
    )
    last_seen = TimeColumn(verbose_name="Last event", format="Y-m-d H:i:s", default="–")
    written = tables.Column(empty_values=(), verbose_name="Written", orderable=False, attrs=NUM)
    dropped = tables.Column(empty_values=(), verbose_name="Dropped", orderable=False, attrs=NUM)
    last_error = tables.Column(empty_values=(), verbose_name="Collector error", orderable=False,
                               attrs={"td": {"class": "msg"}})  # fmt: skip

    class Meta:
        template_name = TEMPLATE
        attrs = {"class": "grid", "id": "processes"}
        order_by = ("-last_seen",)
        empty_text = "No process has reported events in this window."

    def __init__(self, data: Any, *args: Any, current: tuple[str, int] | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        """``current`` is the (host, pid) serving the page; without any health report the
        collector-health columns are left out."""
        if not any(row.get("health") for row in data):
            kwargs.setdefault("exclude", ("written", "dropped", "last_error"))
        super().__init__(data, *args, **kwargs)
        self.current = current

    def render_process(self, record: dict[str, Any]) -> SafeString | str:
        """Link to the live feed of this process; mark the one serving this page."""
        link = process_link(record["host"], record["pid"])
        if (record["host"], record["pid"]) == self.current:
            return format_html('{} <span class="tag">this server</span>', link)
        return link

    def value_process(self, record: dict[str, Any]) -> str:
        """Export "host:pid"."""
        return f"{record['host']}:{record['pid']}"

    def render_failed(self, value: int, record: dict[str, Any]) -> SafeString | str:
        """Link a non-zero count to the process's failures."""
        if not value:
            return "0"
        url = _failures_url(host=record["host"], pid=str(record["pid"]))
        return format_html('<a href="{}">{}</a>', url, f"{value:,}")

    def render_written(self, record: dict[str, Any]) -> str:
        """Events the process's collector reports written ("–" without a health report)."""
        health = record["health"]
        return f"{health.events_written:,}" if health is not None else "–"

    def render_dropped(self, record: dict[str, Any]) -> str:
        """Events the process's collector dropped, all reasons together."""
        health = record["health"]
        if health is None:
            return "–"
        dropped = health.dropped if isinstance(health.dropped, dict) else {}
        return f"{sum(int(n) for n in dropped.values() if isinstance(n, int)):,}"

    def render_last_error(self, record: dict[str, Any]) -> str:
        """The process's last collector error, capped."""
        health = record["health"]
        text = health.last_error if health is not None else ""
        return text if len(text) <= 160 else text[:160] + "…"
