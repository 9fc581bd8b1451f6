"""The project's URLs: admin, auth views, the dashboard at /signals/ and the demo at /demo/."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/signals/", permanent=False)),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("signals/", include("dashboard.urls")),
    path("demo/", include("demo.urls")),
]
