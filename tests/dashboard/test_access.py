"""Every dashboard URL: anonymous users go to the login page, non-staff get 403, staff get in."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import URLPattern, reverse

from dashboard import urls as dashboard_urls
from dashboard.access import is_staff_user, user_has_access

pytestmark = pytest.mark.django_db


def all_urls() -> list[str]:
    """Return one URL per dashboard pattern (converters filled with 1)."""
    result = []
    for pattern in dashboard_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        kwargs = dict.fromkeys(pattern.pattern.converters, 1)
        result.append(reverse(f"signals_dashboard:{pattern.name}", kwargs=kwargs))
    return result


def test_every_pattern_is_enumerated() -> None:
    assert len(all_urls()) == len(dashboard_urls.urlpatterns) >= 7


@pytest.mark.parametrize("url", all_urls())
def test_anonymous_is_sent_to_login(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("url", all_urls())
def test_non_staff_is_forbidden(user_client: Client, url: str) -> None:
    response = user_client.get(url)
    assert response.status_code == 403
    assert "Content-Security-Policy" in response


@pytest.mark.parametrize("url", all_urls())
def test_staff_gets_in_with_a_strict_policy(staff_client: Client, url: str) -> None:
    response = staff_client.get(url)
    assert response.status_code in (200, 404)  # detail pages of missing rows say so
    policy = response["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in policy
    assert "style-src 'self';" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.parametrize("url", all_urls())
def test_inactive_staff_is_forbidden(staff_user: Any, staff_client: Client, url: str) -> None:
    staff_user.is_active = False
    staff_user.save()
    client = Client()
    client.force_login(staff_user)
    assert client.get(url).status_code in (302, 403)


def test_only_safe_methods(staff_client: Client) -> None:
    assert staff_client.post(reverse("signals_dashboard:live")).status_code == 405


def allow_everyone(user: Any) -> bool:
    """A project's own access check: anyone logged in."""
    return bool(user.is_authenticated)


def test_access_check_is_one_setting(user_client: Client) -> None:
    url = reverse("signals_dashboard:signals")
    path = f"{__name__}.allow_everyone"
    with override_settings(SIGNAL_MONITOR={"ACCESS_CHECK": path}):
        assert user_client.get(url).status_code == 200
    assert user_client.get(url).status_code == 403


def test_broken_access_check_denies(staff_client: Client) -> None:
    with override_settings(SIGNAL_MONITOR={"ACCESS_CHECK": "nowhere.to_be.found"}):
        assert staff_client.get(reverse("signals_dashboard:signals")).status_code == 403


def test_default_check(staff_user: Any, plain_user: Any) -> None:
    assert is_staff_user(staff_user) and user_has_access(staff_user)
    assert not is_staff_user(plain_user) and not user_has_access(plain_user)
    assert not is_staff_user(None)
