#!/usr/bin/env bash
# Create (or repair) a virtualenv with Python >= 3.12 and install a requirements file into it.
# Usage: scripts/make_venv.sh VENV REQUIREMENTS [DJANGO_REQUIREMENT]
#   DJANGO_REQUIREMENT (e.g. Django==5.2.19) replaces the Django pin of REQUIREMENTS.
set -euo pipefail

venv="$1"
req="$2"
django="${3:-}"
here="$(cd "$(dirname "$0")" && pwd)"

if ! "$venv/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
    py="$("$here/find_python.sh")"
    echo "creating $venv with $py ($("$py" --version 2>&1))"
    rm -rf "$venv"
    "$py" -m venv "$venv"
fi

if [ -n "$django" ]; then
    tmp="$(mktemp)"
    trap 'rm -f "$tmp"' EXIT
    # -r lines are relative to the requirements file, so keep the copy's includes working
    sed -e "s|^Django==.*|$django|I" -e "s|^-r \(.*\)|-r $(cd "$(dirname "$req")" && pwd)/\1|" "$req" > "$tmp"
    grep -qx "$django" "$tmp" || { echo "error: no Django pin in $req to replace" >&2; exit 1; }
    req="$tmp"
fi

"$venv/bin/python" -m pip install --disable-pip-version-check --quiet -r "$req"
echo "$venv is ready ($("$venv/bin/python" --version 2>&1), $("$venv/bin/python" -m django --version 2>/dev/null | sed 's/^/Django /'))"
