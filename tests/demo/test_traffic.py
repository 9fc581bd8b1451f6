"""The demo_traffic command, its rate loop, and its HTTP sessions."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from demo.models import ActivityLog, BlogPost, LoginEvent, Order, Product, Profile
from demo.traffic import runner as runner_module
from demo.traffic.actions import MIN_PRODUCTS, DemoActions
from demo.traffic.runner import TrafficRunner
from demo.traffic.transport import ClientSession, HttpResult

SUMMARY = re.compile(
    r"^demo_traffic: (\d+) actions in [\d.]+s \([\d.]+/s\): (.+); handled failures: (.+)$"
)


def parse_summary(text: str) -> tuple[int, dict[str, int]]:
    """Return the total and the per-kind counts of a summary line."""
    match = SUMMARY.match(text.strip())
    assert match, text
    counts = {k: int(v) for k, v in (pair.split("=") for pair in match.group(2).split())}
    return int(match.group(1)), counts


@pytest.mark.django_db
def test_command_runs_every_kind_and_prints_a_summary(
    failure_rate: Callable[[float], None],
) -> None:
    failure_rate(0.0)  # with a declined payment, "ship" finds no paid order and orders instead
    out = StringIO()

    call_command("demo_traffic", seconds=1, rate=50, stdout=out)

    total, counts = parse_summary(out.getvalue())
    assert total == sum(counts.values()) >= 15
    assert set(counts) == set(DemoActions(new_session=ClientSession, failures=Counter()).weighted())
    assert get_user_model().objects.count() == Profile.objects.count() >= 1
    assert LoginEvent.objects.filter(kind=LoginEvent.Kind.LOGGED_IN).exists()
    assert LoginEvent.objects.filter(kind=LoginEvent.Kind.FAILED).exists()
    assert LoginEvent.objects.filter(kind=LoginEvent.Kind.LOGGED_OUT).exists()
    assert Order.objects.exists() and BlogPost.objects.exclude(slug="").exists()
    assert Product.objects.count() >= MIN_PRODUCTS
    assert ActivityLog.objects.filter(action__startswith="tags_").exists()


@pytest.mark.django_db
def test_command_survives_failing_receivers(failure_rate: Callable[[float], None]) -> None:
    failure_rate(1.0)
    out = StringIO()

    call_command("demo_traffic", seconds=1, rate=50, stdout=out)

    failures = out.getvalue().strip().rsplit("handled failures: ", 1)[1]
    counted = {pair.split("=")[0] for pair in failures.split()}
    assert counted == {
        "payment_declined",
        "report_upload_failed",
        "recommendations_500",
        "stock_audit_WarehouseTimeoutError",
    }


@pytest.mark.django_db
def test_command_rejects_a_bad_rate() -> None:
    with pytest.raises(CommandError):
        call_command("demo_traffic", seconds=1, rate=0)


def test_runner_tours_every_kind_first() -> None:
    order: list[str] = []
    actions = {
        k: (w, lambda k=k: order.append(k) or k) for k, w in [("a", 1), ("b", 1), ("c", 100)]
    }
    runner = TrafficRunner(actions, Counter())

    for _ in range(3):
        runner.step()

    assert order == ["a", "b", "c"]


def test_runner_counts_unexpected_errors_and_reports_each_type_once() -> None:
    reports: list[str] = []

    def broken() -> str:
        raise ZeroDivisionError("boom")

    runner = TrafficRunner({"broken": (1, broken)}, Counter(), on_error=reports.append)
    runner.step()
    runner.step()

    assert runner.done == Counter(broken=2)
    assert runner.failures == Counter(error_ZeroDivisionError=2)
    assert len(reports) == 1 and "ZeroDivisionError: boom" in reports[0]


def test_runner_rests_slow_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "SLOW", 0.01)
    monkeypatch.setattr(runner_module, "COOLDOWN", 1e6)
    actions = {
        "login": (1000, lambda: time.sleep(0.02) or "login"),  # slow: its group rests
        "logout": (1000, lambda: "logout"),
        "x": (1, lambda: "x"),
    }
    runner = TrafficRunner(actions, Counter(), groups={"login": "auth", "logout": "auth"})

    for _ in range(22):  # the tour (login, logout, x), then only x is ready
        runner.step()

    assert runner.done == Counter(login=1, logout=1, x=20)


def test_runner_paces_and_summarises() -> None:
    runner = TrafficRunner({"noop": (1, lambda: "noop")}, Counter(late=2))

    elapsed = runner.run(rate=100, seconds=0.1)

    assert 0.1 <= elapsed < 0.5
    assert 8 <= runner.done["noop"] <= 12
    total, counts = parse_summary(runner.summary(elapsed))
    assert total == runner.done["noop"] and counts == {"noop": total}
    assert runner.summary(elapsed).endswith("handled failures: late=2")


def test_http_result_json() -> None:
    assert HttpResult(200, b'{"a": 1}').json() == {"a": 1}
    assert HttpResult(500, b"<html>").json() == {}
    assert HttpResult(200, b"[1]").json() == {}


@pytest.mark.slow
def test_url_mode_drives_a_running_server(live_daphne) -> None:
    result = live_daphne.manage("demo_traffic", "--seconds", "8", "--url", live_daphne.url)

    total, counts = parse_summary(result.stdout)
    failures = result.stdout.rsplit("handled failures: ", 1)[1]
    assert "_http_" not in failures, result.stdout
    assert counts["signup"] >= 1 and counts["order"] >= 1
    counted = live_daphne.shell(
        "from demo.models import LoginEvent, Profile, Order\n"
        "print(Profile.objects.count(), LoginEvent.objects.filter(kind='logged_in').count(),"
        " Order.objects.filter(status__in=['shipped', 'paid', 'payment_failed']).count())"
    )
    profiles, logins, orders = map(int, counted.split())
    assert profiles >= 1 and logins >= 1 and orders >= 1
