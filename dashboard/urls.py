"""Dashboard URLs; the project includes them under a prefix such as /signals/."""

from __future__ import annotations

from django.urls import path

from dashboard import views

app_name = "signals_dashboard"

urlpatterns = [
    path("", views.live, name="live"),
    path("signals/", views.signals, name="signals"),
    path("receivers/", views.receivers, name="receivers"),
    path("failures/", views.failures, name="failures"),
    path("failures/<int:call_id>/", views.failure, name="failure"),
    path("events/<int:event_id>/", views.event, name="event"),
    path("registry/", views.registry, name="registry"),
    path("processes/", views.processes, name="processes"),
]
