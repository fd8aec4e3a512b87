"""softmax, log_softmax and softmin along any dimension: forward and explicit backward.

Along the dimension ``dim`` (k entries; every other index is a separate, independent slice)::

    softmax(x)_i     = exp(x_i) / Σ_j exp(x_j)
    log_softmax(x)_i = x_i − log Σ_j exp(x_j)
    softmin(x)       = softmax(−x)

Stability: every formula is computed on ``z = x − max_j x_j``. Softmax does not change when the
same constant is subtracted from every entry, so the result is the same, but now every exponent
is ≤ 0: no ``exp`` overflows, and the largest term is exactly 1, so the sum is ≥ 1 and its log
is finite. A logit of −inf gets probability 0 and log-probability −inf (as torch).

Backward. Every output depends on every input of its slice, so the gradient is a full
Jacobian-vector product, never just the diagonal. With ``s = softmax(x)``::

    ∂s_i/∂x_j = s_i·(δ_ij − s_j)          ->   ∂L/∂x = s ⊙ (g − Σ_dim g ⊙ s)
    ∂log s_i/∂x_j = δ_ij − s_j            ->   ∂L/∂x = g − s ⊙ Σ_dim g
    softmin: the chain rule through −x    ->   ∂L/∂x = −softmax_backward(g, −x)

See docs/softmax.md for the derivation step by step.
"""

from __future__ import annotations

import numpy as np

from refcnn.geometry import FloatArray, check_float_tensor, check_same_dtype, normalize_dim


def _check(x: object, dim: object) -> tuple[FloatArray, int]:
    """Validate ``x`` (a floating array of any rank) and return ``dim`` as a positive axis."""
    x = check_float_tensor(x, "x")
    return x, normalize_dim(dim, x.ndim)


def _check_upstream(grad_out: object, x: FloatArray) -> FloatArray:
    """The upstream gradient has the output's shape, which is x's, and x's dtype."""
    grad_out = check_float_tensor(grad_out, "grad_out")
    check_same_dtype("x", x, grad_out=grad_out)
    if grad_out.shape != x.shape:
        raise ValueError(f"grad_out.shape={grad_out.shape}, but the output has shape {x.shape}")
    return grad_out


def _slice_sum(values: FloatArray, axis: int) -> FloatArray:
    """Σ along ``axis``, kept as a length-1 axis so that it broadcasts back over the slice."""
    total: FloatArray = np.sum(values, axis=axis, keepdims=True)
    return total


def _shifted(x: FloatArray, axis: int) -> FloatArray:
    """``z = x − max(x)`` along ``axis``: every exponent ≤ 0, the largest exactly 0.

    ``initial=-inf`` only matters for an empty slice (nothing to normalise).
    """
    largest: FloatArray = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    return x - largest


def softmax(x: FloatArray, dim: int) -> FloatArray:
    """``torch.softmax(x, dim)``: exponentials normalised to sum 1 along ``dim``, computed stably.

    s_i = exp(x_i − m) / Σ_j exp(x_j − m),   m = max_j x_j   (= exp(x_i) / Σ_j exp(x_j))

    See docs/softmax.md.
    """
    x, axis = _check(x, dim)
    if x.ndim == 0:
        return softmax(x.reshape(1), 0).reshape(())  # torch: a scalar is a 1-entry slice
    exps = np.exp(_shifted(x, axis))  # exp(x − max) ∈ [0, 1]
    return exps / _slice_sum(exps, axis)  # s = e / Σ e


def softmax_backward(grad_out: FloatArray, x: FloatArray, dim: int) -> FloatArray:
    """``∂L/∂x`` of softmax for upstream ``grad_out`` = g.

    dx = s ⊙ (g − Σ_dim g ⊙ s),   s = softmax(x, dim)

    See docs/softmax.md.
    """
    x, axis = _check(x, dim)
    upstream = _check_upstream(grad_out, x)
    if x.ndim == 0:
        return softmax_backward(upstream.reshape(1), x.reshape(1), 0).reshape(())
    s = softmax(x, dim)
    weighted_mean = _slice_sum(upstream * s, axis)  # Σ_j g_j·s_j
    return s * (upstream - weighted_mean)  # Σ_j g_j·s_j·(δ_ij − s_i) = s_i·(g_i − Σ_j g_j·s_j)


