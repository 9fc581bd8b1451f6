"""MonitorRouter: the collector's models go to the monitor's alias, other apps' nowhere new."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from collector.models import Event, ReceiverCall
from collector.routers import MonitorRouter


def test_the_collector_models_are_routed_to_the_monitor_alias() -> None:
    router = MonitorRouter()
    with override_settings(SIGNAL_MONITOR={"DATABASE_ALIAS": "monitor"}):
        assert router.db_for_read(Event) == "monitor"
        assert router.db_for_write(ReceiverCall) == "monitor"
        assert router.db_for_read(User) is None and router.db_for_write(User) is None
        assert router.allow_migrate("monitor", "signals_collector") is True
        assert router.allow_migrate("default", "signals_collector") is False
        assert router.allow_migrate("monitor", "auth") is False  # only the monitor's tables there
        assert router.allow_migrate("default", "auth") is None
        assert router.allow_relation(Event(), ReceiverCall()) is True
        assert router.allow_relation(Event(), User()) is None


def test_with_the_default_alias_the_router_changes_nothing_for_other_apps() -> None:
    router = MonitorRouter()
    with override_settings(SIGNAL_MONITOR={"DATABASE_ALIAS": "default"}):
        assert router.db_for_read(Event) == "default"
        assert router.allow_migrate("default", "signals_collector") is True
        assert router.allow_migrate("default", "auth") is None
        assert router.allow_migrate("other", "signals_collector") is False


def test_the_router_sends_queries_to_the_alias_through_django() -> None:
    """Installed in DATABASE_ROUTERS, Django's router uses it for the collector's querysets."""
    with override_settings(
        DATABASE_ROUTERS=["collector.routers.MonitorRouter"],
        SIGNAL_MONITOR={"DATABASE_ALIAS": "monitor"},
    ):
        assert Event.objects.all().db == "monitor"
        assert User.objects.all().db == "default"
    assert Event.objects.all().db == "default"


def test_the_dashboards_raw_sql_follows_the_router() -> None:
    """known_hosts (a raw recursive query) runs on the routed alias, not on ``default``."""
    from django.utils.connection import ConnectionDoesNotExist

    from dashboard.selectors import known_hosts

    with override_settings(
        DATABASE_ROUTERS=["collector.routers.MonitorRouter"],
        SIGNAL_MONITOR={"DATABASE_ALIAS": "not_configured"},
    ), pytest.raises(ConnectionDoesNotExist):
        known_hosts()
