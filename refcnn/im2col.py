"""im2col and col2im: unroll sliding windows into rows of a matrix, and scatter them back.

Layout (the book's): for ``x`` of shape ``(N, C, H, W)`` and an output grid ``(OH, OW)``::

    col.shape == (N·OH·OW, C·KH·KW)
    col[(n·OH + oh)·OW + ow, (c·KH + i)·KW + j] == x_pad[n, c, oh·sh + i·dh, ow·sw + j·dw]

Rows run over (n, oh, ow) and columns over (c, i, j), both row-major. ``x_pad`` is ``x`` with
zeros added on each side (``padding`` as in :mod:`refcnn.geometry`). ``torch.nn.functional.unfold``
returns the transpose of one image's block: ``unfold(x)[n] == col[n·L:(n+1)·L].T``, L = OH·OW.

im2col is linear, and col2im is its ADJOINT (transpose), not its inverse::

    ⟨im2col(x), C⟩ = ⟨x, col2im(C)⟩   for every x and C.

Where windows overlap, one pixel of ``x`` appears in several rows of ``col``; col2im therefore
ADDS every copy back into that pixel. This is exactly the backward of im2col: the gradient of a
pixel is the sum of the gradients of all its copies. (A col2im that assigns instead of adding is
the classic bug: it passes when windows do not overlap, stride ≥ kernel, and fails otherwise.)

Both loop over the KH·KW kernel offsets only; each iteration moves a whole strided slab of
``N·C·OH·OW`` values, so there is no Python loop over output pixels.
"""

from __future__ import annotations

import numpy as np

from refcnn.geometry import FloatArray, WindowGeometry, check_float_array, window_geometry


def _window_slices(geometry: WindowGeometry, i: int, j: int) -> tuple[slice, slice]:
    """Rows and columns of the padded image that kernel tap (i, j) reads, for all windows."""
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    oh, ow = geometry.output_size
    top, left = i * dh, j * dw
    return (
        slice(top, top + sh * (oh - 1) + 1, sh),
        slice(left, left + sw * (ow - 1) + 1, sw),
    )


def im2col(
    x: FloatArray,
    kernel_size: object,
    stride: object = 1,
    padding: object = 0,
    dilation: object = 1,
) -> FloatArray:
    """Unroll every window of ``x`` (N, C, H, W) into a row: returns (N·OH·OW, C·KH·KW)."""
    check_float_array(x, "x", 4, "(N, C, H, W)")
    geometry = window_geometry(x.shape[2:], kernel_size, stride, padding, dilation)
    return im2col_with_geometry(x, geometry)


def im2col_with_geometry(x: FloatArray, geometry: WindowGeometry) -> FloatArray:
    """im2col for an already validated geometry."""
    n, c = x.shape[:2]
    kh, kw = geometry.kernel_size
    oh, ow = geometry.output_size
    top, bottom, left, right = geometry.padding
    x_pad = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    windows = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, cols = _window_slices(geometry, i, j)
            windows[:, :, i, j] = x_pad[:, :, rows, cols]
    # (n, c, i, j, oh, ow) -> (n, oh, ow, c, i, j) -> rows (n, oh, ow), columns (c, i, j)
    return windows.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, c * kh * kw)


def col2im(
    col: FloatArray,
    input_shape: tuple[int, int, int, int],
    kernel_size: object,
    stride: object = 1,
    padding: object = 0,
    dilation: object = 1,
) -> FloatArray:
    """Adjoint of :func:`im2col`: scatter-ADD each row of ``col`` back into (N, C, H, W)."""
    check_float_array(col, "col", 2, "(N·OH·OW, C·KH·KW)")
    if len(input_shape) != 4 or not all(isinstance(v, int | np.integer) for v in input_shape):
        raise ValueError(f"input_shape must be (N, C, H, W), got input_shape={input_shape!r}")
    n, c, h, w = (int(v) for v in input_shape)
    geometry = window_geometry((h, w), kernel_size, stride, padding, dilation)
    return col2im_with_geometry(col, (n, c, h, w), geometry)


def col2im_with_geometry(
    col: FloatArray, input_shape: tuple[int, int, int, int], geometry: WindowGeometry
) -> FloatArray:
    """col2im for an already validated geometry."""
    n, c, h, w = input_shape
    kh, kw = geometry.kernel_size
    oh, ow = geometry.output_size
    expected = (n * oh * ow, c * kh * kw)
    if col.shape != expected:
        raise ValueError(
            f"col.shape={col.shape}, but input_shape={input_shape} with output grid "
            f"{geometry.output_size} and kernel {geometry.kernel_size} needs "
            f"(N·OH·OW, C·KH·KW)={expected}"
        )
    windows = col.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    top, _, left, _ = geometry.padding
    x_pad = np.zeros((n, c, *geometry.padded_size), dtype=col.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, cols = _window_slices(geometry, i, j)
            # "+=", not "=": a pixel read by several windows collects all their gradients.
            x_pad[:, :, rows, cols] += windows[:, :, i, j]
    return np.ascontiguousarray(x_pad[:, :, top : top + h, left : left + w])
