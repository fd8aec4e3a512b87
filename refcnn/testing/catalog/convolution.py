"""Catalog entries of the convolution family: im2col (with col2im as its backward) and conv2d."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from refcnn.functional.conv import conv2d, conv2d_backward, conv2d_direct
from refcnn.geometry import (
    check_float_tensor,
    check_same_dtype,
    int_pair,
    normalize_padding,
    window_geometry,
)
from refcnn.im2col import col2im, im2col
from refcnn.testing import strategies
from refcnn.testing.opspec import ArraySpec, EdgeCase, ErrorCase, Layout, OpSpec, Sample
from refcnn.testing.tolerance import Multilinear

GEOMETRY_KEYS = ("kernel_size", "stride", "padding", "dilation")


def _window_kwargs(params: Mapping[str, Any]) -> dict[str, Any]:
    return {key: params[key] for key in GEOMETRY_KEYS}


def _torch_pad(x: Any, padding: Any, kernel_size: Any, dilation: Any, stride: Any) -> Any:
    """Apply refcnn's per-side padding with torch.nn.functional.pad (left, right, top, bottom)."""
    import torch.nn.functional as F

    top, bottom, left, right = normalize_padding(
        padding,
        int_pair(kernel_size, "kernel_size", minimum=1),
        int_pair(dilation, "dilation", minimum=1),
        int_pair(stride, "stride", minimum=1),
    )
    return F.pad(x, (left, right, top, bottom))


# Edge cases outside what the oracle asks of a candidate (an empty batch): only checks the
# oracle never runs on a candidate (oracle.checks_for), so a candidate is not judged on them.
REFCNN_ONLY = ("directional_fd", "full_jacobian_fd", "matches_definition")


# --- im2col -------------------------------------------------------------------------------------


def _im2col_layout(params: Mapping[str, Any]) -> Layout:
    shape = (params["batch"], params["channels"], *params["input_size"])
    return {"x": shape}, _window_kwargs(params)


def _im2col_backward(grad_out: Any, x: Any, **geometry: Any) -> Any:
    """The backward of im2col is col2im: every copy of a pixel sends its gradient home. col2im
    knows x's shape only, so the dtype of x (the gradient's) is checked here."""
    x = check_float_tensor(x, "x")
    gradient = col2im(grad_out, x.shape, **geometry)
    check_same_dtype("x", x, col=gradient)
    return gradient


