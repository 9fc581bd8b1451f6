"""The built wheel installs into a fresh virtualenv and records signals of a brand-new project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTMX = "signals_dashboard/vendor/htmx/htmx.min.js"
HX_WS = "signals_dashboard/vendor/htmx/ext/hx-ws.js"

pytestmark = [pytest.mark.packaging, pytest.mark.slow]

SETTINGS_ADDITIONS = """
INSTALLED_APPS += [
    "channels",
    "django_tables2",
    "django_filters",
    "collector",
    "dashboard",
]
ASGI_APPLICATION = "mysite.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
"""

URLS = """
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("signals/", include("dashboard.urls")),
]
"""

ASGI = """
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator

import dashboard.routing

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": AllowedHostsOriginValidator(
        AuthMiddlewareStack(URLRouter(dashboard.routing.websocket_urlpatterns))
    ),
})
"""

RECORD_A_SIGNAL = """
import json
import collector
from django.contrib.auth.models import User
from django.db.models.signals import post_save
from collector.models import Event

def welcome(sender, instance, created, **kwargs):
    pass

post_save.connect(welcome, sender=User)  # sends with no receiver are only counted, not stored
User.objects.create_user("alice", password="not-a-secret")
collector.flush(timeout=10)
events = Event.objects.filter(signal="django.db.models.signals.post_save")
print(json.dumps({
    "collector_file": collector.__file__,
    "post_save_senders": sorted(set(events.values_list("sender", flat=True))),
    "receiver_counts": sorted(set(events.values_list("receiver_count", flat=True))),
}))
"""

RECORD_WITH_THE_C_PLAN = """
import json
import collector
from django.contrib.auth.models import User
from django.db.models.signals import post_save
from collector import capture
from collector.models import Event

post_save.connect(lambda **kwargs: None, sender=User, weak=False)
User.objects.create_user("bob", password="not-a-secret")
collector.flush(timeout=10)
plan = capture.newest[id(post_save)]
events = Event.objects.filter(signal="django.db.models.signals.post_save")
print(json.dumps({
    "plan": f"{type(plan).__module__}.{type(plan).__qualname__}",
    "usernames": sorted(e.kwargs["instance"]["username"] for e in events),
}))
"""


def run(args: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    """Run a command; fail the test with its output if it exits non-zero; return stdout."""
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        pytest.fail(f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result.stdout


def clean_env() -> dict[str, str]:
    """Return an environment without this project's settings, paths and services."""
    dropped = {"DJANGO_SETTINGS_MODULE", "PYTHONPATH", "DATABASE_URL", "REDIS_URL", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel from the working tree (hatchling from the current env; no network)."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", out, ROOT],
        cwd=ROOT, env=clean_env())  # fmt: skip
    (path,) = out.glob("django_signal_monitor-*.whl")
    return path


def test_wheel_contents(wheel: Path) -> None:
    """The wheel holds both apps, their migrations, the py.typed markers and the vendored htmx."""
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in [
        "collector/__init__.py",
        "collector/py.typed",
        "collector/migrations/0001_initial.py",
        "collector/_speedups.c",
        "collector/speedups_build.py",
        "dashboard/__init__.py",
        "dashboard/py.typed",
        f"dashboard/static/{HTMX}",
        f"dashboard/static/{HX_WS}",
    ]:
        assert required in names
    assert not [n for n in names if n.startswith(("config/", "demo/", "tests/", "bench/"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".so"))]


def test_wheel_records_signals_of_a_new_project(wheel: Path, tmp_path: Path) -> None:
    """pip install the wheel, startproject, add the apps, migrate: a post_save is recorded."""
    env = clean_env()
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", wheel],
        cwd=tmp_path, env=env)  # fmt: skip

    run([venv / "bin" / "django-admin", "startproject", "mysite", tmp_path / "project"],
        cwd=tmp_path, env=env)  # fmt: skip
    project = tmp_path / "project"
    settings = project / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + SETTINGS_ADDITIONS)
    (project / "mysite" / "urls.py").write_text(URLS)
    (project / "mysite" / "asgi.py").write_text(ASGI)

    manage: list[str | Path] = [python, "manage.py"]
    run([*manage, "check"], cwd=project, env=env)
    run([*manage, "migrate", "--noinput"], cwd=project, env=env)
    run([*manage, "shell", "-c", "import mysite.asgi"], cwd=project, env=env)
    found = run([*manage, "findstatic", "--first", HTMX], cwd=project, env=env)
    assert str(venv) in found

    output = run([*manage, "shell", "-v", "0", "-c", RECORD_A_SIGNAL], cwd=project, env=env)
    result = json.loads(output.strip().splitlines()[-1])
    assert result["collector_file"].startswith(str(venv))
    assert result["post_save_senders"] == ["auth.User"]
    assert result["receiver_counts"] == [1]

    # The C accelerator, built in the installed package, takes the same send.
    built = run([python, "-m", "collector.speedups_build"], cwd=project, env=env)
    assert "built" in built and str(venv) in built, built
    output = run([*manage, "shell", "-v", "0", "-c", RECORD_WITH_THE_C_PLAN], cwd=project,
                 env=env)  # fmt: skip
    result = json.loads(output.strip().splitlines()[-1])
    assert result == {"plan": "collector._speedups.Plan", "usernames": ["alice", "bob"]}
