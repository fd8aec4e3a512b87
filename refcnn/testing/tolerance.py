"""Tolerances computed from a rounding-error model, never chosen by trial and error.

The model (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1): with ``u`` the unit
roundoff of the dtype (2⁻⁵³ for float64, 2⁻²⁴ for float32), a sum of ``k`` products computed in
ANY order, with or without fused multiply-adds, satisfies::

    |fl(Σ_{i≤k} a_i·b_i) − Σ a_i·b_i|  ≤  γ_k · Σ |a_i|·|b_i|,      γ_k = k·u / (1 − k·u)

A multilinear op (conv2d, im2col, linear, sum pooling: every output element a sum of products of
one entry per input) therefore satisfies, elementwise::

    |fl(f(x, W, b)) − f(x, W, b)|  ≤  γ_k · f(|x|, |W|, |b|)

because evaluating the op on absolute values yields exactly Σ|a_i|·|b_i| (for conv:
(|W| ⋆ |x| + |b|)). Its gradients are multilinear in (upstream, inputs) too, so the same holds for
``backward(|g|, |x|, |W|)`` with the gradient's own reduction length.

Comparing two implementations that each satisfy the bound, the triangle inequality gives
``|a − b| ≤ 2·γ_k·magnitude``: the factor ``c = 2`` used by :func:`pairwise_factor`. Nothing else
is added; an observed/bound ratio above 1 means one of the two is not computing this function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

if TYPE_CHECKING:
    from refcnn.testing.opspec import OpSpec

Array = NDArray[np.floating[Any]]

# Two implementations, each within the bound of the exact value, differ by at most twice it.
PAIRWISE_FACTOR = 2.0


def unit_roundoff(dtype: DTypeLike) -> float:
    """``u = eps / 2``: the largest relative error of one correctly rounded operation."""
    return float(np.finfo(dtype).eps) / 2.0


def gamma(k: int | NDArray[Any], dtype: DTypeLike) -> Any:
    """``γ_k = k·u / (1 − k·u)``, the error factor of a length-``k`` sum of products."""
    u = unit_roundoff(dtype)
    ku = np.asarray(k, dtype=np.float64) * u
    if np.any(ku >= 1):
        raise ValueError(f"γ_k undefined for k·u >= 1 (k={np.max(k)}, u={u})")
    return ku / (1.0 - ku)


def as_float64(arrays: Mapping[str, Any]) -> dict[str, Any]:
    """Exact float64 copies (None kept): magnitudes are always evaluated in float64."""
    return {k: None if v is None else np.asarray(v, dtype=np.float64) for k, v in arrays.items()}


def absolute(arrays: Mapping[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """float64 absolute values of every array, except those named in ``keep`` (just widened)."""
    return {
        k: None
        if v is None
        else np.asarray(v, dtype=np.float64)
        if k in keep
        else np.asarray(np.abs(np.asarray(v, dtype=np.float64)))  # 0-d stays an array
        for k, v in arrays.items()
    }


@dataclass(frozen=True)
class Multilinear:
    """Bounds for an op whose output and gradients are sums of products of its inputs.

    ``reduction_lengths(inputs, kwargs)`` returns, for ``"out"`` and every ``"grad_<input>"``,
    the largest number of products summed into one element (an upper bound is sound; the
    observed/bound ratio in the reports shows how tight it is). ``degree`` is the number of
    inputs each product draws from (2 for conv: one weight times one pixel), used for the
    rounding of perturbed inputs in finite differences.

    ``fixed`` names inputs that select or mask rather than multiply (max pooling's input decides
    WHICH element is taken; a dropout mask is 0 or 1/(1 − p)): they keep their values, and
    their sign, when the magnitude is evaluated.
    """

    reduction_lengths: Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, int]]
    degree: int
    fixed: tuple[str, ...] = ()

    def forward_bound(
        self,
        spec: OpSpec,
        inputs: Mapping[str, Any],
        kwargs: Mapping[str, Any],
        dtype: DTypeLike,
        extra_terms: int = 0,
    ) -> Array:
        """Elementwise bound on |computed forward − exact forward| in ``dtype``."""
        k = self.reduction_lengths(inputs, kwargs)["out"] + extra_terms
        magnitude = spec.forward(**absolute(inputs, self.fixed), **kwargs)  # f(|inputs|)
        # abs: a fixed (selecting) input keeps its sign, so f(|inputs|) may be negative
        return np.asarray(gamma(k, dtype) * np.abs(magnitude))

    def backward_bounds(
        self,
        spec: OpSpec,
        inputs: Mapping[str, Any],
        kwargs: Mapping[str, Any],
        upstream: Array,
        dtype: DTypeLike,
    ) -> dict[str, Array]:
        """Elementwise bound on |computed gradient − exact gradient|, per differentiable input."""
        lengths = self.reduction_lengths(inputs, kwargs)
        magnitudes = spec.backward_dict(
            np.asarray(np.abs(np.asarray(upstream, np.float64))),
            absolute(inputs, self.fixed),
            kwargs,
        )
        return {
            name: np.asarray(gamma(lengths[f"grad_{name}"], dtype) * np.abs(magnitude))
            for name, magnitude in magnitudes.items()
        }


# NumPy documents its float32/float64 transcendental ufuncs (exp, log, tanh, ...) as accurate to
# within 4 ULP; torch's vectorised (SLEEF) versions are within 3.5. One ULP is at most 2u
# relative, so a library call counts as 8 roundings.
LIBRARY_ROUNDINGS = 8

Magnitude = Callable[..., Any]


@dataclass(frozen=True)
class Formula:
    """Bounds for an op computed by a short formula: activations, normalisation, losses.

    Elementwise ``|computed − exact| ≤ γ_c · M``. For each quantity (``"out"``, ``"grad_x"``, ...)
    ``roundings(inputs, kwargs)`` gives ``c``: one per +, −, ×, ÷ and √ along the formula,
    LIBRARY_ROUNDINGS per exp/log/tanh/erf call, and k per length-k reduction inside it. ``M``
    is the sum of the absolute values of the terms the formula combines (so cancellation is
    accounted for: for x − tanh(x), M = |x| + |tanh x|), derived by hand in the catalog entry:

        forward_magnitude(**inputs, **kwargs) -> array shaped like the output
        backward_magnitudes(upstream, **inputs, **kwargs) -> {input name: array}

    M must also cover |x|·|∂f/∂x| so that one rounding of each input, as finite differences
    make, is within ``degree`` extra roundings.
    """

    roundings: Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, int]]
    forward_magnitude: Magnitude
    backward_magnitudes: Magnitude | None = None
    degree: int = 1

    def forward_bound(
        self,
        spec: OpSpec,
        inputs: Mapping[str, Any],
        kwargs: Mapping[str, Any],
        dtype: DTypeLike,
        extra_terms: int = 0,
    ) -> Array:
        wide = as_float64(inputs)
        c = self.roundings(wide, kwargs)["out"] + extra_terms
        return np.asarray(gamma(c, dtype) * self.forward_magnitude(**wide, **kwargs))

    def backward_bounds(
        self,
        spec: OpSpec,
        inputs: Mapping[str, Any],
        kwargs: Mapping[str, Any],
        upstream: Array,
        dtype: DTypeLike,
    ) -> dict[str, Array]:
        if self.backward_magnitudes is None:
            raise TypeError(f"{spec.name}'s tolerance model has no backward magnitudes")
        wide = as_float64(inputs)
        c = self.roundings(wide, kwargs)
        magnitudes = self.backward_magnitudes(np.asarray(upstream, np.float64), **wide, **kwargs)
        return {
            name: np.asarray(gamma(c[f"grad_{name}"], dtype) * magnitude)
            for name, magnitude in magnitudes.items()
            if inputs.get(name) is not None
        }


ToleranceModel = Multilinear | Formula


def observed_over_bound(error: NDArray[Any], bound: NDArray[Any]) -> NDArray[np.float64]:
    """Elementwise ``error / bound`` with 0/0 = 0 (both exact) and x/0 = inf (x > 0)."""
    error = np.asarray(error, dtype=np.float64)
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), error.shape)
    ratio = np.zeros(error.shape, dtype=np.float64)
    positive = bound > 0
    ratio[positive] = error[positive] / bound[positive]
    ratio[~positive & (error > 0)] = np.inf
    ratio[np.isnan(error)] = np.inf
    return ratio
