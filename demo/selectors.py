"""Reads of the demo shop, cached under the keys the invalidation receiver drops."""

from __future__ import annotations

from django.core.cache import cache
from django.db.models import QuerySet

from demo.models import Product


def _products() -> QuerySet[Product]:
    """Return products with their category and tags loaded."""
    return Product.objects.select_related("category").prefetch_related("tags").order_by("name")


def product_list(*, category_id: int | None = None, limit: int = 50) -> list[Product]:
    """Return up to ``limit`` products; a category list is cached as ``category_<id>_products``."""
    if category_id is None:
        return list(_products()[:limit])
    key = f"category_{category_id}_products"
    products: list[Product] | None = cache.get(key)
    if products is None:
        products = list(_products().filter(category_id=category_id)[:limit])
        cache.set(key, products, timeout=300)
    return products


def product_get(*, product_id: int) -> Product | None:
    """Return one product, cached as ``product_<id>``, or None."""
    key = f"product_{product_id}"
    product: Product | None = cache.get(key)
    if product is None:
        product = _products().filter(pk=product_id).first()
        if product is not None:
            cache.set(key, product, timeout=300)
    return product
