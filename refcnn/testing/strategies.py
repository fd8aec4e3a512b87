"""Hypothesis strategies for sliding-window geometry, built constructively.

Nothing here filters. A window configuration is drawn in the order that makes every draw valid:
kernel, dilation, padding (its representation too), stride, the output size and a remainder
``0 ≤ r < s`` of rows the last window does not reach; the input size is then DERIVED::

    H = (OH − 1)·s + d·(k − 1) + 1 + r − (pad_top + pad_bottom)

The smallest OH is chosen so that H ≥ 1, so large pads, 1×1 images and strides that do not divide
the span all arise without a single rejected example. Each axis is drawn independently, so
non-square inputs, rectangular kernels and per-axis strides are the default, not a special case.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from refcnn.geometry import int_pair, normalize_padding

# Size limits per budget: "small" for properties and conformance, "tiny" for full Jacobians.
LIMITS: dict[str, dict[str, int]] = {
    "small": {
        "batch": 3,
        "channels": 3,
        "groups": 3,
        "kernel": 4,
        "stride": 3,
        "dilation": 2,
        "pad": 2,
        "extra_outputs": 3,
    },
    "tiny": {
        "batch": 2,
        "channels": 2,
        "groups": 2,
        "kernel": 3,
        "stride": 2,
        "dilation": 2,
        "pad": 1,
        "extra_outputs": 1,
    },
}

PADDING_FORMS = ("int", "pair", "per_side", "same", "valid")


@st.composite
def padding_argument(draw: Any, max_pad: int) -> Any:
    """A padding argument in any of the accepted forms (the form itself is drawn)."""
    form = draw(st.sampled_from(PADDING_FORMS), label="padding form")
    pad = st.integers(0, max_pad)
    if form == "int":
        return draw(pad, label="padding")
    if form == "pair":
        return (draw(pad, label="pad_h"), draw(pad, label="pad_w"))
    if form == "per_side":
        return tuple(draw(pad, label=side) for side in ("top", "bottom", "left", "right"))
    return form


def _draw_axis(draw: Any, letter: str, largest: int, axis: str) -> int:
    value: int = draw(st.integers(1, largest), label=f"{letter}{axis}")
    return value


@st.composite
def window_params(
    draw: Any,
    budget: str = "small",
    *,
    square_stride: bool = False,
    int_padding: bool = False,
    dilation: bool = True,
) -> dict[str, Any]:
    """kernel_size, stride, padding, dilation and a valid (H, W) for them, drawn constructively.

    The keyword-only restrictions narrow the geometry to what an API with fewer knobs can
    express (the book's ``Convolution(W, b, stride, pad)``), still without filtering:
    ``square_stride`` draws one int stride for both axes, ``int_padding`` one int pad for all
    four sides, ``dilation=False`` fixes dilation at 1. The defaults draw exactly as before.
    """
    limit = LIMITS[budget]
    kernel = (
        _draw_axis(draw, "k", limit["kernel"], "h"),
        _draw_axis(draw, "k", limit["kernel"], "w"),
    )
    dilations: Any = (
        (
            _draw_axis(draw, "d", limit["dilation"], "h"),
            _draw_axis(draw, "d", limit["dilation"], "w"),
        )
        if dilation
        else 1
    )
    if int_padding:
        padding = draw(st.integers(0, limit["pad"]), label="padding")
    else:
        padding = draw(padding_argument(limit["pad"]), label="padding")
    stride: Any
    if padding == "same":
        stride = (1, 1)  # torch allows 'same' with stride 1 only
    elif square_stride:
        stride = draw(st.integers(1, limit["stride"]), label="stride")
    else:
        stride = (
            _draw_axis(draw, "s", limit["stride"], "h"),
            _draw_axis(draw, "s", limit["stride"], "w"),
        )
    dilation_pair = int_pair(dilations, "dilation", minimum=1)
    stride_pair = int_pair(stride, "stride", minimum=1)
    top, bottom, left, right = normalize_padding(padding, kernel, dilation_pair, stride_pair)
    size = []
    pad_totals = (top + bottom, left + right)
    for axis, k, s, d, pad_total in zip(
        "hw", kernel, stride_pair, dilation_pair, pad_totals, strict=True
    ):
        extent = d * (k - 1) + 1
        remainder = draw(st.integers(0, s - 1), label=f"remainder_{axis}")
        # smallest output length with H >= 1, i.e. (OH - 1)·s >= pad_total - extent - r + 1
        shortfall = max(0, pad_total - extent - remainder + 1)
        min_out = 1 + -(-shortfall // s)
        out = draw(st.integers(min_out, min_out + limit["extra_outputs"]), label=f"o{axis}")
        size.append((out - 1) * s + extent + remainder - pad_total)
    return {
        "input_size": tuple(size),
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "dilation": dilations,
    }


@st.composite
def conv2d_params(
    draw: Any,
    budget: str = "small",
    *,
    square_stride: bool = False,
    int_padding: bool = False,
    dilation: bool = True,
    groups: bool = True,
    bias: bool | None = None,
) -> dict[str, Any]:
    """Batch, channels, groups and bias on top of :func:`window_params`.

    Restrictions (keyword-only; the defaults draw exactly as before): those of
    :func:`window_params`; ``groups=False`` fixes groups at 1; ``bias`` True or False fixes
    whether there is a bias (None draws it).
    """
    limit = LIMITS[budget]
    window = window_params(
        budget, square_stride=square_stride, int_padding=int_padding, dilation=dilation
    )
    params: dict[str, Any] = draw(window, label="window")
    group_count = draw(st.integers(1, limit["groups"]), label="groups") if groups else 1
    params.update(
        batch=draw(st.integers(1, limit["batch"]), label="batch"),
        groups=group_count,
        in_channels=group_count * draw(st.integers(1, limit["channels"]), label="C_in per group"),
        out_channels=group_count * draw(st.integers(1, limit["channels"]), label="C_out per group"),
        bias=draw(st.booleans(), label="bias") if bias is None else bias,
    )
    return params


@st.composite
def im2col_params(
    draw: Any,
    budget: str = "small",
    *,
    square_stride: bool = False,
    int_padding: bool = False,
    dilation: bool = True,
) -> dict[str, Any]:
    """Batch and channels on top of :func:`window_params` (with its restrictions)."""
    limit = LIMITS[budget]
    window = window_params(
        budget, square_stride=square_stride, int_padding=int_padding, dilation=dilation
    )
    params: dict[str, Any] = draw(window, label="window")
    params.update(
        batch=draw(st.integers(1, limit["batch"]), label="batch"),
        channels=draw(st.integers(1, limit["channels"]), label="channels"),
    )
    return params


def seeds() -> st.SearchStrategy[int]:
    return st.integers(0, 2**32 - 1)


@st.composite
def samples(draw: Any, spec: Any, budget: str = "small", dtype: str = "float64") -> Any:
    """A :class:`~refcnn.testing.opspec.Sample` of ``spec``: drawn params and seed, then arrays."""
    params = draw(spec.params(budget), label=f"{spec.name} params")
    seed = draw(seeds(), label="seed")
    return spec.sample(params, seed, dtype)
