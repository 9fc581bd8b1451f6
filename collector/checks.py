"""System checks for SIGNAL_MONITOR (ids signals_collector.E0xx / W0xx)."""

from __future__ import annotations

import os
import re
import shlex
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

from collector.conf import DEFAULTS, get_config


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate SIGNAL_MONITOR: known keys, importable processors and sinks, sane numbers."""
    config = get_config()
    messages: list[CheckMessage] = []
    for key in sorted(set(config) - set(DEFAULTS)):
        messages.append(Warning(
            f"Unknown SIGNAL_MONITOR key {key!r}.",
            hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
            id="signals_collector.W001",
        ))
    for setting in ("PROCESSORS", "SINKS"):
        for path in config[setting]:
            try:
                import_string(path)
            except ImportError as exc:
                messages.append(Error(
                    f"SIGNAL_MONITOR[{setting!r}] names {path!r}, which cannot be imported: {exc}",
                    hint="Use a dotted path to a class, e.g. collector.sinks.DatabaseSink.",
                    id="signals_collector.E001",
                ))
    for setting in ("QUEUE_SIZE", "BACKLOG_BYTES", "BATCH_SIZE", "MEMORY_SINK_SIZE"):
        value = config[setting]
        if not isinstance(value, int) or value < 1:
            messages.append(Error(
                f"SIGNAL_MONITOR[{setting!r}] must be a positive integer, not {value!r}.",
                hint=f"The default is {DEFAULTS[setting]}.",
                id="signals_collector.E002",
            ))
    alias = config["DATABASE_ALIAS"]
    if alias not in settings.DATABASES:
        messages.append(Error(
            f"SIGNAL_MONITOR['DATABASE_ALIAS'] is {alias!r}, which is not in DATABASES.",
            hint=f"Use one of {', '.join(map(repr, settings.DATABASES))}, or add {alias!r} to "
            "DATABASES (a SQLite file of the monitor's own: docs/deployment.md).",
            id="signals_collector.E006",
        ))
    for name, rate in dict(config["SAMPLE_RATES"]).items():
        if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            messages.append(Error(
                f"SIGNAL_MONITOR['SAMPLE_RATES'][{name!r}] must be a number from 0 to 1.",
                hint="1 keeps every event, 0.1 keeps one in ten.",
                id="signals_collector.E003",
            ))
    return messages


@register()
def check_retention(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E004: retention limits and intervals must be non-negative numbers (0 or None: off)."""
    config = get_config()
    messages: list[CheckMessage] = []
    for setting in ("MAX_AGE_DAYS", "MAX_EVENTS", "PRUNE_INTERVAL", "HEALTH_INTERVAL",
                    "PRUNE_BATCH_SIZE", "PRUNE_TIME_BUDGET", "FLUSH_INTERVAL",
                    "STORE_INTERVAL"):  # fmt: skip
        value = config[setting]
        if value is None and setting in ("MAX_AGE_DAYS", "MAX_EVENTS"):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            messages.append(Error(
                f"SIGNAL_MONITOR[{setting!r}] must be a number of at least 0, not {value!r}.",
                hint=f"The default is {DEFAULTS[setting]!r}; 0 turns it off where that fits.",
                id="signals_collector.E004",
            ))
    if config["PRUNE_BATCH_SIZE"] == 0:
        messages.append(Error(
            "SIGNAL_MONITOR['PRUNE_BATCH_SIZE'] must be at least 1.",
            hint=f"The default is {DEFAULTS['PRUNE_BATCH_SIZE']}.",
            id="signals_collector.E004",
        ))
    return messages


REDACT = "collector.processors.RedactProcessor"


def _configured(paths: list[Any], base: str) -> bool:
    """Return True when one of the dotted ``paths`` imports as ``base`` or a subclass of it
    (paths that do not import are E001's business, not this answer's)."""
    for path in paths:
        try:
            if issubclass(import_string(str(path)), import_string(base)):
                return True
        except (ImportError, TypeError):
            continue
    return False


