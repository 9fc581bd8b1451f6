"""Build the optional C accelerator (``collector/_speedups.c``, the capture plans) in place.

``python -m collector.speedups_build`` compiles it for the running interpreter next to this file
(``make venv`` does this for the project's virtualenvs; after ``pip install`` run it once in the
environment that serves the application). Without a C compiler or Python's headers it says so and
exits 0: the collector then uses its generated Python plans, with the same results, at about
1% more CPU a request in the benchmark's realistic request (docs/performance.md).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("_speedups.c")


def target() -> Path:
    """Return the path of the built library for this interpreter."""
    return SOURCE.with_name("_speedups" + str(sysconfig.get_config_var("EXT_SUFFIX")))


def build(compiler: str | None = None) -> str:
    """Compile the accelerator; return "" on success, else why it was not built.

    The library is written to a temporary file beside its final name and renamed, so a running
    process keeps the copy it loaded. A build that fails removes the old library too: a stale one
    must not be loaded beside a newer ``capture``.
    """
    out = target()
    if sys.version_info < (3, 12):
        out.unlink(missing_ok=True)
        return f"it needs Python 3.12 or later (this is {sys.version.split()[0]})"
    cc = shlex.split(compiler or os.environ.get("CC") or "cc")
    if not cc or shutil.which(cc[0]) is None:
        out.unlink(missing_ok=True)
        return f"no C compiler ({' '.join(cc)})"
    paths = sysconfig.get_paths()
    includes = dict.fromkeys([paths["include"], paths["platinclude"]])
    if not any(Path(folder, "Python.h").is_file() for folder in includes):
        out.unlink(missing_ok=True)
        return f"Python's headers are not installed ({paths['include']}/Python.h)"
    handle, temporary = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    os.close(handle)
    command = [*cc, "-O2", "-Wall", "-shared", "-fPIC", *(f"-I{i}" for i in includes),
               str(SOURCE), "-o", temporary]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        Path(temporary).unlink(missing_ok=True)
        out.unlink(missing_ok=True)
        return f"{' '.join(cc)} failed:\n{done.stderr.strip()}"
    os.replace(temporary, out)
    return ""


def main() -> int:
    """Build, and say what happened (exit 0 either way: the accelerator is optional)."""
    why = build()
    if why:
        print(f"collector.speedups_build: not built, {why}; the collector uses its Python capture "
              "plans", file=sys.stderr)  # fmt: skip
    else:
        print(f"collector.speedups_build: built {target()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
