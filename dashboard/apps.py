"""App configuration for the signal monitor's dashboard."""

from __future__ import annotations

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The dashboard: live feed, statistics, failures and the signal registry."""

    name = "dashboard"
    label = "signals_dashboard"
    verbose_name = "Signal monitor dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the dashboard's system checks."""
        from dashboard import checks  # noqa: F401 - registers the checks on import
