"""Catalog entries of the linear family (linear, flatten, reshape) and of dropout."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from hypothesis import strategies as st
from numpy.typing import NDArray

from refcnn.functional.dropout import dropout, dropout_backward
from refcnn.functional.linear import (
    flatten,
    flatten_backward,
    linear,
    linear_backward,
    linear_direct,
    reshape,
    reshape_backward,
)
from refcnn.geometry import normalize_dim
from refcnn.testing.opspec import (
    ArraySpec,
    EdgeCase,
    ErrorCase,
    Layout,
    OpSpec,
    Params,
    in_backward_too,
)
from refcnn.testing.tolerance import Multilinear

# (largest rank, largest size per dimension) per budget; "tiny" keeps full Jacobians cheap.
LIMITS = {"small": (4, 4), "tiny": (3, 3)}


@st.composite
def _shapes(draw: Any, budget: str) -> tuple[int, ...]:
    """An array shape of rank 1–4 with small sizes."""
    max_rank, max_size = LIMITS[budget]
    rank = draw(st.integers(1, max_rank), label="rank")
    return tuple(draw(st.integers(1, max_size), label=f"size {i}") for i in range(rank))


def _exact(*gradients: str) -> Multilinear:
    """Bounds of an op that moves values without arithmetic: 0 roundings, exact equality."""
    return Multilinear(lambda inputs, kwargs: dict.fromkeys(("out", *gradients), 0), degree=1)


# --- linear -------------------------------------------------------------------------------------

LINEAR_LIMITS = {
    "small": {"leading": 3, "size": 3, "features": 5},
    "tiny": {"leading": 2, "size": 2, "features": 3},
}


@st.composite
def _linear_params(draw: Any, budget: str) -> dict[str, Any]:
    """0–3 leading dimensions (x of rank 1–4), in/out features, with or without bias."""
    limit = LINEAR_LIMITS[budget]
    leading_rank = draw(st.integers(0, limit["leading"]), label="leading rank")
    return {
        "leading": tuple(
            draw(st.integers(1, limit["size"]), label=f"leading size {i}")
            for i in range(leading_rank)
        ),
        "in_features": draw(st.integers(1, limit["features"]), label="in_features"),
        "out_features": draw(st.integers(1, limit["features"]), label="out_features"),
        "bias": draw(st.booleans(), label="bias"),
    }


def _linear_layout(params: Params) -> Layout:
    out_f, in_f = params["out_features"], params["in_features"]
    shapes: dict[str, tuple[int, ...] | None] = {
        "x": (*params["leading"], in_f),
        "weight": (out_f, in_f),
        "bias": (out_f,) if params["bias"] else None,
    }
    return shapes, {}


def _linear_lengths(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
    """Products summed per element: y = Σ_i x·W (+ b), dx = Σ_o g·W, dW and db = Σ over rows."""
    x, weight, bias = inputs["x"], inputs["weight"], inputs["bias"]
    out_features, in_features = weight.shape
    rows = math.prod(x.shape[:-1])  # N: the vectors the layer was applied to (1 for 1-D x)
    return {
        "out": in_features + (bias is not None),
        "grad_x": out_features,
        "grad_weight": rows,
        "grad_bias": rows,
    }


def _torch_linear(x: Any, weight: Any, bias: Any) -> Any:
    import torch.nn.functional as F

    return F.linear(x, weight, bias)


def _linear_case(**overrides: Any) -> dict[str, Any]:
    params = {"leading": (3,), "in_features": 4, "out_features": 2, "bias": True}
    return {**params, **overrides}


def _linear_error(case_id: str, error: type[Exception], match: str, **arguments: Any) -> ErrorCase:
    defaults: dict[str, Any] = {"x": ArraySpec((5, 4)), "weight": ArraySpec((3, 4))}
    return ErrorCase(case_id, {**defaults, **arguments}, error, match)


LINEAR = OpSpec(
    name="linear",
    channel_axes=lambda sample: {"x": -1, "weight": 1},  # the in_features being summed
    per_sample=lambda sample: ("x",) if sample.inputs["x"].ndim >= 2 else (),
    family="linear",
    kind="layer",
    summary="fully connected layer y = x·Wᵀ + b, weight (out, in), x (..., in)",
    inputs=("x", "weight", "bias"),
    forward=linear,
    backward=linear_backward,
    differentiable=("x", "weight", "bias"),
    linear_in=("x", "weight"),
    polynomial_degree=2,
    definition=linear_direct,
    layout=_linear_layout,
    params=lambda budget: _linear_params(budget),
    tolerance=Multilinear(_linear_lengths, degree=2),
    torch_name="torch.nn.functional.linear",
    torch_forward=_torch_linear,
    docs="docs/linear.md",
    edge_cases=(
        EdgeCase("a single vector (1-D x)", _linear_case(leading=())),
        EdgeCase("4-D x (3 leading dims)", _linear_case(leading=(2, 3, 2))),
        EdgeCase("1 in, 1 out feature", _linear_case(in_features=1, out_features=1)),
        EdgeCase("no bias", _linear_case(leading=(4,), bias=False)),
        EdgeCase("one row, wide layer", _linear_case(leading=(1,), in_features=7, out_features=6)),
    ),
    error_cases=(
        _linear_error(
            "in_features mismatch",
            ValueError,
            r"in_features mismatch: x.shape=\(5, 3\) .* weight.shape=\(3, 4\) expects "
            r"in_features=4",
            x=ArraySpec((5, 3)),
        ),
        _linear_error(
            "bias of the wrong length",
            ValueError,
            r"bias.shape=\(4,\), but weight.shape=\(3, 4\) has out_features=3",
            bias=ArraySpec((4,)),
        ),
        _linear_error(
            "2-D bias", ValueError, r"bias must be 1-D \(out_features,\)", bias=ArraySpec((1, 3))
        ),
        _linear_error(
            "1-D weight",
            ValueError,
            r"weight must be 2-D \(out_features, in_features\), got weight.shape=\(4,\)",
            weight=ArraySpec((4,)),
        ),
        _linear_error(
            "0-d x", ValueError, r"x must be at least 1-D .*x.shape=\(\)", x=ArraySpec(())
        ),
        _linear_error(
            "float32 x with float64 weight",
            TypeError,
            r"weight.dtype=float64 differs from x.dtype=float32",
            x=ArraySpec((5, 4), "float32"),
        ),
        _linear_error(
            "integer x", TypeError, r"x must have a floating dtype", x=ArraySpec((5, 4), "int64")
        ),
        _linear_error(
            "float32 bias with float64 x",
            TypeError,
            r"bias.dtype=float32 differs from x.dtype=float64",
            bias=ArraySpec((3,), "float32"),
        ),
        _linear_error("x is a list", TypeError, r"x must be a numpy.ndarray, got list", x=[[1.0]]),
        _linear_error(
            "grad_out of the wrong shape (backward)",
            ValueError,
            r"grad_out.shape=\(5, 4\), but linear's output has shape \(5, 3\)",
            grad_out=ArraySpec((5, 4)),
        ),
    ),
)


# --- flatten ------------------------------------------------------------------------------------


@st.composite
def _flatten_params(draw: Any, budget: str) -> dict[str, Any]:
    """A shape, then start ≤ end within its rank, each written negative half the time."""
    shape = draw(_shapes(budget), label="shape")
    rank = len(shape)
    start = draw(st.integers(0, rank - 1), label="start")
    end = draw(st.integers(start, rank - 1), label="end")
    return {
        "shape": shape,
        "start_dim": start - rank if draw(st.booleans(), label="negative start") else start,
        "end_dim": end - rank if draw(st.booleans(), label="negative end") else end,
    }


def _flatten_layout(params: Params) -> Layout:
    return {"x": tuple(params["shape"])}, {
        "start_dim": params["start_dim"],
        "end_dim": params["end_dim"],
    }


def _torch_flatten(x: Any, **kwargs: Any) -> Any:
    """nn.Flatten, whose defaults (start_dim=1, end_dim=-1) refcnn's flatten has."""
    import torch

    return torch.nn.Flatten(**kwargs)(x)


