"""What demo_traffic's simulated users do; each action drives the demo's real code paths."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

from asgiref.sync import async_to_sync
from django.urls import reverse

from demo import services
from demo.models import BlogPost, Category, Order, Product, Tag
from demo.traffic.transport import HttpResult, Session

PASSWORD = "demo-traffic-Pa55word"
CATEGORIES = ["Books", "Games", "Garden", "Kitchen", "Toys"]
TAGS = ["new", "sale", "eco", "gift", "bestseller", "clearance"]
_ADJECTIVES = ["Red", "Quiet", "Handmade", "Solar", "Vintage", "Tiny", "Deluxe", "Bamboo"]
_NOUNS = ["Lamp", "Kettle", "Puzzle", "Novel", "Shovel", "Robot", "Teapot", "Board Game"]
MIN_PRODUCTS = 15
MAX_PRODUCTS = 60
MAX_LOGGED_IN = 5
# Kinds that pace together: each of these hashes a password.
GROUPS = dict.fromkeys(("signup", "login", "login_failed", "logout"), "accounts")

Action = Callable[[], str]


def catalog_ensure() -> None:
    """Create the categories, tags and first products the traffic works on, if missing."""
    for name in CATEGORIES:
        Category.objects.get_or_create(name=name)
    for name in TAGS:
        Tag.objects.get_or_create(name=name)
    categories = list(Category.objects.all())
    rng = random.Random()
    for _ in range(MIN_PRODUCTS - Product.objects.count()):
        Product.objects.create(
            name=f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}",
            category=rng.choice(categories),
            stock=rng.randint(5, 40),
            reorder_threshold=rng.randint(3, 8),
            price=Decimal(rng.randint(199, 9999)) / 100,
        )


class DemoActions:
    """Simulated shoppers and staff; every public method does one thing and returns its kind."""

    def __init__(self, *, new_session: Callable[[], Session], failures: Counter[str]) -> None:
        self._new_session = new_session
        self._failures = failures
        self._rng = random.Random()
        self._users: list[str] = []
        self._logged_in: list[Session] = []

    def weighted(self) -> dict[str, tuple[float, Action]]:
        """Return every action by kind with its relative weight, in a sensible first-tour order."""
        return {
            "signup": (1, self.signup),
            "login": (2, self.login),
            "browse": (8, self.browse),
            "product_create": (2, self.product_create),
            "product_update": (4, self.product_update),
            "retag": (3, self.retag),
            "order": (5, self.order),
            "ship": (2, self.ship),
            "report": (2, self.report),
            "stock_audit": (2, self.stock_audit),
            "recommendations": (2, self.recommendations),
            "blog_post": (2, self.blog_post),
            "product_delete": (1, self.product_delete),
            "login_failed": (1, self.login_failed),
            "logout": (1, self.logout),
        }

    # --- helpers ---------------------------------------------------------------------------

    def _check(self, kind: str, result: HttpResult, *expected: int) -> HttpResult:
        """Count a response whose status is not one of ``expected`` as a handled failure."""
        if result.status not in expected:
            self._failures[f"{kind}_http_{result.status}"] += 1
        return result

    def _browser(self) -> Session:
        """Return a logged-in session half of the time (when there is one), else a new one."""
        if self._logged_in and self._rng.random() < 0.5:
            return self._rng.choice(self._logged_in)
        return self._new_session()

    def _product_id(self) -> int | None:
        """Return a random product's id, or None when there are none."""
        ids = list(Product.objects.values_list("pk", flat=True))
        return self._rng.choice(ids) if ids else None

    # --- accounts (HTTP) -------------------------------------------------------------------

    def signup(self) -> str:
        """Sign a new user up through the signup view (a Profile follows)."""
        username = f"shopper_{self._rng.randrange(16**8):08x}"
        data = {"username": username, "password1": PASSWORD, "password2": PASSWORD}
        result = self._check("signup", self._new_session().post(reverse("demo:signup"), data), 201)
        if result.status == 201:
            self._users.append(username)
        return "signup"

    def login(self) -> str:
        """Open the login form and log a known user in with the right password."""
        if not self._users:
            return self.signup()
        session = self._new_session()
        self._check("login_form", session.get(reverse("login")), 200)
        data = {"username": self._rng.choice(self._users), "password": PASSWORD}
        if self._check("login", session.post(reverse("login"), data), 302).status == 302:
            self._logged_in.append(session)
        if len(self._logged_in) > MAX_LOGGED_IN:
            self._logout(self._logged_in.pop(0))
        return "login"

    def login_failed(self) -> str:
        """Try to log in with a wrong password (the form comes back with an error)."""
        username = self._rng.choice(self._users) if self._users else "nobody"
        data = {"username": username, "password": "not-the-password"}
        session = self._new_session()
        self._check("login_form", session.get(reverse("login")), 200)
        self._check("login_failed", session.post(reverse("login"), data), 200)
        return "login_failed"

    def logout(self) -> str:
        """Log one of the logged-in sessions out."""
        if not self._logged_in:
            return self.login()
        self._logout(self._logged_in.pop(self._rng.randrange(len(self._logged_in))))
        return "logout"

    def _logout(self, session: Session) -> None:
        """POST to the logout view."""
        self._check("logout", session.post(reverse("logout"), {}), 200, 302)

    # --- shop (HTTP) -----------------------------------------------------------------------

    def browse(self) -> str:
        """View the product list, a category's list, or one product."""
        roll = self._rng.random()
        path = reverse("demo:product_list")
        if roll >= 0.7 and (product_id := self._product_id()) is not None:
            path = reverse("demo:product_detail", args=[product_id])
        elif roll >= 0.4:
            category_id = Category.objects.values_list("pk", flat=True).order_by("?").first()
            path = f"{path}?category={category_id}"
        self._check("browse", self._browser().get(path), 200)
        return "browse"

    def product_create(self) -> str:
        """Add a product through the create view (or delete one when the shop is full)."""
        if Product.objects.count() >= MAX_PRODUCTS:
            return self.product_delete()
        category_id = Category.objects.values_list("pk", flat=True).order_by("?").first()
        data = {
            "name": f"{self._rng.choice(_ADJECTIVES)} {self._rng.choice(_NOUNS)}",
            "category": str(category_id),
            "stock": str(self._rng.randint(0, 40)),
            "reorder_threshold": str(self._rng.randint(3, 8)),
            "price": f"{self._rng.randint(199, 9999) / 100:.2f}",
        }
        session = self._new_session()
        self._check("product_create", session.post(reverse("demo:product_create"), data), 201)
        return "product_create"

    def product_update(self) -> str:
        """Change a product's stock (sometimes below its threshold) and price."""
        product_id = self._product_id()
        if product_id is None:
            return self.product_create()
        data = {
            "stock": str(self._rng.randint(0, 40)),
            "price": f"{self._rng.randint(199, 9999) / 100:.2f}",
        }
        path = reverse("demo:product_update", args=[product_id])
        self._check("product_update", self._new_session().post(path, data), 200)
        return "product_update"

    def product_delete(self) -> str:
        """Delete a product (or add one when the shop is nearly empty)."""
        product_id = self._product_id()
        if product_id is None or Product.objects.count() <= MIN_PRODUCTS:
            return self.product_create()
        path = reverse("demo:product_delete", args=[product_id])
        self._check("product_delete", self._new_session().post(path, {}), 200)
        return "product_delete"

    def order(self) -> str:
        """Place an order; a declined payment is handled by the service and counted here."""
        product_id = self._product_id()
        if product_id is None:
            return self.product_create()
        data = {"product": str(product_id), "quantity": str(self._rng.randint(1, 3))}
        result = self._check("order", self._browser().post(reverse("demo:order_create"), data), 201)
        if result.json().get("status") == Order.Status.PAYMENT_FAILED:
            self._failures["payment_declined"] += 1
        return "order"

    def ship(self) -> str:
        """Ship a paid order through the async view (order_shipped.asend)."""
        paid = Order.objects.filter(status=Order.Status.PAID).order_by("?")
        order_id = paid.values_list("pk", flat=True).first()
        if order_id is None:
            return self.order()
        path = reverse("demo:order_ship", args=[order_id])
        self._check("ship", self._new_session().post(path, {}), 200)
        return "ship"

    def report(self) -> str:
        """Generate the stock report (a slow receiver, and an upload that sometimes fails)."""
        result = self._check("report", self._browser().post(reverse("demo:report_create"), {}), 201)
        if result.json().get("delivered") is False:
            self._failures["report_upload_failed"] += 1
        return "report"

    def recommendations(self) -> str:
        """View recommendations; the upstream service's failures come back as a 500."""
        result = self._browser().get(reverse("demo:recommendations"))
        if result.status == 500:
            self._failures["recommendations_500"] += 1
        else:
            self._check("recommendations", result, 200)
        return "recommendations"

    # --- in-process --------------------------------------------------------------------------

    def retag(self) -> str:
        """Add, remove, replace or clear a product's tags (m2m_changed)."""
        product = Product.objects.order_by("?").first()
        if product is None:
            return self.product_create()
        tags = list(Tag.objects.order_by("?")[: self._rng.randint(1, 3)])
        roll = self._rng.random()
        if roll < 0.45:
            product.tags.add(*tags)
        elif roll < 0.8:
            product.tags.remove(*tags)
        elif roll < 0.95:
            product.tags.set(tags)
        else:
            product.tags.clear()
        return "retag"

    def blog_post(self) -> str:
        """Write a blog post; a pre_save receiver sets its slug."""
        title = f"{self._rng.choice(_ADJECTIVES)} ideas for your {self._rng.choice(_NOUNS)}"
        BlogPost.objects.create(title=title, body="Lorem ipsum.")
        return "blog_post"

    def stock_audit(self) -> str:
        """Run the stock audit (stock_audited.asend_robust) on an event loop."""
        responses = async_to_sync(services.stock_audit_async)()
        for _, response in responses:
            if isinstance(response, Exception):
                self._failures[f"stock_audit_{type(response).__name__}"] += 1
        return "stock_audit"
