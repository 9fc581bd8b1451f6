"""Template helpers: durations, percentages, sparklines and the CSP nonce."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import SafeString

from dashboard.csp import get_nonce
from dashboard.formatting import format_duration, format_rate
from dashboard.sparkline import sparkline_svg

register = template.Library()


@register.filter
def duration(ns: int | float | None) -> str:
    """Format nanoseconds for people."""
    return format_duration(ns)


@register.filter
def percent(fraction: float | None) -> str:
    """Format a fraction as a percentage."""
    return format_rate(fraction)


@register.filter
def sparkline(values: Sequence[int], label: str = "") -> SafeString:
    """Render values as an inline SVG sparkline."""
    return sparkline_svg(values, label=label or f"{sum(values)} in the last hour")


@register.filter
def short_name(dotted: str) -> str:
    """Return the last component of a dotted name."""
    return str(dotted).rsplit(".", 1)[-1]


@register.simple_tag(takes_context=True)
def csp_nonce(context: dict[str, Any]) -> str:
    """Return the request's CSP nonce (for script tags and hx-nonce attributes)."""
    request = context.get("request")
    return get_nonce(request) if request is not None else ""


@register.simple_tag
def logout_url() -> str:
    """Return the project's logout URL, or "" when it has none."""
    try:
        return reverse("logout")
    except NoReverseMatch:
        return ""