def _flatten_error(case_id: str, error: type[Exception], match: str, **arguments: Any) -> ErrorCase:
    return ErrorCase(case_id, {"x": ArraySpec((2, 3, 4)), **arguments}, error, match)


FLATTEN = OpSpec(
    name="flatten",
    per_sample=lambda sample: (
        ("x",)
        if sample.inputs["x"].ndim >= 2
        and normalize_dim(sample.kwargs["start_dim"], sample.inputs["x"].ndim) >= 1
        else ()
    ),
    family="linear",
    kind="transform",
    summary="merge dims start_dim..end_dim into one (nn.Flatten's default start_dim=1)",
    inputs=("x",),
    forward=flatten,
    backward=flatten_backward,
    differentiable=("x",),
    linear_in=("x",),
    polynomial_degree=1,
    layout=_flatten_layout,
    params=lambda budget: _flatten_params(budget),
    tolerance=_exact("grad_x"),
    torch_name="torch.flatten",
    torch_forward=_torch_flatten,
    docs="docs/linear.md",
    edge_cases=(
        EdgeCase("NCHW to (N, C·H·W)", {"shape": (2, 3, 2, 2), "start_dim": 1, "end_dim": -1}),
        EdgeCase(  # torch's values only: x ± h·v of a 0-d array is a scalar, not an array
            "0-d x: a 1-element vector",
            {"shape": (), "start_dim": 0, "end_dim": -1},
            checks=("matches_torch",),
        ),
        EdgeCase("everything (0, -1)", {"shape": (2, 3, 4), "start_dim": 0, "end_dim": -1}),
        EdgeCase("start = end: no change", {"shape": (2, 3, 4), "start_dim": 1, "end_dim": 1}),
        EdgeCase("middle dims, negative", {"shape": (2, 3, 4, 2), "start_dim": -3, "end_dim": -2}),
    ),
    error_cases=(
        _flatten_error(
            "start_dim after end_dim",
            ValueError,
            r"start_dim cannot come after end_dim, got start_dim=2, end_dim=1",
            start_dim=2,
            end_dim=1,
        ),
        _flatten_error(
            "end_dim out of range",
            ValueError,
            r"end_dim out of range \(expected to be in range of \[-3, 2\], but got end_dim=3\)",
            start_dim=0,
            end_dim=3,
        ),
        _flatten_error(
            "start_dim out of range (1-D x, default start_dim=1)",
            ValueError,
            r"start_dim out of range .*\[-1, 0\], but got start_dim=1",
            x=ArraySpec((5,)),
        ),
        _flatten_error("float start_dim", TypeError, r"start_dim must be an int", start_dim=1.0),
        _flatten_error(
            "integer x", TypeError, r"x must have a floating dtype", x=ArraySpec((2, 3), "int32")
        ),
        _flatten_error(
            "grad_out of the wrong shape (backward)",
            ValueError,
            r"grad_out.shape=\(2, 3, 4\), but flatten's output has shape \(2, 12\)",
            grad_out=ArraySpec((2, 3, 4)),
            start_dim=1,
            end_dim=-1,
        ),
    ),
)


