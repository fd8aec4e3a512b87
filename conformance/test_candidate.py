"""The suite on someone else's implementation: ``REFCNN_IMPL=TARGET`` (and optionally
``REFCNN_STYLE``), or ``pytest --refcnn-impl TARGET [--refcnn-style STYLE]``, runs the oracle's
checks (see refcnn.testing.oracle) on that candidate as ordinary pytest tests, one per op, check
and dtype, so another project's CI can run ``REFCNN_IMPL=mypkg.layers nox -s conformance``.

Collected only when a candidate is named (conftest.py ignores this file otherwise).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from refcnn.testing import catalog, oracle
from refcnn.testing.adapters import Unsupported, provides


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    target, style = oracle.selected_candidate(metafunc.config)
    assert target is not None  # conftest.py ignores this module otherwise
    candidate = oracle.cached_candidate(target, style)
    cases = []
    for spec in catalog.OPS:
        if not provides(candidate, spec):
            continue
        for check in oracle.checks_for(oracle.reference_spec(candidate, spec)[0]):
            dtypes = oracle.DTYPES if check == "values" else ("float64",)
            cases += [pytest.param(spec, check, d, id=f"{check}-{spec.name}-{d}") for d in dtypes]
    if "edge_case" in metafunc.fixturenames:
        cases = [
            pytest.param(spec, check, dtype, case, id=f"{check}-{spec.name}-{case.id}-{dtype}")
            for spec, check, dtype in (p.values for p in cases)
            for case in spec.edge_cases
            if case.applies_to("matches_torch" if check == "values" else check)
        ]
        metafunc.parametrize(("spec", "check", "dtype", "edge_case"), cases)
    else:
        metafunc.parametrize(("spec", "check", "dtype"), cases)


def _check(config: pytest.Config, spec: Any, check: str, sample: Any) -> None:
    candidate = oracle.cached_candidate(*oracle.selected_candidate(config))
    reference, _ = oracle.reference_spec(candidate, spec)
    prepared = oracle.prepare(candidate, reference, sample)
    if prepared is None:
        raise Unsupported(f"the candidate's API cannot express {sample.describe()}")
    with oracle.time_limit(float(os.environ.get("REFCNN_TIMEOUT", "300"))):
        oracle.run_check(check, reference, candidate, prepared)


@given(data=st.data())
def test_candidate(
    request: pytest.FixtureRequest, spec: Any, check: str, dtype: str, data: Any
) -> None:
    candidate = oracle.cached_candidate(*oracle.selected_candidate(request.config))
    reference, _ = oracle.reference_spec(candidate, spec)
    strategy = oracle.sample_strategy(candidate, reference, "small", dtype)
    try:
        _check(request.config, spec, check, data.draw(strategy, label="sample"))
    except Unsupported:
        assume(False)  # outside the candidate's API: draw another


def test_candidate_on_edge_case(
    request: pytest.FixtureRequest, spec: Any, check: str, dtype: str, edge_case: Any
) -> None:
    candidate = oracle.cached_candidate(*oracle.selected_candidate(request.config))
    reference, _ = oracle.reference_spec(candidate, spec)
    try:
        _check(request.config, spec, check, reference.edge_sample(edge_case.id, dtype))
    except Unsupported as reason:
        pytest.skip(str(reason))
