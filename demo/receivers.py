"""The seeds' receivers, connected for real; every side effect of the demo starts here."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.cache import cache
from django.db.models import F, Model
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils.text import slugify

from demo.exceptions import PaymentGatewayError, StorageUnavailableError, WarehouseTimeoutError
from demo.models import ActivityLog, BlogPost, LoginEvent, Notification, Order, Product, Profile
from demo.signals import (
    low_stock_detected,
    order_placed,
    order_shipped,
    report_generated,
    stock_audited,
)

logger = logging.getLogger(__name__)

# Share of calls in which the flaky receivers raise; tests set it to 0.0 or 1.0.
FAILURE_RATE = 0.2


def _fails() -> bool:
    """Return True in about FAILURE_RATE of the calls."""
    return random.random() < FAILURE_RATE


def _path(request: HttpRequest | None) -> str:
    """Return the request's path, or "" when the signal came without a request."""
    return request.path[:200] if request is not None else ""


# --- Model signals (seed 001's examples) -----------------------------------------------------


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_user_profile(
    sender: type[Model], instance: Any, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    """Give every new user a Profile; the Profile's own post_save nests under this call."""
    if created and not raw:
        Profile.objects.create(user=instance)
        logger.info("Profile created for user %s", instance.get_username())


@receiver(pre_save, sender=BlogPost)
def set_slug(sender: type[BlogPost], instance: BlogPost, **kwargs: Any) -> None:
    """Fill in a missing slug from the title."""
    if not instance.slug:
        instance.slug = slugify(instance.title)[:200]


@receiver([post_save, post_delete], sender=Product)
def log_product_activity(sender: type[Product], instance: Product, **kwargs: Any) -> None:
    """Write an ActivityLog line for every product created, updated or deleted."""
    if kwargs.get("raw"):
        return
    created = kwargs.get("created")
    action = "deleted" if created is None else "created" if created else "updated"
    update_fields = sorted(kwargs.get("update_fields") or [])
    ActivityLog.objects.create(
        action=action,
        model_name="Product",
        object_id=instance.pk,
        object_repr=str(instance)[:200],
        details={"update_fields": update_fields} if update_fields else {},
    )


@receiver([post_save, post_delete], sender=Product)
def invalidate_product_cache(sender: type[Product], instance: Product, **kwargs: Any) -> None:
    """Drop the cached product and its category's cached listing."""
    cache.delete_many([f"product_{instance.pk}", f"category_{instance.category_id}_products"])


@receiver(post_save, sender=Product)
def notify_low_stock(sender: type[Product], instance: Product, **kwargs: Any) -> None:
    """Record a low-stock Notification and announce it; errors are logged, never raised."""
    try:
        if instance.stock < instance.reorder_threshold:
            Notification.objects.create(
                kind="low_stock",
                message=f"Low stock for {instance.name}: {instance.stock} left"[:300],
                product=instance,
            )
            low_stock_detected.send(sender=Product, product=instance)
    except Exception:
        logger.exception("Error in notify_low_stock for product %s", instance.pk)


@receiver(low_stock_detected)
def request_restock(sender: type[Product], product: Product, **kwargs: Any) -> None:
    """Ask purchasing for more stock (a receiver of a signal sent inside a receiver)."""
    ActivityLog.objects.create(
        action="restock_requested",
        model_name="Product",
        object_id=product.pk,
        object_repr=str(product)[:200],
        details={"stock": product.stock, "reorder_threshold": product.reorder_threshold},
    )


@receiver(m2m_changed, sender=Product.tags.through)
def log_tag_changes(
    sender: type[Model],
    instance: Model,
    action: str,
    reverse: bool,
    pk_set: set[int] | None,
    **kwargs: Any,
) -> None:
    """Log every tag change; the post_* actions also leave an ActivityLog line."""
    logger.info("m2m %s on %r: %s", action, instance, sorted(pk_set or []))
    if action.startswith("post_"):
        ActivityLog.objects.create(
            action=f"tags_{action.removeprefix('post_')}",
            model_name=type(instance).__name__,
            object_id=instance.pk,
            object_repr=str(instance)[:200],
            details={"pk_set": sorted(pk_set or []), "reverse": reverse},
        )


@receiver(pre_delete, sender=Product)
def archive_product(sender: type[Product], instance: Product, **kwargs: Any) -> None:
    """Keep a snapshot of a product before it is deleted."""
    ActivityLog.objects.create(
        action="archived",
        model_name="Product",
        object_id=instance.pk,
        object_repr=str(instance)[:200],
        details={
            "name": instance.name,
            "category_id": instance.category_id,
            "stock": instance.stock,
            "price": str(instance.price),
            "tag_ids": sorted(instance.tags.values_list("pk", flat=True)),
        },
    )


# --- Auth signals (seed 002) ------------------------------------------------------------------


@receiver(user_logged_in)
def record_login(
    sender: type[Model], request: HttpRequest | None, user: Any, **kwargs: Any
) -> None:
    """Record a successful login."""
    LoginEvent.objects.create(
        kind=LoginEvent.Kind.LOGGED_IN, username=user.get_username(), user=user, path=_path(request)
    )


@receiver(user_logged_out)
def record_logout(
    sender: type[Model] | None, request: HttpRequest | None, user: Any, **kwargs: Any
) -> None:
    """Record a logout (the user is None when nobody was logged in)."""
    username = user.get_username() if user is not None else ""
    LoginEvent.objects.create(
        kind=LoginEvent.Kind.LOGGED_OUT, username=username, user=user, path=_path(request)
    )


@receiver(user_login_failed)
def record_login_failure(
    sender: str, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    """Record a failed login with the username tried (Django has already masked the password)."""
    username = str(credentials.get("username", ""))[:150]
    LoginEvent.objects.create(kind=LoginEvent.Kind.FAILED, username=username, path=_path(request))


# --- order_placed: sent with send_robust() by services.place_order() --------------------------


@receiver(order_placed)
def reserve_stock(sender: type[Order], order: Order, **kwargs: Any) -> int:
    """Take the ordered quantity off the product's stock; returns the stock left."""
    product = order.product
    product.stock = max(0, product.stock - order.quantity)
    product.save(update_fields=["stock"])
    return product.stock


@receiver(order_placed)
def charge_payment(sender: type[Order], order: Order, **kwargs: Any) -> str:
    """Charge the customer; the simulated gateway fails about FAILURE_RATE of the time."""
    if _fails():
        raise PaymentGatewayError(f"gateway declined order #{order.pk}")
    return "charged"


@receiver(order_placed)
async def send_order_confirmation(sender: type[Order], order: Order, **kwargs: Any) -> None:
    """E-mail the customer (an async receiver, run by Django's sync send_robust)."""
    await asyncio.sleep(0.002)  # the mail API's round trip
    await Notification.objects.acreate(
        kind="order_confirmation",
        message=f"Order #{order.pk} confirmed",
        product_id=order.product_id,
    )


# --- order_shipped: sent with asend() by the async ship view ----------------------------------


@receiver(order_shipped)
async def notify_customer_shipped(sender: type[Order], order: Order, **kwargs: Any) -> None:
    """Tell the customer the parcel left (async receiver on an async send)."""
    await asyncio.sleep(0.001)
    await Notification.objects.acreate(
        kind="shipped", message=f"Order #{order.pk} shipped", product_id=order.product_id
    )


@receiver(order_shipped)
def mark_order_shipped(sender: type[Order], order: Order, **kwargs: Any) -> None:
    """Set the order's status (a sync receiver, run by asend() through sync_to_async)."""
    order.status = Order.Status.SHIPPED
    order.save(update_fields=["status"])


# --- report_generated: sent with send() by services.generate_report() -------------------------


@receiver(report_generated)
def render_report_pdf(
    sender: type[Model], report_name: str, rows: list[dict[str, Any]], **kwargs: Any
) -> int:
    """Render the report; deliberately slow (20-80 ms) like real PDF rendering."""
    time.sleep(random.uniform(0.02, 0.08))
    return len(rows)


@receiver(report_generated)
def upload_report(sender: type[Model], report_name: str, **kwargs: Any) -> str:
    """Upload the PDF; storage fails about FAILURE_RATE of the time and send() propagates it."""
    if _fails():
        raise StorageUnavailableError(
            f"bucket demo-reports unreachable while uploading {report_name}"
        )
    return f"s3://demo-reports/{report_name}.pdf"


@receiver(report_generated)
def email_report_link(sender: type[Model], report_name: str, **kwargs: Any) -> None:
    """Notify staff that the report is ready (not reached when the upload failed)."""
    Notification.objects.create(kind="report_ready", message=f"Report {report_name} is ready"[:300])


# --- stock_audited: sent with asend_robust() by services.audit_stock_async() ------------------


@receiver(stock_audited)
async def push_stock_to_warehouse(
    sender: type[Product], product_ids: list[int], **kwargs: Any
) -> int:
    """Push stock levels to the warehouse API, which times out about FAILURE_RATE of the time."""
    await asyncio.sleep(random.uniform(0.001, 0.005))
    if _fails():
        raise WarehouseTimeoutError(f"warehouse API timed out after {len(product_ids)} products")
    return len(product_ids)


@receiver(stock_audited)
async def count_low_stock(sender: type[Product], product_ids: list[int], **kwargs: Any) -> int:
    """Return how many audited products are below their reorder threshold."""
    return await Product.objects.filter(
        pk__in=product_ids, stock__lt=F("reorder_threshold")
    ).acount()


@receiver(stock_audited)
def log_stock_audit(sender: type[Product], product_ids: list[int], **kwargs: Any) -> None:
    """Write the audit to the activity log (a sync receiver on an async send)."""
    ActivityLog.objects.create(
        action="stock_audited",
        model_name="Product",
        object_repr=f"{len(product_ids)} products",
        details={"count": len(product_ids)},
    )
