"""The window bookkeeping under im2col, unfold and pooling, against its definition.

Tap (i, j) of window (p, q) reads the padded input at row p·sh + i·dh and column q·sw + j·dw,
i.e. the unpadded pixel (p·sh + i·dh − top, q·sw + j·dw − left), or padding when that lies
outside the image. ``tap_blocks`` must list exactly the windows whose tap is inside, and the
pixels they read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refcnn.geometry import WindowGeometry, window_geometry
from refcnn.im2col import col2im, tap_blocks, taps


@st.composite
def geometries(draw: Any) -> WindowGeometry:
    """Constructive: kernel, stride, dilation and padding first, then an input that fits."""
    kernel = (draw(st.integers(1, 4), label="kh"), draw(st.integers(1, 4), label="kw"))
    stride = (draw(st.integers(1, 3), label="sh"), draw(st.integers(1, 3), label="sw"))
    dilation = (draw(st.integers(1, 3), label="dh"), draw(st.integers(1, 3), label="dw"))
    padding = tuple(draw(st.integers(0, 3), label=f"pad {side}") for side in "tblr")
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    low = [max(1, extent[0] - padding[0] - padding[1]), max(1, extent[1] - padding[2] - padding[3])]
    size = (draw(st.integers(low[0], low[0] + 6), label="h"), draw(st.integers(low[1], low[1] + 6)))
    return window_geometry(size, kernel, stride, padding, dilation)


def tap_by_definition(geometry: WindowGeometry, i: int, j: int) -> np.ndarray[Any, Any]:
    """For every window (p, q): the flat index of the pixel tap (i, j) reads, −1 in padding."""
    (h, w), (sh, sw), (dh, dw) = geometry.input_size, geometry.stride, geometry.dilation
    top, _, left, _ = geometry.padding
    rows = np.arange(geometry.output_size[0]) * sh + i * dh - top
    columns = np.arange(geometry.output_size[1]) * sw + j * dw - left
    inside = ((rows >= 0) & (rows < h))[:, None] & ((columns >= 0) & (columns < w))[None, :]
    return np.where(inside, rows[:, None] * w + columns[None, :], -1)


@given(geometry=geometries())
def test_tap_blocks_list_exactly_the_windows_inside_and_their_pixels(
    geometry: WindowGeometry,
) -> None:
    pixels = np.arange(geometry.input_size[0] * geometry.input_size[1]).reshape(geometry.input_size)
    for i, j, outputs, inputs in taps(geometry):
        assert (outputs, inputs) == tap_blocks(geometry, i, j), f"taps() item {(i, j)}"
        read = np.full(geometry.output_size, -1)
        read[outputs] = pixels[inputs]
        expected = tap_by_definition(geometry, i, j)
        assert np.array_equal(read, expected), (
            f"tap {(i, j)} of {geometry}: read\n{read}\nbut should read\n{expected}"
        )
    kh, kw = geometry.kernel_size
    assert [(i, j) for i, j, _, _ in taps(geometry)] == [
        (i, j) for i in range(kh) for j in range(kw)
    ]


def test_col2im_names_an_input_shape_that_is_not_four_integers() -> None:
    col = np.zeros((9, 9))
    for bad in [(1, 1, 5, 5.0), (1, 1, 5), (1, 1, 5, 5, 1)]:
        with pytest.raises(
            ValueError, match=r"input_shape must be \(N, C, H, W\), got input_shape"
        ):
            col2im(col, bad, 3)
