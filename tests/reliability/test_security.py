"""Security: every dashboard URL (found through the project's root URLconf) and the websocket
refuse anonymous and non-staff users with any method; the websocket checks its Origin against
ALLOWED_HOSTS; the one state-changing action (log out) is a POST with CSRF; secrets are redacted
before they are stored or broadcast; pages carry a strict CSP and no inline script; no secret is
committed. (tests/dashboard/test_access.py checks GET per dashboard pattern; this extends it.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import authenticate
from django.dispatch import Signal
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver

import collector
from collector.models import Event
from tests.conftest import ROOT
from tests.reliability.conftest import Tally, monitor, wait_for

DEMO_KEY_MARK = "demo-only-insecure"
METHODS = ("get", "head", "post", "put", "patch", "delete", "options")
NAMESPACE = "signals_dashboard"


def dashboard_urls() -> list[str]:
    """Return one concrete URL per dashboard pattern reachable from the root URLconf."""
    found: list[str] = []

    def walk(patterns: list[Any], prefix: str, inside: bool) -> None:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, route, inside or entry.namespace == NAMESPACE)
            elif isinstance(entry, URLPattern) and inside:
                found.append("/" + re.sub(r"<int:\w+>", "1", route))

    walk(get_resolver().url_patterns, "", False)
    return found


def test_the_root_urlconf_exposes_only_enumerated_dashboard_pages() -> None:
    urls = dashboard_urls()
    assert "/signals/" in urls and "/signals/events/1/" in urls and len(urls) >= 7
    assert all("<" not in url for url in urls), urls  # every converter was filled in


@pytest.mark.django_db
@pytest.mark.parametrize("url", dashboard_urls())
def test_every_method_is_refused_to_anonymous_and_non_staff(
    url: str, client: Client, user_client: Client, staff_client: Client, tally: Tally
) -> None:
    for method in METHODS:
        anonymous = getattr(client, method)(url)
        assert anonymous.status_code == 302, (method, url)
        assert anonymous["Location"].startswith("/accounts/login/")
        assert getattr(user_client, method)(url).status_code == 403, (method, url)
        expected = (200, 404) if method in ("get", "head") else (405,)
        assert getattr(staff_client, method)(url).status_code in expected, (method, url)
    tally.bad_inputs["access_methods"] += 3 * len(METHODS)


@pytest.mark.django_db
def test_the_only_state_changing_action_is_a_post_with_csrf(staff_user: Any) -> None:
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff_user)
    page = strict.get("/signals/").content.decode()
    forms = re.findall(r"<form\b[^>]*>.*?</form>", page, re.S)
    posts = [f for f in forms if re.search(r'method="post"', f, re.I)]
    assert len(posts) == 1 and "csrfmiddlewaretoken" in posts[0]  # log out
    assert all('method="get"' in f.lower() for f in forms if f not in posts)
    assert strict.post("/accounts/logout/").status_code == 403  # no token: refused
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', posts[0])
    assert token is not None
    assert strict.post("/accounts/logout/", {"csrfmiddlewaretoken": token[1]}).status_code == 302


async def ws_connect(headers: list[tuple[bytes, bytes]]) -> tuple[bool, Any, WebsocketCommunicator]:
    """Connect to the project's ASGI application; return (accepted, first output, communicator)."""
    from config.asgi import application

    comm = WebsocketCommunicator(application, "/ws/signals/", headers=headers)
    connected, _ = await comm.connect(timeout=5)
    first = await comm.receive_output(timeout=3) if connected else None
    return connected, first, comm


async def session_cookie(user: Any) -> bytes:
    """Return a Cookie header value logged in as ``user``."""
    client = Client()
    await database_sync_to_async(client.force_login)(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "origin",
    [
        b"http://evil.example",
        b"http://testserver.evil.example",
        b"http://evil-testserver",
        b"null",
        b"file://",
        b"javascript:alert(1)",
        None,
    ],
)
async def test_the_websocket_refuses_foreign_origins_even_for_staff(
    origin: bytes | None, staff_user: Any, tally: Tally
) -> None:
    headers = [(b"cookie", await session_cookie(staff_user)), (b"host", b"testserver")]
    if origin is not None:
        headers.append((b"origin", origin))
    connected, _, comm = await ws_connect(headers)
    tally.bad_inputs["websocket_origin"] += 1
    assert not connected
    await comm.wait(1)


@pytest.mark.django_db(transaction=True)
async def test_the_websocket_refuses_anonymous_and_non_staff(
    staff_user: Any, plain_user: Any
) -> None:
    good = [(b"origin", b"http://localhost:8000"), (b"host", b"localhost")]
    for user in (None, plain_user):
        headers = list(good)
        if user is not None:
            headers.append((b"cookie", await session_cookie(user)))
        connected, first, comm = await ws_connect(headers)
        assert connected and first == {"type": "websocket.close", "code": 4403}
        await comm.disconnect()
    connected, first, comm = await ws_connect(
        [*good, (b"cookie", await session_cookie(staff_user))]
    )
    assert connected and first["type"] == "websocket.send"
    await comm.disconnect()


secret_signal = Signal()
SECRET = "hunter2-Sup3rSecret-value"


def keep(sender: Any, **kw: Any) -> None:
    """A receiver, so sends are recorded."""


