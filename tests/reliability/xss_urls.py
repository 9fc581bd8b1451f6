"""URLs of the XSS tests' server: the project's, and /xss/fire/ which sends hostile signals.

Every payload is placed where captured text comes from: a receiver's name, a signal's name (the
module attribute that holds it), a sender's repr, an argument's value and key, an exception's
message and a model instance's repr. The receivers stay connected, so the registry shows them.
"""

from __future__ import annotations

import sys
from typing import Any

from django.contrib.auth.models import Group
from django.dispatch import Signal
from django.http import HttpRequest, JsonResponse
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns
from tests.reliability.xss_payloads import PAYLOADS

_module = sys.modules[__name__]


class Sender:
    """A sender whose repr is a payload."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _receivers(index: int, payload: str) -> tuple[Any, Any]:
    """Return an ok receiver and a failing one, both named by the payload."""

    def ok(sender: Any, **kwargs: Any) -> str:
        return "ok"

    def failing(sender: Any, **kwargs: Any) -> None:
        raise ValueError(payload)

    ok.__qualname__ = payload
    failing.__qualname__ = f"{payload} failing"
    return ok, failing


SIGNALS: list[tuple[str, Signal]] = []
for _index, _payload in enumerate(PAYLOADS):
    _signal = Signal()
    setattr(_module, _payload, _signal)  # the signal's dotted name ends with the payload
    for _receiver in _receivers(_index, _payload):
        _signal.connect(_receiver, weak=False, dispatch_uid=f"xss-{_index}-{_receiver.__name__}")
    SIGNALS.append((_payload, _signal))


def fire(request: HttpRequest) -> JsonResponse:
    """Send payloads ``start`` to ``start + count`` (all by default) through every place."""
    start = int(request.GET.get("start", 0))
    count = int(request.GET.get("count", len(SIGNALS)))
    for payload, signal in SIGNALS[start : start + count]:
        signal.send_robust(sender=Sender(payload), note=payload, **{payload[:90]: "payload as key"})
        group, _ = Group.objects.get_or_create(name=payload[:150])  # post_save, instance repr
        group.delete()
    return JsonResponse({"sent": len(SIGNALS[start : start + count])})


urlpatterns = [*project_urlpatterns, path("xss/fire/", fire)]
