"""The project's URLs, with the dashboard's processes page routed (until dashboard.urls has it)."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from dashboard import urls as dashboard_urls
from dashboard import views

dashboard_patterns = list(dashboard_urls.urlpatterns)
if not any(getattr(p, "name", None) == "processes" for p in dashboard_patterns):
    dashboard_patterns.append(path("processes/", views.processes, name="processes"))

urlpatterns = [
    path("", RedirectView.as_view(url="/signals/", permanent=False)),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("signals/", include((dashboard_patterns, dashboard_urls.app_name))),
    path("demo/", include("demo.urls")),
]
