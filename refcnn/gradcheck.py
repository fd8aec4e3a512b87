"""Finite differences: the gradient a learner can trust because it needs no calculus.

Central differences, for a step h::

    f'(x) ≈ (f(x + h) − f(x − h)) / 2h,
    error = h²·f'''(ξ)/6 (truncation) + ~u·|f|/h (rounding)

The two error terms balance at h ≈ u^(1/3) (u the unit roundoff), scaled by the size of x so that
the step is a relative, not absolute, perturbation::

    h = u^(1/3) · max(1, |x|_max)         float64: 4.8e-6·scale,   float32: 3.9e-3·scale

Central differences are EXACT (no truncation error) for polynomials of degree ≤ 2 along the line
x + t·v: conv2d is bilinear in (x, W), so along any direction in (x, W, b) only rounding remains.

Two ways to use them:
* full Jacobian (:func:`numerical_jacobian`): one pair of evaluations per input element, fine for
  tiny inputs, and it tells WHICH element of a gradient is wrong;
* directional (:func:`directional_derivative`): for a random signed direction v,
  ⟨∇f(x), v⟩ ≈ (f(x + h·v) − f(x − h·v)) / 2h, two evaluations whatever the size of x.

The error model (how large the rounding term is, and the bound a finite difference is held
to): docs/tolerances.md. The checks built on these helpers, on conv2d: docs/conv2d.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

Array = NDArray[np.floating[Any]]


def central_difference_step(dtype: DTypeLike, scale: float = 1.0) -> float:
    """The step h of a central difference, for arrays of ``dtype`` whose largest |x| is ``scale``.

    h = u^(1/3) · max(1, |scale|),   u = eps(dtype)/2, the unit roundoff

    See the module docstring and docs/conv2d.md.
    """
    u = float(np.finfo(dtype).eps) / 2.0
    return float(np.cbrt(u) * max(1.0, abs(scale)))


def directional_derivative(
    f: Callable[[Array], float], x: Array, direction: Array, h: float | None = None
) -> float:
    """Central difference of a scalar function ``f`` at ``x`` along ``direction`` v.

    ⟨∇f(x), v⟩ ≈ (f(x + h·v) − f(x − h·v)) / 2h,   h = central_difference_step(x.dtype, max|x|)
    when ``h`` is not given.

    See docs/conv2d.md.
    """
    if h is None:
        h = central_difference_step(x.dtype, float(np.max(np.abs(x), initial=0.0)))
    return (f(x + h * direction) - f(x - h * direction)) / (2.0 * h)


def numerical_jacobian(f: Callable[[Array], Array], x: Array, h: float | None = None) -> Array:
    """Jacobian of ``f`` at ``x`` by central differences: shape (f(x).size, x.size).

    J[:, k] = (f(x + h·e_k) − f(x − h·e_k)) / 2h, one column per element k of x (row-major)

    See docs/conv2d.md.
    """
    if h is None:
        h = central_difference_step(x.dtype, float(np.max(np.abs(x), initial=0.0)))
    columns = []
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = h
        columns.append((np.ravel(f(x + step)) - np.ravel(f(x - step))) / (2.0 * h))
    if not columns:  # an empty x: a Jacobian with no columns
        return np.zeros((np.size(f(x)), 0), dtype=x.dtype)
    return np.stack(columns, axis=1)


def numerical_gradient(f: Callable[[Array], float], x: Array, h: float | None = None) -> Array:
    """Gradient of a scalar ``f`` by central differences, shaped like ``x`` (the book's helper).

    ∂f/∂x[k] ≈ (f(x + h·e_k) − f(x − h·e_k)) / 2h for every element k

    See docs/conv2d.md.
    """
    return numerical_jacobian(lambda v: np.asarray([f(v)]), x, h).reshape(x.shape)


def richardson_truncation_estimate(quotient_h: float, quotient_2h: float) -> float:
    """Estimated truncation error of the step-h central difference, from the step-2h one.

    D(h) = f' + c·h² + O(h⁴) and D(2h) = f' + 4c·h² + ..., so |D(h) − f'| ≈ |D(2h) − D(h)| / 3.
    An estimate, not a bound: used for ops that are not polynomials of degree ≤ 2.

    See docs/conv2d.md.
    """
    return abs(quotient_2h - quotient_h) / 3.0
