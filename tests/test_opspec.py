"""Samples are reproducible from what a record stores, edge cases included."""

from __future__ import annotations

import dataclasses

import numpy as np

from refcnn.testing import catalog
from refcnn.testing.opspec import EdgeCase


def _run_repro_setup(snippet: str) -> object:
    """Execute a repro snippet up to (not including) its final check call; return `sample`."""
    namespace: dict[str, object] = {}
    exec("\n".join(snippet.splitlines()[:-1]), namespace)
    return namespace["sample"]


def test_a_sample_is_a_pure_function_of_params_seed_and_dtype() -> None:
    spec = catalog.get("conv2d")
    params = spec.edge_cases[0].params
    first, second = spec.sample(params, 11, "float32"), spec.sample(params, 11, "float32")
    for name, value in first.inputs.items():
        np.testing.assert_array_equal(value, second.inputs[name])
    wide = spec.sample(params, 11, "float64")
    # float32 samples are the float64 draws rounded once
    np.testing.assert_array_equal(first.inputs["x"], wide.inputs["x"].astype(np.float32))


def test_repro_snippet_rebuilds_the_same_sample() -> None:
    spec = catalog.get("im2col")
    sample = spec.sample(spec.edge_cases[1].params, seed=123, dtype="float32")
    rebuilt = _run_repro_setup(sample.repro("adjoint"))
    np.testing.assert_array_equal(rebuilt.inputs["x"], sample.inputs["x"])  # type: ignore[attr-defined]


def test_edge_case_arrays_replace_drawn_values_and_survive_the_repro() -> None:
    base = catalog.get("im2col")
    exact = np.arange(2 * 2 * 5 * 4, dtype=np.float64).reshape(2, 2, 5, 4) % 3  # with ties
    case = EdgeCase(
        "given values", base.edge_cases[0].params, arrays={"x": exact}, checks=("matches_torch",)
    )
    spec = dataclasses.replace(base, edge_cases=(case,))
    sample = spec.edge_sample("given values", "float32")
    assert sample.inputs["x"].dtype == np.float32
    np.testing.assert_array_equal(sample.inputs["x"], exact)
    assert "spec.edge_sample('given values', dtype='float32')" in sample.repro("matches_torch")
    assert spec.regenerate(sample, "float64").inputs["x"].dtype == np.float64
    assert case.applies_to("matches_torch") and not case.applies_to("directional_fd")
