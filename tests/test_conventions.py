"""Conventions are legitimate implementations, and every variant can be told apart.

A convention (refcnn.testing.conventions) must differ from the catalog's default, pass every
generic check that does not compare with torch's convention (its backward is the gradient of its
forward, unless its source's is not; its rounding model holds in float32; the invariants hold),
and raise the catalog's errors. The oracle names what a candidate does by the variant it matches,
so no two variants of one op, conventions and bug-zoo mutants together, may agree on a generic
sample.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from refcnn.testing import bugzoo, catalog, checks, conventions
from refcnn.testing.compare import Context, assert_within_bound
from refcnn.testing.opspec import OpSpec, Sample
from refcnn.testing.strategies import samples
from refcnn.testing.tolerance import PAIRWISE_FACTOR

# The names the book adapter declares (the oracle's plan): each must exist, spelled exactly so.
DECLARED = (
    "dropout not inverted",
    "cross-entropy adds 1e-7 inside the log",
    "batch norm momentum is the decay of the running value",
    "batch norm running variance is biased",
    "batch norm per activation on 4-D input",
    "RMSprop eps inside the square root",
    "Adagrad eps inside the square root",
    "Adam bias correction folded into the step size",
    "MSE is 0.5·Σ(y−t)²/N",
    "im2col returns the transposed layout",
    "max pooling pads with zeros",
)

# A search for a sample that tells two variants apart: generic samples only, no shrinking (a
# pair told apart by the first sample or so costs one call).
DISTINGUISH = settings(
    max_examples=100, derandomize=True, database=None, deadline=None, phases=[Phase.generate]
)

Variant = conventions.Convention | bugzoo.Mutant
Outcome = Any  # an array, or the ValueError a variant raised


def _copies(inputs: dict[str, Any]) -> dict[str, Any]:
    """Fresh copies, so that a variant that writes into its inputs cannot change the other's."""
    return {k: None if v is None else np.array(v, copy=True) for k, v in inputs.items()}


