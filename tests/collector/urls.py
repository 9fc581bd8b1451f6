"""URLs for collector tests: a page that renders a template and a view that raises."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import path


def page(request: HttpRequest) -> HttpResponse:
    """Render a small template (sends template_rendered under the test runner)."""
    template = engines["django"].from_string("<p>{{ greeting }}</p>")
    return HttpResponse(template.render({"greeting": "hello"}, request))


def explode(request: HttpRequest) -> HttpResponse:
    """Raise, so the handler sends got_request_exception."""
    raise RuntimeError("view failed on purpose")


urlpatterns = [
    path("page/", page),
    path("explode/", explode),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view()),
]