def _im2col_lengths(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
    kh, kw = int_pair(kwargs["kernel_size"], "kernel_size", minimum=1)
    # im2col copies (no arithmetic); col2im adds at most KH·KW copies of one pixel.
    return {"out": 0, "grad_x": kh * kw}


def _torch_im2col(x: Any, kernel_size: Any, **kwargs: Any) -> Any:
    """F.unfold, with refcnn's padding forms applied first; a keyword not given keeps
    F.unfold's default (what the defaults check compares refcnn's with)."""
    import torch.nn.functional as F

    window = {k: v for k, v in kwargs.items() if k in ("stride", "dilation")}
    padded = _torch_pad(
        x, kwargs.get("padding", 0), kernel_size, window.get("dilation", 1), window.get("stride", 1)
    )
    blocks = F.unfold(padded, kernel_size, padding=0, **window)
    n, features, windows = blocks.shape
    return blocks.transpose(1, 2).reshape(n * windows, features)  # book layout: (N·L, C·KH·KW)


def _im2col_params(**overrides: Any) -> dict[str, Any]:
    params = {
        "batch": 2,
        "channels": 2,
        "input_size": (5, 4),
        "kernel_size": (3, 2),
        "stride": 1,
        "padding": 0,
        "dilation": 1,
    }
    return {**params, **overrides}


IM2COL = OpSpec(
    name="im2col",
    not_applicable={
        "batch_slices": "rows run over (n, oh, ow): the output's axis 0 is not the batch",
        "translation": "its output rows are windows, not an image grid; conv2d's "
        "translation check reads the same windows",
    },
    family="convolution",
    kind="transform",
    summary="unroll sliding windows into rows (N·OH·OW, C·KH·KW); backward is col2im",
    inputs=("x",),
    forward=im2col,
    backward=_im2col_backward,
    upstream_name="col",
    differentiable=("x",),
    linear_in=("x",),
    polynomial_degree=1,
    layout=_im2col_layout,
    params=lambda budget: strategies.im2col_params(budget),
    tolerance=Multilinear(_im2col_lengths, degree=1),
    torch_name="torch.nn.functional.unfold (transposed to the book layout)",
    torch_forward=_torch_im2col,
    docs="docs/conv2d.md",
    edge_cases=(
        EdgeCase("overlapping windows, stride 1", _im2col_params(kernel_size=3, padding=1)),
        EdgeCase(
            "stride larger than kernel",
            _im2col_params(input_size=(7, 9), stride=(3, 4), kernel_size=(2, 1)),
        ),
        EdgeCase("1x1 image, 1x1 kernel", _im2col_params(input_size=(1, 1), kernel_size=1)),
        EdgeCase(
            "dilation with per-side padding",
            _im2col_params(
                input_size=(4, 6), kernel_size=(2, 3), dilation=(3, 2), padding=(1, 0, 2, 1)
            ),
        ),
        EdgeCase("'same' with an even kernel", _im2col_params(kernel_size=(2, 4), padding="same")),
    ),
    error_cases=(
        ErrorCase(
            "x is 3-D",
            {"x": ArraySpec((2, 5, 5)), "kernel_size": 3},
            ValueError,
            r"x must be 4-D \(N, C, H, W\), got x.shape=\(2, 5, 5\)",
        ),
        ErrorCase(
            "grad_out (col) 1-D (backward)",
            {"x": ArraySpec((1, 1, 5, 5)), "kernel_size": 3, "grad_out": ArraySpec((9,))},
            ValueError,
            r"col must be 2-D \(N·OH·OW, C·KH·KW\), got col.shape=\(9,\)",
        ),
        ErrorCase(
            "integer x",
            {"x": ArraySpec((1, 1, 5, 5), "int64"), "kernel_size": 3},
            TypeError,
            r"x must have a floating dtype, got x.dtype=int64",
        ),
        ErrorCase(
            "kernel larger than padded input",
            {"x": ArraySpec((1, 1, 2, 5)), "kernel_size": (4, 1), "padding": (0, 1)},
            ValueError,
            r"kernel larger than the padded input",
        ),
        ErrorCase(
            "stride 0",
            {"x": ArraySpec((1, 1, 5, 5)), "kernel_size": 3, "stride": (1, 0)},
            ValueError,
            r"stride must be >= 1 .*stride=\(1, 0\)",
        ),
        ErrorCase(
            "negative padding",
            {"x": ArraySpec((1, 1, 5, 5)), "kernel_size": 3, "padding": (0, 0, -1, 0)},
            ValueError,
            r"padding must be non-negative",
        ),
        ErrorCase(
            "three padding values",
            {"x": ArraySpec((1, 1, 5, 5)), "kernel_size": 3, "padding": (1, 1, 1)},
            ValueError,
            r"got 3 values",
        ),
        ErrorCase(
            "float kernel size",
            {"x": ArraySpec((1, 1, 5, 5)), "kernel_size": 2.5},
            TypeError,
            r"kernel_size must be an int or a pair",
        ),
    ),
)


# --- conv2d -------------------------------------------------------------------------------------


def _conv2d_translation_step(sample: Sample) -> tuple[tuple[int, int], dict[str, Any]] | None:
    """The stride and the sample's arguments without padding, if the kernel fits x without it."""
    x, weight, kwargs = sample.inputs["x"], sample.inputs["weight"], sample.kwargs
    stride = int_pair(kwargs["stride"], "stride", minimum=1)
    dilation = int_pair(kwargs["dilation"], "dilation", minimum=1)
    extent = [d * (k - 1) + 1 for k, d in zip(weight.shape[2:], dilation, strict=True)]
    if any(size < e for size, e in zip(x.shape[2:], extent, strict=True)):
        return None  # the kernel does not fit x without padding
    return stride, {**kwargs, "padding": 0}


def _conv2d_layout(params: Mapping[str, Any]) -> Layout:
    groups, c_in, c_out = params["groups"], params["in_channels"], params["out_channels"]
    kh, kw = int_pair(params["kernel_size"], "kernel_size", minimum=1)
    shapes: dict[str, tuple[int, ...] | None] = {
        "x": (params["batch"], c_in, *params["input_size"]),
        "weight": (c_out, c_in // groups, kh, kw),
        "bias": (c_out,) if params["bias"] else None,
    }
    kwargs = {key: params[key] for key in ("stride", "padding", "dilation")}
    return shapes, {**kwargs, "groups": groups}  # the kernel size comes from weight.shape


def _conv2d_lengths(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
    """Products summed per element: see the derivation in refcnn.functional.conv."""
    x, weight, bias = inputs["x"], inputs["weight"], inputs["bias"]
    c_out, c_group, kh, kw = weight.shape
    geometry = window_geometry(
        x.shape[2:], (kh, kw), kwargs["stride"], kwargs["padding"], kwargs["dilation"]
    )
    windows = x.shape[0] * geometry.output_size[0] * geometry.output_size[1]
    return {
        "out": c_group * kh * kw + (bias is not None),  # Σ_{c,i,j} W·x (+ bias)
        "grad_x": (c_out // kwargs["groups"]) * kh * kw,  # Σ over output channels and taps
        "grad_weight": windows,  # Σ over n, p, q
        "grad_bias": windows,
    }


def _torch_conv2d(x: Any, weight: Any, bias: Any, **kwargs: Any) -> Any:
    """torch's own padding for int, pair, 'same' and 'valid' (so its convention is what is
    tested); per-side padding, which torch's conv does not take, through F.pad. A keyword not
    given keeps F.conv2d's default (what the defaults check compares refcnn's with)."""
    import torch.nn.functional as F

    padding = kwargs.get("padding")
    if isinstance(padding, tuple) and len(padding) == 4:
        window = (kwargs.get("dilation", 1), kwargs.get("stride", 1))
        x = _torch_pad(x, padding, tuple(weight.shape[2:]), *window)
        kwargs = {**kwargs, "padding": 0}
    return F.conv2d(x, weight, bias, **kwargs)


def _conv_params(**overrides: Any) -> dict[str, Any]:
    params = {
        "batch": 2,
        "in_channels": 2,
        "out_channels": 3,
        "groups": 1,
        "bias": True,
        "input_size": (5, 4),
        "kernel_size": (3, 2),
        "stride": 1,
        "padding": 0,
        "dilation": 1,
    }
    return {**params, **overrides}


def _conv_error(case_id: str, error: type[Exception], match: str, **arguments: Any) -> ErrorCase:
    defaults: dict[str, Any] = {"x": ArraySpec((2, 4, 5, 5)), "weight": ArraySpec((6, 4, 3, 3))}
    return ErrorCase(case_id, {**defaults, **arguments}, error, match)


CONV2D = OpSpec(
    name="conv2d",
    channel_axes=lambda sample: {"x": 1, "weight": 1} if sample.kwargs["groups"] == 1 else None,
    translation_step=_conv2d_translation_step,
    per_sample=lambda sample: ("x",),
    family="convolution",
    kind="layer",
    summary="2-D cross-correlation with stride, padding, dilation, groups and optional bias",
    inputs=("x", "weight", "bias"),
    forward=conv2d,
    backward=conv2d_backward,
    differentiable=("x", "weight", "bias"),
    linear_in=("x", "weight"),
    polynomial_degree=2,
    definition=conv2d_direct,
    layout=_conv2d_layout,
    params=lambda budget: strategies.conv2d_params(budget),
    tolerance=Multilinear(_conv2d_lengths, degree=2),
    torch_name="torch.nn.functional.conv2d",
    torch_forward=_torch_conv2d,
    docs="docs/conv2d.md",
    edge_cases=(
        EdgeCase(
            "1x1 image, 1x1 kernel, batch 1",
            _conv_params(batch=1, input_size=(1, 1), kernel_size=1),
        ),
        EdgeCase(
            "kernel fills the padded input",
            _conv_params(input_size=(2, 3), kernel_size=(4, 3), padding=(1, 1, 0, 0)),
        ),
        EdgeCase(
            "stride larger than kernel",
            _conv_params(input_size=(8, 9), kernel_size=(2, 1), stride=(3, 4)),
        ),
        EdgeCase(
            "stride does not divide the span",
            _conv_params(batch=1, input_size=(7, 4), kernel_size=(3, 2), stride=(2, 3)),
        ),
        EdgeCase(
            "'same', even kernel: extra pad bottom/right",
            _conv_params(kernel_size=(2, 4), padding="same"),
        ),
        EdgeCase(
            "'same', dilated even kernel",
            _conv_params(kernel_size=(2, 2), dilation=(3, 1), padding="same", input_size=(4, 3)),
        ),
        EdgeCase(
            "depthwise (groups = channels)", _conv_params(in_channels=3, out_channels=3, groups=3)
        ),
        EdgeCase("asymmetric per-side padding", _conv_params(padding=(0, 2, 1, 0))),
        EdgeCase(  # refcnn's own checks only: outside what the oracle asks of a candidate
            "an empty batch (N = 0): empty output, zero weight gradient",
            _conv_params(batch=0),
            checks=REFCNN_ONLY,
        ),
        EdgeCase(
            "no bias, dilation and stride",
            _conv_params(bias=False, input_size=(9, 8), dilation=(2, 3), stride=(2, 1)),
        ),
    ),
    error_cases=(
        _conv_error(
            "x is 3-D", ValueError, r"x must be 4-D \(N, C_in, H, W\)", x=ArraySpec((4, 5, 5))
        ),
        _conv_error(
            "x is not an array", TypeError, r"x must be a numpy.ndarray, got list", x=[[1.0]]
        ),
        _conv_error(
            "integer x",
            TypeError,
            r"x must have a floating dtype",
            x=ArraySpec((2, 4, 5, 5), "int32"),
        ),
        _conv_error(
            "float32 x with float64 weight",
            TypeError,
            r"weight.dtype=float64 differs from x.dtype=float32",
            x=ArraySpec((2, 4, 5, 5), "float32"),
        ),
        _conv_error(
            "channel mismatch",
            ValueError,
            r"channel mismatch: .*C_in=3.* expects C_in=4",
            x=ArraySpec((2, 3, 5, 5)),
        ),
        _conv_error(
            "C_out not divisible by groups",
            ValueError,
            r"C_out=6\) must be divisible by groups=4",
            x=ArraySpec((2, 4, 5, 5)),
            weight=ArraySpec((6, 1, 3, 3)),
            groups=4,
        ),
        _conv_error("groups 0", ValueError, r"groups must be a positive int", groups=0),
        _conv_error(
            "groups True (a bool is not an int here)",
            ValueError,
            r"groups must be a positive int, got groups=True",
            groups=True,
        ),
        _conv_error(
            "3-D weight",
            ValueError,
            r"weight must be 4-D \(C_out, C_in/groups, KH, KW\), got weight.shape=\(6, 4, 3\)",
            weight=ArraySpec((6, 4, 3)),
        ),
        _conv_error(
            "2-D bias",
            ValueError,
            r"bias must be 1-D \(C_out,\), got bias.shape=\(6, 1\)",
            bias=ArraySpec((6, 1)),
        ),
        _conv_error(
            "float32 bias with float64 x",
            TypeError,
            r"bias.dtype=float32 differs from x.dtype=float64",
            bias=ArraySpec((6,), "float32"),
        ),
        _conv_error(
            "3-D grad_out (backward)",
            ValueError,
            r"grad_out must be 4-D \(N, C_out, OH, OW\), got grad_out.shape=\(6, 3, 3\)",
            grad_out=ArraySpec((6, 3, 3)),
        ),
        _conv_error(
            "bias of the wrong length", ValueError, r"bias.shape=\(5,\)", bias=ArraySpec((5,))
        ),
        _conv_error("stride 0", ValueError, r"stride must be >= 1", stride=0),
        _conv_error("dilation 0", ValueError, r"dilation must be >= 1", dilation=(0, 1)),
        _conv_error("negative padding", ValueError, r"padding must be non-negative", padding=-1),
        _conv_error("unknown padding string", ValueError, r"'same' or 'valid'", padding="full"),
        _conv_error(
            "'same' with stride 2",
            ValueError,
            r"padding='same' requires stride 1",
            padding="same",
            stride=2,
        ),
        _conv_error(
            "kernel larger than padded input",
            ValueError,
            r"kernel larger than the padded input",
            x=ArraySpec((2, 4, 2, 2)),
        ),
        _conv_error(
            "dilated kernel larger than input",
            ValueError,
            r"dilated kernel extent \(5, 5\)",
            dilation=2,
            x=ArraySpec((2, 4, 4, 9)),
        ),
        _conv_error(
            "grad_out of the wrong shape (backward)",
            ValueError,
            r"grad_out.shape=\(2, 6, 2, 2\), but conv2d's output has shape \(2, 6, 3, 3\)",
            grad_out=ArraySpec((2, 6, 2, 2)),
        ),
    ),
)

OPS = (IM2COL, CONV2D)
