"""Every property check on every catalog op that has the capability it needs. No torch here.

Adding an op to the catalog adds its cases to these tests; no test function is written per op.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refcnn.testing import catalog, checks
from refcnn.testing.profiles import costly_examples
from refcnn.testing.strategies import samples

PROPERTY_CHECKS = checks.PROPERTY_CHECKS

TRIPLES = [
    (check, spec, budget)
    for check, capability, budget in PROPERTY_CHECKS
    for spec in (catalog.OPS if capability is None else catalog.with_capability(capability))
]
CASES, COSTLY_CASES = (
    [
        pytest.param(check, spec, budget, id=f"{check.__name__}-{spec.name}")
        for check, spec, budget in TRIPLES
        if (check.__name__ in spec.costly_checks | checks.FEWER_EXAMPLES) == costly
    ]
    for costly in (False, True)
)

EDGE_CASES = [
    pytest.param(check, spec, case, id=f"{check.__name__}-{spec.name}-{case.id}")
    for check, spec, _ in TRIPLES
    for case in spec.edge_cases
    if case.applies_to(check.__name__)
]


@pytest.mark.parametrize(("check", "spec", "budget"), CASES)
@given(data=st.data())
def test_property(check: Callable[..., None], spec: Any, budget: str, data: Any) -> None:
    check(spec, data.draw(samples(spec, budget), label="sample"))


@pytest.mark.parametrize(("check", "spec", "budget"), COSTLY_CASES)
@settings(max_examples=costly_examples(settings.default.max_examples))
@given(data=st.data())
def test_costly_property(check: Callable[..., None], spec: Any, budget: str, data: Any) -> None:
    """A check that costs its op seconds per example (OpSpec.costly_checks), or one of
    validation (checks.FEWER_EXAMPLES), on a quarter of the examples."""
    check(spec, data.draw(samples(spec, budget), label="sample"))


@pytest.mark.parametrize(("check", "spec", "case"), EDGE_CASES)
def test_property_on_edge_case(check: Callable[..., None], spec: Any, case: Any) -> None:
    check(spec, spec.edge_sample(case.id))


@pytest.mark.parametrize(
    ("spec", "case"),
    [
        pytest.param(spec, case, id=f"{spec.name}-{case.id}")
        for spec in catalog.with_capability("error_cases")
        for case in spec.error_cases
    ],
)
def test_bad_input_raises_documented_error(spec: Any, case: Any) -> None:
    checks.raises_documented_error(spec, case)
