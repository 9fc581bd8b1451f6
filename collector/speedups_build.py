"""Build the optional C accelerator (``collector/_speedups.c``, the capture plans) in place.

``python -m collector.speedups_build`` compiles it for the running interpreter next to this file
(``make venv`` does this for the project's virtualenvs; after ``pip install`` run it once in the
environment that serves the application). Without a C compiler or Python's headers it says so and
exits 0: the collector then uses its generated Python plans, with the same results, at about
1% more CPU a request in the benchmark's realistic request (docs/performance.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

SOURCE = Path(__file__).with_name("_speedups.c")


def target() -> Path:
    """Return the path of the built library for this interpreter."""
    return SOURCE.with_name("_speedups" + str(sysconfig.get_config_var("EXT_SUFFIX")))


def build(compiler: str | None = None) -> str:
    """Compile the accelerator; return "" on success, else why it was not built.

    The library is written beside its final name and renamed, so a running process keeps the
    copy it loaded.
    """
    cc = compiler or os.environ.get("CC") or "cc"
    if shutil.which(cc) is None:
        return f"no C compiler ({cc})"
    include = sysconfig.get_paths()["include"]
    if not Path(include, "Python.h").is_file():
        return f"Python's headers are not installed ({include}/Python.h)"
    out = target()
    temporary = out.with_name(out.name + ".tmp")
    command = [cc, "-O2", "-Wall", "-Werror", "-shared", "-fPIC", f"-I{include}", str(SOURCE),
               "-o", str(temporary)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        temporary.unlink(missing_ok=True)
        return f"{cc} failed:\n{done.stderr.strip()}"
    temporary.replace(out)
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
