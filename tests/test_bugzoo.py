"""The suite bites: every mutant in the bug zoo is caught by the check it names, on a shrunk
counterexample on which refcnn itself passes."""

from __future__ import annotations

import functools

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from refcnn.geometry import window_geometry
from refcnn.testing import bugzoo, catalog, checks, conventions
from refcnn.testing.opspec import Sample
from refcnn.testing.strategies import samples

SEARCH = settings(max_examples=500, derandomize=True, database=None, deadline=None)


@functools.cache
def counterexample(mutant_name: str) -> Sample:
    """The smallest sample on which the mutant fails its check (hypothesis shrinks it).

    Only an AssertionError counts as caught: a mutant that raises on a sample (a padding that
    no longer fits the kernel) is not caught THERE, and the search moves on."""
    mutant = bugzoo.get(mutant_name)
    spec, check = mutant.search_spec(), getattr(checks, mutant.caught_by)

    def fails(sample: Sample) -> bool:
        try:
            check(spec, sample)
        except AssertionError:
            return True
        except ValueError:
            return False
        return False

    return find(samples(spec, "small"), fails, settings=SEARCH)


@pytest.mark.parametrize("mutant", bugzoo.MUTANTS, ids=lambda m: m.name)
def test_mutant_is_caught_where_refcnn_passes(mutant: bugzoo.Mutant) -> None:
    sample = counterexample(mutant.name)
    assert sample.op == mutant.op
    # not an artefact of the check: refcnn itself passes on the counterexample
    reference = mutant.search_spec(catalog.get(mutant.op))
    getattr(checks, mutant.caught_by)(reference, sample)


@pytest.mark.parametrize("mutant", bugzoo.MUTANTS, ids=lambda m: m.name)
@given(data=st.data())
def test_mutant_rounding_model_holds_in_float32(mutant: bugzoo.Mutant, data: st.DataObject) -> None:
    """The oracle matches a float32 candidate with a mutant under the mutant's model, so the
    model must bound the mutant's own arithmetic (the catalog's does not, for a gradient without
    its 1/N or a softmax over another axis)."""
    spec = mutant.search_spec()
    try:
        checks.float32_tracks_float64(spec, data.draw(samples(spec, "small"), label="sample"))
    except ValueError:
        return  # outside the mutant's domain: a one-sided padding that the kernel does not fit


def test_col2im_that_assigns_fails_only_where_windows_overlap() -> None:
    sample = counterexample("col2im assigns instead of accumulating")
    p = sample.params
    geometry = window_geometry(
        p["input_size"], p["kernel_size"], p["stride"], p["padding"], p["dilation"]
    )
    assert geometry.windows_overlap, f"shrunk counterexample without overlap: {p}"


def test_every_mutant_names_a_check_and_a_unique_name() -> None:
    names = [m.name for m in bugzoo.MUTANTS] + [c.name for c in conventions.CONVENTIONS]
    assert len(names) == len(set(names)), "a variant name is used twice"
    for mutant in bugzoo.MUTANTS:
        assert callable(getattr(checks, mutant.caught_by, None)), mutant.caught_by
        assert bugzoo.get(mutant.name) is mutant
        assert mutant in bugzoo.for_op(mutant.op)
    assert len(bugzoo.MUTANTS) >= 24


def test_the_old_nesterov_order_is_not_torch_in_exact_arithmetic() -> None:
    """The book's published Nesterov (θ with the NEW velocity) differs from torch by
    lr·μ²·(b − b_old); Bengio et al.'s order (θ first, OLD velocity) IS torch's rule:
    θ − lr·(μ²·b_old + (1 + μ)·g) = θ − lr·(g + μ·(μ·b_old + g)). Exact rationals."""
    from fractions import Fraction as F

    lr, mu, b_old, g = F(1, 10), F(9, 10), F(3, 7), F(-2, 5)
    b = mu * b_old + g
    torch_step = lr * (g + mu * b)
    later_order = lr * (mu * mu * b_old + (1 + mu) * g)
    old_order = lr * (mu * mu * b + (1 + mu) * g)
    assert later_order == torch_step
    assert old_order - torch_step == lr * mu * mu * (b - b_old) != 0
