"""Every built-in Django signal is recorded after the real action that sends it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import signals as auth_signals
from django.contrib.auth.models import Group, User
from django.core import signals as core_signals
from django.core.management import call_command
from django.db import connections
from django.db.backends import signals as db_signals
from django.db.models import signals as model_signals
from django.test import Client, override_settings
from django.test import signals as test_signals

import collector

BUILTINS = {
    "django.db.models.signals.pre_init": model_signals.pre_init,
    "django.db.models.signals.post_init": model_signals.post_init,
    "django.db.models.signals.pre_save": model_signals.pre_save,
    "django.db.models.signals.post_save": model_signals.post_save,
    "django.db.models.signals.pre_delete": model_signals.pre_delete,
    "django.db.models.signals.post_delete": model_signals.post_delete,
    "django.db.models.signals.m2m_changed": model_signals.m2m_changed,
    "django.db.models.signals.class_prepared": model_signals.class_prepared,
    "django.db.models.signals.pre_migrate": model_signals.pre_migrate,
    "django.db.models.signals.post_migrate": model_signals.post_migrate,
    "django.core.signals.request_started": core_signals.request_started,
    "django.core.signals.request_finished": core_signals.request_finished,
    "django.core.signals.got_request_exception": core_signals.got_request_exception,
    "django.contrib.auth.signals.user_logged_in": auth_signals.user_logged_in,
    "django.contrib.auth.signals.user_logged_out": auth_signals.user_logged_out,
    "django.contrib.auth.signals.user_login_failed": auth_signals.user_login_failed,
    "django.core.signals.setting_changed": core_signals.setting_changed,
    "django.test.signals.template_rendered": test_signals.template_rendered,
    "django.db.backends.signals.connection_created": db_signals.connection_created,
}


def listener(sender: Any, **kwargs: Any) -> None:
    """A receiver connected to every built-in signal for these tests."""


@pytest.fixture
def listening(recorded: Any) -> Iterator[Any]:
    """Connect ``listener`` to every built-in signal; yield the recorded-events reader."""
    for signal in BUILTINS.values():
        signal.connect(listener, dispatch_uid="test-builtin-listener")
    yield recorded
    for signal in BUILTINS.values():
        signal.disconnect(listener, dispatch_uid="test-builtin-listener")


def names(events: list[dict[str, Any]]) -> set[str]:
    """Return the signal names among ``events``."""
    return {e["signal"] for e in events}


def calls_to_listener(events: list[dict[str, Any]], signal: str) -> list[dict[str, Any]]:
    """Return the recorded events of ``signal`` that ran the test listener."""
    return [
        e for e in events
        if e["signal"] == signal and any(c["receiver"].endswith(".listener") for c in e["calls"])
    ]


@pytest.mark.django_db(transaction=True)
def test_model_signals_from_real_orm_calls(listening: Any) -> None:
    group = Group.objects.create(name="editors")
    user = User.objects.create_user("ada", password="pw-123456")
    user.groups.add(group)
    User.objects.get(pk=user.pk)
    user.delete()
    events = listening()
    for name in ("pre_init", "post_init", "pre_save", "post_save", "pre_delete", "post_delete",
                 "m2m_changed"):
        assert calls_to_listener(events, f"django.db.models.signals.{name}"), name
    saved = [e for e in calls_to_listener(events, "django.db.models.signals.post_save")
             if e["sender"] == "auth.User"][0]
    assert saved["kwargs"]["created"] is True
    assert saved["kwargs"]["instance"]["model"] == "auth.User"
    assert saved["kwargs"]["instance"]["username"] == "ada"
    assert saved["kwargs"]["using"] == "default"
    m2m = calls_to_listener(events, "django.db.models.signals.m2m_changed")
    assert {e["kwargs"]["action"] for e in m2m} >= {"pre_add", "post_add"}
    assert [group.pk] in [e["kwargs"]["pk_set"] for e in m2m]


def test_class_prepared_for_a_new_model(listening: Any) -> None:
    from django.db import models

    class Gadget(models.Model):
        class Meta:
            app_label = "signals_collector"
            managed = False

    events = calls_to_listener(listening(), "django.db.models.signals.class_prepared")
    assert [e["sender"] for e in events] == ["signals_collector.Gadget"]


@pytest.mark.django_db(transaction=True)
def test_migrate_signals_from_a_real_migrate(listening: Any) -> None:
    call_command("migrate", verbosity=0)
    events = listening()
    assert calls_to_listener(events, "django.db.models.signals.pre_migrate")
    assert calls_to_listener(events, "django.db.models.signals.post_migrate")
    post = calls_to_listener(events, "django.db.models.signals.post_migrate")
    assert "signals_collector.CollectorConfig" in {e["sender"] for e in post} or post


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.collector.urls")
def test_request_signals_through_the_real_handler(listening: Any) -> None:
    client = Client(raise_request_exception=False)
    assert client.get("/page/").status_code == 200
    assert client.get("/explode/").status_code == 500
    events = listening()
    started = calls_to_listener(events, "django.core.signals.request_started")
    assert {"method": "GET", "path": "/page/"} in [e["kwargs"]["environ"] for e in started]
    assert calls_to_listener(events, "django.core.signals.request_finished")
    failed = calls_to_listener(events, "django.core.signals.got_request_exception")
    assert failed and failed[0]["kwargs"]["request"]["path"] == "/explode/"
    rendered = calls_to_listener(events, "django.test.signals.template_rendered")
    assert rendered and rendered[0]["request_path"] == "/page/"


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.collector.urls")
def test_auth_signals_through_the_login_views(listening: Any) -> None:
    User.objects.create_user("grace", password="correct-horse-9")
    client = Client()
    client.post("/accounts/login/", {"username": "grace", "password": "wrong"})
    client.post("/accounts/login/", {"username": "grace", "password": "correct-horse-9"})
    client.post("/accounts/logout/")
    events = listening()
    failed = calls_to_listener(events, "django.contrib.auth.signals.user_login_failed")
    assert failed
    credentials = failed[0]["kwargs"]["credentials"]
    assert credentials["username"] == "grace"
    assert "wrong" not in str(failed[0]["kwargs"])
    logged_in = calls_to_listener(events, "django.contrib.auth.signals.user_logged_in")
    assert logged_in[0]["kwargs"]["user"]["username"] == "grace"
    assert calls_to_listener(events, "django.contrib.auth.signals.user_logged_out")


def test_setting_changed_from_override_settings(listening: Any) -> None:
    with override_settings(SIGNAL_MONITOR_TEST_FLAG=True):
        pass
    events = calls_to_listener(listening(), "django.core.signals.setting_changed")
    assert {e["kwargs"]["setting"] for e in events} == {"SIGNAL_MONITOR_TEST_FLAG"}
    assert {e["kwargs"]["enter"] for e in events} == {True, False}


def test_secret_setting_values_are_redacted(listening: Any) -> None:
    with override_settings(SECRET_KEY="x" * 60):
        pass
    events = calls_to_listener(listening(), "django.core.signals.setting_changed")
    assert events and all(e["kwargs"]["value"] == "********" for e in events)


@pytest.mark.django_db(transaction=True)
def test_connection_created_for_a_new_connection(listening: Any) -> None:
    conn = connections.create_connection("default")
    try:
        conn.ensure_connection()
    finally:
        conn.close()
    events = calls_to_listener(listening(), "django.db.backends.signals.connection_created")
    assert events and "DatabaseWrapper" in events[0]["kwargs"]["connection"]


def test_every_builtin_is_named_by_its_import_path(listening: Any) -> None:
    from collector.naming import signal_name

    for name, signal in BUILTINS.items():
        assert signal_name(signal) == name
    assert collector.is_installed()


def test_signals_before_ready_and_before_migrate_are_not_lost(tmp_path: Any) -> None:
    """Fresh processes: `migrate` from an empty database stores its own pre_migrate (sent before
    the collector's tables exist) and post_migrate; class_prepared of contrib and demo models,
    sent before ready(), is stored."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    db = tmp_path / "early.sqlite3"
    env = {**os.environ, "SQLITE_PATH": str(db), "DJANGO_SETTINGS_MODULE": "config.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=root, env=env, check=True,
                   timeout=120)
    code = (
        "import collector\n"
        "from collector.models import Event\n"
        "assert collector.flush(10)\n"
        "labels = set(Event.objects.filter(signal='django.db.models.signals.class_prepared')"
        ".values_list('sender', flat=True))\n"
        "print(sorted(labels))\n"
        "assert {'auth.User', 'contenttypes.ContentType', 'demo.Product'} <= labels, labels\n"
        "migrate = set(Event.objects.filter(signal__endswith='_migrate')"
        ".values_list('signal', flat=True))\n"
        "assert migrate == {'django.db.models.signals.pre_migrate',"
        " 'django.db.models.signals.post_migrate'}, migrate\n"
    )
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=root, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.collector.urls")
@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_excluded_paths_record_nothing_not_even_request_signals(listening: Any, kind: str) -> None:
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    with override_settings(SIGNAL_MONITOR={"EXCLUDE_PATHS": ["/page/"]}):
        listening()  # drain the setting_changed events
        from collector.sinks import clear_memory

        clear_memory()
        if kind == "wsgi":
            Client().get("/page/")
        else:
            async_to_sync(AsyncClient().get)("/page/")
        events = listening()
    paths = {e["request_path"] for e in events}
    assert "/page/" not in paths
    assert not calls_to_listener(events, "django.core.signals.request_started")
    assert not calls_to_listener(events, "django.core.signals.request_finished")
    assert not calls_to_listener(events, "django.test.signals.template_rendered")
