"""App config for the demo app: the seeds' receivers wired to real models."""

from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Connects the demo receivers when the app registry is ready."""

    name = "demo"
    label = "demo"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Signal monitor demo shop"

    def ready(self) -> None:
        """Import the receivers module so its @receiver decorators connect."""
        from demo import receivers  # noqa: F401
