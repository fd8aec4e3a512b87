"""Inverted dropout with an explicit mask: forward and explicit backward (torch's convention).

In training each element is kept with probability ``1 − p`` and the kept ones are scaled up so
that the expected output equals the input; in evaluation the layer is the identity::

    training:   y = x ⊙ mask / (1 − p)        mask ∈ {0, 1}, drawn Bernoulli(1 − p)
    evaluation: y = x

torch draws the mask itself; here it is an argument, so that a call is a pure, reproducible
function (draw it with ``rng.random(x.shape) >= p``). Two values of ``p`` ignore it, as torch
does: ``p = 0`` keeps everything (y = x) and ``p = 1`` drops everything (y = x·0 = zeros).

Backward: y is linear in x with a diagonal Jacobian ``mask / (1 − p)``, so
``∂L/∂x = g ⊙ mask / (1 − p)``: dropped elements get no gradient. The mask gets none either: it is
not differentiable (it is a random choice, not a value the loss varies smoothly with).

This is NOT the book's (DLFS) convention, which scales at test time instead (train ``x·mask``,
test ``x·(1 − p)``). See docs/dropout.md for the derivation step by step.
"""

from __future__ import annotations

import numbers

import numpy as np

from refcnn.geometry import FloatArray, check_float_tensor, check_same_dtype


def _check_dropout(
    x: object, mask: object, p: object, training: object
) -> tuple[FloatArray, float]:
    """Validate dropout's arguments; return the mask as 0/1 values in x's dtype, and p.

    p comes back as a Python float: a NumPy float64 scalar would upcast float32 arithmetic.
    """
    x = check_float_tensor(x, "x")
    if not isinstance(p, numbers.Real) or isinstance(p, bool):
        raise TypeError(f"p must be a real number, got p={p!r}")
    if not 0 <= float(p) <= 1:  # also rejects NaN
        raise ValueError(f"dropout probability has to be between 0 and 1, but got p={p!r}")
    if not isinstance(training, bool | np.bool_):
        raise TypeError(f"training must be a bool, got training={training!r}")
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask must be a numpy.ndarray, got {type(mask).__name__}")
    if mask.shape != x.shape:
        raise ValueError(f"mask.shape={mask.shape} differs from x.shape={x.shape}")
    if not np.all((mask == 0) | (mask == 1)):
        bad = mask[(mask != 0) & (mask != 1)]
        raise ValueError(
            f"mask must contain only 0 (drop) and 1 (keep), got values such as {bad[:3]}"
        )
    return mask.astype(x.dtype), float(p)  # 0 and 1 are exact in every dtype: no upcast of x


def _scale(mask: FloatArray, p: float) -> FloatArray:
    """``mask / (1 − p)``: 0 where dropped, 1/(1 − p) where kept (torch's noise tensor)."""
    return mask / (1.0 - p)


def dropout(x: FloatArray, mask: FloatArray, p: float, training: bool = True) -> FloatArray:
    """``torch.nn.functional.dropout(x, p, training)`` with the kept elements given by ``mask``.

    training: y = x ⊙ mask / (1 − p)  (p = 0: y = x;  p = 1: y = x·0);   evaluation: y = x

    See docs/dropout.md.
    """
    keep, p = _check_dropout(x, mask, p, training)
    if not training or p == 0:
        return x.copy()  # identity: nothing dropped, nothing scaled
    if p == 1:
        return x * 0.0  # everything dropped (torch: x·0, so a NaN or inf input gives NaN)
    return x * _scale(keep, p)  # y = x ⊙ mask / (1 − p)


def dropout_backward(
    grad_out: FloatArray, x: FloatArray, mask: FloatArray, p: float, training: bool = True
) -> FloatArray:
    """``∂L/∂x`` of dropout for upstream ``grad_out`` = g.

    training: dx = g ⊙ mask / (1 − p)  (p = 0: g;  p = 1: g·0);   evaluation: dx = g

    The mask gets no gradient: it is not differentiable.

    See docs/dropout.md.
    """
    keep, p = _check_dropout(x, mask, p, training)
    upstream = check_float_tensor(grad_out, "grad_out")
    check_same_dtype("x", x, grad_out=upstream)
    if upstream.shape != x.shape:
        raise ValueError(
            f"grad_out.shape={upstream.shape}, but dropout's output has shape {x.shape}"
        )
    if not training or p == 0:
        return upstream.copy()
    if p == 1:
        return upstream * 0.0
    return upstream * _scale(keep, p)  # the same diagonal Jacobian as the forward
