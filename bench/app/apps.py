"""App config for the benchmark catalogue: connects its receivers."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class BenchAppConfig(AppConfig):
    """Benchmark-only app (label bench_app)."""

    name = "bench.app"
    label = "bench_app"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect a pre_save and two post_save receivers to Item, as a real app would."""
        from django.db.models.signals import post_save, pre_save
        from django.utils.text import slugify

        from bench.app.models import Item

        def set_slug(sender: Any, instance: Item, **kwargs: Any) -> None:
            if not instance.slug:
                instance.slug = slugify(instance.name)

        def count_saves(sender: Any, instance: Item, created: bool, **kwargs: Any) -> None:
            COUNTS["saved"] += 1

        def invalidate(sender: Any, instance: Item, **kwargs: Any) -> None:
            CACHE.pop(instance.pk, None)

        pre_save.connect(set_slug, sender=Item, weak=False)
        post_save.connect(count_saves, sender=Item, weak=False)
        post_save.connect(invalidate, sender=Item, weak=False)


COUNTS = {"saved": 0}
CACHE: dict[int, Any] = {}
