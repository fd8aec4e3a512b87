"""Hypothesis profiles, chosen by ``--hypothesis-profile`` or ``REFCNN_PROFILE``.

dev       fast iteration (default on a workstation)
ci        derandomized, so a CI run is reproducible (default when ``CI`` is set)
thorough  many examples, for a nightly job or before a release
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE_VARIABLE = "REFCNN_PROFILE"

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow],
           "print_blob": True}


def register_profiles() -> str:
    """Register the three profiles, load the selected one and return its name."""
    settings.register_profile("dev", max_examples=15, **_COMMON)
    settings.register_profile("ci", max_examples=100, derandomize=True, database=None, **_COMMON)
    settings.register_profile("thorough", max_examples=1000, **_COMMON)
    default = "ci" if os.environ.get("CI") else "dev"
    name = os.environ.get(PROFILE_VARIABLE, default)
    settings.load_profile(name)
    return name
