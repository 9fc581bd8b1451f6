"""The signal monitor's collector: a transparent hook on every Django signal.

Public API: ``install()``, ``uninstall()``, ``is_installed()``, ``flush()``.
"""

from __future__ import annotations

__all__ = ["install", "uninstall", "is_installed", "flush"]


def install() -> bool:
    """Start recording every signal in this process; return False if it already was (idempotent)
    or this is a writer process (whose own work is never recorded)."""
    from collector import hook, link, runtime

    if link.IN_WRITER_PROCESS:
        return False
    runtime.attach()
    installed = hook.install()
    # Start the writer now; the hot path only checks it every 256 sends.
    hook.runtime_state.start()
    return installed


def uninstall() -> bool:
    """Stop recording and restore Django's own send methods; return False if not installed."""
    from collector import hook

    return hook.uninstall()


def is_installed() -> bool:
    """Return True while the hook is installed."""
    from collector import hook

    return hook.is_installed()


def flush(timeout: float = 5.0) -> bool:
    """Wait until everything recorded so far reached the sinks; return False on timeout."""
    from collector import runtime

    return runtime.flush(timeout)
