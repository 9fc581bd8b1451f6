"""Who may see the dashboard: one replaceable check, SIGNAL_MONITOR["ACCESS_CHECK"]."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.module_loading import import_string

from collector.conf import get_config

__all__ = [
    "DEFAULT_ACCESS_CHECK",
    "get_access_check",
    "is_staff_user",
    "staff_required",
    "user_has_access",
]

logger = logging.getLogger(__name__)

DEFAULT_ACCESS_CHECK = "dashboard.access.is_staff_user"
AccessCheck = Callable[[Any], bool]
View = Callable[..., HttpResponse]


def is_staff_user(user: Any) -> bool:
    """Return True for an active, authenticated staff user (the default check)."""
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and getattr(user, "is_active", False)
        and getattr(user, "is_staff", False)
    )


def get_access_check() -> AccessCheck:
    """Return the configured check: a callable or the dotted path of one."""
    configured = get_config().get("ACCESS_CHECK") or DEFAULT_ACCESS_CHECK
    if callable(configured):
        return configured  # type: ignore[no-any-return]
    return _import_check(str(configured))


@functools.lru_cache(maxsize=8)
def _import_check(path: str) -> AccessCheck:
    """Import the check once per dotted path."""
    check: AccessCheck = import_string(path)
    return check


def user_has_access(user: Any) -> bool:
    """Return the check's verdict; a check that fails to load or raises denies access."""
    try:
        return bool(get_access_check()(user))
    except Exception:
        logger.exception("signal monitor ACCESS_CHECK failed; denying access")
        return False


def staff_required(view: View) -> View:
    """Send anonymous users to the login page and answer 403 to users the check refuses."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Apply the access check before the view."""
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not user_has_access(user):
            return TemplateResponse(request, "signals_dashboard/403.html", status=403)
        return view(request, *args, **kwargs)

    return wrapped
