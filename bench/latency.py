"""Live latency: from ``send()`` to the row in a real Chromium page's DOM, with 20 viewers.

A real daphne serves the project (config.asgi, a fresh copy of a migrated SQLite database).
Signals are sent at 1,000 events/s either inside the daphne process (the embedded default,
in-memory channel layer: the collector hands batches to the server's loop) or from a separate
process through channels-redis (a private redis-server; daphne on the same REDIS_URL). Both
run ``bench.latency.agent``, which sends the workload of bench._data when told on stdin.

Each row of the live feed carries ``data-ts``, the event's wall-clock time taken at ``send()``;
a MutationObserver in the page records ``Date.now() - data-ts`` for every row added, and 19
plain websocket clients (the ``websockets`` package, logged in with a staff session cookie)
record the same at the moment each frame arrives. The collector's FLUSH_INTERVAL (0.1 s by
default) and the consumer's frame interval (0.1 s) bound what can be reached; the default
configuration is always measured with both layers, and the full run adds the browser alone (the
cost of the intervals without the other viewers) and the old default FLUSH_INTERVAL of 0.2 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import _data
from bench._data import row

RATE = 1_000
VIEWERS = 20
BUDGET_MS = 200.0
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SIGNAL_PREFIX = "bench._data."
PASSWORD = "bench-viewer-password"

# Records, for each feed row of the workload's signals added after it is installed, the ms
# between its data-ts (wall clock at send()) and its insertion into the DOM.
PROBE = """(prefix) => {
  window.__lat = [];
  window.__since = Date.now();
  new MutationObserver((records) => {
    const now = Date.now();
    for (const record of records) for (const node of record.addedNodes) {
      if (!node.dataset || !node.dataset.ts) continue;
      const sig = node.querySelector && node.querySelector('.sig');
      const ts = parseFloat(node.dataset.ts);
      if (sig && sig.title.startsWith(prefix) && ts >= window.__since) window.__lat.push(now - ts);
    }
  }).observe(document.getElementById('live-rows'), {childList: true});
}"""
_ROW = re.compile(r'data-ts="([0-9.]+)".*?class="sig" title="([^"]*)"', re.S)


# ---- the agent: runs inside the server (or sender) process ---------------------------------------


def agent() -> None:
    """Entry point of the server/sender processes: send on stdin commands; serve if asked."""
    from django.conf import settings

    sys.path.insert(0, str(_data.ROOT))
    flush = os.environ.get("BENCH_FLUSH_INTERVAL")
    if flush:
        settings.SIGNAL_MONITOR = {**settings.SIGNAL_MONITOR, "FLUSH_INTERVAL": float(flush)}
    serve = os.environ.get("BENCH_SERVE") == "1"
    thread = threading.Thread(target=_command_loop, name="bench-sender", daemon=serve)
    if serve:
        from daphne.cli import CommandLineInterface

        thread.start()
        CommandLineInterface().run(
            ["-b", "127.0.0.1", "-p", os.environ["BENCH_PORT"], "config.asgi:application"]
        )
    else:
        import django

        django.setup()
        thread.start()
        thread.join()


def _command_loop() -> None:
    """Read "send RATE SECONDS" lines from stdin; answer "done EVENTS" on stdout."""
    from django.apps import apps

    while not apps.ready:
        time.sleep(0.05)
    _data.connect_workload()
    sender = _data.Sender()
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["send"]:
            before = sender.events
            sender.paced(float(words[1]), float(words[2]), chunk=5)
            print(f"done {sender.events - before}", flush=True)
        elif words[:1] == ["quit"]:
            return


# ---- the driver side ----------------------------------------------------------------------------


def _env(db: Path, **extra: str) -> dict[str, str]:
    """Return the environment of a project subprocess on the SQLite file ``db``."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="1",
        SQLITE_PATH=str(db),
        SIGNAL_MONITOR_SQLITE_PATH="",  # one file, migrated once by the benchmark
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(_data.ROOT),
        **extra,
    )
    return env


