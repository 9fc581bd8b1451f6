"""Scale-out fixtures: migrated PostgreSQL databases, sender processes, a two-server cluster."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import LiveServer, RedisServer, run_manage
from tests.scaleout.harness import Cluster, Sender, Store, scaleout_env, staff_session


@pytest.fixture(scope="session")
def pg_template(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Return the name of a PostgreSQL database migrated once per session (a template)."""
    import psycopg
    from psycopg import sql

    name = f"signals_tmpl_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = postgres_url.rpartition("/")
    run_manage(
        ["migrate", "--noinput", "-v", "0"],
        env=scaleout_env(tmp_path_factory.mktemp("pg") / "unused.sqlite3",
                         DATABASE_URL=f"{base}/{name}"),
        timeout=180,
    )  # fmt: skip
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def pg_url(postgres_url: str, pg_template: str) -> Iterator[str]:
    """Return the URL of a new PostgreSQL database copied from the migrated template."""
    import psycopg
    from psycopg import sql

    name = f"signals_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(pg_template)
            )
        )
    base, _, _ = postgres_url.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def start_sender(tmp_path: Path) -> Iterator[Callable[..., Sender]]:
    """Return ``start_sender(env, *args)``: a ready sender process; all are stopped at teardown."""
    started: list[Sender] = []

    def start(env: dict[str, str], *args: str) -> Sender:
        sender = Sender(args, env, tmp_path / f"sender-{len(started)}.log")
        started.append(sender)
        return sender.start()

    yield start
    for sender in started:
        sender.stop()


@pytest.fixture
def cluster(
    pg_url: str, redis_server: RedisServer, daphne_factory: Callable[..., LiveServer],
    tmp_path: Path,
) -> Iterator[Cluster]:  # fmt: skip
    """Start the two daphne servers on PostgreSQL and Redis; close the websockets at the end."""
    env = {"DATABASE_URL": pg_url, "REDIS_URL": redis_server.url}
    dashboard = daphne_factory(**scaleout_env(tmp_path / "unused.sqlite3", **env))
    web = daphne_factory(**scaleout_env(tmp_path / "unused.sqlite3", **env))
    made = Cluster(
        dashboard=dashboard,
        web=web,
        env=scaleout_env(tmp_path / "unused.sqlite3", **env),
        store=Store(pg_url),
        session=staff_session(dashboard),
    )
    yield made
    for client in made.clients:
        client.close()
