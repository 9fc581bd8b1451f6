"""A small catalogue for the realistic-request benchmark."""

from __future__ import annotations

from django.db import models


class Item(models.Model):
    """A catalogue item with a slug set by a pre_save receiver."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, blank=True)
    price = models.IntegerField(default=0)
    views = models.IntegerField(default=0)

    class Meta:
        app_label = "bench_app"

    def __str__(self) -> str:
        return self.name
