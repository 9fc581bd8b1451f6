"""System checks for the dashboard (ids signals_dashboard.W0xx)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register
from django.utils.module_loading import import_string

from collector.conf import get_config

__all__ = ["check_access_check", "check_channel_layer", "check_request_context_processor"]


@register(Tags.compatibility)
def check_channel_layer(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W001: without a default channel layer the live feed never receives events."""
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    if "default" in layers:
        return []
    return [
        Warning(
            "No default channel layer is configured; the dashboard's live feed stays empty.",
            hint='Set CHANNEL_LAYERS = {"default": {"BACKEND": '
            '"channels.layers.InMemoryChannelLayer"}} (one process) or channels_redis.',
            id="signals_dashboard.W001",
        )
    ]


@register(Tags.templates)
def check_request_context_processor(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W002: the tables (sorting, paging links) need the request in the template context."""
    needed = "django.template.context_processors.request"
    engines: list[dict[str, Any]] = list(settings.TEMPLATES)
    for engine in engines:
        django_engine = engine.get("BACKEND", "").endswith("DjangoTemplates")
        if django_engine and needed in engine.get("OPTIONS", {}).get("context_processors", []):
            return []
    return [
        Warning(
            "The dashboard's tables need the request context processor.",
            hint=f"Add {needed!r} to TEMPLATES[...]['OPTIONS']['context_processors'].",
            id="signals_dashboard.W002",
        )
    ]


@register(Tags.security)
def check_access_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W003: an ACCESS_CHECK that cannot be imported locks everyone out of the dashboard."""
    configured = get_config().get("ACCESS_CHECK")
    if not configured or callable(configured):
        return []
    try:
        check = import_string(str(configured))
    except ImportError as exc:
        problem = f"cannot be imported ({exc})"
    else:
        if callable(check):
            return []
        problem = "is not callable"
    return [
        Warning(
            f"SIGNAL_MONITOR['ACCESS_CHECK'] = {configured!r} {problem}; "
            "the dashboard denies every request.",
            hint="Point it at a function taking a user and returning a bool, e.g. "
            "'dashboard.access.is_staff_user'.",
            id="signals_dashboard.W003",
        )
    ]
