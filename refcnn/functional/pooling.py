"""Pooling (torch semantics): max, average, adaptive average and global average, with backward.

Arrays are (N, C, H, W) or, as torch also accepts, (C, H, W); every channel is pooled on its own.
Window geometry (kernel, stride = kernel by default, symmetric padding ≤ kernel // 2, dilation,
ceil_mode) is :func:`refcnn.geometry.pooling_geometry`. See docs/pooling.md for the derivations.

Max pooling, with ``window(p, q)`` the input pixels of window (p, q) (padding never takes part:
torch clips the window to the input, so padding acts as −inf)::

    out[n, c, p, q] = x[n, c, a*]        a* = the FIRST largest pixel of window(p, q) in row-major
                                          order; if the window holds a NaN, the LAST NaN (torch)
    ∂L/∂x[n, c, a]  = Σ_{(p, q): a* = a} G[n, c, p, q]     windows that chose a pixel all ADD

Average pooling, with ``D(p, q)`` the divisor (see :func:`avg_pool2d`)::

    out[n, c, p, q] = (1 / D(p, q)) · Σ_{a ∈ window(p, q)} x[n, c, a]
    ∂L/∂x[n, c, a]  = Σ_{(p, q): a ∈ window(p, q)} G[n, c, p, q] / D(p, q)

Both loop over the kernel's taps, never over windows: tap (i, j) of every window at once is one
strided block of ``x`` (:func:`refcnn.im2col.tap_blocks`, clipped to the input, so padding is
simply never read). A window is a rectangle, so its sum or maximum is also taken one axis at a
time (:func:`_reduce_windows`): along the kernel's rows, then its columns, KH + KW passes instead
of KH·KW. The backward passes ADD into ∂L/∂x, so a pixel shared by overlapping windows collects
every window's gradient.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from refcnn.geometry import (
    FloatArray,
    PoolingGeometry,
    check_float_array,
    check_same_dtype,
    pooling_geometry,
)
from refcnn.im2col import axis_taps, taps

IntArray = NDArray[np.integer[Any]]


# --- shared: batched views and upstream checks --------------------------------------------------


def _as_batch(x: FloatArray) -> FloatArray:
    """``x`` as (N, C, H, W): a 3-D (C, H, W) input becomes a batch of one (a view)."""
    if isinstance(x, np.ndarray) and x.ndim == 3:
        batch = check_float_array(x, "x", 3, "(C, H, W)")[np.newaxis]
    else:
        batch = check_float_array(x, "x", 4, "(N, C, H, W) or 3-D (C, H, W)")
    if batch.shape[2] < 1 or batch.shape[3] < 1:
        raise ValueError(f"x must have non-empty H and W, got x.shape={x.shape}")
    return batch


def _like_input(result: FloatArray, x: FloatArray) -> FloatArray:
    """Drop the batch axis again when ``x`` was 3-D."""
    return result[0] if x.ndim == 3 else result


def _upstream_batch(grad_out: object, x: FloatArray, expected: tuple[int, ...]) -> FloatArray:
    """``grad_out`` checked against the forward's output shape, as (N, C, OH, OW)."""
    upstream = check_float_array(grad_out, "grad_out", x.ndim, "(shaped like the output)")
    check_same_dtype("x", x, grad_out=upstream)
    shape = expected[1:] if x.ndim == 3 else expected
    if upstream.shape != shape:
        raise ValueError(f"grad_out.shape={upstream.shape}, but the output has shape {shape}")
    return upstream[np.newaxis] if x.ndim == 3 else upstream


# --- max_pool2d ---------------------------------------------------------------------------------