# --- reshape ------------------------------------------------------------------------------------


def _prime_factors(n: int) -> list[int]:
    factors, p = [], 2
    while n > 1:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    return factors


@st.composite
def _reshape_params(draw: Any, budget: str) -> dict[str, Any]:
    """A shape, then a target shape of the same size, built by dealing the prime factors of
    the size out to 1–4 target dimensions; one of them is then written -1 or not."""
    shape = draw(_shapes(budget), label="shape")
    rank = draw(st.integers(1, LIMITS[budget][0]), label="target rank")
    target = [1] * rank
    for factor in (f for size in shape for f in _prime_factors(size)):
        target[draw(st.integers(0, rank - 1), label=f"dim of factor {factor}")] *= factor
    inferred = draw(st.integers(-1, rank - 1), label="inferred dim (-1: none)")
    if inferred >= 0:
        target[inferred] = -1
    return {"shape": shape, "target": tuple(target)}


def _reshape_layout(params: Params) -> Layout:
    target = params["target"]  # an int is a 1-D target, as torch takes it
    return {"x": tuple(params["shape"])}, {
        "shape": target if isinstance(target, int) else tuple(target)
    }


def _torch_reshape(x: Any, shape: int | tuple[int, ...]) -> Any:
    """Tensor.reshape, which (unlike torch.reshape) also takes an int, as refcnn.reshape does."""
    return x.reshape(shape)


def _reshape_error(case_id: str, error: type[Exception], match: str, **arguments: Any) -> ErrorCase:
    return ErrorCase(case_id, {"x": ArraySpec((2, 3)), **arguments}, error, match)


