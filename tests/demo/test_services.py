"""The demo's custom signals: send_robust, send, asend and asend_robust paths, flaky and slow."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from asgiref.sync import async_to_sync

from demo import receivers, services
from demo.exceptions import StorageUnavailableError, WarehouseTimeoutError
from demo.models import ActivityLog, Notification, Order, Product
from demo.signals import report_generated

pytestmark = pytest.mark.django_db


def test_order_paid_reserves_stock_and_confirms(
    product: Product, failure_rate: Callable[[float], None]
) -> None:
    failure_rate(0.0)

    order = services.order_place(product=product, quantity=3)

    product.refresh_from_db()
    assert (order.status, product.stock) == (Order.Status.PAID, 17)
    confirmation = Notification.objects.get(kind="order_confirmation")
    assert confirmation.message == f"Order #{order.pk} confirmed"


def test_declined_payment_is_handled_and_other_receivers_still_run(
    product: Product, failure_rate: Callable[[float], None]
) -> None:
    failure_rate(1.0)

    order = services.order_place(product=product, quantity=1)

    product.refresh_from_db()
    assert (order.status, product.stock) == (Order.Status.PAYMENT_FAILED, 19)
    assert Notification.objects.filter(kind="order_confirmation").count() == 1


def test_report_delivered(product: Product, failure_rate: Callable[[float], None]) -> None:
    failure_rate(0.0)

    assert services.report_generate(name="weekly") is True
    assert Notification.objects.get(kind="report_ready").message == "Report weekly is ready"


def test_failed_upload_handled_and_later_receivers_skipped(
    product: Product, failure_rate: Callable[[float], None]
) -> None:
    failure_rate(1.0)

    assert services.report_generate(name="weekly") is False
    assert not Notification.objects.filter(kind="report_ready").exists()


def test_report_renderer_is_slow() -> None:
    started = time.perf_counter()
    pages = receivers.render_report_pdf(sender=Product, report_name="r", rows=[{}, {}])

    assert pages == 2
    assert time.perf_counter() - started >= 0.02


def test_report_signal_raises_from_send(failure_rate: Callable[[float], None]) -> None:
    failure_rate(1.0)

    with pytest.raises(StorageUnavailableError, match="bucket demo-reports unreachable"):
        report_generated.send(sender=Product, report_name="r", rows=[])


def test_stock_audit_collects_async_failures(
    product: Product, failure_rate: Callable[[float], None]
) -> None:
    failure_rate(1.0)

    responses = dict(async_to_sync(services.stock_audit_async)())

    assert isinstance(responses[receivers.push_stock_to_warehouse], WarehouseTimeoutError)
    assert responses[receivers.count_low_stock] == 0
    assert ActivityLog.objects.get(action="stock_audited").details == {"count": 1}


@pytest.mark.django_db(transaction=True)
async def test_ship_order_with_asend(product: Product) -> None:
    order = await Order.objects.acreate(product=product, quantity=1, status=Order.Status.PAID)

    shipped = await services.order_ship_async(order_id=order.pk)

    assert shipped is not None
    await order.arefresh_from_db()
    assert order.status == Order.Status.SHIPPED
    notification = await Notification.objects.aget(kind="shipped")
    assert notification.message == f"Order #{order.pk} shipped"


@pytest.mark.django_db(transaction=True)
async def test_ship_unknown_order_returns_none() -> None:
    assert await services.order_ship_async(order_id=999_999) is None
