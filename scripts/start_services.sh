#!/usr/bin/env bash
# Start Redis and PostgreSQL on loopback for the scale-out tests (Debian packages; run as root).
# Creates the PostgreSQL role/database signals/signals (may create databases), matching the
# tests' default SIGNALS_TEST_POSTGRES_URL=postgres://signals:signals@127.0.0.1:5432/signals.
# Idempotent: services already running are left alone.
set -euo pipefail

if command -v redis-server >/dev/null; then
    if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
        redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save "" --appendonly no >/dev/null
    fi
    for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.1; done
    echo "redis: $(redis-cli -h 127.0.0.1 ping)"
else
    echo "redis-server is not installed (apt-get install redis-server)" >&2
fi

if command -v pg_lsclusters >/dev/null; then
    read -r version cluster _ < <(pg_lsclusters --no-header | head -n1)
    if [ -z "${version:-}" ]; then
        version="$(ls /usr/lib/postgresql | sort -V | tail -n1)"
        cluster=main
        pg_createcluster "$version" "$cluster" >/dev/null
    fi
    pg_ctlcluster "$version" "$cluster" status >/dev/null 2>&1 || pg_ctlcluster "$version" "$cluster" start
    psql_root() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtA "$@"; }
    for _ in $(seq 1 50); do psql_root -c "select 1" >/dev/null 2>&1 && break; sleep 0.2; done
    psql_root -c "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'signals') THEN
            CREATE ROLE signals LOGIN CREATEDB PASSWORD 'signals';
        END IF; END \$\$;"
    if [ -z "$(psql_root -c "SELECT 1 FROM pg_database WHERE datname = 'signals'")" ]; then
        psql_root -c "CREATE DATABASE signals OWNER signals"
    fi
    echo "postgresql $version/$cluster: postgres://signals:signals@127.0.0.1:5432/signals"
else
    echo "PostgreSQL is not installed (apt-get install postgresql)" >&2
fi
