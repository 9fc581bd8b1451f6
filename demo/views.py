"""Plain HTTP endpoints that drive the demo's real code paths (and so its signals)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.forms import UserCreationForm
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from demo import selectors, services
from demo.forms import OrderForm, ProductForm, ProductUpdateForm
from demo.models import Category, Product


def _form_errors(form: object) -> JsonResponse:
    """Return a 400 response listing the form's errors."""
    return JsonResponse({"errors": form.errors.get_json_data()}, status=400)  # type: ignore[attr-defined]


@require_GET
def product_list(request: HttpRequest) -> HttpResponse:
    """Render the product list, optionally for one category (?category=<id>)."""
    raw_category = request.GET.get("category", "")
    category_id = int(raw_category) if raw_category.isdigit() else None
    context = {
        "categories": Category.objects.order_by("name"),
        "products": selectors.product_list(category_id=category_id),
        "category_id": category_id,
    }
    return render(request, "demo/product_list.html", context)


@require_GET
def product_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Render one (cached) product."""
    product = selectors.product_get(product_id=pk)
    if product is None:
        raise Http404("No such product")
    return render(request, "demo/product_detail.html", {"product": product})


@csrf_exempt
@require_POST
def product_create(request: HttpRequest) -> JsonResponse:
    """Create a product from form data."""
    form = ProductForm(request.POST)
    if not form.is_valid():
        return _form_errors(form)
    product = form.save()
    return JsonResponse({"product": product.pk}, status=201)


@csrf_exempt
@require_POST
def product_update(request: HttpRequest, pk: int) -> JsonResponse:
    """Change a product's stock and price."""
    form = ProductUpdateForm(request.POST, instance=get_object_or_404(Product, pk=pk))
    if not form.is_valid():
        return _form_errors(form)
    product = form.save()
    return JsonResponse({"product": product.pk, "stock": product.stock})


@csrf_exempt
@require_POST
def product_delete(request: HttpRequest, pk: int) -> JsonResponse:
    """Delete a product (archived first by a pre_delete receiver)."""
    get_object_or_404(Product, pk=pk).delete()
    return JsonResponse({"deleted": pk})


@csrf_exempt
@require_POST
def order_create(request: HttpRequest) -> JsonResponse:
    """Place an order; its order_placed receivers may fail, which the service handles."""
    form = OrderForm(request.POST)
    if not form.is_valid():
        return _form_errors(form)
    user = request.user if request.user.is_authenticated else None
    order = services.order_place(
        product=form.cleaned_data["product"], quantity=form.cleaned_data["quantity"], user=user
    )
    return JsonResponse({"order": order.pk, "status": order.status}, status=201)


@csrf_exempt
@require_POST
async def order_ship(request: HttpRequest, pk: int) -> JsonResponse:
    """Ship an order from an async view, announcing it with ``await order_shipped.asend(...)``."""
    order = await services.order_ship_async(order_id=pk)
    if order is None:
        raise Http404("No such order")
    return JsonResponse({"order": order.pk, "status": order.status})


@csrf_exempt
@require_POST
def report_create(request: HttpRequest) -> JsonResponse:
    """Generate the stock report; a failed upload is reported, not raised."""
    name = f"stock-{timezone.now():%Y%m%d-%H%M%S-%f}"
    return JsonResponse(
        {"report": name, "delivered": services.report_generate(name=name)}, status=201
    )


@require_GET
def recommendations(request: HttpRequest) -> HttpResponse:
    """Render recommended products; the upstream service's failures surface as a 500."""
    product_ids = list(Product.objects.values_list("pk", flat=True)[:100])
    chosen = services.recommendations_fetch(product_ids=product_ids)
    products = Product.objects.filter(pk__in=chosen).select_related("category")
    return render(request, "demo/recommendations.html", {"products": products})


@csrf_exempt
@require_POST
def signup(request: HttpRequest) -> JsonResponse:
    """Sign a user up (username, password1, password2); a receiver creates the Profile."""
    form: UserCreationForm[Any] = UserCreationForm(request.POST)
    if not form.is_valid():
        return _form_errors(form)
    user = form.save()
    return JsonResponse({"user": user.pk, "username": user.get_username()}, status=201)
