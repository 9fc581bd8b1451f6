"""Writes and business actions of the demo shop; each one sends real signals."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from demo.exceptions import PaymentGatewayError, StorageUnavailableError, UpstreamServiceError
from demo.models import Order, Product
from demo.signals import order_placed, order_shipped, report_generated, stock_audited

logger = logging.getLogger(__name__)

# Share of calls in which the simulated recommendation service fails (the flaky view).
UPSTREAM_FAILURE_RATE = 0.2


def order_place(*, product: Product, quantity: int, user: Any = None) -> Order:
    """Create an order, announce it with send_robust(), and return it with its final status."""
    order = Order.objects.create(product=product, quantity=quantity)
    results = order_placed.send_robust(sender=Order, order=order, user=user)
    errors = [response for _, response in results if isinstance(response, Exception)]
    for error in errors:
        logger.warning("order_placed receiver failed for order #%s: %r", order.pk, error)
    failed = any(isinstance(error, PaymentGatewayError) for error in errors)
    order.status = Order.Status.PAYMENT_FAILED if failed else Order.Status.PAID
    order.save(update_fields=["status"])
    return order


async def order_ship_async(*, order_id: int) -> Order | None:
    """Announce the shipment with asend(); return the order, or None if it does not exist."""
    order = await Order.objects.select_related("product").filter(pk=order_id).afirst()
    if order is not None:
        await order_shipped.asend(sender=Order, order=order)
    return order


def report_generate(*, name: str) -> bool:
    """Send report_generated; return False when a receiver failed (handled, as the app would)."""
    rows = list(Product.objects.values("pk", "name", "stock")[:100])
    try:
        report_generated.send(sender=Product, report_name=name, rows=rows)
    except StorageUnavailableError as error:
        logger.warning("report %s not delivered: %s", name, error)
        return False
    return True


async def stock_audit_async() -> list[tuple[Callable[..., Any], Any]]:
    """Send stock_audited with asend_robust() over up to 50 products; return the responses."""
    product_ids = [pk async for pk in Product.objects.values_list("pk", flat=True)[:50]]
    return await stock_audited.asend_robust(sender=Product, product_ids=product_ids)


def recommendations_fetch(*, product_ids: list[int]) -> list[int]:
    """Ask the simulated recommendation service; it fails UPSTREAM_FAILURE_RATE of the time."""
    if random.random() < UPSTREAM_FAILURE_RATE:
        raise UpstreamServiceError("recommendation service returned 503")
    return random.sample(product_ids, k=min(3, len(product_ids)))
