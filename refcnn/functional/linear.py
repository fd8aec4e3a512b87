"""The fully connected layer and the shape changes around it: linear, flatten, reshape.

``linear`` uses torch's layout: ``weight`` is (out_features, in_features) and ``x`` is
(..., in_features) with any number of leading dimensions (none at all for a single vector)::

    y[..., o] = bias[o] + Σ_i x[..., i] · weight[o, i]          i.e.   Y = X · Wᵀ + b

Backward, with ``G = ∂L/∂y`` and ``X``, ``G`` viewed as matrices of N rows (N = the product of the
leading dimensions, one row per vector the layer was applied to)::

    ∂L/∂x = G · W                      (..., out) · (out, in) -> (..., in)
    ∂L/∂W = Gᵀ · X = Σ_n G[n]ᵀ X[n]     one outer product per row, summed over the rows
    ∂L/∂b = Σ_n G[n]                    every row adds the bias once

``flatten`` and ``reshape`` move no value and compute nothing: the forward only changes the
shape, so the backward only changes it back (``∂L/∂x = G.reshape(x.shape)``).

See docs/linear.md for the derivation step by step.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from refcnn.geometry import (
    FloatArray,
    check_float_array,
    check_float_tensor,
    check_same_dtype,
    normalize_dim,
)

# --- linear -------------------------------------------------------------------------------------


def _check_linear(x: object, weight: object, bias: object) -> tuple[FloatArray, FloatArray]:
    """Validate linear's arguments: x (..., in), weight (out, in), bias (out,) or None."""
    x = check_float_tensor(x, "x")
    weight = check_float_array(weight, "weight", 2, "(out_features, in_features)")
    if x.ndim == 0:
        raise ValueError(f"x must be at least 1-D (..., in_features), got x.shape={x.shape}")
    check_same_dtype("x", x, weight=weight, bias=bias)
    out_features, in_features = weight.shape
    if x.shape[-1] != in_features:
        raise ValueError(
            f"in_features mismatch: x.shape={x.shape} has {x.shape[-1]} features in its last "
            f"dimension, but weight.shape={weight.shape} expects in_features={in_features}"
        )
    if bias is not None:
        bias = check_float_array(bias, "bias", 1, "(out_features,)")
        if bias.shape != (out_features,):
            raise ValueError(
                f"bias.shape={bias.shape}, but weight.shape={weight.shape} has "
                f"out_features={out_features}"
            )
    return x, weight


def linear(x: FloatArray, weight: FloatArray, bias: FloatArray | None = None) -> FloatArray:
    """``torch.nn.functional.linear``: returns (..., out_features).

    y[..., o] = bias[o] + Σ_i x[..., i]·weight[o, i],   i.e.   Y = X · Wᵀ + b

    See docs/linear.md.
    """
    _check_linear(x, weight, bias)
    out = x @ weight.T  # y[..., o] = Σ_i x[..., i] · W[o, i]
    if bias is not None:
        out = out + bias  # broadcast over the leading dimensions
    return out


