"""Forms the demo's POST endpoints validate input with."""

from django import forms

from demo.models import Product


class ProductForm(forms.ModelForm):  # type: ignore[type-arg]  # generic only in the stubs
    """Create a product."""

    class Meta:
        model = Product
        fields = ["name", "category", "stock", "reorder_threshold", "price"]


class ProductUpdateForm(forms.ModelForm):  # type: ignore[type-arg]
    """Change a product's stock and price."""

    class Meta:
        model = Product
        fields = ["stock", "price"]


class OrderForm(forms.Form):
    """Order some units of one product."""

    product = forms.ModelChoiceField(queryset=Product.objects.all())
    quantity = forms.IntegerField(min_value=1, max_value=20)
