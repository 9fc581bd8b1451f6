"""django-filter FilterSets for the receivers and failures pages; bad values become messages."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.forms import DateTimeInput, NumberInput, TextInput

from collector.models import Outcome, ReceiverCall, ReceiverStat
from dashboard.selectors import RollupQuery
from dashboard.windows import WINDOW_CHOICES, WINDOWS, window_start

__all__ = [
    "FailureFilter",
    "ReceiverStatFilter",
    "filter_messages",
    "known_host_choices",
    "known_signal_choices",
]

MAX_TEXT = 300


def known_signal_choices() -> list[tuple[str, str]]:
    """Return (name, name) for every signal seen in the store or loaded in this process."""
    from dashboard import selectors

    return [(name, name) for name in selectors.known_signals()]


def _text_filter(label: str, placeholder: str) -> django_filters.CharFilter:
    """Return a case-insensitive substring filter with a bounded input."""
    return django_filters.CharFilter(
        lookup_expr="icontains",
        label=label,
        max_length=MAX_TEXT,
        widget=TextInput(attrs={"placeholder": placeholder}),
    )


class WindowFilterSet(django_filters.FilterSet):  # type: ignore[misc]
    """Adds a "since" window (always applied, with a default) and an optional start/end."""

    time_field = "timestamp"
    default_window = "24h"

    since = django_filters.ChoiceFilter(
        choices=WINDOW_CHOICES, method="_keep", label="Window", empty_label=None
    )

    def __init__(self, data: Any = None, *args: Any, **kwargs: Any) -> None:
        """Bind always, with the default window when none is given (so the form shows it)."""
        bound = data.copy() if hasattr(data, "copy") else dict(data or {})
        if not bound.get("since"):
            bound["since"] = self.default_window
        super().__init__(bound, *args, **kwargs)
        for name, lookup in (("start", "gte"), ("end", "lte")):
            self.filters[name] = django_filters.DateTimeFilter(
                field_name=self.time_field,
                lookup_expr=lookup,
                label=name.capitalize(),
                widget=DateTimeInput(attrs={"placeholder": "YYYY-MM-DD HH:MM"}),
            )

    def _keep(self, queryset: QuerySet[Any], name: str, value: Any) -> QuerySet[Any]:
        """The window is applied in filter_queryset, whatever the field's validity."""
        return queryset

    @property
    def window(self) -> str:
        """Return the valid chosen window, or the default."""
        self.form.is_valid()  # fills cleaned_data with the fields that are valid
        chosen = self.form.cleaned_data.get("since")
        return str(chosen) if chosen in WINDOWS else self.default_window

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Apply the valid filters, then the window."""
        queryset = super().filter_queryset(queryset)
        start = window_start(self.window)
        if start is not None:
            queryset = queryset.filter(**{f"{self.time_field}__gte": start})
        return queryset

    def valid(self, name: str) -> Any:
        """Return the cleaned value of filter ``name`` (None when missing or invalid)."""
        self.form.is_valid()
        return self.form.cleaned_data.get(name) if name not in self.form.errors else None

    def query(self) -> RollupQuery:
        """Return the valid filters as a rollup query (window start: the later of the two)."""
        starts = [t for t in (window_start(self.window), self.valid("start")) if t is not None]
        text = {
            name: str(self.valid(name) or "")
            for name in ("signal", "sender", "receiver", "exc_type")
            if name in self.filters
        }
        return RollupQuery(start=max(starts, default=None), end=self.valid("end"), **text)


class ReceiverStatFilter(WindowFilterSet):
    """Filters the timing rollups behind the receivers table (read through ``query()``)."""

    time_field = "minute"

    signal = django_filters.ChoiceFilter(
        choices=known_signal_choices, label="Signal", empty_label="any signal"
    )
    sender = _text_filter("Sender", "sender contains")
    receiver = _text_filter("Receiver", "receiver contains")

    class Meta:
        model = ReceiverStat
        fields = ["signal", "sender", "receiver", "since"]


def known_host_choices() -> list[tuple[str, str]]:
    """Return (host, host) for every host that stored events."""
    from dashboard import selectors

    return [(host, host) for host in selectors.known_hosts()]


def _pid_filter(field_name: str) -> django_filters.NumberFilter:
    """Return an exact process id filter (a positive 32-bit number)."""
    return django_filters.NumberFilter(
        field_name=field_name,
        label="PID",
        min_value=1,
        max_value=2**31 - 1,
        widget=NumberInput(attrs={"placeholder": "process id", "class": "pid"}),
    )


class FailureFilter(WindowFilterSet):
    """Filters failed receiver calls, also by the host and process that sent the event."""

    default_window = "7d"

    signal = django_filters.ChoiceFilter(
        choices=known_signal_choices, label="Signal", empty_label="any signal"
    )
    sender = _text_filter("Sender", "sender contains")
    receiver = _text_filter("Receiver", "receiver contains")
    exc_type = _text_filter("Exception", "exception type contains")
    host = django_filters.ChoiceFilter(
        field_name="event__host", choices=known_host_choices, label="Host", empty_label="any host"
    )
    pid = _pid_filter("event__pid")

    class Meta:
        model = ReceiverCall
        fields = ["signal", "sender", "receiver", "exc_type", "host", "pid", "since"]

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Only failed calls (the failure indexes are partial: outcome='error')."""
        return super().filter_queryset(queryset).filter(outcome=Outcome.ERROR)

    def query(self) -> RollupQuery:
        """Return the valid filters as a rollup query over whole minutes before ``end``."""
        query = super().query()
        if query.end is None:
            return query
        # Failures end at a moment, not a minute: keep the minutes that end by then.
        end = query.end.replace(second=0, microsecond=0) - timedelta(minutes=1)
        return replace(query, end=end)

    @property
    def by_process(self) -> bool:
        """Return True when a valid host or pid filter is set (not kept in the rollups)."""
        return self.valid("host") not in (None, "") or self.valid("pid") is not None


def filter_messages(filterset: django_filters.FilterSet) -> list[str]:
    """Return one readable message per invalid filter value (the filter is then ignored)."""
    messages = []
    for name, errors in filterset.form.errors.items():
        field = filterset.form.fields.get(name)
        label = field.label if field is not None and field.label else name
        raw = filterset.data.get(name, "") if hasattr(filterset.data, "get") else ""
        shown = raw if len(str(raw)) <= 60 else str(raw)[:57] + "..."
        messages.append(f"Ignored {label} filter {shown!r}: {' '.join(errors)}")
    return messages
