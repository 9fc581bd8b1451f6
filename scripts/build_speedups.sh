#!/usr/bin/env bash
# Build the optional C accelerator collector/_speedups (capture plans) for one interpreter, in
# place: collector.speedups_build does it (and says why when it cannot; the collector then uses its
# pure-Python plans). Usage: scripts/build_speedups.sh PYTHON
set -eu
cd "$(dirname "$0")/.."
"${1:?usage: build_speedups.sh PYTHON}" -m collector.speedups_build
