"""The rounding-error model and the finite-difference helpers, on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refcnn import gradcheck
from refcnn.testing.tolerance import gamma, observed_over_bound, unit_roundoff


def test_unit_roundoff_and_gamma() -> None:
    assert unit_roundoff(np.float64) == 2.0**-53
    assert unit_roundoff(np.float32) == 2.0**-24
    assert gamma(1, np.float32) == pytest.approx(2.0**-24, rel=1e-6)
    with pytest.raises(ValueError, match="k·u >= 1"):
        gamma(2**24, np.float32)


@given(k=st.integers(1, 200), seed=st.integers(0, 2**32 - 1))
def test_gamma_bounds_a_float32_dot_product(k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(k).astype(np.float32), rng.standard_normal(k).astype(np.float32)
    exact = np.dot(a.astype(np.float64), b.astype(np.float64))  # error ~1e-16, far below
    error = abs(float(np.dot(a, b)) - exact)
    assert error <= gamma(k, np.float32) * np.dot(np.abs(a), np.abs(b)).astype(np.float64)


def test_observed_over_bound_conventions() -> None:
    ratio = observed_over_bound(np.array([0.0, 1.0, 1.0, np.nan]), np.array([0.0, 0.0, 2.0, 1.0]))
    assert ratio.tolist() == [0.0, np.inf, 0.5, np.inf]


def test_numerical_gradient_of_a_known_function() -> None:
    rng = np.random.default_rng(0)
    x, weights = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    numeric = gradcheck.numerical_gradient(lambda v: float(np.sum(weights * np.sin(v))), x)
    np.testing.assert_allclose(numeric, weights * np.cos(x), rtol=1e-8, atol=1e-9)


def test_directional_derivative_and_richardson_estimate() -> None:
    x, v = np.array([0.3, -1.2]), np.array([0.5, 1.0])
    exact = float(np.dot(np.exp(x), v))
    h = 1e-2
    d_h = gradcheck.directional_derivative(lambda y: float(np.sum(np.exp(y))), x, v, h)
    d_2h = gradcheck.directional_derivative(lambda y: float(np.sum(np.exp(y))), x, v, 2 * h)
    estimate = gradcheck.richardson_truncation_estimate(d_h, d_2h)
    assert abs(d_h - exact) == pytest.approx(estimate, rel=0.01)


def test_step_follows_the_documented_rule() -> None:
    assert gradcheck.central_difference_step(np.float64) == pytest.approx(np.cbrt(2.0**-53))
    assert gradcheck.central_difference_step(np.float32, 8.0) == pytest.approx(
        8 * np.cbrt(2.0**-24)
    )
