"""Websocket routes of the dashboard, for the project's asgi.py (URLRouter)."""

from __future__ import annotations

from django.urls import path

from dashboard.consumers import LiveFeedConsumer

__all__ = ["WEBSOCKET_PATH", "websocket_urlpatterns"]

WEBSOCKET_PATH = "/ws/signals/"

websocket_urlpatterns = [path("ws/signals/", LiveFeedConsumer.as_asgi())]
