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


def absolute(arrays: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: None if v is None else np.abs(np.asarray(v, dtype=np.float64)) for k, v in arrays.items()
    }


@dataclass(frozen=True)
class Multilinear:
    """Bounds for an op whose output and gradients are sums of products of its inputs.

    ``reduction_lengths(inputs, kwargs)`` returns, for ``"out"`` and every ``"grad_<input>"``,
    the largest number of products summed into one element (an upper bound is sound; the
    observed/bound ratio in the reports shows how tight it is). ``degree`` is the number of
    inputs each product draws from (2 for conv: one weight times one pixel), used for the
    rounding of perturbed inputs in finite differences.
    """

    reduction_lengths: Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, int]]
    degree: int

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
        magnitude = spec.forward(**absolute(inputs), **kwargs)  # f(|inputs|) = Σ|a_i·b_i|
        return np.asarray(gamma(k, dtype) * magnitude)

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
            np.abs(np.asarray(upstream, np.float64)), absolute(inputs), kwargs
        )
        return {
            name: np.asarray(gamma(lengths[f"grad_{name}"], dtype) * magnitude)
            for name, magnitude in magnitudes.items()
        }


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
