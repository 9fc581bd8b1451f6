"""App config for the demo app: the seeds' receivers wired to real models."""

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import class_prepared

# Every model class Django prepares, by label: filled before the app registry is ready.
MODEL_CATALOGUE: dict[str, str] = {}


def catalogue_model(sender: Any, **kwargs: Any) -> None:
    """Record each model class as it is prepared (class_prepared fires before apps are ready)."""
    MODEL_CATALOGUE[sender._meta.label] = sender._meta.verbose_name


# Connected when this module is imported, during the app registry's first phase, so it sees
# class_prepared for every model of every app, including the ones listed before this one.
class_prepared.connect(catalogue_model, dispatch_uid="demo.catalogue_model")


class DemoConfig(AppConfig):
    """Connects the demo receivers when the app registry is ready."""

    name = "demo"
    label = "demo"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Signal monitor demo shop"

    def ready(self) -> None:
        """Import the receivers module so its @receiver decorators connect."""
        from demo import receivers  # noqa: F401
