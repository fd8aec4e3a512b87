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
)


def get(name: str) -> Mutant:
    for mutant in MUTANTS:
        if mutant.name == name:
            return mutant
    raise KeyError(f"no mutant {name!r}; known: {[m.name for m in MUTANTS]}")
