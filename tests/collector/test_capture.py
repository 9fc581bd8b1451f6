"""What the hook captures of arguments costs the host nothing visible: no query, no error."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext
from django.db import connection

from collector import capture
from tests.collector.conftest import Recorded

pytestmark = pytest.mark.django_db


def _noop(sender: Any, **kwargs: Any) -> None:
    """A receiver, so the send is recorded."""


def test_capturing_an_instance_runs_no_query(recorded: Recorded) -> None:
    """Permission.__str__ follows its content_type relation and a deferred username loads on
    access: capturing either must not add a query to the host's."""
    User.objects.create(username="ada")
    perm = Permission.objects.select_related(None).first()
    user = User.objects.only("id").get(username="ada")
    assert perm is not None and "username" in user.get_deferred_fields()
    post_save.connect(_noop, sender=Permission)
    post_save.connect(_noop, sender=User)
    try:
        with CaptureQueriesContext(connection) as queries:
            post_save.send(sender=Permission, instance=perm, created=False)
            post_save.send(sender=User, instance=user, created=False)
        assert queries.captured_queries == []
    finally:
        post_save.disconnect(_noop, sender=Permission)
        post_save.disconnect(_noop, sender=User)
    events = recorded(signal="django.db.models.signals.post_save")
    by_model = {e["kwargs"]["instance"]["model"]: e["kwargs"]["instance"] for e in events}
    assert by_model["auth.Permission"]["pk"] == perm.pk
    assert by_model["auth.User"] == {"model": "auth.User", "pk": user.pk}
    assert "username" in user.get_deferred_fields(), "the deferred field stayed deferred"


def test_a_loaded_username_is_kept() -> None:
    """A user's loaded username is captured (the dashboard shows who logged in)."""
    snap = capture.capture_kwargs(post_save, {"instance": User(pk=3, username="grace")})
    assert snap["instance"] == {"model": "auth.User", "pk": 3, "username": "grace"}


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("plain", 10, "plain"),
        ("x" * 12, 10, "x" * 10 + "… [2 more]"),
        ("caf\u00e9", 10, "caf\u00e9"),
        ("lone \ud800 surrogate", 100, "lone \\ud800 surrogate"),
    ],
)
def test_cap(text: str, limit: int, expected: str) -> None:
    """Capping cuts and says so; lone surrogates (not storable as UTF-8) are escaped."""
    assert capture.cap(text, limit) == expected


def test_odd_keys_are_captured_as_text() -> None:
    """Non-str, long or non-ASCII keys become capped text; plain keys stay as they are."""
    snap = capture.capture_kwargs(post_save, {"a": {1: "one", "k" * 150: 2, "\ud800": 3}})
    assert snap["a"] == {"1": "one", "k" * 100 + "… [50 more]": 2, "\\ud800": 3}
