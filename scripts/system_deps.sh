#!/usr/bin/env bash
# Install (Debian packages, as root) and start what the test suite uses: Chromium for the browser
# tests, Redis and PostgreSQL for the scale-out tests, gcc for the C accelerator. Idempotent: installed packages and running
# services are left alone. Without root, missing packages are reported and the tests that need them
# fail under CI=true (and are skipped with a reason elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

packages=(chromium redis-server postgresql gcc)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "installing: ${missing[*]}"
        for attempt in 1 2 3; do
            apt-get update -qq && break
            echo "apt-get update failed (attempt $attempt), retrying" >&2
            sleep 5
        done
        apt-get install -y -qq -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null
    else
        echo "missing system packages (run as root to install): ${missing[*]}" >&2
    fi
fi
if [ "$(id -u)" -eq 0 ]; then
    scripts/start_services.sh
fi
