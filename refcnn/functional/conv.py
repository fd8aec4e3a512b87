"""2-D convolution (cross-correlation, as torch): forward, explicit backward, direct definition.

Definition, for ``x`` (N, C_in, H, W), ``weight`` (C_out, C_in/G, KH, KW), ``bias`` (C_out,) and G
groups of ``Cg = C_in/G`` input and ``Og = C_out/G`` output channels; output channel ``o`` belongs
to group ``g = o // Og`` and reads input channels ``g·Cg .. g·Cg + Cg − 1``::

    out[n, o, p, q] = bias[o] + Σ_{c < Cg, i < KH, j < KW}
                      weight[o, c, i, j] · x_pad[n, g·Cg + c, p·sh + i·dh, q·sw + j·dw]

No kernel flip: this is what torch (and every deep-learning framework) calls convolution.

Matrix form, per group g, with ``Col_g = im2col(x)[:, columns of group g]`` (N·OH·OW, Cg·KH·KW)
and ``W_g`` the group's weights flattened to (Og, Cg·KH·KW)::

    Out_g = Col_g · W_gᵀ + bias_g                        (N·OH·OW, Og)

Backward: given the upstream gradient ``G = ∂L/∂out`` laid out like ``Out`` (G_g: (N·OH·OW, Og)),
the chain rule applied to that matrix product gives::

    ∂L/∂W_g    = G_gᵀ · Col_g                            sum over the N·OH·OW windows
    ∂L/∂bias   = Σ_{n, p, q} G[n, :, p, q]               every window adds the bias once
    ∂L/∂Col_g  = G_g · W_g
    ∂L/∂x      = col2im(∂L/∂Col)                         a pixel read by k windows gets k terms

The last line is why col2im must accumulate. See docs/conv2d.md for the derivation step by step.
"""

from __future__ import annotations

import numpy as np

from refcnn.geometry import (
    FloatArray,
    WindowGeometry,
    check_float_array,
    check_same_dtype,
    window_geometry,
)
from refcnn.im2col import col2im_with_geometry, im2col_with_geometry


def _conv2d_geometry(
    x: FloatArray,
    weight: FloatArray,
    bias: FloatArray | None,
    stride: object,
    padding: object,
    dilation: object,
    groups: object,
) -> tuple[WindowGeometry, int]:
    """Validate conv2d's arguments (torch's rules) and return the window geometry and groups."""
    check_float_array(x, "x", 4, "(N, C_in, H, W)")
    check_float_array(weight, "weight", 4, "(C_out, C_in/groups, KH, KW)")
    check_same_dtype("x", x, weight=weight, bias=bias)
    if not isinstance(groups, int | np.integer) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups must be a positive int, got groups={groups!r}")
    groups = int(groups)
    c_out, c_per_group = weight.shape[:2]
    if c_out % groups != 0:
        raise ValueError(f"weight.shape[0] (C_out={c_out}) must be divisible by groups={groups}")
    if x.shape[1] != c_per_group * groups:
        raise ValueError(
            f"channel mismatch: x.shape={x.shape} has C_in={x.shape[1]}, but weight.shape="
            f"{weight.shape} with groups={groups} expects C_in={c_per_group * groups}"
        )
    if bias is not None:
        check_float_array(bias, "bias", 1, "(C_out,)")
        if bias.shape != (c_out,):
            raise ValueError(f"bias.shape={bias.shape}, but weight has C_out={c_out}")
    geometry = window_geometry(x.shape[2:], weight.shape[2:], stride, padding, dilation)
    return geometry, groups


