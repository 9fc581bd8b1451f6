"""App config: installs the hook as early as the app registry allows."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class CollectorConfig(AppConfig):
    """The collector app (label ``signals_collector``, so it cannot clash with a project's apps)."""

    name = "collector"
    label = "signals_collector"
    verbose_name = "Signal monitor collector"
    default_auto_field = "django.db.models.BigAutoField"

    def __init__(self, app_name: str, app_module: Any) -> None:
        """Install before models are imported, so class_prepared of every model is seen."""
        super().__init__(app_name, app_module)
        self._auto_install()

    def ready(self) -> None:
        """Register the system checks and make sure the hook is installed."""
        from collector import checks  # noqa: F401 - registers the checks

        self._auto_install()

    @staticmethod
    def _auto_install() -> None:
        """Install the hook unless SIGNAL_MONITOR turns it off."""
        from collector.conf import get_config
        from collector.link import IN_WRITER_PROCESS

        config = get_config()
        if config["ENABLED"] and config["AUTO_INSTALL"] and not IN_WRITER_PROCESS:
            from collector import install

            install()
