"""A router for a monitor database of its own (``"collector.routers.MonitorRouter"``).

The writer stores into ``SIGNAL_MONITOR["DATABASE_ALIAS"]`` by itself; this router sends the
dashboard's reads and ``migrate`` there too, and keeps every other app's tables out of it. Worth it
on SQLite above all: SQLite takes one writer at a time, so a monitor storing into the
application's own file makes the application's writes wait (docs/deployment.md).
"""

from __future__ import annotations

from typing import Any

from collector.conf import get_config

LABEL = "signals_collector"


class MonitorRouter:
    """Route the collector's models to SIGNAL_MONITOR["DATABASE_ALIAS"]; no opinion on others."""

    @staticmethod
    def _alias() -> str:
        """Return the monitor's database alias."""
        return str(get_config()["DATABASE_ALIAS"])

    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        """Read the collector's tables from the monitor's database."""
        return self._alias() if model._meta.app_label == LABEL else None

    def db_for_write(self, model: type[Any], **hints: Any) -> str | None:
        """Write the collector's tables to the monitor's database."""
        return self._alias() if model._meta.app_label == LABEL else None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        """Allow relations among the collector's own rows; no opinion on the rest."""
        if obj1._meta.app_label == LABEL and obj2._meta.app_label == LABEL:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        """Create the collector's tables in the monitor's database only, and only them there.

        When the monitor uses the default alias this router changes nothing.
        """
        alias = self._alias()
        if app_label == LABEL:
            return db == alias
        return False if db == alias and alias != "default" else None
