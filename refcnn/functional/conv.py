"""2-D convolution (cross-correlation, as torch): forward, explicit backward, direct definition.

Definition, for ``x`` (N, C_in, H, W), ``weight`` (C_out, C_in/G, KH, KW), ``bias`` (C_out,) and G
groups of ``Cg = C_in/G`` input and ``Og = C_out/G`` output channels; output channel ``o`` belongs
to group ``g = o // Og`` and reads input channels ``g·Cg .. g·Cg + Cg − 1``::

    out[n, o, p, q] = bias[o] + Σ_{c < Cg, i < KH, j < KW}
                      weight[o, c, i, j] · x_pad[n, g·Cg + c, p·sh + i·dh, q·sw + j·dw]

No kernel flip: this is what torch (and every deep-learning framework) calls convolution.

Matrix form, one image at a time. ``X_n``, :func:`refcnn.im2col.unfold` of image n reshaped to
(C·KH·KW, OH·OW), holds the image's windows as columns (one per output pixel: the transpose of
im2col's rows for that image); ``X_{n,g}`` is its Cg·KH·KW rows of group g, and ``W_g`` the
group's weights flattened to (Og, Cg·KH·KW)::

    Out[n]_g = W_g · X_{n,g} + bias_g                     (Og, OH·OW)

Backward: given the upstream gradient ``G = ∂L/∂out``, laid out like ``Out`` (G[n]_g: (Og, OH·OW)),
the chain rule applied to that matrix product gives::

    ∂L/∂W_g     = Σ_n G[n]_g · X_{n,g}ᵀ                  sum over images and their OH·OW windows
    ∂L/∂bias    = Σ_{n, p, q} G[n, :, p, q]              every window adds the bias once
    ∂L/∂X_{n,g} = W_gᵀ · G[n]_g
    ∂L/∂x       = fold(∂L/∂X)                            a pixel read by k windows gets k terms

The last line is why fold (col2im) must accumulate. docs/conv2d.md derives the same products in
the book's layout, ``Out = col · Wᵀ``, which is this one transposed with all images stacked.

Images go through a few at a time (:func:`_image_chunks`): an image's windows take about KH·KW
times the image's memory (at stride 1), and a chunk's windows are multiplied while they are still
in the CPU's cache, instead of making one im2col matrix for the whole batch. Chunking changes
only the order in which ∂L/∂W's sum is added up. docs/performance.md has the measurements.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from refcnn.geometry import (
    FloatArray,
    WindowGeometry,
    check_float_array,
    check_same_dtype,
    window_geometry,
)
from refcnn.im2col import fold_into, unfold

# About this many bytes of unfolded windows per chunk of images: small enough to stay in a
# core's L2 cache and its share of L3, large enough that the matrix products are not tiny.
CHUNK_BYTES = 1 << 22


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


def _image_chunks(geometry: WindowGeometry, x: FloatArray) -> Iterator[slice]:
    """Consecutive slices of the batch whose unfolded windows take about CHUNK_BYTES each."""
    n, c = x.shape[:2]
    kh, kw = geometry.kernel_size
    oh, ow = geometry.output_size
    bytes_per_image = max(1, c * kh * kw * oh * ow * x.dtype.itemsize)
    per_chunk = max(1, CHUNK_BYTES // bytes_per_image)
    for start in range(0, n, per_chunk):
        yield slice(start, min(n, start + per_chunk))


def _window_buffer(geometry: WindowGeometry, x: FloatArray) -> FloatArray:
    """Zeros shaped like the unfolded windows of the largest chunk, reused by every chunk."""
    chunk = next(_image_chunks(geometry, x), slice(0, 0))
    kh, kw = geometry.kernel_size
    return np.zeros((chunk.stop, x.shape[1], kh, kw, *geometry.output_size), dtype=x.dtype)


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

    Out[n]_g = W_g · X_{n,g} + bias_g  for image n and group g: W_g (Og, Cg·KH·KW) the group's
    weights, X_{n,g} (Cg·KH·KW, OH·OW) its unfolded windows (the module docstring has the sums).

    ``padding`` also accepts per-side ``(top, bottom, left, right)``; see :mod:`refcnn.geometry`.

    See docs/conv2d.md.
    """
    geometry, groups = _conv2d_geometry(x, weight, bias, stride, padding, dilation, groups)
    n, c_out = x.shape[0], weight.shape[0]
    oh, ow = geometry.output_size
    weight_g = weight.reshape(groups, c_out // groups, -1)  # W_g: (G, Og, Cg·KH·KW)
    out = np.empty((n, c_out, oh, ow), dtype=x.dtype)
    out_g = out.reshape(n, groups, c_out // groups, oh * ow)  # Out[n]_g, a view of out
    buffer = _window_buffer(geometry, x)
    for images in _image_chunks(geometry, x):
        count = images.stop - images.start
        windows = unfold(x[images], geometry, out=buffer[:count])  # (n, C_in, KH, KW, OH, OW)
        columns = windows.reshape(count, groups, -1, oh * ow)  # X_{n,g}: (Cg·KH·KW, OH·OW)
        np.matmul(weight_g, columns, out=out_g[images])  # Out[n]_g = W_g · X_{n,g}
    if bias is not None:
        out += bias.reshape(c_out, 1, 1)
    return out


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
    """Gradients ``(grad_x, grad_weight, grad_bias)`` of conv2d for upstream ``grad_out`` = G.

    dW_g = Σ_n G[n]_g · X_{n,g}ᵀ,   db = Σ_{n, p, q} G[n, :, p, q],
    dx = fold(W_gᵀ · G[n]_g)     (fold ADDS: a pixel read by k windows gets k terms)

    ``grad_bias`` is None when ``bias`` is None. Takes every input it needs: nothing is cached.

    See docs/conv2d.md.
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
    upstream = grad_out.reshape(n, groups, c_out // groups, oh * ow)  # G[n]_g: (Og, OH·OW)
    weight_g = weight.reshape(groups, c_out // groups, -1)  # W_g: (G, Og, Cg·KH·KW)
    grad_weight_g = np.zeros_like(weight_g)
    grad_x = np.zeros_like(x)
    buffer = _window_buffer(geometry, x)
    grad_buffer = np.empty_like(buffer)
    for images in _image_chunks(geometry, x):
        count = images.stop - images.start
        windows = unfold(x[images], geometry, out=buffer[:count])
        columns = windows.reshape(count, groups, -1, oh * ow)  # X_{n,g}
        upstream_n = upstream[images]  # G[n]_g
        # ∂L/∂W_g = Σ_n G[n]_g · X_{n,g}ᵀ
        grad_weight_g += np.matmul(upstream_n, columns.transpose(0, 1, 3, 2)).sum(axis=0)
        # ∂L/∂X_{n,g} = W_gᵀ · G[n]_g, then fold adds every window's column back into its pixels
        grad_columns = grad_buffer[:count].reshape(count, groups, -1, oh * ow)
        if c_out == groups:  # Og = 1 (depthwise): W_gᵀ·G[n]_g is an outer product, and
            # broadcasting computes it 2-3x faster than matmul does for an inner length of 1
            np.multiply(weight_g.transpose(0, 2, 1), upstream_n, out=grad_columns)
        else:
            np.matmul(weight_g.transpose(0, 2, 1), upstream_n, out=grad_columns)
        fold_into(grad_x[images], grad_buffer[:count], geometry)
    grad_bias = grad_out.sum(axis=(0, 2, 3)) if bias is not None else None  # Σ over n, p, q
    return grad_x, grad_weight_g.reshape(weight.shape), grad_bias


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

    out[n, o, p, q] = bias[o] + Σ_{c, i, j} weight[o, c, i, j]·x[n, g·Cg + c, row, column],
    row = p·sh + i·dh − top, column = q·sw + j·dw − left, skipping taps outside x.

    It shares nothing with :func:`conv2d` but argument validation: no im2col, no padding copy
    (a tap that falls into the padding simply contributes nothing), no matrix product.

    See docs/conv2d.md.
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
