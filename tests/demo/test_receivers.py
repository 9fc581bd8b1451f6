"""Each receiver of the demo does its job when the real action happens."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from demo.models import (
    ActivityLog,
    BlogPost,
    Category,
    LoginEvent,
    Notification,
    Product,
    Profile,
    Tag,
)

pytestmark = pytest.mark.django_db


def test_signup_creates_profile() -> None:
    user = get_user_model().objects.create_user("alice", password="pw-alice-123")

    assert Profile.objects.get(user=user).user_id == user.pk


def test_saving_an_existing_user_creates_no_second_profile() -> None:
    user = get_user_model().objects.create_user("bob", password="pw-bob-123")
    user.first_name = "Bob"
    user.save()

    assert Profile.objects.filter(user=user).count() == 1


def test_slug_set_from_title() -> None:
    post = BlogPost.objects.create(title="Hello World")

    assert post.slug == "hello-world"


def test_existing_slug_kept() -> None:
    post = BlogPost.objects.create(title="Hello World", slug="custom")

    assert post.slug == "custom"


def test_product_create_update_delete_logged(category: Category) -> None:
    product = Product.objects.create(name="Dune", category=category, stock=20)
    product.stock = 19
    product.save(update_fields=["stock"])
    product_id = product.pk
    product.delete()

    logs = ActivityLog.objects.filter(model_name="Product", object_id=product_id)
    actions = list(logs.order_by("pk").values_list("action", flat=True))
    assert actions == ["created", "updated", "archived", "deleted"]
    assert logs.get(action="updated").details == {"update_fields": ["stock"]}


def test_delete_archives_a_snapshot(product: Product, tags: list[Tag]) -> None:
    product.tags.add(tags[0])
    product_id = product.pk

    product.delete()

    archive = ActivityLog.objects.get(action="archived", object_id=product_id)
    assert archive.details == {
        "name": "Dune",
        "category_id": product.category_id,
        "stock": 20,
        "price": "9.99",
        "tag_ids": [tags[0].pk],
    }


def test_save_invalidates_product_and_category_cache(product: Product) -> None:
    keys = [f"product_{product.pk}", f"category_{product.category_id}_products", "unrelated"]
    cache.set_many(dict.fromkeys(keys, "stale"))

    product.price = Decimal("12.50")
    product.save()

    assert cache.get_many(keys) == {"unrelated": "stale"}


def test_low_stock_notifies_and_requests_restock(product: Product) -> None:
    product.stock = 2
    product.save()

    notification = Notification.objects.get(kind="low_stock")
    assert notification.product_id == product.pk
    assert notification.message == "Low stock for Dune: 2 left"
    restock = ActivityLog.objects.get(action="restock_requested")
    assert restock.details == {"stock": 2, "reorder_threshold": 5}


def test_enough_stock_sends_no_notification(product: Product) -> None:
    product.stock = 5
    product.save()

    assert not Notification.objects.exists()


def test_tag_changes_logged_with_pk_set(product: Product, tags: list[Tag]) -> None:
    new, sale, gift = tags
    product.tags.add(new, sale)
    product.tags.remove(sale)
    product.tags.clear()

    logs = ActivityLog.objects.filter(action__startswith="tags_").order_by("pk")
    assert [(log.action, log.details["pk_set"]) for log in logs] == [
        ("tags_add", sorted([new.pk, sale.pk])),
        ("tags_remove", [sale.pk]),
        ("tags_clear", []),
    ]
    assert {log.object_id for log in logs} == {product.pk}


def test_reverse_tag_change_logged_on_the_tag(product: Product, tags: list[Tag]) -> None:
    tags[0].products.add(product)

    log = ActivityLog.objects.get(action="tags_add")
    assert (log.model_name, log.object_id, log.details) == (
        "Tag",
        tags[0].pk,
        {"pk_set": [product.pk], "reverse": True},
    )


def test_login_logout_and_failed_login_recorded(client: Client) -> None:
    user = get_user_model().objects.create_user("carol", password="pw-carol-123")

    wrong = client.post(reverse("login"), {"username": "carol", "password": "nope"})
    right = client.post(reverse("login"), {"username": "carol", "password": "pw-carol-123"})
    client.post(reverse("logout"))

    assert (wrong.status_code, right.status_code) == (200, 302)
    events = LoginEvent.objects.order_by("pk")
    assert [(e.kind, e.username, e.user_id) for e in events] == [
        (LoginEvent.Kind.FAILED, "carol", None),
        (LoginEvent.Kind.LOGGED_IN, "carol", user.pk),
        (LoginEvent.Kind.LOGGED_OUT, "carol", user.pk),
    ]
    assert {e.path for e in events} == {reverse("login"), reverse("logout")}