RESHAPE = OpSpec(
    name="reshape",
    not_applicable={
        "batch_slices": "a target shape may merge or split the batch axis",
    },
    family="linear",
    kind="transform",
    summary="the same values in row-major order under another shape (one -1 inferred)",
    inputs=("x",),
    forward=reshape,
    backward=reshape_backward,
    differentiable=("x",),
    linear_in=("x",),
    polynomial_degree=1,
    layout=_reshape_layout,
    params=lambda budget: _reshape_params(budget),
    tolerance=_exact("grad_x"),
    torch_name="torch.reshape",
    torch_forward=_torch_reshape,
    docs="docs/linear.md",
    edge_cases=(
        EdgeCase("(N, C·H·W) back to NCHW", {"shape": (2, 12), "target": (2, 3, 2, 2)}),
        EdgeCase("-1 first", {"shape": (2, 3, 4), "target": (-1, 4)}),
        EdgeCase("size-1 dims added", {"shape": (3, 2), "target": (1, 3, 1, 2)}),
        EdgeCase("an int target: flat", {"shape": (3, 2), "target": 6}),
        EdgeCase("an int target -1: flat", {"shape": (2, 2, 2), "target": -1}),
    ),
    error_cases=(
        _reshape_error(
            "size mismatch",
            ValueError,
            r"cannot reshape x.shape=\(2, 3\) \(size 6\) into shape=\(2, 5\) \(size 10\)",
            shape=(2, 5),
        ),
        _reshape_error(
            "-1 cannot make the size",
            ValueError,
            r"cannot reshape x.shape=\(2, 3\) \(size 6\) into shape=\(4, -1\)",
            shape=(4, -1),
        ),
        _reshape_error("two -1", ValueError, r"only one dimension can be inferred", shape=(-1, -1)),
        _reshape_error(
            "integer x",
            TypeError,
            r"^x must have a floating dtype",
            x=ArraySpec((2, 3), "int64"),
            shape=(3, 2),
        ),
        _reshape_error(
            "x is a list", TypeError, r"^x must be a numpy.ndarray, got list", x=[1.0], shape=-1
        ),
        _reshape_error(
            "integer x (backward)",
            TypeError,
            r"^x must have a floating dtype",
            x=ArraySpec((2, 3), "int64"),
            grad_out=ArraySpec((3, 2)),
            shape=(3, 2),
        ),
        _reshape_error(
            "-2",
            ValueError,
            r"invalid shape dimension -2 at index 0 of shape=\(-2, 3\)",
            shape=(-2, 3),
        ),
        _reshape_error(
            "-1 with a 0 dimension",
            ValueError,
            r"into shape=\(0, -1\): no value of the -1 dimension makes 0",
            shape=(0, -1),
        ),
        _reshape_error(
            "-1 ambiguous for 0 elements",
            ValueError,
            r"\(0 elements\) into shape=\(-1, 0\): the -1 dimension could be any value",
            x=ArraySpec((2, 0)),
            shape=(-1, 0),
        ),
        _reshape_error(
            "float shape", TypeError, r"shape must be an int or a tuple of ints", shape=(2.0, 3)
        ),
        _reshape_error(
            "grad_out of the wrong shape (backward)",
            ValueError,
            r"grad_out.shape=\(2, 3\), but reshape's output has shape \(3, 2\)",
            grad_out=ArraySpec((2, 3)),
            shape=(3, -1),
        ),
    ),
)


# --- dropout ------------------------------------------------------------------------------------


@st.composite
def _dropout_params(draw: Any, budget: str) -> dict[str, Any]:
    return {
        "shape": draw(_shapes(budget), label="shape"),
        "p": draw(st.floats(0.0, 1.0, exclude_max=True), label="p"),
        "training": draw(st.booleans(), label="training"),
    }


def _dropout_layout(params: Params) -> Layout:
    shape = tuple(params["shape"])
    return {"x": shape, "mask": shape}, {"p": params["p"], "training": params["training"]}


def _bernoulli_mask(
    rng: np.random.Generator, shape: tuple[int, ...], params: Params
) -> NDArray[np.float64]:
    """Keep (1) with probability 1 − p, drop (0) with probability p: Bernoulli(1 − p)."""
    keep: NDArray[np.float64] = (rng.random(shape) >= params["p"]).astype(np.float64)
    return keep


def _dropout_roundings(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
    """y = x·(mask / (1 − p)) as torch builds it: 1 − p in float64, its conversion to x's dtype,
    the division, the product: at most 4 roundings (x·mask is exact, the mask is 0 or 1). The
    gradient g·(mask / (1 − p)) is the same computation."""
    return {"out": 4, "grad_x": 4}


def _torch_dropout(x: Any, mask: Any, p: float, **kwargs: Any) -> Any:
    """torch's own F.dropout where it is deterministic (eval, p = 0, p = 1); otherwise the
    formula it applies, x·(mask / (1 − p)), with the given mask instead of one it draws
    (checked against F.dropout: equal bitwise for the mask it drew, gradient included).
    ``training`` not given is F.dropout's default."""
    import inspect

    import torch.nn.functional as F

    training = kwargs.get("training", inspect.signature(F.dropout).parameters["training"].default)
    if not training or p in (0.0, 1.0):
        return F.dropout(x, p, training=training)
    return x * (mask / (1 - p))


def _dropout_case(**overrides: Any) -> dict[str, Any]:
    return {**{"shape": (3, 4), "p": 0.5, "training": True}, **overrides}


def _dropout_error(case_id: str, error: type[Exception], match: str, **arguments: Any) -> ErrorCase:
    defaults: dict[str, Any] = {
        "x": ArraySpec((2, 3)),
        "mask": np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]),
        "p": 0.5,
    }
    return ErrorCase(case_id, {**defaults, **arguments}, error, match)


