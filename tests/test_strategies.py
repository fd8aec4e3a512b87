"""Meta-tests of the constructive strategies: always valid, and they reach every feature."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import find, given, settings

from refcnn.geometry import normalize_padding, window_geometry
from refcnn.testing import strategies


def _geometry(p: dict[str, Any]) -> Any:
    return window_geometry(
        p["input_size"], p["kernel_size"], p["stride"], p["padding"], p["dilation"]
    )


def _pads(p: dict[str, Any]) -> tuple[int, int, int, int]:
    return normalize_padding(p["padding"], p["kernel_size"], p["dilation"], p["stride"])


def _stride_misses_span(p: dict[str, Any]) -> bool:
    g = _geometry(p)
    return any(
        (size - extent) % step != 0
        for size, extent, step in zip(g.padded_size, g.kernel_extent, g.stride, strict=True)
    )


FEATURES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "non-square input": lambda p: p["input_size"][0] != p["input_size"][1],
    "rectangular kernel": lambda p: p["kernel_size"][0] != p["kernel_size"][1],
    "stride > kernel": lambda p: any(
        s > k for s, k in zip(p["stride"], p["kernel_size"], strict=True)
    ),
    "stride does not divide the span": _stride_misses_span,
    "1x1 image": lambda p: p["input_size"] == (1, 1),
    "batch 1": lambda p: p["batch"] == 1,
    "pad >= 1": lambda p: max(_pads(p)) >= 1,
    "asymmetric padding": lambda p: _pads(p)[0] != _pads(p)[1],
    "padding larger than the kernel": lambda p: max(_pads(p)) >= max(p["kernel_size"]),
    "dilation > 1": lambda p: max(p["dilation"]) > 1,
    "groups > 1": lambda p: p["groups"] > 1,
    "'same' padding": lambda p: p["padding"] == "same",
    "no bias": lambda p: not p["bias"],
    "overlapping windows": lambda p: _geometry(p).windows_overlap,
}


@pytest.mark.parametrize("feature", FEATURES)
def test_conv2d_params_reach(feature: str) -> None:
    find(
        strategies.conv2d_params(),
        FEATURES[feature],
        settings=settings(max_examples=3000, derandomize=True, database=None),
    )


@pytest.mark.parametrize("budget", sorted(strategies.LIMITS))
@given(data=strategies.st.data())
def test_window_params_are_always_valid(budget: str, data: Any) -> None:
    p = data.draw(strategies.window_params(budget), label="params")
    geometry = _geometry(p)  # raises on an invalid configuration
    assert min(geometry.input_size) >= 1
    assert min(geometry.output_size) >= 1
