"""The vendored htmx matches its recorded version and checksums (`make vendor-htmx` redoes it)."""

from __future__ import annotations

import hashlib
from pathlib import Path

VENDOR = Path(__file__).resolve().parent.parent / "static" / "signals_dashboard" / "vendor" / "htmx"


def test_vendored_htmx_is_version_4() -> None:
    """VERSION names htmx.org 4.x, and htmx.js declares the same version."""
    first_line = (VENDOR / "VERSION").read_text().splitlines()[0]
    name, version = first_line.split()
    assert name == "htmx.org"
    assert version.startswith("4.")
    assert f"this.version = '{version}'" in (VENDOR / "htmx.js").read_text()


def test_vendored_files_match_sha256sums() -> None:
    """Every file listed in SHA256SUMS exists with that checksum, and nothing else is vendored."""
    listed = {}
    for line in (VENDOR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name] = digest
    actual = {
        path.relative_to(VENDOR).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in VENDOR.rglob("*")
        if path.is_file() and path.name not in {"SHA256SUMS", "VERSION"}
    }
    assert actual == listed
    assert {"htmx.min.js", "ext/hx-ws.js"} <= set(listed)