def _template(viewers: int) -> tuple[Path, list[str]]:
    """Return a migrated database with a staff user and ``viewers`` sessions (cached a day)."""
    from bench.scale import _schema_key

    path = _data.TMP / f"bench-latency-{_schema_key()}.sqlite3"
    keys_file = path.with_suffix(".sessions.json")
    if path.exists() and keys_file.exists() and time.time() - keys_file.stat().st_mtime < 86400:
        keys = json.loads(keys_file.read_text())
        if len(keys) >= viewers:
            return path, keys[:viewers]
    _data.remove_sqlite(path)
    env = _env(path)
    manage = [sys.executable, "manage.py"]
    subprocess.run(
        [*manage, "migrate", "--noinput", "-v", "0"],
        cwd=_data.ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    code = (
        "import json\nfrom django.contrib.auth import get_user_model\n"
        "from django.test import Client\n"
        "u = get_user_model().objects.create_user(\n"
        f"    'bench-viewer', password={PASSWORD!r}, is_staff=True)\n"
        "keys = []\n"
        f"for _ in range({max(viewers, VIEWERS)}):\n"
        "    c = Client(); c.force_login(u); keys.append(c.cookies['sessionid'].value)\n"
        "print('@@' + json.dumps(keys))"
    )
    out = subprocess.run(
        [*manage, "shell", "-v", "0", "-c", code],
        cwd=_data.ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    keys = json.loads(out.split("@@", 1)[1])
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sqlite3; sqlite3.connect({str(path)!r})"
            ".execute('PRAGMA wal_checkpoint(TRUNCATE)')",
        ],
        check=True,
    )
    keys_file.write_text(json.dumps(keys))
    return path, keys[:viewers]


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """Wait until ``port`` accepts connections; raise if ``proc`` dies or time runs out."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def _stop(proc: subprocess.Popen[Any] | None) -> None:
    """Stop a subprocess we started (SIGTERM, then SIGKILL)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _agent(env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    """Start ``bench.latency.agent`` with a pipe for commands and answers."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", "from bench.latency import agent; agent()"],
            cwd=_data.ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
        )


def _send(proc: subprocess.Popen[str], rate: float, seconds: float) -> int:
    """Ask an agent to send at ``rate`` for ``seconds``; return the number of events sent."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(f"send {rate} {seconds}\n")
    proc.stdin.flush()
    for line in proc.stdout:
        if line.startswith("done "):
            return int(line.split()[1])
    raise RuntimeError("the sender exited")


def _frame_html(message: str | bytes) -> str:
    """Return the HTML of a feed frame (a JSON envelope with "content", or plain HTML)."""
    text = message.decode() if isinstance(message, bytes) else message
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return text
        return str(data.get("content", "")) if isinstance(data, dict) else text
    return text


@dataclass
class _Viewers:
    """Plain websocket clients in a thread of their own, recording per-row latency."""

    url: str
    origin: str
    keys: list[str]
    since: float = 0.0
    samples: list[float] = field(default_factory=list)
    connected: int = 0
    frames: int = 0
    errors: list[str] = field(default_factory=list)

    def start(self) -> None:
        """Connect every client (returns once they are connected or failed)."""
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(30)

    def _run(self, ready: threading.Event) -> None:
        """The thread: run every client until stopped."""
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main(ready))

    async def _main(self, ready: threading.Event) -> None:
        """Run the clients concurrently."""
        self.stop_event = asyncio.Event()
        opened = [asyncio.Event() for _ in self.keys]
        tasks = [
            asyncio.create_task(self._client(k, e)) for k, e in zip(self.keys, opened, strict=True)
        ]
        if opened:
            await asyncio.wait([asyncio.create_task(e.wait()) for e in opened], timeout=20)
        ready.set()
        await self.stop_event.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _client(self, key: str, opened: asyncio.Event) -> None:
        """One viewer: connect with the session cookie, record rows' latency as frames arrive."""
        try:
            from websockets.asyncio.client import connect

            async with connect(
                self.url,
                origin=self.origin,
                compression=None,  # type: ignore[arg-type]
                additional_headers={"Cookie": f"sessionid={key}"},
            ) as ws:
                self.connected += 1
                opened.set()
                async for message in ws:
                    now = time.time() * 1000
                    self.frames += 1
                    for ts, title in _ROW.findall(_frame_html(message)):
                        if title.startswith(SIGNAL_PREFIX) and float(ts) >= self.since:
                            self.samples.append(now - float(ts))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported with the results
            self.errors.append(repr(exc))
            opened.set()

    def stop(self) -> None:
        """Disconnect every client."""
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(15)


