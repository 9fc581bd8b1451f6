"""A strict Content-Security-Policy with a per-response nonce for the dashboard's pages."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

__all__ = ["NONCE_ATTR", "csp_protected", "get_nonce", "policy_for"]

NONCE_ATTR = "signals_dashboard_csp_nonce"
View = Callable[..., HttpResponse]


def get_nonce(request: HttpRequest) -> str:
    """Return this request's nonce, making one on first use."""
    nonce = getattr(request, NONCE_ATTR, None)
    if nonce is None:
        nonce = secrets.token_urlsafe(18)
        setattr(request, NONCE_ATTR, nonce)
    return str(nonce)


def policy_for(request: HttpRequest) -> str:
    """Return the policy: only our own scripts and styles, websockets to this host only."""
    host = request.get_host()
    nonce = get_nonce(request)
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src 'self' ws://{host} wss://{host}",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


def csp_protected(view: View) -> View:
    """Add the Content-Security-Policy header to every response of ``view``."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Call the view, then set the header (the nonce is already on the request)."""
        get_nonce(request)
        response = view(request, *args, **kwargs)
        response.headers["Content-Security-Policy"] = policy_for(request)
        return response

    return wrapped
