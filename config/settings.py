"""Settings for the signal monitor project; anything deployment-specific comes from the environment.

Environment variables (all optional; the defaults are the zero-setup demo: SQLite, in-memory layer):
  DJANGO_SECRET_KEY      required when DJANGO_DEBUG is off
  DJANGO_DEBUG           1/0 (default 1: the demo)
  DJANGO_ALLOWED_HOSTS   comma-separated (default 127.0.0.1,localhost,[::1],testserver)
  DJANGO_CSRF_TRUSTED_ORIGINS  comma-separated origins, e.g. https://monitor.example.com
  DATABASE_URL           postgres://user:pass@host:5432/name or sqlite:///path (default: SQLite)
  SQLITE_PATH / SQLITE_TEST_PATH  paths of the default SQLite database and its test copy
  REDIS_URL              redis://host:6379/0 selects channels-redis (default: in-memory layer);
                         socket timeouts are set (REDIS_OPTIONS below) unless the URL sets them
  DJANGO_BEHIND_HTTPS_PROXY  1: a reverse proxy terminates TLS and sets X-Forwarded-Proto
                         (secure cookies, request.is_secure() from the header)
  SIGNAL_MONITOR_MAX_AGE_DAYS / SIGNAL_MONITOR_MAX_EVENTS  retention (signals_prune)
  SIGNAL_MONITOR_WRITER     thread (default) or process: where events are built and stored
  SIGNAL_MONITOR_SQLITE_PATH  the monitor's own SQLite file (alias "signals", with MonitorRouter;
                         default: signals.sqlite3 beside a SQLite default database, so the
                         application's writes never wait for the monitor's; "" keeps the monitor
                         in the default database; SIGNAL_MONITOR_SQLITE_TEST_PATH: its test copy)
See docs/deployment.md.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.env import (
    channel_layers_from_url,
    database_from_url,
    default_monitor_file,
    env_bool,
    env_list,
    sqlite_database,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", default=True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY when DJANGO_DEBUG is off.")
    SECRET_KEY = "demo-only-insecure-key-never-use-in-production"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_tables2",
    "django_filters",
    "collector",
    "dashboard",
    "demo",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "config.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

_DATABASE_URL = os.environ.get("DATABASE_URL", "")
DATABASES = {
    "default": database_from_url(_DATABASE_URL)
    if _DATABASE_URL
    else sqlite_database(
        os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
        test_path=os.environ.get("SQLITE_TEST_PATH", str(BASE_DIR / "test_db.sqlite3")),
    )
}
# On SQLite the monitor stores into a file of its own, beside the application's (signals.sqlite3):
# SQLite takes one writer at a time, and in the application's file the monitor's stores make the
# application's writes wait (signals_collector.W005; docs/deployment.md). MonitorRouter sends the
# collector's tables there; `make run` migrates both files. SIGNAL_MONITOR_SQLITE_PATH names
# another file, or "" keeps the monitor in the application's database. Under pytest (which sets
# PYTEST_VERSION) the suite's single test database is kept unless the variable is set.
_MONITOR_SQLITE_PATH = os.environ.get("SIGNAL_MONITOR_SQLITE_PATH")
if _MONITOR_SQLITE_PATH is None and "PYTEST_VERSION" not in os.environ:
    _MONITOR_SQLITE_PATH = default_monitor_file(DATABASES["default"])
if _MONITOR_SQLITE_PATH:
    DATABASES["signals"] = sqlite_database(
        _MONITOR_SQLITE_PATH,
        test_path=os.environ.get("SIGNAL_MONITOR_SQLITE_TEST_PATH") or None,
    )
    DATABASE_ROUTERS = ["collector.routers.MonitorRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
CHANNEL_LAYERS = channel_layers_from_url(os.environ.get("REDIS_URL"))
# channels-redis waits for messages with a blocking BZPOPMIN of 5 s; redis-py 8 reads with a
# 5 s socket timeout by default, which aborts every idle wait (channels_redis#422). So: reads may
# take 10 s, and an unreachable Redis fails a connect in 2 s rather than the kernel's TCP timeout.
# Options given in REDIS_URL's query string (?socket_timeout=...) take precedence.
REDIS_OPTIONS = {"socket_timeout": 10, "socket_connect_timeout": 2, "socket_keepalive": True}
for _layer in CHANNEL_LAYERS.values():
    _config = _layer.get("CONFIG", {})
    _config["hosts"] = [
        {"address": host, **REDIS_OPTIONS} if isinstance(host, str) else host
        for host in _config.get("hosts", [])
    ]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/signals/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

SIGNAL_MONITOR: dict[str, object] = {}
if _MONITOR_SQLITE_PATH:
    SIGNAL_MONITOR["DATABASE_ALIAS"] = "signals"
if os.environ.get("SIGNAL_MONITOR_WRITER"):  # "process" in `make run`; the tests keep "thread"
    SIGNAL_MONITOR["WRITER"] = os.environ["SIGNAL_MONITOR_WRITER"]
for _key, _cast in (("MAX_AGE_DAYS", float), ("MAX_EVENTS", int)):
    if os.environ.get(f"SIGNAL_MONITOR_{_key}"):
        SIGNAL_MONITOR[_key] = _cast(os.environ[f"SIGNAL_MONITOR_{_key}"])

if env_bool("DJANGO_BEHIND_HTTPS_PROXY", default=False):
    # The proxy (docs/deployment.md) terminates TLS and says so in X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
