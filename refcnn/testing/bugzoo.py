"""The bug zoo: deliberately broken variants of refcnn ops, each a bug people actually write.

A mutant is a catalog entry with one function swapped for a broken one. The test suite must
catch every mutant (``tests/test_bugzoo.py`` runs each one against the check that names it and
asserts that hypothesis finds a counterexample); the oracle will use the same variants to NAME
what is wrong with a candidate ("dx matches 'col2im assigns instead of accumulating'").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from refcnn.functional.conv import conv2d, conv2d_backward
from refcnn.functional.linear import flatten, linear_backward
from refcnn.functional.normalization import batch_norm_backward
from refcnn.functional.pooling import avg_pool2d
from refcnn.functional.softmax import softmax, softmax_backward
from refcnn.geometry import int_pair, normalize_padding, window_geometry
from refcnn.im2col import _window_slices
from refcnn.testing import catalog
from refcnn.testing.opspec import OpSpec


@dataclass(frozen=True)
class Mutant:
    """``op`` with the fields in ``replace`` swapped; ``caught_by`` is the check that must fail."""

    name: str
    op: str
    caught_by: str  # a function name in refcnn.testing.checks
    replace: dict[str, Any]  # OpSpec fields to swap, e.g. {"backward": broken_backward}

    def spec(self) -> OpSpec:
        return dataclasses.replace(catalog.get(self.op), **self.replace)


# --- col2im that assigns ------------------------------------------------------------------------


def col2im_assigning(
    col: Any,
    input_shape: tuple[int, int, int, int],
    kernel_size: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
) -> Any:
    """col2im with ``=`` where ``+=`` belongs: a pixel keeps only its LAST window's gradient."""
    n, c, h, w = input_shape
    geometry = window_geometry((h, w), kernel_size, stride, padding, dilation)
    kh, kw = geometry.kernel_size
    oh, ow = geometry.output_size
    windows = col.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    x_pad = np.zeros((n, c, *geometry.padded_size), dtype=col.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, cols = _window_slices(geometry, i, j)
            x_pad[:, :, rows, cols] = windows[:, :, i, j]  # BUG: overwrites overlapping windows
    top, _, left, _ = geometry.padding
    return x_pad[:, :, top : top + h, left : left + w]


def _im2col_backward_assigning(grad_out: Any, x: Any, **geometry: Any) -> tuple[Any]:
    return (col2im_assigning(grad_out, x.shape, **geometry),)


def _conv2d_backward_assigning(
    grad_out: Any,
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> tuple[Any, Any, Any]:
    """conv2d's backward with a grad_x rebuilt through the assigning col2im."""
    _, grad_weight, grad_bias = conv2d_backward(
        grad_out, x, weight, bias, stride, padding, dilation, groups
    )
    c_out, _, kh, kw = weight.shape
    n, _, oh, ow = grad_out.shape
    upstream = grad_out.transpose(0, 2, 3, 1).reshape(n * oh * ow, groups, -1).transpose(1, 0, 2)
    grad_col = upstream @ weight.reshape(groups, c_out // groups, -1)
    grad_col = grad_col.transpose(1, 0, 2).reshape(n * oh * ow, -1)
    grad_x = col2im_assigning(grad_col, x.shape, (kh, kw), stride, padding, dilation)
    return grad_x, grad_weight, grad_bias


# --- conv2d bugs --------------------------------------------------------------------------------


def _conv2d_backward_bias_first_sample(
    grad_out: Any, x: Any, weight: Any, bias: Any = None, **kwargs: Any
) -> tuple[Any, Any, Any]:
    """grad_bias summed over the spatial axes of sample 0 only: forgets the batch sum."""
    grad_x, grad_weight, grad_bias = conv2d_backward(grad_out, x, weight, bias, **kwargs)
    if grad_bias is not None:
        grad_bias = grad_out[0].sum(axis=(1, 2))  # BUG: should be grad_out.sum(axis=(0, 2, 3))
    return grad_x, grad_weight, grad_bias


def _conv2d_flipped_kernel(x: Any, weight: Any, bias: Any = None, **kwargs: Any) -> Any:
    """True convolution (kernel rotated 180°), not torch's cross-correlation."""
    return conv2d(x, weight[:, :, ::-1, ::-1], bias, **kwargs)


def _conv2d_same_pads_top_left(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Any:
    """padding='same' with the extra row/column on top/left instead of bottom/right."""
    if padding == "same":
        top, bottom, left, right = normalize_padding(
            padding,
            weight.shape[2:],
            int_pair(dilation, "dilation", minimum=1),
            int_pair(stride, "stride", minimum=1),
        )
        padding = (bottom, top, right, left)  # BUG: sides swapped
    return conv2d(x, weight, bias, stride, padding, dilation, groups)


# --- layers of issue 3: softmax, normalisation, dropout, linear, pooling, activations ---------


def _softmax_backward_diagonal(grad_out: Any, x: Any, dim: int) -> tuple[Any]:
    """dx = g·s·(1 − s): only the Jacobian's diagonal, forgetting −s_i·s_j off it."""
    s = softmax(x, dim)
    return (grad_out * s * (1 - s),)


def _channel_axes(x: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Batch norm's reduction axes (all but channels) and the shape of a per-channel vector."""
    return (0, *range(2, x.ndim)), (1, -1, *([1] * (x.ndim - 2)))


def _batch_norm_unbiased(
    x: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    eps: float = 1e-5,
) -> Any:
    """Training batch norm normalising with the UNBIASED variance (n − 1 in the denominator)."""
    axes, shape = _channel_axes(x)
    mean = x.mean(axis=axes, keepdims=True)
    variance = x.var(axis=axes, ddof=1, keepdims=True)  # BUG: torch normalises with ddof=0
    y = (x - mean) / np.sqrt(variance + eps)
    y = y if weight is None else y * weight.reshape(shape)
    return y if bias is None else y + bias.reshape(shape)


def _batch_norm_backward_constant_statistics(
    grad_out: Any,
    x: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    eps: float = 1e-5,
) -> tuple[Any, Any, Any]:
    """dx = g·γ·r as if the batch mean and variance did not depend on x."""
    _, grad_weight, grad_bias = batch_norm_backward(
        grad_out, x, running_mean, running_var, weight, bias, training, eps
    )
    axes, shape = _channel_axes(x)
    inv_std = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    scale = inv_std if weight is None else inv_std * weight.reshape(shape)
    return grad_out * scale, grad_weight, grad_bias  # BUG: drops −mean(ĝ) − x̂·mean(ĝ·x̂)


def _dropout_not_inverted(x: Any, mask: Any, p: float, training: bool = True) -> Any:
    """The book's dropout: train x·mask, test x·(1 − p), where torch scales by 1/(1 − p)."""
    return x * mask if training else x * (1 - p)


def _linear_backward_bias_first_row(
    grad_out: Any, x: Any, weight: Any, bias: Any = None
) -> tuple[Any, Any, Any]:
    """grad_bias taken from the first row of the batch instead of summed over it."""
    grad_x, grad_weight, grad_bias = linear_backward(grad_out, x, weight, bias)
    if grad_bias is not None:
        grad_bias = grad_out.reshape(-1, grad_out.shape[-1])[0]  # BUG: should be a sum
    return grad_x, grad_weight, grad_bias


def _avg_pool2d_divides_by_kernel_area(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Any = None,
) -> Any:
    """Every window divided by KH·KW, ignoring count_include_pad=False and the ceil overhang."""
    kh, kw = int_pair(kernel_size, "kernel_size", minimum=1)
    area = divisor_override if divisor_override is not None else kh * kw  # BUG
    return avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, area)


def _leaky_relu_backward_without_slope(
    grad_out: Any, x: Any, negative_slope: float = 0.01
) -> tuple[Any]:
    """leaky_relu's gradient with relu's derivative: 0 instead of the slope for x < 0."""
    return (np.where(x > 0, grad_out, 0 * grad_out),)


# --- invariants: mutation and aliasing ---------------------------------------------------------


def _relu_in_place(x: Any) -> Any:
    """relu computed in place to save memory: the caller's x is changed."""
    np.maximum(x, 0, out=x)  # BUG: writes into the input
    return x


def _flatten_view(x: Any, start_dim: int = 1, end_dim: int = -1) -> Any:
    """flatten returning numpy's view: an in-place update of the result changes x."""
    return x.reshape(flatten(x, start_dim, end_dim).shape)  # BUG: a view of x, not a copy


def _softmax_over_batch_axis(x: Any, dim: int) -> Any:
    """softmax over axis 0 whatever dim says; the backward below matches it, so finite
    differences agree with it: only a check that slices the batch (or torch) sees it."""
    return softmax(x, 0)


def _softmax_backward_over_batch_axis(grad_out: Any, x: Any, dim: int) -> Any:
    return softmax_backward(grad_out, x, 0)


def _conv2d_reversed_channels(x: Any, weight: Any, bias: Any = None, **kwargs: Any) -> Any:
    """conv2d pairing input channel c with weight channel C − 1 − c (an indexing slip)."""
    return conv2d(x, weight[:, ::-1], bias, **kwargs)


def _conv2d_backward_reversed_channels(
    grad_out: Any, x: Any, weight: Any, bias: Any = None, **kwargs: Any
) -> tuple[Any, Any, Any]:
    """The backward of that slip, consistent with it: finite differences see nothing."""
    grad_x, grad_weight, grad_bias = conv2d_backward(grad_out, x, weight[:, ::-1], bias, **kwargs)
    return grad_x, grad_weight[:, ::-1], grad_bias


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "col2im assigns instead of accumulating",
        "im2col",
        "adjoint",
        {"backward": _im2col_backward_assigning},
    ),
    Mutant(
        "conv2d grad_x through a col2im that assigns",
        "conv2d",
        "directional_fd",
        {"backward": _conv2d_backward_assigning},
    ),
    Mutant(
        "conv2d grad_bias not summed over the batch",
        "conv2d",
        "directional_fd",
        {"backward": _conv2d_backward_bias_first_sample},
    ),
    Mutant(
        "conv2d flips the kernel (true convolution)",
        "conv2d",
        "matches_definition",
        {"forward": _conv2d_flipped_kernel},
    ),
    Mutant(
        "padding='same' puts the extra pad top/left",
        "conv2d",
        "matches_torch",
        {"forward": _conv2d_same_pads_top_left},
    ),
    Mutant(
        "softmax backward uses only the Jacobian diagonal",
        "softmax",
        "directional_fd",
        {"backward": _softmax_backward_diagonal},
    ),
    Mutant(
        "batch norm normalises with the unbiased variance",
        "batch_norm_train",
        "matches_torch",
        {"forward": _batch_norm_unbiased},
    ),
    Mutant(
        "batch norm backward treats mean and variance as constants",
        "batch_norm_train",
        "directional_fd",
        {"backward": _batch_norm_backward_constant_statistics},
    ),
    Mutant(
        "dropout not inverted (the book's convention)",
        "dropout",
        "matches_torch",
        {"forward": _dropout_not_inverted},
    ),
    Mutant(
        "linear grad_bias not summed over the batch",
        "linear",
        "directional_fd",
        {"backward": _linear_backward_bias_first_row},
    ),
    Mutant(
        "avg_pool2d always divides by the kernel area",
        "avg_pool2d",
        "matches_torch",
        {"forward": _avg_pool2d_divides_by_kernel_area},
    ),
    Mutant(
        "leaky_relu backward drops the negative slope",
        "leaky_relu",
        "directional_fd",
        {"backward": _leaky_relu_backward_without_slope},
    ),
    Mutant(
        "relu computed in place (the input changes)",
        "relu",
        "no_mutation",
        {"forward": _relu_in_place},
    ),
    Mutant(
        "flatten returns a view of its input", "flatten", "no_mutation", {"forward": _flatten_view}
    ),
    Mutant(
        "softmax normalises over the batch axis (forward and backward agree)",
        "softmax",
        "batch_slices",
        {"forward": _softmax_over_batch_axis, "backward": _softmax_backward_over_batch_axis},
    ),
    Mutant(
        "conv2d pairs input channel c with weight channel C-1-c (backward agrees)",
        "conv2d",
        "channel_permutation",
        {"forward": _conv2d_reversed_channels, "backward": _conv2d_backward_reversed_channels},
    ),
)


def get(name: str) -> Mutant:
    for mutant in MUTANTS:
        if mutant.name == name:
            return mutant
    raise KeyError(f"no mutant {name!r}; known: {[m.name for m in MUTANTS]}")
