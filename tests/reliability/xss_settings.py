"""Settings of the XSS tests' daphne server: the project's, plus a page that fires payloads."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "tests.reliability.xss_urls"