@dataclass
class Case:
    """One configuration to measure."""

    layer: str  # "in-memory" or "redis"
    flush: float | None  # FLUSH_INTERVAL, None for the default
    viewers: int = VIEWERS  # the browser and viewers - 1 websocket clients


def _stats(samples: list[float]) -> dict[str, Any]:
    """Return count and p50/p95/p99 of latency samples (ms)."""
    pick = _data.percentile
    return {
        "n": len(samples),
        "p50": round(pick(samples, 50), 1),
        "p95": round(pick(samples, 95), 1),
        "p99": round(pick(samples, 99), 1),
    }


def _measure(
    case: Case,
    browser: Any,
    db: Path,
    keys: list[str],
    redis_url: str | None,
    warmup: float,
    seconds: float,
    logs: Path,
) -> dict[str, Any]:
    """Run one case: server (+ sender), 19 viewers and the browser; return the latencies."""
    port = _free_port()
    extra = {"BENCH_PORT": str(port)}
    if case.flush is not None:
        extra["BENCH_FLUSH_INTERVAL"] = str(case.flush)
    if case.layer == "redis":
        assert redis_url is not None
        extra["REDIS_URL"] = redis_url
    server = sender = None
    viewers: _Viewers | None = None
    context = None
    try:
        server = _agent(_env(db, BENCH_SERVE="1", **extra), logs / f"daphne-{port}.log")
        _wait_port(port, server)
        if case.layer == "redis":
            sender = _agent(_env(db, **extra), logs / f"sender-{port}.log")
        base = f"http://127.0.0.1:{port}"
        viewers = _Viewers(f"ws://127.0.0.1:{port}/ws/signals/", base, keys[1 : case.viewers])
        viewers.start()
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_cookies([{"name": "sessionid", "value": keys[0], "url": base}])
        page = context.new_page()
        reloads = _open_feed(page, f"{base}/signals/")
        source = sender or server
        _send(source, RATE, warmup)
        time.sleep(0.5)
        page.evaluate(PROBE, SIGNAL_PREFIX)
        viewers.since = time.time() * 1000
        cpu0, wall0 = _cpu_seconds(server.pid), time.perf_counter()
        sent = _send(source, RATE, seconds)
        server_cpu = (_cpu_seconds(server.pid) - cpu0) / (time.perf_counter() - wall0)
        dom = _settled(lambda: list(page.evaluate("window.__lat")))
        ws = list(viewers.samples)
        return {
            "sent": sent,
            "server_cpu": round(server_cpu, 2),
            "page_reloads": reloads,
            "dom": _stats(dom),
            "ws": _stats(ws),
            "viewers": viewers.connected + 1,
            "frames": viewers.frames,
            "errors": viewers.errors[:3],
        }
    finally:
        if context is not None:
            context.close()
        if viewers is not None:
            viewers.stop()
        _stop(sender)
        _stop(server)


def _open_feed(page: Any, url: str, tries: int = 3) -> int:
    """Open the live feed until its websocket says "live"; return how many reloads it took.

    A page whose feed stays "connecting" for 30 s is reloaded (seen now and then on a loaded
    machine); the count is reported with the results.
    """
    page.goto(url)
    for attempt in range(tries):
        try:
            page.wait_for_selector(
                '#live-conn[data-state="live"]', state="attached", timeout=30_000
            )
            return attempt
        except Exception:
            if attempt == tries - 1:
                raise
            page.reload()
    return tries


