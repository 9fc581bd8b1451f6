"""Tiny server-side SVG charts (no scripts, no inline styles: CSP-safe)."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html
from django.utils.safestring import SafeString

__all__ = ["sparkline_svg"]


def sparkline_svg(
    values: Sequence[int | float], *, width: int = 120, height: int = 22, label: str = ""
) -> SafeString:
    """Return an inline SVG polyline of ``values`` (oldest first), scaled to its maximum."""
    if not values:
        values = [0]
    peak = max(max(values), 1)
    step = width / max(len(values) - 1, 1)
    usable = height - 2
    points = " ".join(
        f"{i * step:.1f},{height - 1 - (v / peak) * usable:.1f}" for i, v in enumerate(values)
    )
    return format_html(
        '<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        'aria-label="{label}"><title>{label}</title>'
        '<polyline points="{points}" fill="none" stroke="currentColor" stroke-width="1.2" '
        'vector-effect="non-scaling-stroke"/></svg>',
        w=width,
        h=height,
        label=label,
        points=points,
    )
