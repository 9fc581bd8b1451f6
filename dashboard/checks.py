"""System checks for the dashboard (ids signals_dashboard.W0xx)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register
from django.utils.module_loading import import_string

from collector.conf import get_config

__all__ = [
    "check_access_check",
    "check_access_check_refuses",
    "check_allowed_hosts",
    "check_channel_layer",
    "check_request_context_processor",
]


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


class _ProbeUser:
    """A logged-in user who must never be let in: inactive, not staff, not superuser."""

    is_authenticated = True
    is_anonymous = False
    is_active = False
    is_staff = False
    is_superuser = False
    pk = id = None
    username = "signal-monitor-probe"

    def get_username(self) -> str:
        """Return the probe's name."""
        return self.username

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        """Hold no permission."""
        return False

    def has_perms(self, perms: Any, obj: Any = None) -> bool:
        """Hold no permissions."""
        return False

    def has_module_perms(self, app_label: str) -> bool:
        """Hold no module permissions."""
        return False


def _lets_in(check: Any, user: Any) -> bool:
    """Return True if ``check`` accepts ``user`` (a check that raises refuses)."""
    try:
        return bool(check(user))
    except Exception:
        return False


@register(Tags.security)
def check_access_check_refuses(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W004: an ACCESS_CHECK that lets in anonymous and inactive non-staff users guards nothing."""
    from django.contrib.auth.models import AnonymousUser

    from dashboard.access import get_access_check

    try:
        check = get_access_check()
    except Exception:  # unimportable: W003 says so
        return []
    if not (_lets_in(check, AnonymousUser()) and _lets_in(check, _ProbeUser())):
        return []
    return [
        Warning(
            "SIGNAL_MONITOR['ACCESS_CHECK'] lets in anonymous visitors and inactive non-staff "
            "users: anyone who can reach the dashboard sees captured arguments and tracebacks.",
            hint="Return True only for the people who may see the data, e.g. "
            "'dashboard.access.is_staff_user' (the default) or a check of a permission.",
            id="signals_dashboard.W004",
        )
    ]


@register(Tags.security)
def check_allowed_hosts(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W005: with "*" in ALLOWED_HOSTS the websocket's origin check accepts every site."""
    if "*" not in settings.ALLOWED_HOSTS:
        return []
    return [
        Warning(
            "ALLOWED_HOSTS contains '*', so the live feed's websocket origin check "
            "(AllowedHostsOriginValidator) accepts connections from pages of any site.",
            hint="List the dashboard's host names in ALLOWED_HOSTS.",
            id="signals_dashboard.W005",
        )
    ]
