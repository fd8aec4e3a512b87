"""Catalog entries of the pooling family: max_pool2d, avg_pool2d, adaptive and global average.

Strategies are constructive, per axis (H ≠ W, KH ≠ KW, SH ≠ SW by default): kernel, dilation,
padding (≤ kernel // 2, torch's rule), stride (or None = kernel), ceil_mode and the output
length are drawn, then the input length is derived, as in :mod:`refcnn.testing.strategies`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from hypothesis import strategies as st
from numpy.typing import NDArray

from refcnn.functional.pooling import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_windows,
    avg_pool2d,
    avg_pool2d_backward,
    avg_pool2d_direct,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_direct,
)
from refcnn.geometry import PoolingGeometry, pooling_geometry
from refcnn.testing.opspec import ArraySpec, EdgeCase, ErrorCase, Layout, OpSpec, Params, Sample
from refcnn.testing.strategies import LIMITS
from refcnn.testing.tolerance import Formula, Multilinear

# --- strategies ---------------------------------------------------------------------------------

# Input and output lengths of the adaptive pools, per budget ("tiny": full Jacobians).
ADAPTIVE_LIMITS = {"small": {"length": 9, "out": 5}, "tiny": {"length": 4, "out": 3}}


@st.composite
def _pool_window(draw: Any, budget: str, dilated: bool) -> dict[str, Any]:
    """kernel_size, stride, padding, (dilation,) ceil_mode and a valid input_size.

    Per axis: kernel k, dilation d, pad p ≤ k // 2, stride s (None: s = k), a remainder
    0 ≤ r < s and the floor-mode output length OL; then L = (OL − 1)·s + d·(k − 1) + 1 + r − 2p.
    OL starts at the smallest value giving L ≥ L_min: 1, except when k = 2, p = 1, d ≥ 2, where
    L = d − 1 would put the first window (taps −1 and d − 1) entirely in the padding (an error:
    torch returns −inf there and writes out of bounds in its backward), so L_min = d. ceil_mode
    then adds the window that r > 0 leaves over, unless torch's rule drops it.
    """
    limit = LIMITS[budget]
    kernel = tuple(draw(st.integers(1, limit["kernel"]), label=f"k{axis}") for axis in "hw")
    dilation = (
        tuple(draw(st.integers(1, limit["dilation"]), label=f"d{axis}") for axis in "hw")
        if dilated
        else (1, 1)
    )
    if draw(st.booleans(), label="padding is one int"):
        pad = draw(st.integers(0, min(kernel) // 2), label="padding")
        pads, padding = (pad, pad), pad
    else:
        pads = tuple(
            draw(st.integers(0, k // 2), label=f"p{axis}")
            for k, axis in zip(kernel, "hw", strict=True)
        )
        padding = pads
    if draw(st.booleans(), label="stride=None"):
        steps, stride = kernel, None
    else:
        steps = tuple(draw(st.integers(1, limit["stride"]), label=f"s{axis}") for axis in "hw")
        stride = steps
    size = []
    for axis, k, s, d, p in zip("hw", kernel, steps, dilation, pads, strict=True):
        extent = d * (k - 1) + 1
        remainder = draw(st.integers(0, s - 1), label=f"remainder_{axis}")
        least_length = d if (k == 2 and p == 1) else 1
        shortfall = max(0, least_length - (extent + remainder - 2 * p))
        min_out = 1 + -(-shortfall // s)
        out = draw(st.integers(min_out, min_out + limit["extra_outputs"]), label=f"o{axis}")
        size.append((out - 1) * s + extent + remainder - 2 * p)
    params = {
        "input_size": tuple(size),
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "ceil_mode": draw(st.booleans(), label="ceil_mode"),
    }
    if dilated:
        params["dilation"] = dilation
    return params


@st.composite
def _batch_and_channels(draw: Any, budget: str) -> dict[str, Any]:
    """batch, channels, and whether x is batched (N, C, H, W) or 3-D (C, H, W) as torch allows."""
    limit = LIMITS[budget]
    return {
        "batch": draw(st.integers(1, limit["batch"]), label="batch"),
        "channels": draw(st.integers(1, limit["channels"]), label="channels"),
        "batched": draw(st.booleans(), label="batched"),
    }


@st.composite
def _max_pool_params(draw: Any, budget: str) -> dict[str, Any]:
    params: dict[str, Any] = draw(_batch_and_channels(budget), label="batch")
    params.update(draw(_pool_window(budget, dilated=True), label="window"))
    return params


@st.composite
def _avg_pool_params(draw: Any, budget: str) -> dict[str, Any]:
    params: dict[str, Any] = draw(_batch_and_channels(budget), label="batch")
    params.update(draw(_pool_window(budget, dilated=False), label="window"))
    params["count_include_pad"] = draw(st.booleans(), label="count_include_pad")
    override = st.none() | st.sampled_from((1, 2, 3, 5, -2))  # torch takes any non-zero int
    params["divisor_override"] = draw(override, label="divisor_override")
    return params


@st.composite
def _adaptive_pool_params(draw: Any, budget: str) -> dict[str, Any]:
    """Input and output lengths drawn independently: the output may exceed the input."""
    limit = ADAPTIVE_LIMITS[budget]
    params: dict[str, Any] = draw(_batch_and_channels(budget), label="batch")
    params["input_size"] = tuple(
        draw(st.integers(1, limit["length"]), label=f"{axis}") for axis in "HW"
    )
    form = draw(st.sampled_from(("int", "pair", "None for H", "None for W")), label="form")
    out = st.integers(1, limit["out"])
    if form == "int":
        params["output_size"] = draw(out, label="output_size")
    elif form == "pair":
        params["output_size"] = (draw(out, label="OH"), draw(out, label="OW"))
    elif form == "None for H":
        params["output_size"] = (None, draw(out, label="OW"))
    else:
        params["output_size"] = (draw(out, label="OH"), None)
    return params


@st.composite
def _global_pool_params(draw: Any, budget: str) -> dict[str, Any]:
    limit = ADAPTIVE_LIMITS[budget]
    params: dict[str, Any] = draw(_batch_and_channels(budget), label="batch")
    params["input_size"] = tuple(
        draw(st.integers(1, limit["length"]), label=f"{axis}") for axis in "HW"
    )
    return params


# --- layouts, fills, shared helpers -------------------------------------------------------------


def _x_shape(params: Params) -> tuple[int, ...]:
    spatial = tuple(params["input_size"])
    if params["batched"]:
        return (params["batch"], params["channels"], *spatial)
    return (params["channels"], *spatial)


def _layout(*keys: str) -> Any:
    def layout(params: Params) -> Layout:
        return {"x": _x_shape(params)}, {key: params[key] for key in keys}

    return layout


MAX_POOL_KEYS = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
AVG_POOL_KEYS = (
    "kernel_size",
    "stride",
    "padding",
    "ceil_mode",
    "count_include_pad",
    "divisor_override",
)


def _distinct_values(
    rng: np.random.Generator, shape: tuple[int, ...], params: Params
) -> NDArray[np.float64]:
    """Every (H, W) plane a random permutation of an evenly spaced grid on [−2, 2].

    Neighbours differ by 4/(H·W − 1) > 8e-3 (the small budget's planes are at most 22×22); the
    central difference step is h = u^(1/3)·2 ≈ 1e-5 in float64 and moves two pixels closer by
    at most 4h ≈ 4e-5 (±2h each, Richardson's 2h step included), so no finite difference
    crosses a tie; float32 rounding (≤ 1.2e-7 at 2) keeps them distinct too.
    """
    plane = shape[-2] * shape[-1]
    planes = math.prod(shape[:-2])
    grid = np.linspace(-2.0, 2.0, plane) if plane > 1 else np.array([0.5])
    return np.stack([rng.permutation(grid) for _ in range(planes)]).reshape(shape)


def _geometry(x: Any, kwargs: Mapping[str, Any]) -> PoolingGeometry:
    return pooling_geometry(
        x.shape[-2:],
        kwargs["kernel_size"],
        kwargs["stride"],
        kwargs["padding"],
        kwargs.get("dilation", 1),
        kwargs["ceil_mode"],
    )


def _pool_translation_step(sample: Sample) -> tuple[tuple[int, int], dict[str, Any]] | None:
    """The stride and the sample's arguments without padding, if the kernel fits x without it."""
    kwargs = {**sample.kwargs, "padding": 0}
    try:
        geometry = _geometry(sample.inputs["x"], kwargs)
    except ValueError:  # the kernel does not fit without padding
        return None
    return geometry.windows.stride, kwargs


def _windows_per_pixel(geometry: PoolingGeometry) -> int:
    """The most windows any input pixel belongs to (rows × columns, axes are independent)."""
    most = 1
    for axis in (0, 1):
        k, d = geometry.windows.kernel_size[axis], geometry.windows.dilation[axis]
        length = geometry.windows.input_size[axis]
        taps = [{start + i * d for i in range(k)} for start in geometry.window_starts(axis)]
        most *= max(sum(pixel in window for window in taps) for pixel in range(length))
    return most


# --- max_pool2d ---------------------------------------------------------------------------------


def _max_pool_roundings(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
    """out = x[a*] is a selection: exact, c = 0 (finite differences add one rounding of the
    perturbed input, |x[a*]|, through ``degree``). grad_x[a] = Σ of the upstream values of the
    m windows that chose a: m − 1 additions, m at most the windows containing a pixel."""
    return {"out": 0, "grad_x": _windows_per_pixel(_geometry(inputs["x"], kwargs)) - 1}


def _max_pool_out_magnitude(x: Any, **kwargs: Any) -> Any:
    """M = |x[a*]|, the selection made on the real (signed) x."""
    return np.abs(max_pool2d(x, **kwargs))


def _max_pool_grad_magnitudes(upstream: Any, x: Any, **kwargs: Any) -> dict[str, Any]:
    """M = Σ_{windows choosing a} |G|: the backward with |G|, the choice made on the real x."""
    return {"x": max_pool2d_backward(np.abs(upstream), x, **kwargs)}


def _torch_max_pool2d(x: Any, kernel_size: Any, **kwargs: Any) -> Any:
    import torch.nn.functional as F

    return F.max_pool2d(x, kernel_size, **kwargs)  # F.max_pool2d's defaults for the others


def _max_params(**overrides: Any) -> dict[str, Any]:
    params = {
        "batch": 2,
        "channels": 2,
        "batched": True,
        "input_size": (5, 6),
        "kernel_size": (3, 2),
        "stride": (1, 2),
        "padding": (1, 0),
        "dilation": 1,
        "ceil_mode": False,
    }
    return {**params, **overrides}


def _ties(shape: tuple[int, ...]) -> NDArray[np.float64]:
    """Small integers (0, 1, 2): every window holds ties."""
    return (np.arange(math.prod(shape), dtype=np.float64).reshape(shape) * 7 % 3).astype(float)


def _with_nans(shape: tuple[int, ...]) -> NDArray[np.float64]:
    """Distinct values with NaNs, several per window: torch picks the LAST NaN of a window."""
    values = np.linspace(-1.0, 1.0, math.prod(shape)).reshape(shape)
    values.reshape(-1)[::3] = np.nan
    return values


def _batch_axis_x(sample: Sample) -> tuple[str, ...]:
    """x's axis 0 indexes independent samples (images, or channels of an unbatched image)."""
    return ("x",)


MAX_POOL2D = OpSpec(
    name="max_pool2d",
    not_applicable={
        "adjoint": "nonlinear in x: which pixel a window takes depends on x",
    },
    translation_step=_pool_translation_step,
    per_sample=_batch_axis_x,
    family="pooling",
    kind="layer",
    summary="largest pixel per window (first max on ties, NaN wins); backward scatter-adds",
    inputs=("x",),
    forward=max_pool2d,
    backward=max_pool2d_backward,
    differentiable=("x",),
    definition=max_pool2d_direct,
    layout=_layout(*MAX_POOL_KEYS),
    params=lambda budget: _max_pool_params(budget),
    # A Formula, not Multilinear(fixed=("x",)): the output IS the selected x, and Multilinear
    # would evaluate the magnitude as max_pool2d(x) with x's sign (a negative bound).
    tolerance=Formula(
        _max_pool_roundings, _max_pool_out_magnitude, _max_pool_grad_magnitudes, degree=1
    ),
    fill={"x": _distinct_values},
    torch_name="torch.nn.functional.max_pool2d",
    torch_forward=_torch_max_pool2d,
    docs="docs/pooling.md",
    edge_cases=(
        EdgeCase(
            "ties: the first max in row-major order, overlapping windows",
            _max_params(kernel_size=3, stride=1, padding=1),
            arrays={"x": _ties((2, 2, 5, 6))},
            checks=("matches_torch",),
        ),
        EdgeCase(
            "all-equal windows with padding: the first input pixel, never padding",
            _max_params(kernel_size=(2, 3), stride=1, padding=1, ceil_mode=True),
            arrays={"x": np.full((2, 2, 5, 6), -0.75)},
            checks=("matches_torch",),
        ),
        EdgeCase(
            "NaN wins, the last NaN of a window",
            _max_params(kernel_size=3, stride=(1, 2), padding=1, ceil_mode=True),
            arrays={"x": _with_nans((2, 2, 5, 6))},
            checks=("matches_torch",),
        ),
        EdgeCase(
            "ties with dilation and ceil_mode",
            _max_params(
                input_size=(7, 6),
                kernel_size=(2, 3),
                dilation=(3, 2),
                stride=2,
                padding=1,
                ceil_mode=True,
            ),
            arrays={"x": _ties((2, 2, 7, 6))},
            checks=("matches_torch",),
        ),
        EdgeCase(
            "overlapping windows, stride < kernel",
            _max_params(input_size=(7, 8), kernel_size=(3, 4), stride=(1, 2), padding=(1, 2)),
        ),
        EdgeCase(
            "ceil_mode keeps an overhanging window",
            _max_params(input_size=(6, 7), kernel_size=(3, 2), stride=2, padding=0, ceil_mode=True),
        ),
        EdgeCase(
            "ceil_mode drops the window that would start in the padding",
            _max_params(input_size=(5, 5), kernel_size=2, stride=3, padding=1, ceil_mode=True),
        ),
        EdgeCase(
            "ceil_mode: kernel larger than the input",
            _max_params(input_size=(2, 2), kernel_size=3, stride=2, padding=0, ceil_mode=True),
        ),
        EdgeCase("stride=None means stride = kernel", _max_params(kernel_size=(2, 3), stride=None)),
        EdgeCase(
            "1x1 image, kernel 2, padding 1",
            _max_params(input_size=(1, 1), kernel_size=2, stride=1, padding=1),
        ),
        EdgeCase(
            "dilated window with one input pixel (k = 2, d = L)",
            _max_params(input_size=(3, 2), kernel_size=2, stride=1, padding=1, dilation=(3, 2)),
        ),
        EdgeCase("3-D input (C, H, W)", _max_params(batched=False, dilation=(2, 1))),
        EdgeCase(
            "257 taps, the maximum at the last: its index needs 9 bits",
            _max_params(
                batch=1, channels=1, input_size=(257, 1), kernel_size=(257, 1), stride=1, padding=0
            ),
            arrays={"x": np.arange(257.0).reshape(1, 1, 257, 1) / 257},
        ),
    ),
    error_cases=(
        ErrorCase(
            "x is 2-D",
            {"x": ArraySpec((5, 5)), "kernel_size": 2},
            ValueError,
            r"x must be 4-D \(N, C, H, W\) or 3-D \(C, H, W\), got x.shape=\(5, 5\)",
        ),
        ErrorCase(
            "x is 5-D",
            {"x": ArraySpec((1, 1, 1, 5, 5)), "kernel_size": 2},
            ValueError,
            r"x must be 4-D",
        ),
        ErrorCase(
            "integer x",
            {"x": ArraySpec((1, 1, 4, 4), "int64"), "kernel_size": 2},
            TypeError,
            r"x must have a floating dtype, got x.dtype=int64",
        ),
        ErrorCase(
            "empty W",
            {"x": ArraySpec((1, 1, 4, 0)), "kernel_size": 1},
            ValueError,
            r"x must have non-empty H and W",
        ),
        ErrorCase(
            "empty H",
            {"x": ArraySpec((1, 1, 0, 4)), "kernel_size": 1},
            ValueError,
            r"x must have non-empty H and W, got x.shape=\(1, 1, 0, 4\)",
        ),
        ErrorCase(
            "stride 0",
            {"x": ArraySpec((1, 1, 4, 4)), "kernel_size": 2, "stride": (1, 0)},
            ValueError,
            r"stride must be >= 1 .*stride=\(1, 0\)",
        ),
        ErrorCase(
            "dilation 0",
            {"x": ArraySpec((1, 1, 4, 4)), "kernel_size": 2, "dilation": 0},
            ValueError,
            r"dilation must be >= 1",
        ),
        ErrorCase(
            "negative padding",
            {"x": ArraySpec((1, 1, 4, 4)), "kernel_size": 2, "padding": (0, -1)},
            ValueError,
            r"padding must be >= 0 .*padding=\(0, -1\)",
        ),
        ErrorCase(
            "per-side padding (torch pools pad symmetrically)",
            {"x": ArraySpec((1, 1, 4, 4)), "kernel_size": 2, "padding": (1, 0, 1, 0)},
            ValueError,
            r"padding must be an int or a pair \(ph, pw\)",
        ),
        ErrorCase(
            "padding more than half the kernel",
            {"x": ArraySpec((1, 1, 4, 4)), "kernel_size": 3, "padding": 2},
            ValueError,
            r"pad should be at most half of the kernel size .*padding=\(2, 2\)",
        ),
        ErrorCase(
            "padding within half the dilated extent, more than half the kernel",
            {"x": ArraySpec((1, 1, 6, 6)), "kernel_size": 2, "padding": 2, "dilation": 3},
            ValueError,
            r"pad should be at most half of the kernel size",
        ),
        ErrorCase(
            "kernel larger than the padded input",
            {"x": ArraySpec((1, 1, 2, 5)), "kernel_size": (4, 1), "padding": (1, 0), "dilation": 2},
            ValueError,
            r"kernel larger than the padded input",
        ),
        ErrorCase(
            "a dilated window reading padding only",
            {
                "x": ArraySpec((1, 1, 1, 3)),
                "kernel_size": 2,
                "stride": 1,
                "padding": 1,
                "dilation": (2, 1),
            },
            ValueError,
            r"window 0 along H reads padding only",
        ),
        ErrorCase(
            "ceil_mode not a bool",
            {"x": ArraySpec((1, 1, 4, 4)), "kernel_size": 2, "ceil_mode": 1},
            TypeError,
            r"ceil_mode must be a bool, got ceil_mode=1",
        ),
        ErrorCase(
            "grad_out of the wrong shape (backward)",
            {"grad_out": ArraySpec((1, 1, 3, 3)), "x": ArraySpec((1, 1, 4, 4)), "kernel_size": 2},
            ValueError,
            r"grad_out.shape=\(1, 1, 3, 3\), but the output has shape \(1, 1, 2, 2\)",
        ),
        ErrorCase(
            "3-D grad_out for 4-D x (backward)",
            {"grad_out": ArraySpec((1, 2, 2)), "x": ArraySpec((1, 1, 4, 4)), "kernel_size": 2},
            ValueError,
            r"grad_out must be 4-D \(shaped like the output\), got grad_out.shape=\(1, 2, 2\)",
        ),
        ErrorCase(
            "float32 grad_out with float64 x (backward)",
            {
                "grad_out": ArraySpec((1, 1, 2, 2), "float32"),
                "x": ArraySpec((1, 1, 4, 4)),
                "kernel_size": 2,
            },
            TypeError,
            r"grad_out.dtype=float32 differs from x.dtype=float64",
        ),
    ),
)


# --- avg_pool2d ---------------------------------------------------------------------------------


def _avg_pool_roundings(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
    """out = (Σ_{KH·KW taps} x) / D: KH·KW − 1 additions (padding adds exact zeros) and the
    division, or 2 roundings when a kernel multiplies by a rounded 1/D: KH·KW + 1.
    grad_x[a] = Σ over the m windows containing a of G / D: each term ≤ 2 roundings, m − 1
    additions: m + 1."""
    geometry = _geometry(inputs["x"], kwargs)
    kh, kw = geometry.windows.kernel_size
    return {"out": kh * kw + 1, "grad_x": _windows_per_pixel(geometry) + 1}


def _avg_pool_out_magnitude(x: Any, **kwargs: Any) -> Any:
    """M = Σ|x| / |D| = |avg_pool2d(|x|)|: the op on absolute values, as for any linear op
    (the outer |·| for a negative divisor_override)."""
    return np.abs(avg_pool2d(np.abs(x), **kwargs))


def _avg_pool_grad_magnitudes(upstream: Any, x: Any, **kwargs: Any) -> dict[str, Any]:
    """M = Σ_{windows containing a} |G| / |D|."""
    return {"x": np.abs(avg_pool2d_backward(np.abs(upstream), x, **kwargs))}


def _torch_avg_pool2d(x: Any, kernel_size: Any, **kwargs: Any) -> Any:
    import torch.nn.functional as F

    return F.avg_pool2d(x, kernel_size, **kwargs)  # F.avg_pool2d's defaults for the others


def _avg_params(**overrides: Any) -> dict[str, Any]:
    params = {
        "batch": 2,
        "channels": 2,
        "batched": True,
        "input_size": (5, 6),
        "kernel_size": (3, 2),
        "stride": (2, 1),
        "padding": (1, 0),
        "ceil_mode": False,
        "count_include_pad": True,
        "divisor_override": None,
    }
    return {**params, **overrides}


def _avg_error(case_id: str, error: type[Exception], match: str, **arguments: Any) -> ErrorCase:
    return ErrorCase(
        case_id, {"x": ArraySpec((1, 2, 4, 4)), "kernel_size": 2, **arguments}, error, match
    )


AVG_POOL2D = OpSpec(
    name="avg_pool2d",
    translation_step=_pool_translation_step,
    per_sample=_batch_axis_x,
    family="pooling",
    kind="layer",
    summary="window sum over a divisor (count_include_pad, divisor_override, ceil_mode)",
    inputs=("x",),
    forward=avg_pool2d,
    backward=avg_pool2d_backward,
    differentiable=("x",),
    linear_in=("x",),
    polynomial_degree=1,
    definition=avg_pool2d_direct,
    layout=_layout(*AVG_POOL_KEYS),
    params=lambda budget: _avg_pool_params(budget),
    # Linear in x: the Multilinear bound γ_k·f(|x|), written as a Formula so that the magnitude
    # stays non-negative when divisor_override < 0 (f(|x|) is then negative).
    tolerance=Formula(
        _avg_pool_roundings, _avg_pool_out_magnitude, _avg_pool_grad_magnitudes, degree=1
    ),
    torch_name="torch.nn.functional.avg_pool2d",
    torch_forward=_torch_avg_pool2d,
    docs="docs/pooling.md",
    edge_cases=(
        EdgeCase(
            "ceil_mode overhang is never counted (count_include_pad=True)",
            _avg_params(input_size=(6, 7), kernel_size=3, stride=2, padding=1, ceil_mode=True),
        ),
        EdgeCase(
            "count_include_pad=False with padding and ceil_mode",
            _avg_params(
                input_size=(6, 7),
                kernel_size=(3, 4),
                stride=(2, 3),
                padding=(1, 2),
                ceil_mode=True,
                count_include_pad=False,
            ),
        ),
        EdgeCase(
            "ceil_mode: kernel larger than the input",
            _avg_params(input_size=(2, 2), kernel_size=3, stride=2, padding=0, ceil_mode=True),
        ),
        EdgeCase(
            "ceil_mode drops the window that would start in the padding",
            _avg_params(input_size=(5, 5), kernel_size=2, stride=3, padding=1, ceil_mode=True),
        ),
        EdgeCase(
            "divisor_override with padding",
            _avg_params(kernel_size=3, stride=1, padding=1, divisor_override=4),
        ),
        EdgeCase(
            "negative divisor_override",
            _avg_params(ceil_mode=True, divisor_override=-3),
        ),
        EdgeCase(
            "overlapping windows, stride < kernel",
            _avg_params(input_size=(7, 8), kernel_size=(3, 4), stride=(1, 2), padding=(1, 2)),
        ),
        EdgeCase("stride=None means stride = kernel", _avg_params(kernel_size=(2, 3), stride=None)),
        EdgeCase(
            "NaN propagates to every window that holds it",
            _avg_params(kernel_size=3, stride=1, padding=1),
            arrays={"x": _with_nans((2, 2, 5, 6))},
            checks=("matches_torch",),
        ),
        EdgeCase("3-D input (C, H, W)", _avg_params(batched=False, count_include_pad=False)),
    ),
    error_cases=(
        _avg_error("x is 2-D", ValueError, r"x must be 4-D", x=ArraySpec((4, 4))),
        _avg_error(
            "integer x",
            TypeError,
            r"x must have a floating dtype, got x.dtype=int32",
            x=ArraySpec((1, 2, 4, 4), "int32"),
        ),
        _avg_error("stride 0", ValueError, r"stride must be >= 1", stride=0),
        _avg_error("negative padding", ValueError, r"padding must be >= 0", padding=-1),
        _avg_error(
            "padding more than half the kernel",
            ValueError,
            r"pad should be at most half of the kernel size",
            kernel_size=(3, 1),
            padding=(1, 1),
        ),
        _avg_error(
            "kernel larger than the padded input",
            ValueError,
            r"kernel larger than the padded input",
            kernel_size=(6, 2),
            padding=(0, 1),
        ),
        _avg_error(
            "divisor_override 0",
            ValueError,
            r"divisor_override must be None or a non-zero int",
            divisor_override=0,
        ),
        _avg_error(
            "float divisor_override",
            TypeError,
            r"divisor_override must be None or an int, got 2.5",
            divisor_override=2.5,
        ),
        _avg_error(
            "count_include_pad not a bool",
            TypeError,
            r"count_include_pad must be a bool",
            count_include_pad=None,
        ),
        _avg_error(
            "grad_out of the wrong shape (backward)",
            ValueError,
            r"grad_out.shape=\(1, 2, 3, 3\), but the output has shape \(1, 2, 2, 2\)",
            grad_out=ArraySpec((1, 2, 3, 3)),
        ),
    ),
)


# --- adaptive_avg_pool2d ------------------------------------------------------------------------


def _adaptive_lengths(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
    """out = Σ_window x / count: the largest window's size − 1 additions, + 2 for the scaling
    (÷ count, or × a rounded 1/count). grad_x[a] = Σ over the windows containing a of G / count:
    m − 1 additions + 2 per term, m the most windows sharing a pixel."""
    x = inputs["x"]
    height, width = x.shape[-2:]
    output = kwargs["output_size"]
    pair = output if isinstance(output, tuple | list) else (output, output)
    oh, ow = (
        length if out is None else out for out, length in zip(pair, (height, width), strict=True)
    )
    rows, columns = adaptive_windows(height, oh), adaptive_windows(width, ow)
    # (an output size 0 has no windows: nothing is added, default 0)
    largest = max((b - a for a, b in rows), default=0) * max((b - a for a, b in columns), default=0)
    sharing = max(sum(a <= h < b for a, b in rows) for h in range(height)) * max(
        sum(a <= w < b for a, b in columns) for w in range(width)
    )
    return {"out": largest + 1, "grad_x": sharing + 1}


def _torch_adaptive_avg_pool2d(x: Any, output_size: Any) -> Any:
    import torch.nn.functional as F

    return F.adaptive_avg_pool2d(x, output_size)


def _adaptive_case(**overrides: Any) -> dict[str, Any]:
    params = {
        "batch": 2,
        "channels": 3,
        "batched": True,
        "input_size": (7, 5),
        "output_size": (3, 2),
    }
    return {**params, **overrides}


def _adaptive_error(
    case_id: str, error: type[Exception], match: str, **arguments: Any
) -> ErrorCase:
    return ErrorCase(
        case_id, {"x": ArraySpec((1, 2, 5, 4)), "output_size": 2, **arguments}, error, match
    )


ADAPTIVE_AVG_POOL2D = OpSpec(
    name="adaptive_avg_pool2d",
    not_applicable={
        "translation": "its window boundaries depend on the input size, so moving the "
        "input moves no window by a whole output",
    },
    per_sample=_batch_axis_x,
    family="pooling",
    kind="layer",
    summary="mean over windows [floor(i·L/out), ceil((i+1)·L/out)) for a given output size",
    inputs=("x",),
    forward=adaptive_avg_pool2d,
    backward=adaptive_avg_pool2d_backward,
    differentiable=("x",),
    linear_in=("x",),
    polynomial_degree=1,
    layout=_layout("output_size"),
    params=lambda budget: _adaptive_pool_params(budget),
    tolerance=Multilinear(_adaptive_lengths, degree=1),
    torch_name="torch.nn.functional.adaptive_avg_pool2d",
    torch_forward=_torch_adaptive_avg_pool2d,
    docs="docs/pooling.md",
    edge_cases=(
        EdgeCase("sizes not divisible: windows overlap", _adaptive_case()),
        EdgeCase(
            "output larger than the input",
            _adaptive_case(input_size=(3, 2), output_size=(5, 7)),
        ),
        EdgeCase("None keeps the input size", _adaptive_case(output_size=(None, 3))),
        EdgeCase("output 1 is the global mean", _adaptive_case(output_size=1)),
        EdgeCase(
            "output 0 along H: an empty output, a zero gradient (torch 2.13's forward agrees; "
            "its backward refuses an empty grad_output: checks the oracle runs on candidates "
            "are left out)",
            _adaptive_case(output_size=(0, 2)),
            checks=("directional_fd", "full_jacobian_fd"),
        ),
        EdgeCase("3-D input (C, H, W)", _adaptive_case(batched=False, output_size=4)),
    ),
    error_cases=(
        _adaptive_error("x is 2-D", ValueError, r"x must be 4-D", x=ArraySpec((5, 4))),
        _adaptive_error(
            "integer x", TypeError, r"x must have a floating dtype", x=ArraySpec((2, 5, 4), "int64")
        ),
        _adaptive_error(
            "negative output size",
            ValueError,
            r"output_size must be >= 0, got output_size=\(2, -1\)",
            output_size=(2, -1),
        ),
        _adaptive_error(
            "three output sizes",
            ValueError,
            r"output_size must be an int or a pair",
            output_size=(2, 2, 2),
        ),
        _adaptive_error(
            "float output size",
            TypeError,
            r"output_size must be an int or a pair of ints",
            output_size=2.0,
        ),
        _adaptive_error(
            "grad_out of the wrong shape (backward)",
            ValueError,
            r"grad_out.shape=\(1, 2, 2, 3\), but the output has shape \(1, 2, 2, 2\)",
            grad_out=ArraySpec((1, 2, 2, 3)),
        ),
    ),
)


# --- global_avg_pool2d --------------------------------------------------------------------------


def _global_lengths(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
    """out = Σ_{H·W} x / (H·W): H·W − 1 additions + 2 for the scaling; grad_x = G / (H·W): 2."""
    height, width = inputs["x"].shape[-2:]
    return {"out": height * width + 1, "grad_x": 2}


def _torch_global_avg_pool2d(x: Any) -> Any:
    return x.mean((-2, -1), keepdim=True)


def _global_case(**overrides: Any) -> dict[str, Any]:
    params = {"batch": 2, "channels": 3, "batched": True, "input_size": (4, 5)}
    return {**params, **overrides}


GLOBAL_AVG_POOL2D = OpSpec(
    name="global_avg_pool2d",
    not_applicable={
        "translation": "one window over the whole image: nothing to translate",
    },
    per_sample=_batch_axis_x,
    family="pooling",
    kind="layer",
    summary="mean over H and W, kept as 1x1 (adaptive_avg_pool2d(x, 1))",
    inputs=("x",),
    forward=global_avg_pool2d,
    backward=global_avg_pool2d_backward,
    differentiable=("x",),
    linear_in=("x",),
    polynomial_degree=1,
    layout=_layout(),
    params=lambda budget: _global_pool_params(budget),
    tolerance=Multilinear(_global_lengths, degree=1),
    torch_name="torch.Tensor.mean((-2, -1), keepdim=True)",
    torch_forward=_torch_global_avg_pool2d,
    docs="docs/pooling.md",
    edge_cases=(
        EdgeCase("1x1 image", _global_case(input_size=(1, 1))),
        EdgeCase("a wide image", _global_case(input_size=(3, 17))),
        EdgeCase("3-D input (C, H, W)", _global_case(batched=False)),
    ),
    error_cases=(
        ErrorCase("x is 2-D", {"x": ArraySpec((4, 4))}, ValueError, r"x must be 4-D"),
        ErrorCase(
            "integer x",
            {"x": ArraySpec((1, 2, 4, 4), "int64")},
            TypeError,
            r"x must have a floating dtype",
        ),
        ErrorCase(
            "grad_out of the wrong shape (backward)",
            {"grad_out": ArraySpec((1, 2, 4, 4)), "x": ArraySpec((1, 2, 4, 4))},
            ValueError,
            r"grad_out.shape=\(1, 2, 4, 4\), but the output has shape \(1, 2, 1, 1\)",
        ),
    ),
)

OPS: tuple[OpSpec, ...] = (MAX_POOL2D, AVG_POOL2D, ADAPTIVE_AVG_POOL2D, GLOBAL_AVG_POOL2D)