@register(Tags.security)
def check_redaction(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W003: without RedactProcessor, passwords and tokens in signal arguments are stored."""
    if _configured(get_config()["PROCESSORS"], REDACT):
        return []
    return [Warning(
        "SIGNAL_MONITOR['PROCESSORS'] has no RedactProcessor: secret-looking arguments "
        "(password, token, key, cookie, session, ...) are stored and shown as they are.",
        hint=f"Keep {REDACT!r} in PROCESSORS (it is in the default list); add project-specific "
        "key fragments with SIGNAL_MONITOR['REDACT_KEYS'].",
        id="signals_collector.W003",
    )]


_WAL = re.compile(r"journal_mode\s*=\s*'?wal", re.I)


def _several_processes() -> str:
    """Return why the project looks served by several processes ("" when it does not)."""
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    backend = str(layers.get("default", {}).get("BACKEND", ""))
    if backend and not backend.endswith("InMemoryChannelLayer"):
        return f"the channel layer {backend.rsplit('.', 1)[-1]} connects several processes"
    for name in ("WEB_CONCURRENCY", "UVICORN_WORKERS"):
        if os.environ.get(name, "").strip().isdigit() and int(os.environ[name]) > 1:
            return f"{name}={os.environ[name]}"
    try:
        args = shlex.split(os.environ.get("GUNICORN_CMD_ARGS", ""))
    except ValueError:
        args = []
    for flag, value in zip(args, [*args[1:], ""], strict=False):
        if flag in ("-w", "--workers") and value.isdigit() and int(value) > 1:
            return f"GUNICORN_CMD_ARGS asks for {value} workers"
    return ""


def _journal_mode(alias: str) -> str | None:
    """Return the database's journal mode (None when it cannot be read)."""
    from django.db import connections

    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            row = cursor.fetchone()
    except Exception:  # noqa: BLE001 - the database may not exist yet
        return None
    return str(row[0]).lower() if row else None


@register(Tags.database)
def check_sqlite_wal(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """W002: several processes writing one SQLite file need WAL, or they lock each other out."""
    alias = get_config()["DATABASE_ALIAS"]
    entry = settings.DATABASES.get(alias, {})
    if not str(entry.get("ENGINE", "")).endswith("sqlite3"):
        return []
    reason = _several_processes()
    if not reason:
        return []
    if databases and alias in databases:
        mode = _journal_mode(alias)
        if mode == "wal":
            return []
    elif _WAL.search(str(entry.get("OPTIONS", {}).get("init_command", ""))):
        return []
    return [Warning(
        f"The signal monitor writes to SQLite database {alias!r} without WAL while several "
        f"processes look likely to share it ({reason}); writers and readers will block each "
        "other and events will wait or be dropped.",
        hint='Add "PRAGMA journal_mode=WAL;" to DATABASES[...]["OPTIONS"]["init_command"] '
        "(with a busy \"timeout\"), or store events in PostgreSQL.",
        id="signals_collector.W002",
    )]



@register()
def check_writer(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E005/W004: WRITER is "thread" or "process", and a writer process can open the database."""
    config = get_config()
    writer = config["WRITER"]
    if writer not in ("thread", "process"):
        return [Error(
            f"SIGNAL_MONITOR['WRITER'] must be 'thread' or 'process', not {writer!r}.",
            hint="'thread' (the default) writes from a thread of each process; 'process' from a "
            "writer process per application process.",
            id="signals_collector.E005",
        )]
    if writer != "process":
        return []
    entry = settings.DATABASES.get(config["DATABASE_ALIAS"], {})
    problems = []
    if str(entry.get("ENGINE", "")).endswith("sqlite3") and str(
        entry.get("NAME", "")
    ) in ("", ":memory:"):
        problems.append("its database is an in-memory SQLite database, which another process "
                        "cannot open (the writer thread is used instead)")  # fmt: skip
    messages: list[CheckMessage] = [Warning(
        f"SIGNAL_MONITOR['WRITER'] is 'process', but {problem}.",
        hint="Use WRITER='thread' here (as in tests), or a database file or server.",
        id="signals_collector.W004",
    ) for problem in problems]
    return messages + _check_shared_sqlite(config, entry)


def _check_shared_sqlite(config: dict[str, Any], entry: dict[str, Any]) -> list[CheckMessage]:
    """W005: a writer process storing into the application's SQLite file makes its writes wait."""
    from collector.storage import shares_sqlite_file, sqlite_file

    name = sqlite_file(entry)
    if (not name or not shares_sqlite_file(config["DATABASE_ALIAS"])
            or not _configured(config["SINKS"], "collector.sinks.DatabaseSink")):
        return []
    return [Warning(
        f"The signal monitor stores into the application's SQLite file ({name}) from a writer "
        "process: SQLite takes one writer at a time, so the application's own writes wait while "
        "the monitor stores (the benchmark's request: +14% wall time, against +4% in a file of "
        "the monitor's own).",
        hint='Add a database of its own, e.g. DATABASES["signals"] = {"ENGINE": '
        '"django.db.backends.sqlite3", "NAME": "signals.sqlite3", ...}, set '
        'SIGNAL_MONITOR["DATABASE_ALIAS"] = "signals" and DATABASE_ROUTERS = '
        '["collector.routers.MonitorRouter"], then run "migrate --database signals" '
        "(docs/deployment.md).",
        id="signals_collector.W005",
    )]