@pytest.mark.django_db(transaction=True)
def test_secrets_are_redacted_before_storage_and_broadcast(
    monkeypatch: pytest.MonkeyPatch, tally: Tally
) -> None:
    from collector import live

    published: list[dict[str, Any]] = []
    monkeypatch.setattr(live, "publish", lambda message, timeout=0.5: published.append(message))
    secret_signal.connect(keep)
    try:
        with monitor(REDACT_KEYS=["ssn", "iban"], FLUSH_INTERVAL=0.05):
            secret_signal.send(
                sender="redact",
                password=SECRET,
                api_key=SECRET,
                headers={"Authorization": f"Bearer {SECRET}", "Cookie": f"sessionid={SECRET}"},
                nested=[{"csrfmiddlewaretoken": SECRET, "client_secret": SECRET}],
                ssn=SECRET,
                customer_iban=SECRET,
                note="nothing secret here",
            )
            authenticate(username="nobody", password=SECRET)  # user_login_failed, cleansed
            with override_settings(SECRET_KEY=SECRET * 2):  # setting_changed, value redacted
                pass
            assert collector.flush(10)
    finally:
        secret_signal.disconnect(keep)
    tally.fault("secret_in_arguments", 9)
    event = wait_for(lambda: Event.objects.filter(sender="redact").first())
    kwargs = event.kwargs
    assert kwargs["note"] == "nothing secret here"
    assert kwargs["password"] == kwargs["api_key"] == kwargs["ssn"] == "********"
    assert kwargs["customer_iban"] == "********"
    stored = " ".join(str(e.kwargs) for e in Event.objects.all())
    assert SECRET not in stored
    assert "user_login_failed" in " ".join(Event.objects.values_list("signal", flat=True))
    assert published and SECRET not in repr(published)
    assert any(e["sender"] == "redact" for m in published for e in m["events"])


def test_redaction_is_on_by_default() -> None:
    from collector.conf import DEFAULTS

    assert "collector.processors.RedactProcessor" in DEFAULTS["PROCESSORS"]


class Markup(HTMLParser):
    """Collects scripts, inline event handlers and javascript: URLs of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.handlers: list[str] = []
        self.js_urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            self.scripts.append(values)
        for name, value in attrs:
            if name.startswith("on") or name.startswith("hx-on"):
                self.handlers.append(f"{tag} {name}")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.js_urls.append(f"{tag} {name}={value}")


def script_src(policy: str) -> list[str]:
    """Return the sources of the policy's script-src directive."""
    for directive in policy.split(";"):
        parts = directive.split()
        if parts and parts[0] == "script-src":
            return parts[1:]
    raise AssertionError(f"no script-src in {policy!r}")


@pytest.mark.django_db
@pytest.mark.parametrize("url", dashboard_urls())
def test_pages_have_a_strict_policy_and_no_inline_script(
    url: str, staff_client: Client, user_client: Client
) -> None:
    for client in (staff_client, user_client):
        response = client.get(url)
        sources = script_src(response["Content-Security-Policy"])
        assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources
        assert "*" not in sources and "data:" not in sources and "'self'" in sources
        nonce = next(s for s in sources if s.startswith("'nonce-"))[7:-1]
        page = Markup()
        page.feed(response.content.decode())
        assert page.handlers == [] and page.js_urls == []
        for script in page.scripts:
            assert script.get("src") and script.get("nonce") == nonce, script


def test_no_secret_is_committed() -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    patterns = {
        "private key": re.compile(r"-----BEGIN (RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
        "AWS key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
        "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
        "Slack token": re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}"),
        "generated Django key": re.compile(r"django-insecure-[^\s'\"]{20,}"),
        "literal SECRET_KEY": re.compile(r"^\s*SECRET_KEY\s*=\s*['\"]([^'\"]*)", re.M),
    }
    hits = []
    for name in filter(None, files):
        path = ROOT / name
        if not path.is_file() or path.suffix in {".png", ".jpg", ".gz", ".woff2", ".ico"}:
            continue
        text = path.read_text(errors="ignore")
        for what, pattern in patterns.items():
            for match in pattern.finditer(text):
                if what == "literal SECRET_KEY" and (
                    name.startswith("tests/") or DEMO_KEY_MARK in match.group(1)
                ):
                    continue  # throwaway keys: test settings, and the demo's (DEBUG only)
                hits.append(f"{name}: {what}: {match.group(0)[:40]}")
    assert hits == []


def settings_in_subprocess(**env: str) -> subprocess.CompletedProcess[str]:
    """Import config.settings in a fresh interpreter with ``env`` and print SECRET_KEY."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    environment.update(env)
    code = "import config.settings as s; print(s.SECRET_KEY)"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def test_the_secret_key_comes_from_the_environment_outside_the_demo() -> None:
    refused = settings_in_subprocess(DJANGO_DEBUG="0")
    assert refused.returncode != 0 and "DJANGO_SECRET_KEY" in refused.stderr
    given = settings_in_subprocess(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="from-the-environment")
    assert given.returncode == 0 and given.stdout.strip() == "from-the-environment"
    demo = settings_in_subprocess(DJANGO_DEBUG="1")
    assert demo.returncode == 0 and "insecure" in demo.stdout