DROPOUT = OpSpec(
    name="dropout",
    per_sample=lambda sample: ("x", "mask") if sample.inputs["x"].ndim >= 1 else (),
    family="dropout",
    kind="layer",
    summary="inverted dropout x·mask/(1 − p) with an explicit 0/1 mask; identity in eval",
    inputs=("x", "mask"),
    forward=dropout,
    backward=dropout_backward,
    differentiable=("x",),
    linear_in=("x",),
    polynomial_degree=1,
    layout=_dropout_layout,
    params=lambda budget: _dropout_params(budget),
    tolerance=Multilinear(_dropout_roundings, degree=1, fixed=("mask",)),
    fill={"mask": _bernoulli_mask},
    torch_name="torch.nn.functional.dropout (its formula, with the given mask)",
    torch_forward=_torch_dropout,
    docs="docs/dropout.md",
    edge_cases=(
        EdgeCase("p = 0: identity", _dropout_case(p=0.0)),
        EdgeCase(
            "p = 0 ignores the mask",
            _dropout_case(p=0.0, shape=(2, 2)),
            arrays={"mask": [[0.0, 1.0], [1.0, 0.0]]},
        ),
        EdgeCase("p = 1: zeros", _dropout_case(p=1.0)),
        EdgeCase("evaluation: identity", _dropout_case(training=False)),
        EdgeCase(
            "p = 0.75, given mask",
            _dropout_case(p=0.75, shape=(2, 3)),
            arrays={"mask": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]},
        ),
        EdgeCase("4-D, p = 0.2", _dropout_case(shape=(2, 3, 2, 2), p=0.2)),
    ),
    error_cases=(
        _dropout_error("p a bool", TypeError, r"p must be a real number, got p=True", p=True),
        _dropout_error(
            "grad_out a list (backward)",
            TypeError,
            r"grad_out must be a numpy.ndarray, got list",
            grad_out=[[0.5, 0.5, 0.5]] * 2,
        ),
        _dropout_error(
            "float32 grad_out (backward)",
            TypeError,
            r"grad_out.dtype=float32 differs from x.dtype=float64",
            grad_out=ArraySpec((2, 3), "float32"),
        ),
        _dropout_error(
            "p above 1",
            ValueError,
            r"dropout probability has to be between 0 and 1, but got p=1.5",
            p=1.5,
        ),
        _dropout_error(
            "negative p",
            ValueError,
            r"dropout probability has to be between 0 and 1, but got p=-0.1",
            p=-0.1,
        ),
        _dropout_error("NaN p", ValueError, r"between 0 and 1, but got p=nan", p=float("nan")),
        _dropout_error(
            "mask of another shape",
            ValueError,
            r"mask.shape=\(3, 2\) differs from x.shape=\(2, 3\)",
            mask=np.ones((3, 2)),
        ),
        _dropout_error(
            "mask not 0/1",
            ValueError,
            r"mask must contain only 0 \(drop\) and 1 \(keep\), got values such as \[0.5 2. \]",
            mask=np.array([[1.0, 0.5, 1.0], [0.0, 0.0, 2.0]]),
        ),
        _dropout_error("training not a bool", TypeError, r"training must be a bool", training=1),
        _dropout_error(
            "integer x", TypeError, r"x must have a floating dtype", x=ArraySpec((2, 3), "int64")
        ),
        _dropout_error(
            "grad_out of the wrong shape (backward)",
            ValueError,
            r"grad_out.shape=\(3, 2\), but dropout's output has shape \(2, 3\)",
            grad_out=ArraySpec((3, 2)),
        ),
    ),
)


def _linear_upstream(arguments: Mapping[str, Any]) -> Any:
    """An upstream shaped like linear's output (x's leading dims, out_features) when x and a
    2-D weight are array placeholders; None when the case cannot be posed to the backward."""
    x, weight = arguments.get("x"), arguments.get("weight")
    if isinstance(x, ArraySpec) and isinstance(weight, ArraySpec) and len(weight.shape) == 2:
        return ArraySpec((*x.shape[:-1], weight.shape[0]))
    return None


# linear's forward error cases run through its backward too (which validates x, W and b itself)
OPS: tuple[OpSpec, ...] = (
    dataclasses.replace(LINEAR, error_cases=in_backward_too(LINEAR.error_cases, _linear_upstream)),
    FLATTEN,
    RESHAPE,
    DROPOUT,
)