def conv2d(
    x: FloatArray,
    weight: FloatArray,
    bias: FloatArray | None = None,
    stride: object = 1,
    padding: object = 0,
    dilation: object = 1,
    groups: int = 1,
) -> FloatArray:
    """``torch.nn.functional.conv2d`` in NumPy: returns (N, C_out, OH, OW).

    ``padding`` also accepts per-side ``(top, bottom, left, right)``; see :mod:`refcnn.geometry`.
    """
    geometry, groups = _conv2d_geometry(x, weight, bias, stride, padding, dilation, groups)
    n = x.shape[0]
    c_out = weight.shape[0]
    oh, ow = geometry.output_size
    col = im2col_with_geometry(x, geometry)  # (P, C_in·KH·KW), P = N·OH·OW
    col_g = _split_groups(col, groups)  # (G, P, Cg·KH·KW)
    weight_g = weight.reshape(groups, c_out // groups, -1)  # (G, Og, Cg·KH·KW)
    out_g = col_g @ weight_g.transpose(0, 2, 1)  # Out_g = Col_g · W_gᵀ: (G, P, Og)
    out = _merge_groups(out_g)  # (P, C_out)
    if bias is not None:
        out = out + bias
    return out.reshape(n, oh, ow, c_out).transpose(0, 3, 1, 2)


def conv2d_backward(
    grad_out: FloatArray,
    x: FloatArray,
    weight: FloatArray,
    bias: FloatArray | None = None,
    stride: object = 1,
    padding: object = 0,
    dilation: object = 1,
    groups: int = 1,
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """Gradients ``(grad_x, grad_weight, grad_bias)`` of conv2d for upstream ``grad_out``.

    ``grad_bias`` is None when ``bias`` is None. Takes every input it needs: nothing is cached.
    """
    geometry, groups = _conv2d_geometry(x, weight, bias, stride, padding, dilation, groups)
    n, c_out = x.shape[0], weight.shape[0]
    oh, ow = geometry.output_size
    check_float_array(grad_out, "grad_out", 4, "(N, C_out, OH, OW)")
    check_same_dtype("x", x, grad_out=grad_out)
    if grad_out.shape != (n, c_out, oh, ow):
        raise ValueError(
            f"grad_out.shape={grad_out.shape}, but conv2d's output has shape {(n, c_out, oh, ow)}"
        )
    # G laid out like Out: rows (n, oh, ow), columns o; split into groups: (G, P, Og)
    upstream = grad_out.transpose(0, 2, 3, 1).reshape(n * oh * ow, c_out)
    upstream_g = _split_groups(upstream, groups)
    col_g = _split_groups(im2col_with_geometry(x, geometry), groups)  # (G, P, Cg·KH·KW)
    weight_g = weight.reshape(groups, c_out // groups, -1)  # (G, Og, Cg·KH·KW)

    grad_weight = (upstream_g.transpose(0, 2, 1) @ col_g).reshape(weight.shape)  # G_gᵀ · Col_g
    grad_bias = grad_out.sum(axis=(0, 2, 3)) if bias is not None else None  # Σ over n, p, q
    grad_col = _merge_groups(upstream_g @ weight_g)  # G_g · W_g, back to (P, C_in·KH·KW)
    grad_x = col2im_with_geometry(grad_col, x.shape, geometry)
    return grad_x, grad_weight, grad_bias


def _split_groups(matrix: FloatArray, groups: int) -> FloatArray:
    """(P, G·K) -> (G, P, K): the columns of each group are contiguous in im2col's layout."""
    rows = matrix.shape[0]
    return matrix.reshape(rows, groups, -1).transpose(1, 0, 2)


def _merge_groups(stacked: FloatArray) -> FloatArray:
    """(G, P, K) -> (P, G·K), the inverse of :func:`_split_groups`."""
    _, rows, _ = stacked.shape
    return stacked.transpose(1, 0, 2).reshape(rows, -1)


def conv2d_direct(
    x: FloatArray,
    weight: FloatArray,
    bias: FloatArray | None = None,
    stride: object = 1,
    padding: object = 0,
    dilation: object = 1,
    groups: int = 1,
) -> FloatArray:
    """conv2d by its definition, in plain nested loops: an oracle for small shapes only.

    It shares nothing with :func:`conv2d` but argument validation: no im2col, no padding copy
    (a tap that falls into the padding simply contributes nothing), no matrix product.
    """
    geometry, groups = _conv2d_geometry(x, weight, bias, stride, padding, dilation, groups)
    n_batch, _, height, width = x.shape
    c_out, c_group, kh, kw = weight.shape
    o_group = c_out // groups
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    top, _, left, _ = geometry.padding
    oh, ow = geometry.output_size
    out = np.zeros((n_batch, c_out, oh, ow), dtype=x.dtype)
    for n in range(n_batch):
        for o in range(c_out):
            g = o // o_group
            for p in range(oh):
                for q in range(ow):
                    total = bias[o] if bias is not None else x.dtype.type(0)
                    for c in range(c_group):
                        for i in range(kh):
                            row = p * sh + i * dh - top  # row in the unpadded input
                            if not 0 <= row < height:
                                continue
                            for j in range(kw):
                                column = q * sw + j * dw - left
                                if 0 <= column < width:
                                    total += weight[o, c, i, j] * x[n, g * c_group + c, row, column]
                    out[n, o, p, q] = total
    return out