def linear_backward(
    grad_out: FloatArray, x: FloatArray, weight: FloatArray, bias: FloatArray | None = None
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """Gradients ``(grad_x, grad_weight, grad_bias)`` of linear for upstream ``grad_out`` = G.

    dx = G · W,   dW = Gᵀ · X = Σ_n G[n]ᵀ X[n],   db = Σ_n G[n]     (X, G: one row per vector)

    ``grad_bias`` is None when ``bias`` is None. Takes every input it needs: nothing is cached.

    See docs/linear.md.
    """
    _check_linear(x, weight, bias)
    out_features, in_features = weight.shape
    out_shape = (*x.shape[:-1], out_features)
    check_float_tensor(grad_out, "grad_out")
    check_same_dtype("x", x, grad_out=grad_out)
    if grad_out.shape != out_shape:
        raise ValueError(
            f"grad_out.shape={grad_out.shape}, but linear's output has shape {out_shape}"
        )
    x_rows = x.reshape(-1, in_features)  # X: (N, in), one row per vector
    upstream_rows = grad_out.reshape(-1, out_features)  # G: (N, out)
    grad_x = grad_out @ weight  # ∂L/∂x = G · W, shaped like x
    grad_weight = upstream_rows.T @ x_rows  # ∂L/∂W = Gᵀ · X: Σ over the N rows
    grad_bias = upstream_rows.sum(axis=0) if bias is not None else None  # ∂L/∂b = Σ_n G[n]
    return grad_x, grad_weight, grad_bias


def linear_direct(x: FloatArray, weight: FloatArray, bias: FloatArray | None = None) -> FloatArray:
    """linear by its definition, in plain loops: an oracle for small shapes only.

    y[n, o] = bias[o] + Σ_i weight[o, i]·x[n, i], added up one term at a time.

    See docs/linear.md.
    """
    _check_linear(x, weight, bias)
    out_features, in_features = weight.shape
    x_rows = x.reshape(-1, in_features)
    out = np.zeros((x_rows.shape[0], out_features), dtype=x.dtype)
    for n in range(x_rows.shape[0]):
        for o in range(out_features):
            total = bias[o] if bias is not None else x.dtype.type(0)
            for i in range(in_features):
                total += weight[o, i] * x_rows[n, i]
            out[n, o] = total
    return out.reshape(*x.shape[:-1], out_features)


# --- flatten ------------------------------------------------------------------------------------


def _flattened_shape(x: object, start_dim: object, end_dim: object) -> tuple[int, ...]:
    """The shape of ``flatten(x, start_dim, end_dim)``: dims start..end merged into one."""
    x = check_float_tensor(x, "x")
    start = normalize_dim(start_dim, x.ndim, "start_dim")
    end = normalize_dim(end_dim, x.ndim, "end_dim")
    if start > end:
        raise ValueError(
            "flatten() has invalid args: start_dim cannot come after end_dim, got "
            f"start_dim={start_dim}, end_dim={end_dim} for x.shape={x.shape}"
        )
    if x.ndim == 0:
        return (1,)  # torch: flattening a scalar gives a 1-element vector
    merged = math.prod(x.shape[start : end + 1])
    return (*x.shape[:start], merged, *x.shape[end + 1 :])


def flatten(x: FloatArray, start_dim: int = 1, end_dim: int = -1) -> FloatArray:
    """``torch.flatten(x, start_dim, end_dim)``: merge dims ``start_dim..end_dim`` into one.

    out.shape = (*x.shape[:start_dim], Π x.shape[start_dim:end_dim + 1], *x.shape[end_dim + 1:]),
    the same values in row-major order (a copy).

    The default ``start_dim=1`` is ``torch.nn.Flatten``'s (keep the batch dimension);
    ``torch.flatten``'s own default is 0.

    See docs/linear.md.
    """
    target = _flattened_shape(x, start_dim, end_dim)  # validates x first: a list gets a TypeError
    # a copy, not numpy's view: a caller updating the result in place must not change x
    return x.reshape(target).copy()


def flatten_backward(
    grad_out: FloatArray, x: FloatArray, start_dim: int = 1, end_dim: int = -1
) -> FloatArray:
    """``∂L/∂x`` of flatten: the upstream gradient with x's shape back (no arithmetic).

    dx = grad_out.reshape(x.shape)

    See docs/linear.md.
    """
    return _unreshape(grad_out, x, _flattened_shape(x, start_dim, end_dim), "flatten")


# --- reshape ------------------------------------------------------------------------------------


def _target_shape(x: object, shape: object) -> tuple[int, ...]:
    """``shape`` with its -1 (at most one) inferred from x's size; torch's rules and messages."""
    x = check_float_tensor(x, "x")
    dims = (shape,) if isinstance(shape, numbers.Integral) else shape
    if not isinstance(dims, tuple | list) or not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in dims
    ):
        raise TypeError(f"shape must be an int or a tuple of ints, got shape={shape!r}")
    dims = tuple(int(d) for d in dims)
    for index, d in enumerate(dims):
        if d < -1:
            raise ValueError(f"invalid shape dimension {d} at index {index} of shape={dims}")
    if dims.count(-1) > 1:
        raise ValueError(f"only one dimension can be inferred, got shape={dims}")
    known = math.prod(d for d in dims if d != -1)
    if -1 in dims:
        if known == 0 and x.size == 0:
            raise ValueError(
                f"cannot reshape x.shape={x.shape} (0 elements) into shape={dims}: the -1 "
                "dimension could be any value and is ambiguous"
            )
        if known == 0 or x.size % known != 0:
            raise ValueError(
                f"cannot reshape x.shape={x.shape} (size {x.size}) into shape={dims}: no "
                f"value of the -1 dimension makes {known} (the product of the others) times "
                f"it equal {x.size}"
            )
        dims = tuple(x.size // known if d == -1 else d for d in dims)
    elif known != x.size:
        raise ValueError(
            f"cannot reshape x.shape={x.shape} (size {x.size}) into shape={dims} (size {known})"
        )
    return dims


def reshape(x: FloatArray, shape: int | tuple[int, ...]) -> FloatArray:
    """``torch.reshape(x, shape)``: the same values in row-major order, another shape.

    out.flat[k] = x.flat[k] for every k (a copy); out.shape = ``shape``.

    One entry of ``shape`` may be -1: it is inferred from the size of ``x``.

    See docs/linear.md.
    """
    target = _target_shape(x, shape)  # validates x first: a list gets refcnn's TypeError
    return x.reshape(target).copy()  # a copy, not a view of x


def reshape_backward(
    grad_out: FloatArray, x: FloatArray, shape: int | tuple[int, ...]
) -> FloatArray:
    """``∂L/∂x`` of reshape: the upstream gradient with x's shape back (no arithmetic).

    dx = grad_out.reshape(x.shape)

    See docs/linear.md.
    """
    return _unreshape(grad_out, x, _target_shape(x, shape), "reshape")


def _unreshape(grad_out: object, x: FloatArray, out_shape: tuple[int, ...], op: str) -> FloatArray:
    """Validate ``grad_out`` against the op's output shape and give it x's shape."""
    grad_out = check_float_tensor(grad_out, "grad_out")
    check_same_dtype("x", x, grad_out=grad_out)
    if grad_out.shape != out_shape:
        raise ValueError(
            f"grad_out.shape={grad_out.shape}, but {op}'s output has shape {out_shape}"
        )
    return grad_out.reshape(x.shape).copy()  # a copy, not a view of grad_out
