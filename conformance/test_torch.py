"""Every catalog op with a torch binding against torch (CPU): forward and every gradient."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from refcnn.testing import catalog, checks
from refcnn.testing.strategies import samples

DTYPES = ["float64", "float32"]
TORCH_OPS = [pytest.param(spec, id=spec.name) for spec in catalog.with_capability("torch")]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spec", TORCH_OPS)
@given(data=st.data())
def test_matches_torch(spec: Any, dtype: str, data: Any) -> None:
    checks.matches_torch(spec, data.draw(samples(spec, "small", dtype), label="sample"))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("spec", "case"),
    [
        pytest.param(spec, case, id=f"{spec.name}-{case.id}")
        for spec in catalog.with_capability("torch")
        for case in spec.edge_cases
        if case.applies_to("matches_torch")
    ],
)
def test_matches_torch_on_edge_case(spec: Any, case: Any, dtype: str) -> None:
    checks.matches_torch(spec, spec.edge_sample(case.id, dtype))


@pytest.mark.parametrize("spec", TORCH_OPS)
@given(data=st.data())
def test_defaults_match_torch(spec: Any, data: Any) -> None:
    """Every keyword left out: refcnn's defaults against torch's own (float64 is enough)."""
    checks.defaults_match_torch(spec, data.draw(samples(spec, "small"), label="sample"))
