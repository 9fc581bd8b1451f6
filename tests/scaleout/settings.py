"""The project's settings with the scale-out tests' URLconf (it serves the processes page)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "tests.scaleout.urls"
