"""django-tables2 tables: receivers, signals, failure groups and individual failures."""

from __future__ import annotations

from typing import Any

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString

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


def process_link(host: str | None, pid: int | None) -> SafeString | str:
    """Return "host:pid" linking to the live feed of that process ("–" when unknown)."""
    if host is None or pid is None:
        return "–"
    url = _live_url(host=host, pid=str(pid))
    return format_html('<a href="{}" title="watch this process live">{}:{}</a>', url, host, pid)


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


class ReceiverTable(tables.Table):  # type: ignore[misc]
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
    last_failure = tables.DateTimeColumn(
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


class SignalTable(tables.Table):  # type: ignore[misc]
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


class FailureGroupTable(tables.Table):  # type: ignore[misc]
    """Failures grouped by receiver, exception type and location."""

    count = CountColumn()
    receiver = tables.Column(attrs={"td": {"class": "name"}})
    exc_type = tables.Column(verbose_name="Exception", attrs={"td": {"class": "name err"}})
    location = tables.Column(attrs={"td": {"class": "name dim"}}, default="–")
    message = tables.Column(
        verbose_name="Latest message", orderable=False, attrs={"td": {"class": "msg"}}
    )
    first_seen = tables.DateTimeColumn(verbose_name="First seen", format="Y-m-d H:i:s")
    last_seen = tables.DateTimeColumn(verbose_name="Last seen", format="Y-m-d H:i:s")

    class Meta:
        template_name = TEMPLATE
        attrs = {"class": "grid"}
        order_by = ("-last_seen",)
        empty_text = "No failures match."

    def render_exc_type(self, value: str, record: dict[str, Any]) -> SafeString:
        """Link to the newest failure of the group."""
        url = reverse("signals_dashboard:failure", args=[record["latest_id"]])
        return format_html('<a href="{}">{}</a>', url, value or "(unknown)")


class FailureTable(tables.Table):  # type: ignore[misc]
    """Individual failed calls, newest first."""

    timestamp = tables.DateTimeColumn(verbose_name="Time", format="Y-m-d H:i:s")
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

    def render_origin(self, value: str, record: Any) -> SafeString | str:
        """Show where the failing event was sent: host and process id."""
        return process_link(value, getattr(record, "origin_pid", None))

    def render_exc_type(self, value: str, record: Any) -> SafeString:
        """Link to the failure's page."""
        url = reverse("signals_dashboard:failure", args=[record.pk])
        return format_html('<a href="{}">{}</a>', url, value or "(unknown)")

    def render_exc_message(self, value: str) -> str:
        """Cap long messages."""
        return value if len(value) <= 160 else value[:160] + "…"


class ProcessTable(tables.Table):  # type: ignore[misc]
    """One row per process (host, pid) that reported events or collector health."""

    process = tables.Column(empty_values=(), verbose_name="Process", order_by=("host", "pid"),
                            attrs={"td": {"class": "name"}})  # fmt: skip
    events = CountColumn()
    failed = CountColumn(verbose_name="Failed events")
    first_seen = tables.DateTimeColumn(
        verbose_name="First event", format="Y-m-d H:i:s", default="–"
    )
    last_seen = tables.DateTimeColumn(verbose_name="Last event", format="Y-m-d H:i:s", default="–")
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
