"""Shared fixtures: logged-in clients, a real daphne server, a real Chromium, Redis and PostgreSQL.

Tools outside Python (Chromium, redis-server, PostgreSQL) are installed by `.ci/run` in CI. On a
developer's machine a missing tool skips the tests that need it; in CI (CI=true) it fails them.

Browser tests use Playwright's sync API, which leaves an event loop marked as running in the main
thread for as long as the browser is open. So every test that uses `browser` or `page` is marked
`browser` and moved to the end of the run, and Django's async-safety check is relaxed only while
the browser is open (the ORM work of those tests happens in the daphne subprocess anyway).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
TEST_PASSWORD = "correct-horse-battery-staple"
DEFAULT_POSTGRES_URL = "postgres://signals:signals@127.0.0.1:5432/signals"
BROWSER_FIXTURES = {"browser", "page"}


def in_ci() -> bool:
    """Return True when running in CI (CI=true), where missing tools fail instead of skipping."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip the test when `condition` is false on a developer machine; fail it in CI."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"{reason} (required in CI; .ci/run installs it)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, alive: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Wait until 127.0.0.1:`port` accepts connections; False if `alive()` turns false first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def stop_process(proc: subprocess.Popen[Any], *, timeout: float = 10.0) -> None:
    """Stop `proc` with SIGTERM (so it can flush), then SIGKILL if it does not exit in time."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def tail(path: Path, lines: int = 40) -> str:
    """Return the last `lines` lines of a log file (for failure messages)."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- collection -------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    """Use a fast password hasher, and a test database of this run's own (unless one is given)."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3") and "SQLITE_TEST_PATH" not in os.environ:
        # Two pytest runs in one checkout must not share (and destroy) one test database file.
        name = f"signals-test-{os.getpid()}.sqlite3"
        database.setdefault("TEST", {})["NAME"] = str(Path(tempfile.gettempdir()) / name)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests that use the browser as `browser` and run them last (see the module docstring)."""
    for item in items:
        if BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# --- the collector between tests ------------------------------------------------------------

_COLLECTOR_MODELS = (
    "Event", "ReceiverCall", "ReceiverStat", "SignalCount", "CollectorHealth",
    "ReceiverRollup", "SignalRollup", "FailureRollup", "ProcessRollup",
)


def _is_transactional(request: pytest.FixtureRequest) -> bool:
    """Return True if the test runs outside a wrapping transaction (its writes are real)."""
    marker = request.node.get_closest_marker("django_db")
    return "transactional_db" in request.fixturenames or bool(
        marker and marker.kwargs.get("transaction")
    )


@pytest.fixture(autouse=True)
def collector_isolation(request: pytest.FixtureRequest) -> Iterator[None]:
    """Keep each test's stored events its own.

    The collector writes from a background thread on its own connection, so events one test sent
    could land in the next. Tests without real database writes (no access, or inside a wrapping
    transaction, whose lock the writer would wait on) run without the database sink. Transactional
    tests keep it: the queue is drained and leftover rows removed before the test, and drained
    again after it, before pytest-django empties the tables.
    """
    from django.test import override_settings

    import collector
    from collector.conf import get_config

    if not _is_transactional(request):
        config = get_config()
        sinks = [s for s in config["SINKS"] if not s.endswith(".DatabaseSink")]
        user = dict(getattr(__import__("django.conf").conf.settings, "SIGNAL_MONITOR", {}) or {})
        with override_settings(SIGNAL_MONITOR={**user, "SINKS": sinks}):
            _forget_unwritten(collector)
            yield
        return
    request.getfixturevalue("transactional_db")
    from django.apps import apps

    _forget_unwritten(collector)
    for name in _COLLECTOR_MODELS:
        apps.get_model("signals_collector", name).objects.all().delete()
    yield
    collector.flush(10)


def _forget_unwritten(collector: Any) -> None:
    """Drain the queue under the current settings, then drop what a database sink still holds
    (a backlog a sink hands over on a settings change would otherwise land in a later test)."""
    from collector import pipeline
    from collector.sinks import DatabaseSink

    collector.flush(10)
    getattr(DatabaseSink, "_handover", {}).clear()
    pipe = pipeline._current
    for sink in pipe.sinks if pipe is not None else ():
        if isinstance(sink, DatabaseSink):
            sink.discard()


# --- Django test clients ---------------------------------------------------------------------


@pytest.fixture
def staff_user(django_user_model: Any) -> Any:
    """Return a staff user (not a superuser) whose password is TEST_PASSWORD."""
    return django_user_model.objects.create_user(
        username="staff", email="staff@example.com", password=TEST_PASSWORD, is_staff=True
    )


@pytest.fixture
def plain_user(django_user_model: Any) -> Any:
    """Return an active user without staff status whose password is TEST_PASSWORD."""
    return django_user_model.objects.create_user(
        username="plain", email="plain@example.com", password=TEST_PASSWORD
    )


@pytest.fixture
def staff_client(staff_user: Any) -> Client:
    """Return a test client logged in as a staff user."""
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def user_client(plain_user: Any) -> Client:
    """Return a test client logged in as a user without staff status."""
    client = Client()
    client.force_login(plain_user)
    return client


# --- a real daphne server ----------------------------------------------------------------------


@dataclass
class LiveServer:
    """A daphne subprocess serving config.asgi on 127.0.0.1, with its own SQLite database."""

    host: str
    port: int
    env: dict[str, str]
    db_path: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Return the base URL, e.g. http://127.0.0.1:54321 (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    def ws_url(self, path: str) -> str:
        """Return the websocket URL of `path` on this server."""
        return f"ws://{self.host}:{self.port}{path}"

    def manage(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run `manage.py *args` against this server's database and settings; raise on failure."""
        return run_manage(args, env=self.env, timeout=timeout)

    def shell(self, code: str, timeout: float = 120.0) -> str:
        """Run Python `code` through `manage.py shell -c` against this server; return its stdout."""
        return self.manage("shell", "-v", "0", "-c", code, timeout=timeout).stdout

    def create_user(
        self, username: str, password: str = TEST_PASSWORD, *, staff: bool = True
    ) -> None:
        """Create a user in this server's database (staff by default)."""
        self.shell(
            "from django.contrib.auth import get_user_model\n"
            f"get_user_model().objects.create_user({username!r}, password={password!r},"
            f" is_staff={staff!r})"
        )

    def login(self, page: Page, username: str, password: str = TEST_PASSWORD) -> None:
        """Log `page` in through Django's login view (form fields id_username / id_password)."""
        page.goto(f"{self.url}/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        with page.expect_navigation():
            page.locator("form [type=submit]").first.click()

    def start(self) -> None:
        """Start daphne and wait until it accepts connections."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", self.host, "-p", str(self.port),
             "config.asgi:application"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        proc = self.process
        if not wait_for_port(self.port, alive=lambda: proc.poll() is None):
            self.stop()
            raise RuntimeError(f"daphne did not start on port {self.port}:\n{tail(self.log_path)}")

    def stop(self) -> None:
        """Stop daphne (SIGTERM, then SIGKILL)."""
        if self.process is not None:
            stop_process(self.process)


def live_env(db_path: Path, **overrides: str) -> dict[str, str]:
    """Return the environment for a live subprocess: demo settings on the SQLite file `db_path`."""
    dropped = {"DATABASE_URL", "REDIS_URL", "SIGNAL_MONITOR_SQLITE_PATH",
               "SIGNAL_MONITOR_SQLITE_TEST_PATH"}  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="1",
        SQLITE_PATH=str(db_path),
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(overrides)
    return env


def run_manage(
    args: tuple[str, ...] | list[str], *, env: dict[str, str], timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run manage.py in a subprocess with `env`; raise with its output if it fails."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if result.returncode != 0:
        command = " ".join(args)
        output = f"{result.stdout}\n{result.stderr}"
        raise RuntimeError(f"manage.py {command} exited {result.returncode}:\n{output}")
    return result


@pytest.fixture(scope="session")
def live_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a migrated SQLite file, made once per session and copied for each live server."""
    path = tmp_path_factory.mktemp("live-template") / "template.sqlite3"
    run_manage(["migrate", "--noinput"], env=live_env(path), timeout=300)
    return path


def copy_sqlite(source: Path, target: Path) -> None:
    """Copy a SQLite database file with its WAL side files, if any."""
    for suffix in ("", "-wal", "-shm"):
        src = source.with_name(source.name + suffix)
        if src.exists():
            shutil.copyfile(src, target.with_name(target.name + suffix))


@pytest.fixture
def daphne_factory(live_db_template: Path, tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Return a function that starts daphne servers; all are stopped at teardown.

    `daphne_factory(db_path=None, **env)`: with no db_path a fresh copy of the migrated template
    database is used; pass the same db_path to several servers to share one database, and env
    overrides such as REDIS_URL=... or DATABASE_URL=... for scale-out tests.
    """
    servers: list[LiveServer] = []

    def start(db_path: Path | None = None, **env: str) -> LiveServer:
        if db_path is None:
            db_path = tmp_path / f"live-{uuid.uuid4().hex[:8]}.sqlite3"
            copy_sqlite(live_db_template, db_path)
        server = LiveServer(
            host="127.0.0.1",
            port=free_port(),
            env=live_env(db_path, **env),
            db_path=db_path,
            log_path=tmp_path / f"daphne-{len(servers)}.log",
        )
        servers.append(server)
        server.start()
        return server

    yield start
    for server in reversed(servers):
        server.stop()


@pytest.fixture
def live_daphne(daphne_factory: Callable[..., LiveServer]) -> LiveServer:
    """Return a running daphne server on a free 127.0.0.1 port with a fresh migrated database."""
    return daphne_factory()


# --- a real Chromium -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Return a headless Debian Chromium driven by Playwright, shared by the session."""
    require(Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """Return a page in a fresh browser context; a failed test leaves a screenshot in artifacts/."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    new_page = context.new_page()
    yield new_page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = request.node.name.replace("/", "_").replace("[", "-").rstrip("]")
        new_page.screenshot(path=ARTIFACTS / f"FAILED-{name}.png", full_page=True)
    context.close()


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    """Return a function that saves a full-page screenshot as tests/artifacts/<name>.png."""

    def save(target: Page, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        target.screenshot(path=path, full_page=True)
        return path

    return save


# --- Redis and PostgreSQL for scale-out tests ----------------------------------------------------


@dataclass
class RedisServer:
    """A private redis-server subprocess on a free port that a test can stop and start again."""

    executable: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Return the redis:// URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (same port as before) and wait until it accepts connections."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "no"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        proc = self.process
        if not wait_for_port(self.port, alive=lambda: proc.poll() is None, timeout=10):
            raise RuntimeError(f"redis-server did not start:\n{tail(self.log_path)}")

    def stop(self) -> None:
        """Stop the server."""
        if self.process is not None:
            stop_process(self.process)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """Return a running private redis-server; `.stop()` / `.start()` simulate an outage."""
    executable = shutil.which("redis-server")
    require(executable is not None, "redis-server not found (apt-get install redis-server)")
    assert executable is not None
    server = RedisServer(executable=executable, port=free_port(), log_path=tmp_path / "redis.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """Return the URL of a PostgreSQL role that may create databases (SIGNALS_TEST_POSTGRES_URL)."""
    url = os.environ.get("SIGNALS_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        require(False, f"PostgreSQL not reachable at {url}: {exc} (scripts/start_services.sh)")
    return url


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """Return the URL of a new empty PostgreSQL database, dropped at teardown."""
    import psycopg
    from psycopg import sql

    name = f"signals_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = postgres_url.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def stored_calls(events: Any) -> list[tuple[int, Any]]:
    """Return (event id, call) for every call stored in the events' ``calls_json``."""
    from collector.calls import decode

    return [
        (event_id, call)
        for event_id, text in events.values_list("id", "calls_json")
        for call in decode(text)
    ]