def _reduce_windows(
    x: FloatArray, geometry: PoolingGeometry, combine: np.ufunc, identity: float
) -> FloatArray:
    """Every window's input pixels combined by ``combine``, np.add (``identity`` 0) or np.maximum
    (−inf): (N, C, OH, OW).

    A window is a rectangle, rows × columns clipped to the input, so combining all its pixels
    is combining, along its columns, what its rows combined: first each window row's KH taps
    (an (N, C, OH, W) array), then their KW column taps. Padding is never read.
    """
    n, c, _, width = x.shape
    oh, ow = geometry.output_size
    rows = np.full((n, c, oh, width), identity, dtype=x.dtype)  # rows[n, c, p, w]: KH taps of p
    for _, out_rows, in_rows in axis_taps(geometry.windows, 0):
        block = rows[:, :, out_rows]  # a view: updated in place
        combine(block, x[:, :, in_rows], out=block)
    out = np.full((n, c, oh, ow), identity, dtype=x.dtype)
    for _, out_columns, in_columns in axis_taps(geometry.windows, 1):
        block = out[:, :, :, out_columns]
        combine(block, rows[:, :, :, in_columns], out=block)
    return out


def _spread_windows(
    values: FloatArray, shape: tuple[int, ...], geometry: PoolingGeometry
) -> FloatArray:
    """Adjoint of :func:`_reduce_windows` with np.add: ADD each window's value to all its pixels.

    The same two passes in reverse: each window's value to its KW column taps (an (N, C, OH, W)
    array), then each of those to the window's KH row taps. Overlapping windows add up; what
    falls into the padding is dropped.
    """
    n, c, height, width = shape
    oh, _ = geometry.output_size
    rows = np.zeros((n, c, oh, width), dtype=values.dtype)
    for _, out_columns, in_columns in axis_taps(geometry.windows, 1):
        rows[:, :, :, in_columns] += values[:, :, :, out_columns]
    spread = np.zeros((n, c, height, width), dtype=values.dtype)
    for _, out_rows, in_rows in axis_taps(geometry.windows, 0):
        spread[:, :, in_rows] += rows[:, :, out_rows]
    return spread


def _tap_values(x: FloatArray, geometry: PoolingGeometry) -> FloatArray:
    """Tap ``t = i·KW + j`` of every window, (KH·KW, N, C, OH, OW); −inf where it is padding.

    Each tap is one contiguous slab, so the comparisons of :func:`_max_pool_choice` run on
    contiguous arrays, which NumPy compares much faster than strided views of ``x``.
    """
    kh, kw = geometry.windows.kernel_size
    values = np.full((kh * kw, *x.shape[:2], *geometry.output_size), -np.inf, dtype=x.dtype)
    for i, j, (out_rows, out_columns), (in_rows, in_columns) in taps(geometry.windows):
        values[i * kw + j, :, :, out_rows, out_columns] = x[:, :, in_rows, in_columns]
    return values


def _max_pool_choice(x: FloatArray, geometry: PoolingGeometry) -> IntArray:
    """The tap ``a* = i·KW + j`` each window takes its maximum from: (N, C, OH, OW).

    a* is the first tap, in row-major order, whose input pixel equals the window's maximum;
    when the maximum is NaN, the window's last NaN. That is where torch's running loop (start
    at the first input pixel, replace on a strictly larger value or a NaN) ends. Padding is
    never chosen, even when it ties (a window of −inf pixels).
    """
    values = _tap_values(x, geometry)  # (K, N, C, OH, OW), K = KH·KW
    largest = values.max(axis=0)  # NaN if the window holds one
    kh, kw = geometry.windows.kernel_size
    inside = np.zeros((kh * kw, *geometry.output_size), dtype=bool)  # tap t of (p, q) in x?
    for i, j, (out_rows, out_columns), _ in taps(geometry.windows):
        inside[i * kw + j, out_rows, out_columns] = True
    tap_type = np.min_scalar_type(kh * kw - 1)  # the smallest integer type: short passes
    chosen = np.zeros(largest.shape, dtype=tap_type)  # stays 0 until a window's tap is found
    found = np.zeros(largest.shape, dtype=bool)
    for tap in range(kh * kw):
        first = (values[tap] == largest) & inside[tap] & ~found  # first largest input pixel
        chosen += first * tap_type.type(tap)
        found |= first
    nan_windows = np.isnan(largest)
    if nan_windows.any():  # the maximum is NaN (NaN == NaN is false): take the LAST NaN
        last_nan = np.zeros(largest.shape, dtype=tap_type)
        for tap in range(kh * kw):  # taps only increase: the last NaN is the largest tap
            np.maximum(last_nan, np.isnan(values[tap]) * tap_type.type(tap), out=last_nan)
        chosen = np.where(nan_windows, last_nan, chosen)
    return chosen


