"""Hypothesis profiles, chosen by ``--hypothesis-profile`` or ``REFCNN_PROFILE``.

dev       fast iteration (default on a workstation)
ci        derandomized, so a CI run is reproducible (default when ``CI`` is set)
thorough  many examples, for a nightly job or before a release
mutation  derandomized and small, for the thousands of reruns of mutation testing (nox -s mutation)
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings

PROFILE_VARIABLE = "REFCNN_PROFILE"
MUTATION_EXAMPLES = 20  # a mutant that survives 20 derandomized examples gets a sharper property
COSTLY_SHARE = 4  # an op's costly checks (OpSpec.costly_checks) run 1/4 of the profile's examples

_COMMON: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
    "print_blob": True,
}


def selected_profile() -> str:
    """``REFCNN_PROFILE`` if set, else ``ci`` when ``CI`` is set, else ``dev``."""
    return os.environ.get(PROFILE_VARIABLE) or ("ci" if os.environ.get("CI") else "dev")


def costly_examples(max_examples: int) -> int:
    """The examples of a check an op marks costly: a quarter of the profile's, at least 1."""
    return max(1, max_examples // COSTLY_SHARE)


def register_profiles() -> str:
    """Register the three profiles, load the selected one and return its name."""
    settings.register_profile("dev", max_examples=15, **_COMMON)
    settings.register_profile("ci", max_examples=100, derandomize=True, database=None, **_COMMON)
    settings.register_profile("thorough", max_examples=1000, **_COMMON)
    settings.register_profile(
        "mutation", max_examples=MUTATION_EXAMPLES, derandomize=True, database=None, **_COMMON
    )
    name = selected_profile()
    settings.load_profile(name)
    return name
