"""HTTP sessions for demo_traffic: Django's test client in-process, or urllib against a server."""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol
from urllib.parse import urlencode

from django.template import Template
from django.test import Client
from django.test.utils import instrumented_test_render  # type: ignore[attr-defined]


@dataclass(frozen=True)
class HttpResult:
    """Status and body of one response."""

    status: int
    body: bytes

    def json(self) -> dict[str, Any]:
        """Return the body parsed as a JSON object, or {} when it is not one."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


class Session(Protocol):
    """One browser: keeps its cookies between requests."""

    def get(self, path: str) -> HttpResult:
        """GET ``path``."""

    def post(self, path: str, data: Mapping[str, str]) -> HttpResult:
        """POST form ``data`` to ``path``."""


class ClientSession:
    """A session through django.test.Client: the real handler, middleware and signals."""

    def __init__(self) -> None:
        self._client = Client(raise_request_exception=False)

    def get(self, path: str) -> HttpResult:
        """GET ``path`` in-process."""
        response = self._client.get(path)
        return HttpResult(response.status_code, response.content)

    def post(self, path: str, data: Mapping[str, str]) -> HttpResult:
        """POST ``data`` to ``path`` in-process (the test client skips CSRF checks)."""
        response = self._client.post(path, dict(data))
        return HttpResult(response.status_code, response.content)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Report redirects as responses instead of following them, as the test client does."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        """Never follow."""
        return None


class UrllibSession:
    """A session against a running server, with a cookie jar and the CSRF token sent back."""

    def __init__(self, base_url: str, timeout: float = 15.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._jar = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self._jar), _NoRedirect()
        )

    def get(self, path: str) -> HttpResult:
        """GET ``path`` from the server."""
        return self._open(urllib.request.Request(self._base_url + path))

    def post(self, path: str, data: Mapping[str, str]) -> HttpResult:
        """POST ``data`` to ``path``, adding the CSRF token when the server has set one."""
        fields = dict(data)
        token = self._csrf_token()
        if token:
            fields.setdefault("csrfmiddlewaretoken", token)
        body = urlencode(fields).encode()
        request = urllib.request.Request(self._base_url + path, data=body, method="POST")
        return self._open(request)

    def _csrf_token(self) -> str:
        """Return the csrftoken cookie's value, or ""."""
        return next((cookie.value or "" for cookie in self._jar if cookie.name == "csrftoken"), "")

    def _open(self, request: urllib.request.Request) -> HttpResult:
        """Send ``request``; HTTP error statuses are results, not exceptions."""
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return HttpResult(response.status, response.read())
        except urllib.error.HTTPError as error:
            with error:
                return HttpResult(error.code, error.read())


def session_factory(url: str | None) -> Callable[[], Session]:
    """Return a maker of sessions: urllib ones for ``url``, test-client ones without it."""
    if url:
        return partial(UrllibSession, url)
    return ClientSession


@contextmanager
def template_rendered_sent() -> Iterator[None]:
    """Make template renders send template_rendered, as Django's test environment does."""
    original = Template._render  # type: ignore[attr-defined]
    Template._render = instrumented_test_render  # type: ignore[attr-defined]
    try:
        yield
    finally:
        Template._render = original  # type: ignore[attr-defined]