def log_softmax(x: FloatArray, dim: int) -> FloatArray:
    """``torch.log_softmax(x, dim)``: the log of softmax along ``dim``, computed stably.

    log s_i = (x_i − m) − log Σ_j exp(x_j − m),   m = max_j x_j   (= x_i − log Σ_j exp(x_j))

    See docs/softmax.md.
    """
    x, axis = _check(x, dim)
    if x.ndim == 0:
        return log_softmax(x.reshape(1), 0).reshape(())
    if x.size == 0:
        return x.copy()  # empty slices: nothing to normalise (and no log of an empty sum)
    shifted = _shifted(x, axis)  # z = x − max
    log_sum = np.log(_slice_sum(np.exp(shifted), axis))  # log Σ exp(z) ≥ 0
    return shifted - log_sum  # z − log Σ exp(z) = x − log Σ exp(x)


def log_softmax_backward(grad_out: FloatArray, x: FloatArray, dim: int) -> FloatArray:
    """``∂L/∂x`` of log_softmax for upstream ``grad_out`` = g.

    dx = g − s ⊙ Σ_dim g,   s = exp(log_softmax(x, dim))

    See docs/softmax.md.
    """
    x, axis = _check(x, dim)
    upstream = _check_upstream(grad_out, x)
    if x.ndim == 0:
        return log_softmax_backward(upstream.reshape(1), x.reshape(1), 0).reshape(())
    s = np.exp(log_softmax(x, dim))  # softmax, from the output as torch computes it
    return upstream - s * _slice_sum(upstream, axis)  # Σ_i g_i·(δ_ij − s_j)


def softmin(x: FloatArray, dim: int) -> FloatArray:
    """``torch.nn.functional.softmin(x, dim)``: softmax of −x.

    softmin(x)_i = exp(−x_i) / Σ_j exp(−x_j) = softmax(−x, dim)_i

    See docs/softmax.md.
    """
    x, _ = _check(x, dim)
    return softmax(np.negative(x, out=np.empty_like(x)), dim)  # −x, still an array when 0-d


def softmin_backward(grad_out: FloatArray, x: FloatArray, dim: int) -> FloatArray:
    """``∂L/∂x`` of softmin: softmax's backward at −x, times ∂(−x)/∂x = −1.

    dx = −softmax_backward(g, −x, dim) = −s ⊙ (g − Σ_dim g ⊙ s),   s = softmin(x, dim)

    See docs/softmax.md.
    """
    x, _ = _check(x, dim)
    grad = softmax_backward(grad_out, np.negative(x, out=np.empty_like(x)), dim)
    return np.negative(grad, out=grad)


# --- the definitions, written independently (oracles for small shapes) --------------------------


def _pairwise_differences(x: FloatArray, axis: int) -> FloatArray:
    """``D[..., i, j] = x_j − x_i`` along ``axis`` (moved last): every exponent of the oracles."""
    last = np.moveaxis(np.atleast_1d(x), axis, -1)
    return last[..., np.newaxis, :] - last[..., :, np.newaxis]


def softmax_direct(x: FloatArray, dim: int) -> FloatArray:
    """softmax by another formula: no max subtracted, no division of exps.

    s_i = 1 / Σ_j exp(x_j − x_i)

    A huge ``x_j − x_i`` overflows to inf and gives ``s_i = 0``, which is right.

    See docs/softmax.md.
    """
    x, axis = _check(x, dim)
    with np.errstate(over="ignore"):
        totals: FloatArray = np.sum(np.exp(_pairwise_differences(x, axis)), axis=-1)
    return np.moveaxis(1 / totals, -1, axis).reshape(x.shape)


def log_softmax_direct(x: FloatArray, dim: int) -> FloatArray:
    """log_softmax by another formula, the log of :func:`softmax_direct`'s.

    log s_i = −log Σ_j exp(x_j − x_i)

    See docs/softmax.md.
    """
    x, axis = _check(x, dim)
    with np.errstate(over="ignore"):
        totals: FloatArray = np.sum(np.exp(_pairwise_differences(x, axis)), axis=-1)
    return np.moveaxis(-np.log(totals), -1, axis).reshape(x.shape)


def softmin_direct(x: FloatArray, dim: int) -> FloatArray:
    """softmin by another formula, :func:`softmax_direct` of −x.

    softmin(x)_i = 1 / Σ_j exp(x_i − x_j)

    See docs/softmax.md.
    """
    x, _ = _check(x, dim)
    return softmax_direct(-x, dim)
