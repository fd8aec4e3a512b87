"""The rounding-error model and the finite-difference helpers, on cases with known answers; conv2d
whatever its chunking."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refcnn import gradcheck
from refcnn.functional import conv
from refcnn.testing import catalog, checks
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


# Exact cases: integer inputs and a power-of-two step make every difference quotient exact, so
# these compare with ==; a Jacobian's layout, the step passed through and the default step rule
# are each pinned down.

A = np.array([[1.0, 2.0, -3.0], [4.0, -5.0, 6.0]])  # not square: a transposed Jacobian cannot fit


def test_numerical_jacobian_of_a_linear_map_is_its_matrix_exactly() -> None:
    x = np.array([1.0, -2.0, 3.0])
    assert np.array_equal(gradcheck.numerical_jacobian(lambda v: A @ v, x, h=2.0**-10), A)
    square = A[:, :2]  # (2, 2), not symmetric: rows and columns must not be swapped
    assert np.array_equal(gradcheck.numerical_jacobian(lambda v: square @ v, x[:2], 0.5), square)


def test_the_given_step_is_the_one_used() -> None:
    """For a cubic the central quotient is f'(x) + h²·f'''/6: 3x² + h² for x³, exact here."""
    x = np.array([[1.0, -2.0], [3.0, 0.0]])
    cube_sum = lambda v: float(np.sum(v**3))  # noqa: E731
    assert np.array_equal(gradcheck.numerical_gradient(cube_sum, x, 0.5), 3 * x**2 + 0.25)
    v = np.array([[1.0, 0.0], [0.0, -1.0]])
    d = gradcheck.directional_derivative(cube_sum, x, v, 0.5)
    assert d == float(np.sum((3 * x**2 + 0.25) * v))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_default_step_is_the_documented_rule_for_the_input(dtype: type) -> None:
    """Without h, every helper uses central_difference_step(x.dtype, max|x|) bit for bit."""
    x = np.array([0.5, -4.0, 2.0], dtype=dtype)  # max |x| = 4 > 1: the scale matters
    v = np.array([1.0, 0.5, -1.0], dtype=dtype)
    h = gradcheck.central_difference_step(dtype, 4.0)
    assert h == float(np.cbrt(np.finfo(dtype).eps / 2.0)) * 4.0
    smooth = lambda y: float(np.sum(np.sin(y)))  # noqa: E731
    assert gradcheck.directional_derivative(smooth, x, v) == gradcheck.directional_derivative(
        smooth, x, v, h
    )
    jacobian = gradcheck.numerical_jacobian(np.sin, x)
    assert np.array_equal(jacobian, gradcheck.numerical_jacobian(np.sin, x, h))
    assert np.array_equal(
        gradcheck.numerical_gradient(smooth, x), gradcheck.numerical_gradient(smooth, x, h)
    )


def test_empty_inputs_have_empty_derivatives() -> None:
    empty = np.zeros((0,))
    assert gradcheck.directional_derivative(lambda v: float(np.sum(v)), empty, empty) == 0.0
    assert gradcheck.numerical_gradient(lambda v: float(np.sum(v)), empty).shape == (0,)
    jacobian = gradcheck.numerical_jacobian(np.sin, empty.astype(np.float32))
    assert (jacobian.shape, jacobian.dtype) == ((0, 0), np.float32)


# --- conv2d's chunks ---------------------------------------------------------------------------
# conv2d unfolds a few images at a time (CHUNK_BYTES of windows per chunk): the result must not
# depend on how the batch is cut. The catalog's samples are small enough to fit in one chunk, so
# here every image is its own chunk and the usual checks run again.

CONV2D = catalog.get("conv2d")
CHUNK_CASES = [case.id for case in CONV2D.edge_cases if case.params.get("batch", 2) >= 2]


@pytest.mark.parametrize(
    "check",
    [checks.matches_definition, checks.directional_fd, checks.batch_slices],
    ids=lambda check: check.__name__,
)
@pytest.mark.parametrize("case", CHUNK_CASES)
def test_one_image_per_chunk_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, check: Callable[..., Any], case: str
) -> None:
    monkeypatch.setattr(conv, "CHUNK_BYTES", 1)  # max(1, 1 // bytes per image) = 1 image
    check(CONV2D, CONV2D.edge_sample(case))


def test_there_are_cases_with_several_images() -> None:
    assert len(CHUNK_CASES) >= 5
