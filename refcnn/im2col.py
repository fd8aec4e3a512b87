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

How it is computed: both loop over the KH·KW kernel TAPS only, never over output pixels. Tap
(i, j) of every window at once is one strided slab of ``x`` (:func:`tap_blocks`), so each
iteration moves N·C·OH·OW values with one NumPy call. A tap that falls into the padding reads
0: it is simply not copied (im2col) or not added back (col2im), so no padded copy of ``x`` is
ever made. :func:`unfold` and :func:`fold_into` do this in torch's per-image layout
``(N, C, KH, KW, OH, OW)``, where every slab is contiguous; conv2d uses them directly (pooling
loops over the same :func:`taps`), and im2col/col2im are those two plus the transpose to the
book's rows, so the im2col op's own checks (against torch's unfold, and the adjoint identity)
check them too.

The gradient of conv2d through im2col and col2im, derived step by step: docs/conv2d.md.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from refcnn.geometry import FloatArray, WindowGeometry, check_float_array, window_geometry

Block = tuple[slice, slice]  # (rows, columns) of a 2-D grid


def _axis_block(
    length: int, out: int, offset: int, stride: int, before: int
) -> tuple[slice, slice]:
    """Along one axis, the outputs o whose tap at ``offset`` lands inside the input, and where.

    Output o reads input position ``o·stride + offset − before``; it is inside when
    ``0 ≤ o·stride + offset − before < length``, i.e. for o in [first, last).
    """
    first = max(0, -(-(before - offset) // stride))  # ceil((before − offset) / stride)
    last = min(out, (length - 1 + before - offset) // stride + 1)
    if last <= first:
        return slice(0, 0), slice(0, 0)  # this tap reads padding only
    start = first * stride + offset - before
    return slice(first, last), slice(start, start + (last - first - 1) * stride + 1, stride)


def axis_taps(geometry: WindowGeometry, axis: int) -> list[tuple[int, slice, slice]]:
    """The kernel's taps along one axis (0: rows, 1: columns), clipped to the input.

    ``(i, outputs, inputs)``: tap i of the windows at ``outputs`` (along this axis) reads the
    input positions ``inputs``, input = o·stride + i·dilation − pad_before for o in ``outputs``.
    Tap (i, j) of :func:`tap_blocks` is the product of row tap i and column tap j, so a window
    (a rectangle) can also be handled one axis at a time.

    See docs/conv2d.md.
    """
    stride, dilation = geometry.stride[axis], geometry.dilation[axis]
    before = geometry.padding[2 * axis]  # top or left
    length, out = geometry.input_size[axis], geometry.output_size[axis]
    return [
        (i, *_axis_block(length, out, i * dilation, stride, before))
        for i in range(geometry.kernel_size[axis])
    ]


def tap_blocks(geometry: WindowGeometry, i: int, j: int) -> tuple[Block, Block]:
    """Kernel tap (i, j), clipped to the input: ``(output block, input block)``.

    Window (p, q) reads ``x_pad[p·sh + i·dh, q·sw + j·dw]`` at this tap. The output block holds
    the windows (rows, columns) for which that pixel is inside ``x`` rather than in its
    padding; the input block holds those pixels of ``x`` (unpadded coordinates), same shape::

        x[..., input_rows, input_columns][..., a, b] is tap (i, j) of window
        (output_rows[a], output_columns[b])

    See docs/conv2d.md.
    """
    _, out_rows, in_rows = axis_taps(geometry, 0)[i]
    _, out_columns, in_columns = axis_taps(geometry, 1)[j]
    return (out_rows, out_columns), (in_rows, in_columns)


def taps(geometry: WindowGeometry) -> Iterator[tuple[int, int, Block, Block]]:
    """Every kernel tap in row-major order: ``(i, j, output block, input block)``.

    Item (i, j) = (i, j, *tap_blocks(geometry, i, j)), i over the KH rows (outer loop) and j
    over the KW columns (inner loop).

    See docs/conv2d.md.
    """
    columns = axis_taps(geometry, 1)
    for i, out_rows, in_rows in axis_taps(geometry, 0):
        for j, out_columns, in_columns in columns:
            yield i, j, (out_rows, out_columns), (in_rows, in_columns)


def unfold(x: FloatArray, geometry: WindowGeometry, out: FloatArray | None = None) -> FloatArray:
    """Every window's pixels, per image (torch's layout): (N, C, KH, KW, OH, OW).

    ``windows[n, c, i, j, p, q] = x_pad[n, c, p·sh + i·dh, q·sw + j·dw]`` (0 in the padding).

    Reshaped to (N, C·KH·KW, OH·OW) it is ``torch.nn.functional.unfold(x)``. ``out``, when
    given, is filled in place; its padding entries must already be 0 (a buffer that this
    function filled before, for the same geometry, qualifies: the padding is the same).

    See docs/conv2d.md.
    """
    n, c = x.shape[:2]
    kh, kw = geometry.kernel_size
    oh, ow = geometry.output_size
    windows = np.zeros((n, c, kh, kw, oh, ow), dtype=x.dtype) if out is None else out
    for i, j, (out_rows, out_columns), (in_rows, in_columns) in taps(geometry):
        windows[:, :, i, j, out_rows, out_columns] = x[:, :, in_rows, in_columns]
    return windows


def fold_into(grad_x: FloatArray, windows: FloatArray, geometry: WindowGeometry) -> FloatArray:
    """Adjoint of :func:`unfold`: ADD every window's values back into ``grad_x`` (N, C, H, W).

    ``grad_x[n, c, p·sh + i·dh − top, q·sw + j·dw − left] += windows[n, c, i, j, p, q]``

    Values that fall into the padding are dropped. Returns ``grad_x``, updated in place.

    See docs/conv2d.md.
    """
    for i, j, (out_rows, out_columns), (in_rows, in_columns) in taps(geometry):
        # "+=", not "=": a pixel read by several windows collects all their values.
        grad_x[:, :, in_rows, in_columns] += windows[:, :, i, j, out_rows, out_columns]
    return grad_x


def im2col(
    x: FloatArray,
    kernel_size: object,
    stride: object = 1,
    padding: object = 0,
    dilation: object = 1,
) -> FloatArray:
    """Unroll every window of ``x`` (N, C, H, W) into a row: returns (N·OH·OW, C·KH·KW).

    ``col[(n·OH + p)·OW + q, (c·KH + i)·KW + j] = x_pad[n, c, p·sh + i·dh, q·sw + j·dw]``

    See docs/conv2d.md.
    """
    check_float_array(x, "x", 4, "(N, C, H, W)")
    geometry = window_geometry(x.shape[2:], kernel_size, stride, padding, dilation)
    return im2col_with_geometry(x, geometry)


def im2col_with_geometry(x: FloatArray, geometry: WindowGeometry) -> FloatArray:
    """im2col for an already validated geometry.

    ``col[(n·OH + p)·OW + q, (c·KH + i)·KW + j] = unfold(x)[n, c, i, j, p, q]``

    See docs/conv2d.md.
    """
    n, c = x.shape[:2]
    kh, kw = geometry.kernel_size
    oh, ow = geometry.output_size
    windows = unfold(x, geometry)  # (n, c, i, j, oh, ow)
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
    """Adjoint of :func:`im2col`: scatter-ADD each row of ``col`` back into (N, C, H, W).

    ``⟨im2col(x), col⟩ = ⟨x, col2im(col)⟩``: each pixel gets the sum of every entry of ``col``
    that im2col copied from it; entries at padding positions are dropped.

    See docs/conv2d.md.
    """
    check_float_array(col, "col", 2, "(N·OH·OW, C·KH·KW)")
    if len(input_shape) != 4 or not all(isinstance(v, int | np.integer) for v in input_shape):
        raise ValueError(f"input_shape must be (N, C, H, W), got input_shape={input_shape!r}")
    n, c, h, w = (int(v) for v in input_shape)
    geometry = window_geometry((h, w), kernel_size, stride, padding, dilation)
    return col2im_with_geometry(col, (n, c, h, w), geometry)


def col2im_with_geometry(
    col: FloatArray, input_shape: tuple[int, int, int, int], geometry: WindowGeometry
) -> FloatArray:
    """col2im for an already validated geometry.

    The same adjoint, ``⟨im2col(x), col⟩ = ⟨x, col2im(col)⟩``: the rows reshaped back to
    (N, C, KH, KW, OH, OW) windows, then :func:`fold_into` zeros of shape ``input_shape``.

    See docs/conv2d.md.
    """
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
    windows = col.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)  # (n, c, i, j, oh, ow)
    return fold_into(np.zeros((n, c, h, w), dtype=col.dtype), windows, geometry)
