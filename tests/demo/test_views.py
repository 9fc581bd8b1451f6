"""The demo's HTTP endpoints, through Django's real request handler."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.signals import got_request_exception
from django.test import Client
from django.urls import reverse

from demo.models import ActivityLog, Category, Order, Product, Profile

pytestmark = pytest.mark.django_db


class _Cells(HTMLParser):
    """Collect the text of every table row's cells."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._in_cell = True
            self.rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.rows[-1][-1] += data.strip()


def table_rows(html: bytes) -> list[list[str]]:
    """Return the cell texts of the table's body rows."""
    parser = _Cells()
    parser.feed(html.decode())
    return [row for row in parser.rows if row]


@pytest.fixture
def exceptions() -> Iterator[list[Any]]:
    """Return the exceptions got_request_exception reports while the test runs."""
    seen: list[Any] = []

    def record(sender: Any, request: Any, **kwargs: Any) -> None:
        seen.append(request.path)

    got_request_exception.connect(record, dispatch_uid="tests.demo.exceptions")
    yield seen
    got_request_exception.disconnect(dispatch_uid="tests.demo.exceptions")


def test_product_list_renders_products(client: Client, product: Product) -> None:
    response = client.get(reverse("demo:product_list"))

    assert response.status_code == 200
    assert "demo/product_list.html" in [t.name for t in response.templates]
    assert table_rows(response.content) == [["Dune", "Books", "", "20", "9.99"]]


def test_category_list_is_cached_until_a_product_changes(
    client: Client, product: Product, category: Category
) -> None:
    path = f"{reverse('demo:product_list')}?category={category.pk}"
    client.get(path)
    Product.objects.filter(pk=product.pk).update(stock=7)  # no signal: the cache stays stale

    stale = table_rows(client.get(path).content)
    product.refresh_from_db()
    product.save()  # post_save drops the cached list
    fresh = table_rows(client.get(path).content)

    assert (stale[0][3], fresh[0][3]) == ("20", "7")


def test_product_detail(client: Client, product: Product) -> None:
    response = client.get(reverse("demo:product_detail", args=[product.pk]))

    assert response.status_code == 200
    assert client.get(reverse("demo:product_detail", args=[999_999])).status_code == 404


def test_product_create_update_delete(client: Client, category: Category) -> None:
    data = {
        "name": "Lamp",
        "category": category.pk,
        "stock": 3,
        "reorder_threshold": 5,
        "price": "4",
    }
    created = client.post(reverse("demo:product_create"), data)
    product_id = created.json()["product"]
    updated = client.post(
        reverse("demo:product_update", args=[product_id]), {"stock": 30, "price": "5"}
    )
    deleted = client.post(reverse("demo:product_delete", args=[product_id]))

    assert [created.status_code, updated.status_code, deleted.status_code] == [201, 200, 200]
    assert updated.json() == {"product": product_id, "stock": 30}
    assert not Product.objects.filter(pk=product_id).exists()
    actions = ActivityLog.objects.filter(object_id=product_id, model_name="Product")
    assert list(actions.order_by("pk").values_list("action", flat=True)) == [
        "created",
        "restock_requested",
        "updated",
        "archived",
        "deleted",
    ]


def test_invalid_product_rejected(client: Client) -> None:
    response = client.post(reverse("demo:product_create"), {"name": ""})

    assert response.status_code == 400
    assert set(response.json()["errors"]) >= {"name", "category"}


def test_place_and_ship_order(
    client: Client, product: Product, failure_rate: Callable[[float], None]
) -> None:
    failure_rate(0.0)
    placed = client.post(reverse("demo:order_create"), {"product": product.pk, "quantity": 2})
    order_id = placed.json()["order"]
    shipped = client.post(reverse("demo:order_ship", args=[order_id]))

    assert placed.status_code == 201
    assert shipped.json() == {"order": order_id, "status": Order.Status.SHIPPED}
    assert Order.objects.get(pk=order_id).status == Order.Status.SHIPPED


def test_ship_unknown_order_is_404(client: Client) -> None:
    assert client.post(reverse("demo:order_ship", args=[999_999])).status_code == 404


def test_report_reports_failed_delivery(
    client: Client, failure_rate: Callable[[float], None]
) -> None:
    failure_rate(1.0)

    response = client.post(reverse("demo:report_create"))

    assert response.status_code == 201
    assert json.loads(response.content)["delivered"] is False


def test_recommendations_failure_is_a_500_with_got_request_exception(
    product: Product, failure_rate: Callable[[float], None], exceptions: list[Any]
) -> None:
    failure_rate(1.0)
    client = Client(raise_request_exception=False)

    response = client.get(reverse("demo:recommendations"))

    assert response.status_code == 500
    assert exceptions == [reverse("demo:recommendations")]


def test_recommendations_render(
    client: Client, product: Product, failure_rate: Callable[[float], None]
) -> None:
    failure_rate(0.0)

    response = client.get(reverse("demo:recommendations"))

    assert response.status_code == 200
    assert "demo/recommendations.html" in [t.name for t in response.templates]


def test_signup_creates_user_and_profile(client: Client) -> None:
    data = {"username": "dave", "password1": "pw-dave-12345", "password2": "pw-dave-12345"}
    response = client.post(reverse("demo:signup"), data)

    assert response.status_code == 201
    user = get_user_model().objects.get(username="dave")
    assert Profile.objects.filter(user=user).exists()


def test_signup_with_mismatched_passwords_rejected(client: Client) -> None:
    data = {"username": "erin", "password1": "pw-erin-12345", "password2": "other-12345"}

    assert client.post(reverse("demo:signup"), data).status_code == 400