def _cpu_seconds(pid: int) -> float:
    """Return the CPU seconds (user + system) process ``pid`` has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _settled(read: Any, quiet: float = 1.0, limit: float = 10.0) -> list[float]:
    """Poll ``read()`` until it has not grown for ``quiet`` seconds (at most ``limit``)."""
    last, changed, start = read(), time.monotonic(), time.monotonic()
    while time.monotonic() - changed < quiet and time.monotonic() - start < limit:
        time.sleep(0.2)
        now = read()
        if len(now) != len(last):
            last, changed = now, time.monotonic()
    return list(last)


def _redis() -> tuple[subprocess.Popen[bytes] | None, str | None]:
    """Start a private redis-server on a free port; (None, None) if it is not installed."""
    exe = shutil.which("redis-server")
    if exe is None:
        return None, None
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    _wait_port(port, proc, 10)
    return proc, f"redis://127.0.0.1:{port}/0"


def _default_flush() -> float:
    """Return the collector's default FLUSH_INTERVAL."""
    from collector.conf import DEFAULTS

    return float(DEFAULTS["FLUSH_INTERVAL"])


def _row(case: Case, got: dict[str, Any] | None, reason: str = "") -> dict[str, Any]:
    """Return the result row of one case."""
    interval = _default_flush() if case.flush is None else case.flush
    flush = f"{'default ' if case.flush is None else ''}FLUSH_INTERVAL {interval:g} s"
    name = f"{case.layer} layer, {flush}"
    if case.viewers != VIEWERS:
        name = f"{case.layer}, {case.viewers} viewer(s), FLUSH {interval:g} s"
    if got is None:
        return row("latency", name, reason[:34], f"p95 <= {BUDGET_MS:.0f} ms", False, error=reason)
    dom = got["dom"]
    ok = dom["n"] > 0 and dom["p95"] <= BUDGET_MS
    figure = f"{dom['p50']:.0f}/{dom['p95']:.0f}/{dom['p99']:.0f} ms p50/95/99"
    return row(
        "latency",
        name,
        figure,
        f"p95 <= {BUDGET_MS:.0f} ms",
        ok,
        layer=case.layer,
        flush_interval=interval,
        rate=RATE,
        **got,
    )


def run(quick: bool = False, tiny: bool = False) -> list[dict[str, Any]]:
    """Measure send()-to-DOM latency for each case."""
    viewers = 3 if tiny else VIEWERS
    warmup, seconds = (0.5, 1.0) if tiny else (1.0, 3.0) if quick else (3.0, 15.0)
    cases = [Case("in-memory", None), Case("redis", None)]
    if tiny:
        cases = [Case("in-memory", None, viewers)]
    elif not quick:
        cases += [Case("in-memory", None, 1), Case("redis", None, 1)]  # the browser alone
        cases += [Case("in-memory", 0.2), Case("redis", 0.2)]  # the previous default
    if not Path(CHROMIUM).exists():
        return [_row(c, None, f"Chromium not found at {CHROMIUM}") for c in cases]
    db_template, keys = _template(viewers)
    logs = _data.TMP / f"bench-latency-logs-{os.getpid()}"
    logs.mkdir(exist_ok=True)
    redis, redis_url = _redis() if any(c.layer == "redis" for c in cases) else (None, None)
    rows = []
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            for case in cases:
                if case.layer == "redis" and redis_url is None:
                    rows.append(_row(case, None, "redis-server not installed"))
                    continue
                db = _data.temp_sqlite("latency")
                for suffix in ("", "-wal"):
                    if Path(f"{db_template}{suffix}").exists():
                        shutil.copyfile(f"{db_template}{suffix}", f"{db}{suffix}")
                try:
                    got = _measure(case, browser, db, keys, redis_url, warmup, seconds, logs)
                    rows.append(_row(case, got))
                except Exception as exc:  # noqa: BLE001 - one case failing still reports the others
                    tails = "".join(
                        f"\n--- {p.name}:\n" + p.read_text()[-1500:] for p in logs.iterdir()
                    )
                    rows.append(_row(case, None, f"error: {exc!r}{tails}"))
                finally:
                    _data.remove_sqlite(db)
            browser.close()
    finally:
        _stop(redis)  # type: ignore[arg-type]
    shutil.rmtree(logs, ignore_errors=True)
    return rows


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv, tiny="--tiny" in sys.argv):
        print(json.dumps(r))
