#!/usr/bin/env bash
# Print the path of the first Python >= 3.12 (with venv and ensurepip) found on this machine.
# Order: $PYTHON if set; python3.12, python3.13, python3.14, python3 on PATH; then pyenv's
# installed versions (3.12 first, then newer). Each candidate is test-run, because pyenv shims
# exist on PATH for every installed version but fail unless that version is selected.
set -uo pipefail

MIN_CHECK='import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 12) else 1)'

works() {
    [ -n "$1" ] && [ -x "$1" ] && "$1" -c "$MIN_CHECK" >/dev/null 2>&1
}

emit() {
    "$1" -c 'import sys; print(sys.executable)'
    exit 0
}

if [ -n "${PYTHON:-}" ]; then
    cand="$(command -v "$PYTHON" 2>/dev/null || true)"
    works "$cand" && emit "$cand"
    echo "error: PYTHON=$PYTHON is not a working Python >= 3.12 with venv" >&2
    exit 1
fi

for name in python3.12 python3.13 python3.14 python3; do
    # every match on PATH, not only the first: a failing pyenv shim may shadow a real one
    while IFS= read -r cand; do
        works "$cand" && emit "$cand"
    done < <(type -ap "$name" 2>/dev/null)
done

roots=()
if command -v pyenv >/dev/null 2>&1; then
    roots+=("$(pyenv root 2>/dev/null)")
fi
roots+=("${PYENV_ROOT:-}" "$HOME/.pyenv")
for root in "${roots[@]}"; do
    [ -n "$root" ] && [ -d "$root/versions" ] || continue
    # 3.12.x first (the version the benchmarks are calibrated on), then newer, newest first
    for cand in $(ls -d "$root"/versions/3.12*/bin/python 2>/dev/null | sort -rV) \
                $(ls -d "$root"/versions/3.1[3-9]*/bin/python 2>/dev/null | sort -rV); do
        works "$cand" && emit "$cand"
    done
done

cat >&2 <<'MSG'
error: no Python >= 3.12 (with the venv module) was found.
  Looked for python3.12, python3.13, python3.14 and python3 on PATH, and in pyenv's versions.
  Install one (for example `pyenv install 3.12`, or Debian's python3.12 and python3.12-venv),
  or point at it explicitly: make PYTHON=/path/to/python3.12 <target>
MSG
exit 1
