#!/usr/bin/env bash
# Serve the demo: migrate, ensure a staff user, start daphne on HOST:PORT with demo traffic running.
# Environment: VENV (.venv), HOST (127.0.0.1), PORT (8000), DEMO_RATE (20 events/s),
#              DEMO_USER (admin), DEMO_PASSWORD (signals-demo), SIGNAL_MONITOR_WRITER (process),
#              SIGNAL_MONITOR_SQLITE_PATH (the monitor's own SQLite file; config/settings.py).
#              Ctrl-C stops both processes.
set -euo pipefail

venv="${VENV:-.venv}"
host="${HOST:-127.0.0.1}"
port="${PORT:-8000}"
rate="${DEMO_RATE:-20}"
export DEMO_USER="${DEMO_USER:-admin}"
export DEMO_PASSWORD="${DEMO_PASSWORD:-signals-demo}"
py="$venv/bin/python"

port_open() {
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

if port_open; then
    echo "error: something already listens on $host:$port (stop it, or run: make run PORT=8001)" >&2
    exit 1
fi

# On SQLite the monitor stores into a file of its own (config/settings.py: the "signals" alias),
# so the demo's own writes never wait for the monitor's; it is migrated first, so that the
# default database's migration signals are stored there.
for alias in $("$py" -c '
import config.settings as settings  # the aliases only: no Django set-up, nothing recorded
print(*sorted(settings.DATABASES, key=lambda alias: alias == "default"))
'); do
    "$py" manage.py migrate --noinput --database "$alias"
done
"$py" manage.py shell -v 0 -c '
import os
from django.contrib.auth import get_user_model

user, _ = get_user_model().objects.get_or_create(username=os.environ["DEMO_USER"])
user.is_staff = user.is_superuser = True
user.set_password(os.environ["DEMO_PASSWORD"])
user.save()
'

server_pid=""
traffic_pid=""
stop() {
    trap - INT TERM EXIT
    for pid in $traffic_pid $server_pid; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $traffic_pid $server_pid; do
        wait "$pid" 2>/dev/null || true
    done
}
trap stop INT TERM EXIT

# The dashboard and the traffic each store their events from a writer process (README: WRITER).
export SIGNAL_MONITOR_WRITER="${SIGNAL_MONITOR_WRITER:-process}"
"$py" -m daphne -b "$host" -p "$port" config.asgi:application &
server_pid=$!
for _ in $(seq 1 100); do
    port_open && break
    kill -0 "$server_pid" 2>/dev/null || { echo "error: daphne did not start" >&2; exit 1; }
    sleep 0.2
done

"$py" manage.py demo_traffic --rate "$rate" --seconds 0 &
traffic_pid=$!

cat <<MSG

  ==========================================================================
   Signal monitor:  http://$host:$port/signals/
   Log in as:       $DEMO_USER / $DEMO_PASSWORD
                    (a demo-only staff user; set DEMO_PASSWORD=... to choose the password)
   Demo traffic:    manage.py demo_traffic --rate $rate --seconds 0 (pid $traffic_pid)
   Stop:            Ctrl-C (stops daphne and the demo traffic)
  ==========================================================================

MSG

wait "$server_pid"
