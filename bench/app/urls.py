"""The benchmark's one view: list 500 items, update 20."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from bench.app.models import Item


def catalogue(request: HttpRequest) -> JsonResponse:
    """Build 500 instances (1000 pre_init/post_init sends) and save 20 (pre_save, post_save)."""
    items = list(Item.objects.all()[:500])
    for item in items[:20]:
        item.views += 1
        item.save(update_fields=["views"])
    return JsonResponse({"items": len(items), "total": sum(i.price for i in items)})


urlpatterns = [path("catalogue/", catalogue)]
