"""The small shop the demo's receivers act on."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models


class Category(models.Model):
    """A product category."""

    name = models.CharField(max_length=100, unique=True)

    class Meta:
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    """A free-form label on products (the m2m the demo changes)."""

    name = models.CharField(max_length=50, unique=True)

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    """A product with stock; saves and deletes fire most of the demo's receivers."""

    name = models.CharField(max_length=200)
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="products")
    tags = models.ManyToManyField(Tag, blank=True, related_name="products")
    stock = models.PositiveIntegerField(default=0)
    reorder_threshold = models.PositiveIntegerField(default=5)
    price = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"))

    def __str__(self) -> str:
        return self.name


class BlogPost(models.Model):
    """A post whose slug a pre_save receiver fills in."""

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, blank=True, db_index=True)
    body = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.title


class Profile(models.Model):
    """Created for every new user by a post_save receiver."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    bio = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Profile of {self.user}"


class ActivityLog(models.Model):
    """One line of the audit trail written by receivers."""

    action = models.CharField(max_length=30, db_index=True)
    model_name = models.CharField(max_length=50)
    object_id = models.BigIntegerField(null=True)
    object_repr = models.CharField(max_length=200)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.action} {self.model_name} {self.object_repr}"


class Notification(models.Model):
    """A message for staff or customers (low stock, order confirmation, shipment)."""

    kind = models.CharField(max_length=30, db_index=True)
    message = models.CharField(max_length=300)
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"[{self.kind}] {self.message}"


class Order(models.Model):
    """An order for one product; placing it sends the order_placed signal."""

    class Status(models.TextChoices):
        PLACED = "placed"
        PAID = "paid"
        PAYMENT_FAILED = "payment_failed"
        SHIPPED = "shipped"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="orders")
    quantity = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLACED)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Order #{self.pk}: {self.quantity} x {self.product_id}"


class LoginEvent(models.Model):
    """A login, logout or failed login, recorded by the auth receivers."""

    class Kind(models.TextChoices):
        LOGGED_IN = "logged_in"
        LOGGED_OUT = "logged_out"
        FAILED = "failed"

    kind = models.CharField(max_length=20, choices=Kind.choices, db_index=True)
    username = models.CharField(max_length=150, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    path = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.username}"