def max_pool2d(
    x: FloatArray,
    kernel_size: object,
    stride: object = None,
    padding: object = 0,
    dilation: object = 1,
    ceil_mode: bool = False,
) -> FloatArray:
    """``torch.nn.functional.max_pool2d``: the largest pixel of every window, (N, C, OH, OW).

    out[n, c, p, q] = max_{a ∈ window(p, q)} x[n, c, a]     (window clipped to the input)

    Ties go to the first pixel in row-major window order; a NaN in a window wins (the last
    one); padding is never chosen. ``stride=None`` means ``stride = kernel_size``.

    See docs/pooling.md.
    """
    batch = _as_batch(x)
    geometry = pooling_geometry(batch.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    # np.maximum propagates NaN, as torch lets a NaN win; the padding is never read
    return _like_input(_reduce_windows(batch, geometry, np.maximum, -np.inf), x)


def max_pool2d_backward(
    grad_out: FloatArray,
    x: FloatArray,
    kernel_size: object,
    stride: object = None,
    padding: object = 0,
    dilation: object = 1,
    ceil_mode: bool = False,
) -> FloatArray:
    """∂L/∂x of :func:`max_pool2d`: each window sends its upstream value to the pixel it chose.

    dx[n, c, a] = Σ_{(p, q): a*(p, q) = a} G[n, c, p, q],   a*(p, q) = the pixel window (p, q) chose

    Overlapping windows that chose the same pixel ADD their upstream values there; every other
    pixel gets zero. Takes ``x`` (not the forward's output) to redo the choice.

    See docs/pooling.md.
    """
    batch = _as_batch(x)
    geometry = pooling_geometry(batch.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    upstream = _upstream_batch(grad_out, x, (*batch.shape[:2], *geometry.output_size))
    chosen = _max_pool_choice(batch, geometry)  # tap a* = i·KW + j of every window
    # a* as a flat index into x, row-major ((n·C + c)·H + row)·W + column: the window's
    # top-left corner (in the padding, possibly) plus the chosen tap's offset
    n, c, height, width = batch.shape
    (sh, sw), (dh, dw) = geometry.windows.stride, geometry.windows.dilation
    top, _, left, _ = geometry.windows.padding
    oh, ow = geometry.output_size
    kh, kw = geometry.windows.kernel_size
    tap_offset = (np.arange(kh)[:, None] * dh * width + np.arange(kw) * dw).reshape(-1)
    corner = (np.arange(oh) * sh - top)[:, None] * width + (np.arange(ow) * sw - left)
    plane = (np.arange(n * c) * (height * width)).reshape(n, c, 1, 1)
    pixel = tap_offset[chosen]
    pixel += corner
    pixel += plane
    grad_x = np.zeros_like(batch)
    # ∂L/∂x[a*] += G[p, q]; np.add.at adds every repeated index (windows sharing a pixel)
    np.add.at(grad_x.reshape(-1), pixel.reshape(-1), upstream.reshape(-1))
    return _like_input(grad_x, x)


# --- avg_pool2d ---------------------------------------------------------------------------------


def _axis_counts(geometry: PoolingGeometry, axis: int, count_include_pad: bool) -> list[int]:
    """Per window along one axis: how many positions count towards the divisor.

    torch's rule: the window [start, start + k) is first clipped to the padded input
    [−pad, L + pad) (the ceil_mode overhang never counts); that length is the count with
    ``count_include_pad``. Without it, the window is clipped to the input [0, L) instead.
    """
    k, pad = geometry.windows.kernel_size[axis], geometry.padding[axis]
    length = geometry.windows.input_size[axis]
    counts = []
    for start in geometry.window_starts(axis):
        if count_include_pad:
            counts.append(min(start + k, length + pad) - start)
        else:
            counts.append(min(start + k, length) - max(start, 0))
    return counts


def _avg_divisor(
    geometry: PoolingGeometry, count_include_pad: bool, divisor_override: int | None, dtype: Any
) -> FloatArray:
    """D(p, q) as an (OH, OW) array in ``dtype`` (small integers: exact in any float)."""
    if divisor_override is not None:
        counts = np.full(geometry.output_size, divisor_override)
    else:
        rows = _axis_counts(geometry, 0, count_include_pad)
        columns = _axis_counts(geometry, 1, count_include_pad)
        counts = np.outer(rows, columns)  # the window is a rectangle: rows × columns
    return counts.astype(dtype)


def _avg_pool_geometry(
    x: FloatArray,
    kernel_size: object,
    stride: object,
    padding: object,
    ceil_mode: object,
    count_include_pad: object,
    divisor_override: object,
) -> PoolingGeometry:
    if not isinstance(count_include_pad, bool | np.bool_):
        raise TypeError(f"count_include_pad must be a bool, got {count_include_pad!r}")
    if divisor_override is not None:
        if not isinstance(divisor_override, int | np.integer) or isinstance(divisor_override, bool):
            raise TypeError(f"divisor_override must be None or an int, got {divisor_override!r}")
        if divisor_override == 0:
            raise ValueError("divisor_override must be None or a non-zero int, got 0")
    return pooling_geometry(x.shape[2:], kernel_size, stride, padding, 1, ceil_mode)


def avg_pool2d(
    x: FloatArray,
    kernel_size: object,
    stride: object = None,
    padding: object = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> FloatArray:
    """``torch.nn.functional.avg_pool2d``: the sum of every window over a divisor D.

    out[n, c, p, q] = Σ_{a ∈ window(p, q)} x[n, c, a] / D(p, q)     (padding adds 0 to the sum)

    D is ``divisor_override`` when given; else the window's size clipped to the padded input
    (``count_include_pad=True``, the default) or the number of input pixels it covers
    (``False``). The ceil_mode overhang is never counted.

    See docs/pooling.md.
    """
    batch = _as_batch(x)
    geometry = _avg_pool_geometry(
        batch, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )
    divisor = _avg_divisor(geometry, bool(count_include_pad), divisor_override, batch.dtype)
    sums = _reduce_windows(batch, geometry, np.add, 0.0)  # Σ over the window (padding adds 0)
    return _like_input(sums / divisor, x)


def avg_pool2d_backward(
    grad_out: FloatArray,
    x: FloatArray,
    kernel_size: object,
    stride: object = None,
    padding: object = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> FloatArray:
    """∂L/∂x of :func:`avg_pool2d`: every window spreads G / D over its pixels, and they add up.

    dx[n, c, a] = Σ_{(p, q): a ∈ window(p, q)} G[n, c, p, q] / D(p, q)

    See docs/pooling.md.
    """
    batch = _as_batch(x)
    geometry = _avg_pool_geometry(
        batch, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )
    upstream = _upstream_batch(grad_out, x, (*batch.shape[:2], *geometry.output_size))
    divisor = _avg_divisor(geometry, bool(count_include_pad), divisor_override, batch.dtype)
    share = upstream / divisor  # G / D: (N, C, OH, OW)
    # every pixel of a window gets its share; overlapping windows ADD, padding is dropped
    return _like_input(_spread_windows(share, batch.shape, geometry), x)


# --- adaptive_avg_pool2d ------------------------------------------------------------------------


def _adaptive_output_size(x: FloatArray, output_size: object) -> tuple[int, int]:
    """``output_size`` as (OH, OW): an int, or a pair whose None entries keep the input size."""
    entries = output_size if isinstance(output_size, tuple | list) else (output_size, output_size)
    if len(entries) != 2:
        raise ValueError(f"output_size must be an int or a pair (OH, OW), got {output_size!r}")
    size = []
    for entry, length in zip(entries, x.shape[2:], strict=True):
        if entry is None:
            size.append(int(length))
        elif isinstance(entry, int | np.integer) and not isinstance(entry, bool):
            if entry < 0:
                raise ValueError(f"output_size must be >= 0, got output_size={output_size!r}")
            size.append(int(entry))
        else:
            raise TypeError(
                f"output_size must be an int or a pair of ints/None, got {output_size!r}"
            )
    return (size[0], size[1])


def adaptive_windows(length: int, out: int) -> list[tuple[int, int]]:
    """torch's adaptive windows along one axis, as (start, stop) pairs.

    window i = [floor(i·L/out), ceil((i + 1)·L/out))   for i = 0 .. out − 1

    They cover the input, may overlap by one pixel, and are all of length ≥ 1.

    See docs/pooling.md.
    """
    return [(i * length // out, -(-(i + 1) * length // out)) for i in range(out)]


def adaptive_avg_pool2d(x: FloatArray, output_size: object) -> FloatArray:
    """``torch.nn.functional.adaptive_avg_pool2d``: the mean of each adaptive window.

    ``out[n, c, i, j] = mean(x[n, c, h0(i):h1(i), w0(j):w1(j)])``, windows from
    :func:`adaptive_windows`.

    ``output_size`` is an int or a pair; None keeps that input size.

    See docs/pooling.md.
    """
    batch = _as_batch(x)
    oh, ow = _adaptive_output_size(batch, output_size)
    rows, columns = adaptive_windows(batch.shape[2], oh), adaptive_windows(batch.shape[3], ow)
    out = np.empty((*batch.shape[:2], oh, ow), dtype=batch.dtype)
    for i, (h0, h1) in enumerate(rows):
        for j, (w0, w1) in enumerate(columns):
            window = batch[:, :, h0:h1, w0:w1]
            out[:, :, i, j] = window.sum(axis=(2, 3)) / ((h1 - h0) * (w1 - w0))  # Σ / count
    return _like_input(out, x)


def adaptive_avg_pool2d_backward(
    grad_out: FloatArray, x: FloatArray, output_size: object
) -> FloatArray:
    """∂L/∂x of :func:`adaptive_avg_pool2d`: window (i, j) adds G[i, j] / count to its pixels.

    dx[n, c, h, w] = Σ_{(i, j): (h, w) ∈ window(i, j)} G[n, c, i, j] / count(i, j)

    See docs/pooling.md.
    """
    batch = _as_batch(x)
    oh, ow = _adaptive_output_size(batch, output_size)
    upstream = _upstream_batch(grad_out, x, (*batch.shape[:2], oh, ow))
    rows, columns = adaptive_windows(batch.shape[2], oh), adaptive_windows(batch.shape[3], ow)
    grad_x = np.zeros_like(batch)
    for i, (h0, h1) in enumerate(rows):
        for j, (w0, w1) in enumerate(columns):
            share = upstream[:, :, i, j] / ((h1 - h0) * (w1 - w0))  # G / count: (N, C)
            grad_x[:, :, h0:h1, w0:w1] += share[:, :, np.newaxis, np.newaxis]  # overlaps add
    return _like_input(grad_x, x)


# --- global_avg_pool2d --------------------------------------------------------------------------


def global_avg_pool2d(x: FloatArray) -> FloatArray:
    """The mean over H and W, keeping them as size 1: (N, C, 1, 1).

    out[n, c, 0, 0] = Σ_{h, w} x[n, c, h, w] / (H·W)

    torch: ``x.mean((-2, -1), keepdim=True)`` = ``adaptive_avg_pool2d(x, 1)``.

    See docs/pooling.md.
    """
    batch = _as_batch(x)
    count = math.prod(batch.shape[2:])
    out = batch.sum(axis=(2, 3), keepdims=True) / count  # Σ_{h, w} x / (H·W)
    return _like_input(out, x)


def global_avg_pool2d_backward(grad_out: FloatArray, x: FloatArray) -> FloatArray:
    """∂L/∂x of :func:`global_avg_pool2d`: every pixel gets G / (H·W).

    dx[n, c, h, w] = G[n, c, 0, 0] / (H·W)

    See docs/pooling.md.
    """
    batch = _as_batch(x)
    upstream = _upstream_batch(grad_out, x, (*batch.shape[:2], 1, 1))
    count = math.prod(batch.shape[2:])
    grad_x = np.broadcast_to(upstream / count, batch.shape)
    return _like_input(np.ascontiguousarray(grad_x), x)


# --- direct definitions (oracles for small shapes) ----------------------------------------------


def max_pool2d_direct(
    x: FloatArray,
    kernel_size: object,
    stride: object = None,
    padding: object = 0,
    dilation: object = 1,
    ceil_mode: bool = False,
) -> FloatArray:
    """max_pool2d by its definition, torch's CPU loop: no im2col, no padding copy.

    out[n, c, p, q] = max over the window's input pixels, as a running maximum: start at −inf,
    then, in row-major order, best = value whenever value > best or value is NaN.

    See docs/pooling.md.
    """
    batch = _as_batch(x)
    geometry = pooling_geometry(batch.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    n_batch, channels, height, width = batch.shape
    (kh, kw), (dh, dw) = geometry.windows.kernel_size, geometry.windows.dilation
    oh, ow = geometry.output_size
    out = np.empty((n_batch, channels, oh, ow), dtype=batch.dtype)
    for n in range(n_batch):
        for c in range(channels):
            for p, row0 in enumerate(geometry.window_starts(0)):
                for q, column0 in enumerate(geometry.window_starts(1)):
                    best = batch.dtype.type(-np.inf)
                    for i in range(kh):
                        for j in range(kw):
                            row, column = row0 + i * dh, column0 + j * dw
                            if 0 <= row < height and 0 <= column < width:
                                value = batch[n, c, row, column]
                                if value > best or np.isnan(value):
                                    best = value
                    out[n, c, p, q] = best
    return _like_input(out, x)


def avg_pool2d_direct(
    x: FloatArray,
    kernel_size: object,
    stride: object = None,
    padding: object = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> FloatArray:
    """avg_pool2d by its definition, torch's CPU loop: clip, count, sum, divide.

    out[n, c, p, q] = (Σ of the window's input pixels, one at a time) / D(p, q)

    See docs/pooling.md.
    """
    batch = _as_batch(x)
    geometry = _avg_pool_geometry(
        batch, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )
    n_batch, channels, height, width = batch.shape
    kh, kw = geometry.windows.kernel_size
    ph, pw = geometry.padding
    oh, ow = geometry.output_size
    out = np.empty((n_batch, channels, oh, ow), dtype=batch.dtype)
    for p, start_row in enumerate(geometry.window_starts(0)):
        for q, start_column in enumerate(geometry.window_starts(1)):
            # torch's loop: clip the window to the padded input, count, then clip to the input
            end_row, end_column = (
                min(start_row + kh, height + ph),
                min(start_column + kw, width + pw),
            )
            pool_size = (end_row - start_row) * (end_column - start_column)
            row0, column0 = max(start_row, 0), max(start_column, 0)
            row1, column1 = min(end_row, height), min(end_column, width)
            if divisor_override is not None:
                divisor = divisor_override
            elif count_include_pad:
                divisor = pool_size
            else:
                divisor = (row1 - row0) * (column1 - column0)
            for n in range(n_batch):
                for c in range(channels):
                    total = batch.dtype.type(0)
                    for row in range(row0, row1):
                        for column in range(column0, column1):
                            total += batch[n, c, row, column]
                    out[n, c, p, q] = total / batch.dtype.type(divisor)
    return _like_input(out, x)
