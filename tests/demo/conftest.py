"""Fixtures for the demo tests: a small catalog, a clean cache, and control of the flakiness."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from django.core.cache import cache

from demo.models import Category, Product, Tag


@pytest.fixture(autouse=True)
def clean_cache() -> Iterator[None]:
    """Start and end every test with an empty cache."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def failure_rate(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Return a setter of the share of calls in which the flaky receivers and services fail."""

    def set_rate(rate: float) -> None:
        monkeypatch.setattr("demo.receivers.FAILURE_RATE", rate)
        monkeypatch.setattr("demo.services.UPSTREAM_FAILURE_RATE", rate)

    return set_rate


@pytest.fixture
def category(db: None) -> Category:
    """Return a saved category."""
    return Category.objects.create(name="Books")


@pytest.fixture
def product(category: Category) -> Product:
    """Return a saved product well above its reorder threshold."""
    return Product.objects.create(
        name="Dune", category=category, stock=20, reorder_threshold=5, price=Decimal("9.99")
    )


@pytest.fixture
def tags(db: None) -> list[Tag]:
    """Return three saved tags."""
    return [Tag.objects.create(name=name) for name in ("new", "sale", "gift")]
