"""The order in which a mutant's tests run, so that a killed mutant dies on its cheapest test.

mutmut runs each mutant against the tests that reach the mutated function, with ``-x``: the
first failure ends the run. It passes those tests in no particular order, and for a function
as central as ``conv2d_backward`` they range from 10 ms (an error case of conv2d) to a minute
(the full finite-difference Jacobian of DeepConvNet). Run in a random order, a mutant that
conv2d's own properties kill in a second often waits for the networks first.

So, when ``MUTANT_UNDER_TEST`` names a mutant (mutmut sets it in the process that runs the
tests), the tests run

1. those of the catalog ops whose forward or backward lives in the mutated module first (the
   catalog knows which ops live where: a mutant of ``refcnn/functional/conv.py`` meets conv2d's
   properties before the networks built on it), then the rest;
2. within each group, in the order of their measured duration (mutmut's
   ``mutmut-stats.json`` in the working directory), cheapest first.

Only the order changes, never the set: a mutant that survives has passed every test it
reaches, as before.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

MUTANT_VARIABLE = "MUTANT_UNDER_TEST"
STATS_FILE = Path("mutmut-stats.json")  # relative to mutmut's working directory, mutants/
_MUTANT_NAME = re.compile(r"(?P<module>[\w.]+)\.(?P<function>x\S*__mutmut_\d+)")


def mutant_under_test() -> str | None:
    """The mutant this process tests (``refcnn.functional.conv.x_conv2d__mutmut_3``), or None."""
    name = os.environ.get(MUTANT_VARIABLE, "")  # mutmut's runs of the clean code: "", "stats", ...
    return name if _MUTANT_NAME.fullmatch(name) else None


def mutated_module(mutant: str) -> str:
    """The module of a mutant: ``refcnn.functional.conv`` for
    ``refcnn.functional.conv.x_conv2d__mutmut_3``, ``refcnn.optim`` for
    ``refcnn.optim.xǁSGDǁstep__mutmut_1`` (mutmut's names never have a dot after the module)."""
    match = _MUTANT_NAME.fullmatch(mutant)
    if match is None:
        raise ValueError(f"mutant={mutant!r} is not a mutmut mutant name")
    return match["module"]


def relevant_ops(module_name: str) -> set[str]:
    """The catalog ops that live in ``module_name``: those whose forward or backward is defined
    there, or which the module defines under the op's own name, any case (``cross_entropy``,
    whose catalog forward is a small wrapper, is ``refcnn.functional.losses.cross_entropy``;
    ``adamw`` is ``refcnn.optim.AdamW``)."""
    import importlib

    from refcnn.testing import catalog

    module = importlib.import_module(module_name)
    names = {name.lower() for name in vars(module)}
    return {
        spec.name
        for spec in catalog.OPS
        if spec.name in names
        or any(getattr(f, "__module__", None) == module_name for f in (spec.forward, spec.backward))
    }


def measured_durations(path: Path = STATS_FILE) -> dict[str, float]:
    """Seconds per test id from mutmut's stats run, or {} where there is none."""
    try:
        return dict(json.loads(path.read_text())["duration_by_test"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def ops_in_nodeid(nodeid: str) -> set[str]:
    """The parameter tokens of a test id (``test_property[adjoint-conv2d]`` → adjoint, conv2d)."""
    _, _, name = nodeid.partition("::")
    if "[" not in name:
        return set()
    return set(name[name.index("[") + 1 : name.rindex("]")].split("-"))


def mutant_test_order(
    relevant_ops: set[str], durations: Mapping[str, float]
) -> Callable[[str], tuple[bool, float, str]]:
    """Sort key of a test id: tests of the relevant ops first, each group cheapest first, ties
    by id (a stable order, the same in every run). Unmeasured tests count as 0 s."""

    def key(nodeid: str) -> tuple[bool, float, str]:
        relevant = bool(ops_in_nodeid(nodeid) & relevant_ops)
        return (not relevant, durations.get(nodeid, 0.0), nodeid)

    return key


def sort_key_for_mutant(
    mutant: str, durations: Mapping[str, float]
) -> Callable[[str], tuple[bool, float, str]]:
    """The sort key of test ids to run against ``mutant`` (see :func:`mutant_test_order`)."""
    return mutant_test_order(relevant_ops(mutated_module(mutant)), durations)
