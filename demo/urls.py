"""URLs of the demo app; config includes them under ``demo/``."""

from django.urls import path

from demo import views

app_name = "demo"

urlpatterns = [
    path("", views.product_list, name="product_list"),
    path("products/<int:pk>/", views.product_detail, name="product_detail"),
    path("products/new/", views.product_create, name="product_create"),
    path("products/<int:pk>/edit/", views.product_update, name="product_update"),
    path("products/<int:pk>/delete/", views.product_delete, name="product_delete"),
    path("orders/", views.order_create, name="order_create"),
    path("orders/<int:pk>/ship/", views.order_ship, name="order_ship"),
    path("reports/", views.report_create, name="report_create"),
    path("recommendations/", views.recommendations, name="recommendations"),
    path("signup/", views.signup, name="signup"),
]
