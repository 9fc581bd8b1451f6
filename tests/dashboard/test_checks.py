"""System checks signals_dashboard.W001-W003."""

from __future__ import annotations

from django.test import override_settings

from dashboard import checks


def test_channel_layer_missing() -> None:
    with override_settings(CHANNEL_LAYERS={}):
        (warning,) = checks.check_channel_layer()
    assert warning.id == "signals_dashboard.W001"
    assert checks.check_channel_layer() == []


def test_request_context_processor_missing() -> None:
    engine = {"BACKEND": "django.template.backends.django.DjangoTemplates", "OPTIONS": {}}
    with override_settings(TEMPLATES=[engine]):
        (warning,) = checks.check_request_context_processor()
    assert warning.id == "signals_dashboard.W002"
    assert checks.check_request_context_processor() == []


def test_access_check_unimportable() -> None:
    with override_settings(SIGNAL_MONITOR={"ACCESS_CHECK": "no.such.check"}):
        (warning,) = checks.check_access_check()
    assert warning.id == "signals_dashboard.W003"
    with override_settings(SIGNAL_MONITOR={"ACCESS_CHECK": "django.conf.settings"}):
        assert checks.check_access_check()[0].id == "signals_dashboard.W003"
    assert checks.check_access_check() == []
