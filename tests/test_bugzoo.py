"""The suite bites: every mutant in the bug zoo is caught by the check it names."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import find, settings

from refcnn.geometry import window_geometry
from refcnn.testing import bugzoo, checks
from refcnn.testing.opspec import Sample
from refcnn.testing.strategies import samples

SEARCH = settings(max_examples=500, derandomize=True, database=None, deadline=None)


@functools.cache
def counterexample(mutant_name: str) -> Sample:
    """The smallest sample on which the mutant fails its check (hypothesis shrinks it)."""
    mutant = bugzoo.get(mutant_name)
    spec, check = mutant.spec(), getattr(checks, mutant.caught_by)

    def fails(sample: Sample) -> bool:
        try:
            check(spec, sample)
        except AssertionError:
            return True
        return False

    return find(samples(spec, "small"), fails, settings=SEARCH)


@pytest.mark.parametrize("mutant", bugzoo.MUTANTS, ids=lambda m: m.name)
def test_mutant_is_caught(mutant: Any) -> None:
    sample = counterexample(mutant.name)
    assert sample.op == mutant.op


def test_reference_passes_where_the_mutant_fails() -> None:
    """The counterexamples are not artefacts of the check: refcnn itself passes on them."""
    for mutant in bugzoo.MUTANTS:
        spec = bugzoo.catalog.get(mutant.op)
        getattr(checks, mutant.caught_by)(spec, counterexample(mutant.name))


def test_col2im_that_assigns_fails_only_where_windows_overlap() -> None:
    sample = counterexample("col2im assigns instead of accumulating")
    p = sample.params
    geometry = window_geometry(
        p["input_size"], p["kernel_size"], p["stride"], p["padding"], p["dilation"]
    )
    assert geometry.windows_overlap, f"shrunk counterexample without overlap: {p}"
