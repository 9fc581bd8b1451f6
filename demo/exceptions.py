"""Errors raised by the demo's flaky receivers, as real third-party calls would."""


class DemoServiceError(Exception):
    """Base class for the demo's simulated upstream failures."""


class PaymentGatewayError(DemoServiceError):
    """The (simulated) payment gateway refused or timed out."""


class StorageUnavailableError(DemoServiceError):
    """The (simulated) report storage bucket could not be reached."""


class WarehouseTimeoutError(DemoServiceError):
    """The (simulated) warehouse API did not answer in time."""


class UpstreamServiceError(DemoServiceError):
    """A (simulated) upstream service failed while a view was rendering."""
