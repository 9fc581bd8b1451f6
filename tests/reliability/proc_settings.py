"""Settings for the subprocesses of the process-fault tests: the project's, tuned from the env."""

import os

from config.settings import *  # noqa: F403
from config.settings import SIGNAL_MONITOR

SIGNAL_MONITOR = {
    **SIGNAL_MONITOR,
    "FLUSH_INTERVAL": float(os.environ.get("SM_FLUSH_INTERVAL", "0.2")),
    "EXIT_TIMEOUT": float(os.environ.get("SM_EXIT_TIMEOUT", "5")),
    "FLUSH_ON_SIGTERM": os.environ.get("SM_FLUSH_ON_SIGTERM", "1") == "1",
}