def _run(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Outcome:
    try:
        return call(*args, **kwargs)
    except ValueError as error:  # e.g. a padding that leaves the kernel no room
        return error


def disagreement(first: OpSpec, second: OpSpec, sample: Sample) -> str | None:
    """What tells ``second`` from ``first`` on ``sample`` (beyond PAIRWISE_FACTOR times the
    bound of first's model, the oracle's matching rule), or None where they agree."""
    out = [
        _run(spec.forward, **_copies(sample.inputs), **sample.kwargs) for spec in (first, second)
    ]
    if any(isinstance(o, ValueError) for o in out):
        both = all(isinstance(o, ValueError) for o in out)
        return None if both else "one raises"
    quantities = [
        (
            "out",
            out[0],
            out[1],
            first.tolerance.forward_bound(first, sample.inputs, sample.kwargs, sample.dtype),
        )
    ]
    if first.backward is not None and np.shape(out[0]) == np.shape(out[1]):
        upstream = sample.random(np.shape(out[0]), "upstream")
        grads = [
            _run(spec.backward_dict, upstream, _copies(sample.inputs), sample.kwargs)
            for spec in (first, second)
        ]
        if any(isinstance(g, ValueError) for g in grads):
            return None if all(isinstance(g, ValueError) for g in grads) else "one raises"
        bounds = first.tolerance.backward_bounds(
            first, sample.inputs, sample.kwargs, upstream, sample.dtype
        )
        quantities += [(f"grad_{n}", grads[0][n], grads[1][n], bounds[n]) for n in grads[0]]
    for quantity, a, b, bound in quantities:
        context = Context(sample, "variants", quantity, f"{second.summary} vs {first.summary}")
        try:
            assert_within_bound(b, a, PAIRWISE_FACTOR * bound, context)
        except AssertionError:
            return quantity
    return None


def distinguishing_sample(
    first: OpSpec, second: OpSpec, fill: dict[str, Any], names: tuple[str, str]
) -> Sample:
    """A generic sample (the catalog's strategy, ``fill`` where given) that tells them apart;
    ``names`` say which variants they are in the failure message."""
    drawn = dataclasses.replace(first, fill={**first.fill, **fill})
    try:
        return find(
            samples(drawn, "small"),
            lambda sample: disagreement(first, second, sample) is not None,
            settings=DISTINGUISH,
        )
    except NoSuchExample:
        pytest.fail(
            f"{names[1]!r} agrees with {names[0]!r} on every one of "
            f"{DISTINGUISH.max_examples} generic samples of {first.name}"
        )


# --- the registry ---------------------------------------------------------------------------------


def test_the_declared_conventions_exist() -> None:
    for name in DECLARED:
        assert conventions.get(name).name == name
    for convention in conventions.CONVENTIONS:
        assert convention in conventions.for_op(convention.op)
        assert convention.summary and convention.op in {spec.name for spec in catalog.OPS}


def test_spec_for_resolves_declared_conventions() -> None:
    decay = "batch norm momentum is the decay of the running value"
    biased = "batch norm running variance is biased"
    assert conventions.spec_for("conv2d", [decay]) is catalog.get("conv2d")
    assert conventions.spec_for("dropout", ["dropout not inverted"]).forward is (
        conventions.dropout_not_inverted
    )
    both = conventions.spec_for("batch_norm_running_stats", [decay, biased])
    assert both.summary == conventions.BOOK_RUNNING_STATISTICS.spec().summary
    with pytest.raises(KeyError, match=r"no convention .*dropout inverted"):
        conventions.spec_for("dropout", ["dropout inverted"])
    with pytest.raises(ValueError, match="not combined by any variant"):
        conventions.spec_for(
            "batch_norm_running_stats",
            [decay, biased, conventions.BOOK_RUNNING_STATISTICS.name],
        )


# --- each convention differs from the default -----------------------------------------------------


@pytest.mark.parametrize("convention", conventions.CONVENTIONS, ids=lambda c: c.name)
def test_convention_differs_from_the_default(convention: conventions.Convention) -> None:
    default = catalog.get(convention.op)
    distinguishing_sample(default, convention.spec(), {}, ("the default", convention.name))


# --- each convention is a legitimate implementation -----------------------------------------------

# the catalog's property checks (checks.PROPERTY_CHECKS) but matches_definition: a convention's
# direct definition would be torch's convention, which it departs from on purpose
CHECKS = [entry for entry in checks.PROPERTY_CHECKS if entry[0] is not checks.matches_definition]

CASES = [
    pytest.param(check, convention, budget, id=f"{check.__name__}-{convention.name}")
    for check, capability, budget in CHECKS
    for convention in conventions.CONVENTIONS
    if (capability is None or capability in convention.spec().capabilities)
    and check.__name__ not in convention.spec().not_applicable
]


@pytest.mark.parametrize(("check", "convention", "budget"), CASES)
@given(data=st.data())
def test_convention_passes_the_generic_checks(
    check: Callable[..., None], convention: conventions.Convention, budget: str, data: Any
) -> None:
    spec = convention.spec()
    check(spec, data.draw(samples(spec, budget), label="sample"))


EDGE_CASES = [
    pytest.param(check, convention, case, id=f"{check.__name__}-{convention.name}-{case.id}")
    for check, convention, _ in (p.values for p in CASES)
    for case in convention.spec().edge_cases
    if case.applies_to(check.__name__)
]


@pytest.mark.parametrize(("check", "convention", "case"), EDGE_CASES)
def test_convention_passes_the_generic_checks_on_edge_cases(
    check: Callable[..., None], convention: conventions.Convention, case: Any
) -> None:
    spec = convention.spec()
    check(spec, spec.edge_sample(case.id))


@pytest.mark.parametrize(
    "convention",
    [c for c in conventions.CONVENTIONS if not c.backward_is_gradient],
    ids=lambda c: c.name,
)
def test_a_backward_that_is_not_the_gradient_is_declared_so(
    convention: conventions.Convention,
) -> None:
    """The book's SoftmaxWithLoss returns (y − t)/N, the gradient without its 1e-7: finite
    differences of its loss see the difference (so the oracle must not run them on it)."""
    spec = dataclasses.replace(convention.spec(), not_applicable={})

    def fd_fails(sample: Sample) -> bool:
        try:
            checks.directional_fd(spec, sample)
        except AssertionError:
            return True
        return False

    find(samples(spec, "small"), fd_fails, settings=DISTINGUISH)


@pytest.mark.parametrize(
    ("convention", "case"),
    [
        pytest.param(c, case, id=f"{c.name}-{case.id}")
        for c in conventions.CONVENTIONS
        for case in c.spec().error_cases
    ],
)
def test_convention_raises_the_documented_errors(
    convention: conventions.Convention, case: Any
) -> None:
    checks.raises_documented_error(convention.spec(), case)


# --- no two variants of an op agree ---------------------------------------------------------------

VARIANTS: list[Variant] = [*conventions.CONVENTIONS, *bugzoo.MUTANTS]
PAIRS = [
    pytest.param(first, second, id=f"{first.name} | {second.name}")
    for first, second in itertools.combinations(VARIANTS, 2)
    if first.op == second.op
]


@pytest.mark.parametrize(("first", "second"), PAIRS)
def test_no_two_variants_of_an_op_agree(first: Variant, second: Variant) -> None:
    """Ties, which the catalog's fills avoid, are drawn where a mutant's search needs them."""
    fill = {**getattr(first, "fill", {}), **getattr(second, "fill", {})}
    distinguishing_sample(first.spec(), second.spec(), fill, (first.name, second.name))
