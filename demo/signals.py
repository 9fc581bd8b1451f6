"""The demo's custom signals; the collector names each by this module path and attribute."""

from django.dispatch import Signal

# Sent with send_robust() by services.place_order(); kwargs: order, user.
order_placed = Signal()

# Sent with asend() by the async ship view; kwargs: order.
order_shipped = Signal()

# Sent with send() by the low-stock receiver (a signal sent inside a receiver); kwargs: product.
low_stock_detected = Signal()

# Sent with send() by services.generate_report(); kwargs: report_name, rows.
report_generated = Signal()

# Sent with asend_robust() by services.audit_stock_async(); kwargs: product_ids.
stock_audited = Signal()
