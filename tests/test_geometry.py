"""Geometry helpers against brute force."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from refcnn.geometry import normalize_padding, window_geometry
from refcnn.testing.strategies import window_params


def _pixels_read(geometry: Any, oh: int, ow: int) -> set[tuple[int, int]]:
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    kh, kw = geometry.kernel_size
    return {(oh * sh + i * dh, ow * sw + j * dw) for i in range(kh) for j in range(kw)}


@given(p=window_params("tiny"))
def test_windows_overlap_matches_brute_force(p: dict[str, Any]) -> None:
    geometry = window_geometry(
        p["input_size"], p["kernel_size"], p["stride"], p["padding"], p["dilation"]
    )
    windows = [
        _pixels_read(geometry, oh, ow)
        for oh, ow in itertools.product(*(range(n) for n in geometry.output_size))
    ]
    shared = any(a & b for a, b in itertools.combinations(windows, 2))
    assert geometry.windows_overlap == shared, p


@pytest.mark.parametrize(
    ("padding", "expected"),
    [
        (1, (1, 1, 1, 1)),
        ((2, 0), (2, 2, 0, 0)),
        ((0, 1, 2, 3), (0, 1, 2, 3)),
        ("valid", (0, 0, 0, 0)),
        ("same", (1, 2, 0, 1)),
    ],  # kernel (4, 2), dilation 1: totals 3 and 1, extra after
)
def test_padding_forms(padding: Any, expected: tuple[int, int, int, int]) -> None:
    assert normalize_padding(padding, (4, 2), (1, 1), (1, 1)) == expected


@given(
    length=st.integers(1, 30),
    k=st.integers(1, 5),
    s=st.integers(1, 4),
    d=st.integers(1, 3),
    lo=st.integers(0, 3),
    hi=st.integers(0, 3),
)
def test_output_size_counts_the_windows_that_fit(
    length: int, k: int, s: int, d: int, lo: int, hi: int
) -> None:
    extent = d * (k - 1) + 1
    if length + lo + hi < extent:
        with pytest.raises(ValueError, match="kernel larger than the padded input"):
            window_geometry((length, 1), (k, 1), (s, 1), (lo, hi, 0, 0), (d, 1))
        return
    fitting = sum(
        1 for start in range(0, length + lo + hi, s) if start + extent <= length + lo + hi
    )
    geometry = window_geometry((length, 1), (k, 1), (s, 1), (lo, hi, 0, 0), (d, 1))
    assert geometry.output_size[0] == fitting
