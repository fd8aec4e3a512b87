"""Catalog entries of kind "network": the book's SimpleConvNet and DeepConvNet, end to end.

Each entry is one function of all its arrays: forward(x, t, W1, b1, …) is the scalar loss,
backward(g, x, t, W1, …) its gradients with respect to x and every parameter (refcnn.networks).
t (class indices) and the dropout masks are data, not differentiated; they arrive as floats of
the sample's dtype and are cast to int64 (t) where they are used. torch runs the same
computation with torch.nn.functional (conv2d, relu, max_pool2d, linear with the book's W (in, out)
transposed, x·mask/(1 − p) with the given masks, cross_entropy) and autograd.

The rounding-error bound: a running error analysis (Higham, Accuracy and Stability of Numerical
Algorithms, §3.3), first order in u. Every error is carried in units of u: ε ≥ |computed −
exact| / u elementwise, propagated alongside the float64 values through the layers.

Forward, for each layer, ε_in of its input a (ε = 0 for x: the sample's values are exact)::

    conv, affine  ε_out = |W| ⋆ ε_in + (k + 2)·|W| ⋆ |a| + (k + 1)·|b|
                  the error carried in, plus the layer's own: a length-k sum (k = C·KH·KW + 1,
                  or in_features + 1, the bias counted) is within γ_k·(|W| ⋆ |a| + |b|) in any
                  order (tolerance.py); + 2 and + 1 for the factors and the bias stored rounded
                  (finite differences store x ± h·v, W ± h·v, b ± h·v), so the catalog's
                  "degree" is 0. A sum whose every product is an exact 0 IS its bias: ε = |b|.
    relu          ε_out = ε_in (1-Lipschitz: |relu(a') − relu(a)| ≤ |a' − a|; exact itself)
    max pool      ε_out = max over the window of ε_in (|max a' − max a| ≤ max |a' − a|)
    dropout       ε_out = s·ε_in + 4·s·|a|,  s = mask / (1 − p): 1 − p, its conversion to the
                  dtype, the division and the product (see catalog/linear.py's dropout)
    loss          ε_L = Σ_{n,j} |s − y|_{nj} / N · ε_z[n, j]           (∂L/∂z = (s − y)/N)
                        + (1/N)·Σ_n [c_ls·M_ls[n, t_n] + (N + 1)·|log s[n, t_n]|]
                  with s = softmax(z), y = onehot(t), c_ls and M_ls log_softmax's model
                  (catalog/softmax.py) and N + 1 for the mean (N − 1 additions, a division, or
                  a reciprocal and a product).

Backward, E ≥ |computed − exact| / u of ∂L/∂(a layer's output) with G its float64 value,
going down from the logits (g the upstream scalar)::

    loss          E_z = |g|/N·(s ⊙ ε_z + s·Σ_j s_j·ε_z[j])       (∂s_i/∂z_j = s_i·(δ_ij − s_j))
                        + max(refcnn's, torch's own roundings): refcnn forms ((s − y)·g)/N from
                        softmax(z) (c_sm·|g|/N·M_sm + 3·|g|/N·(s + y)); torch forms −g/N at t
                        (1) and log_softmax's backward of it (c_lsb·M_lsb, catalog/softmax.py)
    dropout       E_in = s·E_out + 4·s·|G_out|
    affine        E_in = E_out·|W|ᵀ + k_x·|G_out|·|W|ᵀ                 k_x = out_features
                  E_W = |a|ᵀ·E_out + ε_aᵀ·|G_out| + N·|a|ᵀ·|G_out|      (a stored with error ε_a)
                  E_b = Σ_n E_out + N·Σ_n |G_out|
    conv          the same with conv2d_backward: k_x = C_out·KH·KW, and N·OH·OW for dW and db
    relu          E_in = E_out·[a > 0]          the relu mask and the pool's choice as float64
    max pool      E_in = E_out sent to a*      takes them (decided branches, see below)

Every term above is a count c (roundings) times a magnitude; with C ≥ every count,
γ_c ≤ (c/C)·γ_C, so the bound is γ_C·(ε/C): tolerance.Formula with roundings C and magnitude ε/C.

Branches. A relu input, or a pooling window's choice, is DECIDED when its errors cannot change
it: |a| > margin·ε, or the window's maximum ahead of every other pixel by more than
margin·(ε_max + ε_other), margin = (γ_C(float64) + γ_C(dtype))/C (how far the float64 values
used here and an implementation's values in the dtype may each be from the exact ones). Values
every implementation computes exactly are decided too, even on a kink or a tie: the input x,
inactive relu outputs (0) and sums that read only exact zeros (their bias). Where decided, every
implementation takes the branch the float64 values take: the backward above holds, and an
inactive relu outputs an exact 0 (ε = 0 after it). Where not, the Lipschitz forward rules hold,
and the backward adds an ALLOWANCE A (absolute, not in units of u): the gradient |G| that an
undecided relu unit may pass or block, or that an undecided window may send to any of its
candidate pixels, carried down through |W|ᵀ, |a| and the masks like E. The bound is then
γ_C·ε/C + A: both branches are right answers, and A covers their difference. The samples keep
every kink far away (the fills below), so A is 0 on them; it is there so that no input makes
the bound unsound (the edge cases on ties and kinks use it).

Not modelled: second-order terms (products of two errors, magnitudes evaluated at computed
rather than exact values), O(u²) relative; underflow (values stay near 1 here).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st
from numpy.typing import DTypeLike, NDArray

from refcnn.functional.activations import relu
from refcnn.functional.conv import conv2d, conv2d_backward
from refcnn.functional.dropout import dropout
from refcnn.functional.pooling import max_pool2d, max_pool2d_backward
from refcnn.functional.softmax import log_softmax, softmax
from refcnn.geometry import check_float_tensor
from refcnn.layers import Affine, Convolution, Dropout, MaxPooling, Relu
from refcnn.networks import (
    DEEP_CONV_PARAMS,
    DEEP_PARAMETERS,
    POOL_AFTER,
    SIMPLE_PARAMETERS,
    DeepConvNet,
    SimpleConvNet,
    deep_conv_net_loss,
    deep_conv_net_loss_backward,
    deep_network,
    simple_conv_net_loss,
    simple_conv_net_loss_backward,
    simple_network,
)
from refcnn.testing.catalog.softmax import LOG_SOFTMAX_MODEL, SOFTMAX_MODEL
from refcnn.testing.opspec import ArraySpec, EdgeCase, ErrorCase, Layout, OpSpec, Params
from refcnn.testing.tolerance import Formula, as_float64, gamma

Array = NDArray[Any]  # float64 arrays of the error analysis (refcnn's typed floating)
BoolArray = NDArray[np.bool_]
Network = SimpleConvNet | DeepConvNet

STORED_FACTORS = 2  # x (or a) and W of a product, each stored rounded by finite differences
DROPOUT_ROUNDINGS = 4  # 1 − p, its conversion to the dtype, the division, the product


# --- strategies (constructive: sizes drawn, the input size derived) -------------------------------

_LIMITS: dict[str, dict[str, int]] = {
    "small": {"batch": 3, "channels": 2, "filters": 3, "out": 5, "hidden": 6, "classes": 5},
    "tiny": {"batch": 1, "channels": 1, "filters": 1, "out": 2, "hidden": 2, "classes": 3},
}
_DEEP_SIZE = {"small": 9, "tiny": 4}  # input H, W up to this; 4×4 is the smallest (book pads)
_DROPOUT_RATIOS = (0.5, 0.25, 0.6)  # the book's 0.5 first; 1/(1 − 0.6) is not exact


def _common(draw: Any, budget: str) -> dict[str, Any]:
    limit = _LIMITS[budget]
    return {
        "batch": draw(st.integers(1, limit["batch"]), label="N"),
        "channels": draw(st.integers(1, limit["channels"]), label="C"),
        "hidden": draw(st.integers(1, limit["hidden"]), label="hidden"),
        "classes": draw(st.integers(2, limit["classes"]), label="classes"),
        "values_seed": draw(st.integers(0, 2**32 - 1), label="values seed"),
    }


@st.composite
def _simple_params(draw: Any, budget: str) -> dict[str, Any]:
    """Filter size, pad, stride and the conv's output size OH ≥ 2 per axis (so the pool has a
    window), a remainder 0 ≤ r < stride; then H = (OH − 1)·stride + size + r − 2·pad ≥ 1."""
    limit = _LIMITS[budget]
    tiny = budget == "tiny"
    size = draw(st.sampled_from((5,) if tiny else (5, 3)), label="filter size")
    pad = draw(st.integers(0, 0 if tiny else 1), label="pad")
    stride = draw(st.integers(1, 1 if tiny else 2), label="stride")
    input_size = []
    for axis in "HW":
        out = draw(st.integers(2, limit["out"] + (1 if tiny else 0)), label=f"conv O{axis}")
        remainder = draw(st.integers(0, stride - 1), label=f"remainder {axis}")
        input_size.append((out - 1) * stride + size + remainder - 2 * pad)
    return {
        **_common(draw, budget),
        "filters": draw(st.integers(1, limit["filters"]), label="filters"),
        "filter_size": size,
        "pad": pad,
        "stride": stride,
        "input_size": tuple(input_size),
    }


@st.composite
def _deep_params(draw: Any, budget: str) -> dict[str, Any]:
    """Every H, W ≥ 4 is valid with the book's pads (4 → 2 → 4 → 2 → 1); one filter number
    per block of two convs."""
    limit, largest = _LIMITS[budget], _DEEP_SIZE[budget]
    return {
        **_common(draw, budget),
        "filters": tuple(
            draw(st.integers(1, min(2, limit["filters"])), label=f"filters, block {block}")
            for block in (1, 2, 3)
        ),
        "input_size": tuple(draw(st.integers(4, largest), label=axis) for axis in "HW"),
        "p": draw(st.sampled_from(_DROPOUT_RATIOS), label="dropout ratio"),
    }


# --- layouts and fills --------------------------------------------------------------------------


def _conv_output(length: int, size: int, pad: int, stride: int) -> int:
    return (length + 2 * pad - size) // stride + 1


def _simple_layout(params: Params) -> Layout:
    n, c, f, k = params["batch"], params["channels"], params["filters"], params["filter_size"]
    pad, stride, hidden, classes = (
        params["pad"],
        params["stride"],
        params["hidden"],
        params["classes"],
    )
    pooled = [_conv_output(s, k, pad, stride) // 2 for s in params["input_size"]]
    shapes: dict[str, tuple[int, ...] | None] = {
        "x": (n, c, *params["input_size"]),
        "t": (n,),
        "W1": (f, c, k, k),
        "b1": (f,),
        "W2": (f * pooled[0] * pooled[1], hidden),
        "b2": (hidden,),
        "W3": (hidden, classes),
        "b3": (classes,),
    }
    return shapes, {"stride": stride, "pad": pad}


def _deep_layout(params: Params) -> Layout:
    n, channels, hidden, classes = (
        params["batch"],
        params["channels"],
        params["hidden"],
        params["classes"],
    )
    shapes: dict[str, tuple[int, ...] | None] = {
        "x": (n, channels, *params["input_size"]),
        "t": (n,),
    }
    size = list(params["input_size"])
    for index, conv in enumerate(DEEP_CONV_PARAMS, start=1):
        filters = params["filters"][(index - 1) // 2]
        shapes[f"W{index}"] = (filters, channels, 3, 3)
        shapes[f"b{index}"] = (filters,)
        channels = filters
        size = [_conv_output(s, 3, conv["pad"], 1) for s in size]
        if index in POOL_AFTER:
            size = [s // 2 for s in size]
    shapes.update(
        W7=(channels * size[0] * size[1], hidden),
        b7=(hidden,),
        W8=(hidden, classes),
        b8=(classes,),
        mask1=(n, hidden),
        mask2=(n, classes),
    )
    return shapes, {"dropout_ratio": params["p"]}


def _labels_fill(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
    """Class indices 0 … classes − 1, as floats (every sample array is floating)."""
    return rng.integers(0, params["classes"], shape).astype(np.float64)


# The values of x and of every parameter are drawn JOINTLY, layer by layer, from
# params["values_seed"], so that no relu input and no pooling runner-up is near its kink: finite
# differences across a kink are meaningless (Richardson's estimate misses a kink within 0.75·h of
# the sample), and a network's kinks sit at derived values that independent fills cannot keep
# away from 0 (with independent N(0, 1) fills about 1 DeepConvNet sample in 400 had one within
# the finite-difference step, 1 in 2000 for SimpleConvNet).
#   x ~ N(0, 1); W ~ N(0, 2 / fan_in) (He, the book's DeepConvNet initialisation: activations
#   stay ~1 through the layers, the softmax is neither saturated nor flat).
#   The bias of a layer followed by relu is PLACED: with z = W ⋆ h (no bias) over the batch and
#   positions of one channel (one hidden unit of an affine layer) and scale = max |W| ⋆ |h| + 1
#   (what bounds how fast z and b move along a direction of size ≤ 1), the relu threshold
#   θ = −b goes to the middle of the widest gap of at least 2·MARGIN·scale between consecutive
#   values of z, preferring gaps inside the 20%–80% quantiles (units both active and inactive);
#   without such a gap, beyond every value (all inactive, or all active). Every unit is then at
#   least MARGIN·scale from its kink.
#   Before a max pool θ also stays above the runner-up of every window whose two largest z are
#   within 2·MARGIN·scale: such a window has at most one active unit, so two active units of a
#   window differ by more than that, and an active one is MARGIN·scale above an inactive one (0).
#   The logits' bias (no relu after it) ~ N(0, 0.5²).
# A central difference moves a value by about 2h·scale (h = 4.8e-6·max|input| ~ 1.5e-5), some
# 300 times less than MARGIN·scale (the smallest distance seen in 2000 samples: 39·h);
# float32's rounding (~1e-6 relative) is smaller still, so no branch is undecided there either.

MARGIN = 0.01  # of a unit's scale |W| ⋆ |h| + 1, which bounds how fast it moves along v
MIDDLE = (0.2, 0.8)


def _threshold(z: Array, scale: float, floor: float, rng: np.random.Generator) -> float:
    """θ at least MARGIN·scale from every value of z, and above floor: the middle of the widest
    such gap between consecutive values (one inside the 20%–80% quantiles if there is one);
    without one, beyond every value (all units inactive, or, when free, all active)."""
    values = np.unique(z)  # sorted
    low, high = values[:-1], values[1:]
    allowed = (low >= floor) & (high - low >= 2 * MARGIN * scale)
    quantiles = np.quantile(z, MIDDLE)
    middle = allowed & (low >= quantiles[0]) & (high <= quantiles[1])
    choice = middle if np.any(middle) else allowed
    if np.any(choice):
        widest = int(np.argmax(np.where(choice, high - low, -np.inf)))
        return float(low[widest] + high[widest]) / 2
    if floor == -np.inf and rng.random() < 0.5:
        return float(values[0]) - 0.5 * scale
    return float(values[-1]) + 0.5 * scale


def _runner_up_floor(z: Array, scale: float) -> float:
    """The largest runner-up among the 2×2 windows of z (N, OH, OW) whose two largest values are
    within 2·MARGIN·scale; −inf when no window is that close."""
    ordered = np.sort(_windows(z[:, None]), axis=-1)
    first, second = ordered[..., -1], ordered[..., -2]
    close = first - second < 2 * MARGIN * scale
    return float(np.max(second[close])) if np.any(close) else -np.inf


def _he(rng: np.random.Generator, shape: tuple[int, ...]) -> Array:
    fan_in = math.prod(shape[1:]) if len(shape) == 4 else shape[0]
    values: Array = math.sqrt(2.0 / fan_in) * rng.standard_normal(shape)
    return values


# A network's layers with parameters, in order: ("conv", index, stride, pad, pooled after) or
# ("affine", index, relu after).
Plan = tuple[tuple[Any, ...], ...]
_DEEP_PLAN: Plan = (
    *(("conv", i, 1, c["pad"], i in POOL_AFTER) for i, c in enumerate(DEEP_CONV_PARAMS, 1)),
    ("affine", 7, True),
    ("affine", 8, False),
)


def _simple_plan(params: Params) -> Plan:
    return (
        ("conv", 1, params["stride"], params["pad"], True),
        ("affine", 2, True),
        ("affine", 3, False),
    )


@functools.lru_cache(maxsize=32)
def _constructed(kind: str, key: tuple[tuple[str, Any], ...]) -> dict[str, Array]:
    """x, W1, b1, … of one sample, drawn jointly (see above); cached for the sample's fills."""
    params = dict(key)
    shapes, _ = (_deep_layout if kind == "deep" else _simple_layout)(params)
    plan = _DEEP_PLAN if kind == "deep" else _simple_plan(params)
    rng = np.random.default_rng(params["values_seed"])
    h: Array = rng.standard_normal(shapes["x"] or ())
    values = {"x": h}
    for layer in plan:
        weight_shape, bias_shape = shapes[f"W{layer[1]}"] or (), shapes[f"b{layer[1]}"] or ()
        weight = _he(rng, weight_shape)
        bias = 0.5 * rng.standard_normal(bias_shape)
        if layer[0] == "conv":
            _, _, stride, pad, pooled = layer
            z = conv2d(h, weight, None, stride, pad)
            scales = conv2d(np.abs(h), np.abs(weight), None, stride, pad) + 1  # |W| ⋆ |h| + 1
            for f in range(z.shape[1]):
                scale = float(np.max(scales[:, f]))
                floor = _runner_up_floor(z[:, f], scale) if pooled else -np.inf
                bias[f] = -_threshold(z[:, f], scale, floor, rng)
            h = relu(z + bias[:, None, None])
            h = max_pool2d(h, (2, 2), 2) if pooled else h
        elif layer[2]:  # affine followed by relu
            rows = h.reshape(h.shape[0], -1)
            z, scales = rows @ weight, np.abs(rows) @ np.abs(weight) + 1
            for j in range(z.shape[1]):
                bias[j] = -_threshold(z[:, j], float(np.max(scales[:, j])), -np.inf, rng)
            h = relu(z + bias)
        values[f"W{layer[1]}"], values[f"b{layer[1]}"] = weight, bias
    for array in values.values():
        array.setflags(write=False)  # shared by every later call: nobody may write into it
    return values


def _joint_fill(kind: str, name: str) -> Any:
    """The fill of one input: its part of the jointly drawn values (the generator is unused)."""

    def fill(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
        return _constructed(kind, tuple(sorted(params.items())))[name]

    return fill


def _keep_mask(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
    """Keep (1) with probability 1 − p: Bernoulli(1 − p)."""
    keep: Array = (rng.random(shape) >= params["p"]).astype(np.float64)
    return keep


def _fills(kind: str, parameters: tuple[str, ...]) -> dict[str, Any]:
    fills: dict[str, Any] = {"t": _labels_fill}
    for name in ("x", *parameters):
        fills[name] = _joint_fill(kind, name)
    return fills


# --- bindings: refcnn.networks with t as int64 ------------------------------------------------


def _labels(t: Any) -> Any:
    """t as int64 class indices; floats must hold whole numbers (a float t is how samples carry
    them)."""
    if isinstance(t, np.ndarray) and np.issubdtype(t.dtype, np.floating):
        if not np.all(np.isfinite(t) & (t == np.round(t))):
            raise ValueError(f"t must hold class indices (whole numbers), got t={t}")
        return t.astype(np.int64)
    return t


def _simple_forward(x: Any, t: Any, stride: int, pad: int, **params: Any) -> Any:
    return simple_conv_net_loss(x, _labels(t), params, stride, pad)


def _simple_backward(
    grad_out: Any, x: Any, t: Any, stride: int, pad: int, **params: Any
) -> tuple[Any, ...]:
    grad_x, grads = simple_conv_net_loss_backward(grad_out, x, _labels(t), params, stride, pad)
    return (grad_x, *(grads[name] for name in SIMPLE_PARAMETERS))


def _masks(mask1: Any, mask2: Any) -> tuple[Any, Any]:
    """The dropout masks, checked under the catalog's names (refcnn.networks calls each one
    ``mask`` when dropout checks it)."""
    return check_float_tensor(mask1, "mask1"), check_float_tensor(mask2, "mask2")


def _deep_forward(
    x: Any, t: Any, mask1: Any, mask2: Any, dropout_ratio: float, **params: Any
) -> Any:
    return deep_conv_net_loss(x, _labels(t), params, _masks(mask1, mask2), dropout_ratio)


def _deep_backward(
    grad_out: Any, x: Any, t: Any, mask1: Any, mask2: Any, dropout_ratio: float, **params: Any
) -> tuple[Any, ...]:
    grad_x, grads = deep_conv_net_loss_backward(
        grad_out, x, _labels(t), params, _masks(mask1, mask2), dropout_ratio
    )
    return (grad_x, *(grads[name] for name in DEEP_PARAMETERS))


def _torch_simple(x: Any, t: Any, stride: int, pad: int, **p: Any) -> Any:
    """conv2d – relu – max_pool2d – linear – relu – linear – cross_entropy (mean)."""
    import torch.nn.functional as F

    h = F.max_pool2d(F.relu(F.conv2d(x, p["W1"], p["b1"], stride=stride, padding=pad)), 2, 2)
    h = F.relu(F.linear(h.flatten(1), p["W2"].T, p["b2"]))  # the book's W (in, out) transposed
    return F.cross_entropy(F.linear(h, p["W3"].T, p["b3"]), t.long())


def _torch_deep(x: Any, t: Any, mask1: Any, mask2: Any, dropout_ratio: float, **p: Any) -> Any:
    """Six conv2d – relu (pads 1, 1, 1, 2, 1, 1), max_pool2d after the 2nd, 4th and 6th,
    linear – relu – dropout – linear – dropout with the given masks, cross_entropy (mean)."""
    import torch.nn.functional as F

    h = x
    for index, conv in enumerate(DEEP_CONV_PARAMS, start=1):
        h = F.relu(F.conv2d(h, p[f"W{index}"], p[f"b{index}"], padding=conv["pad"]))
        if index in POOL_AFTER:
            h = F.max_pool2d(h, 2, 2)
    h = F.relu(F.linear(h.flatten(1), p["W7"].T, p["b7"]))
    h = h * mask1 / (1 - dropout_ratio)
    z = F.linear(h, p["W8"].T, p["b8"]) * mask2 / (1 - dropout_ratio)
    return F.cross_entropy(z, t.long())


# --- the rounding-error model (derivation in the module docstring) -----------------------------


def _network(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> tuple[Network, Any, Any]:
    """The float64 network of these inputs, its logits after a forward pass, and t (int64)."""
    x, t = inputs["x"], _labels(inputs["t"])
    params = {name: value for name, value in inputs.items() if name[0] in "Wb"}
    if "mask1" in inputs:
        deep = deep_network(x, params, kwargs["dropout_ratio"])
        return deep, deep.predict(x, True, (inputs["mask1"], inputs["mask2"])), t
    simple = simple_network(x, params, kwargs["stride"], kwargs["pad"])
    return simple, simple.predict(x), t


def _dropout_scale(layer: Dropout, like: Array) -> Array:
    """s = mask / (1 − p) as dropout applies it (1 where it is the identity)."""
    return dropout(np.ones_like(like), np.asarray(layer.mask, np.float64), layer.p, layer.training)


def _loss_counts(classes: int, n: int) -> dict[str, int]:
    """The counts of the loss's own roundings (forward and backward)."""
    z = {"x": np.zeros((n, classes))}
    log_counts = LOG_SOFTMAX_MODEL.roundings(z, {"dim": 1})
    softmax_counts = SOFTMAX_MODEL.roundings(z, {"dim": 1})
    return {
        "log_softmax": log_counts["out"],
        "mean": n + 1,
        "torch_backward": log_counts["grad_x"] + 1,  # + the division −g/N
        "softmax": softmax_counts["out"],
        "difference": 3,  # s − y, × g, / N
    }


def _largest_count(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> int:
    """C: at least every count the propagation uses, from the shapes alone."""
    shapes = {name: np.shape(value) for name, value in inputs.items()}
    deep = "mask1" in inputs
    convs = range(1, 7) if deep else range(1, 2)
    affines = ("W7", "W8") if deep else ("W2", "W3")
    n, classes = shapes["x"][0], shapes[affines[1]][1]
    counts = [*_loss_counts(classes, n).values(), DROPOUT_ROUNDINGS]
    size = list(shapes["x"][2:])
    for index in convs:
        f, c, kh, kw = shapes[f"W{index}"]
        pad = DEEP_CONV_PARAMS[index - 1]["pad"] if deep else kwargs["pad"]
        stride = 1 if deep else kwargs["stride"]
        size = [_conv_output(s, kh, pad, stride) for s in size]
        # forward (sum of C·KH·KW products and the bias, stored factors), grad_x, grad_W and b
        counts += [c * kh * kw + 1 + STORED_FACTORS, f * kh * kw, n * size[0] * size[1]]
        if not deep or index in POOL_AFTER:
            size = [s // 2 for s in size]
    for weight in affines:
        fan_in, fan_out = shapes[weight]
        counts += [fan_in + 1 + STORED_FACTORS, fan_out, n]
    return max(counts)


def _margin(dtype: DTypeLike, largest: int) -> float:
    """(γ_C(float64) + γ_C(dtype)) / C: times ε, how far the float64 values used here and the
    values of an implementation in ``dtype`` may each be from the exact ones."""
    return float(gamma(largest, np.float64) + gamma(largest, dtype)) / largest


def _windows(values: NDArray[Any]) -> NDArray[Any]:
    """2×2, stride 2 windows (floor mode) as (N, C, PH, PW, 4)."""
    n, c, h, w = values.shape
    cropped = values[:, :, : h // 2 * 2, : w // 2 * 2]
    blocks = cropped.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    return blocks.reshape(n, c, h // 2, w // 2, 4)


def _unwindow(blocks: NDArray[Any], shape: tuple[int, ...]) -> NDArray[Any]:
    """The inverse of :func:`_windows`, zero (False) where no window reads."""
    n, c, ph, pw, _ = blocks.shape
    image = (
        blocks.reshape(n, c, ph, pw, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, 2 * ph, 2 * pw)
    )
    full = np.zeros(shape, dtype=blocks.dtype)
    full[:, :, : 2 * ph, : 2 * pw] = image
    return full


def _spread(values: Array, shape: tuple[int, ...]) -> Array:
    """Each pooled value at every pixel of its window (zero where no window reads)."""
    spread: Array = _unwindow(np.repeat(values[..., None], 4, axis=-1), shape)
    return spread


def _pool_candidates(a: Array, eps: Array, exact: BoolArray, margin: float) -> BoolArray:
    """The pixels an implementation may choose in the windows whose choice is undecided: the
    maximum and every pixel within both errors of it (two exact pixels are decided: every
    implementation has the same values and takes the first maximum)."""
    values, errors, exacts = _windows(a), _windows(eps), _windows(exact)
    chosen = np.argmax(values, axis=-1)[..., None]
    is_chosen = np.arange(4) == chosen
    best = np.take_along_axis(values, chosen, -1)
    reach = margin * (np.take_along_axis(errors, chosen, -1) + errors)
    both_exact = np.take_along_axis(exacts, chosen, -1) & exacts
    close = ~is_chosen & (best - values <= reach) & ~both_exact
    undecided = np.any(close, axis=-1, keepdims=True)
    return _unwindow((close | is_chosen) & undecided, a.shape)


def _sum_error(products: Array, bias: Array, reads_inexact: BoolArray, k: int) -> Array:
    """ε of a length-k sum of products plus a bias, its factors stored rounded:
    (k + 2)·Σ|w·a| + (k + 1)·|b|; a sum whose every product is an exact 0 is the bias itself
    (ε = |b|, its storage)."""
    error: Array = (k + STORED_FACTORS) * products + (k * reads_inexact + 1) * bias
    return error


@dataclass
class _Forward:
    """The float64 network after a forward pass and its error analysis."""

    net: Network
    logits: Array
    labels: Any
    into: dict[str, Array]  # ε of each layer's input, by layer name
    logit_error: Array  # ε of the logits
    undecided: dict[str, BoolArray]  # relu inputs / pool candidates whose branch is undecided


def _forward(
    inputs: Mapping[str, Any], kwargs: Mapping[str, Any], margin: float | None
) -> _Forward:
    """Run the float64 network and propagate ε through it.

    margin None: the Lipschitz rules everywhere (no branch is taken as known). Otherwise a relu
    input or pool choice is decided when its errors (margin·ε) cannot change it; a decided
    inactive relu outputs an exact 0, an undecided one keeps the Lipschitz rule. Alongside ε,
    ``exact`` marks values every implementation computes exactly (inactive relu outputs, sums
    that read only exact zeros, which are their bias): the same value everywhere, so the same
    branch even on a kink or a tie (a dead relu layer before a padded conv makes such ties).
    """
    net, logits, labels = _network(inputs, kwargs)
    first = next(iter(net.layers.values()))
    eps: Array = np.zeros_like(np.asarray(first.x, np.float64))
    exact: BoolArray = np.ones(eps.shape, dtype=bool)  # x: the given values, in every dtype
    into: dict[str, Array] = {}
    undecided: dict[str, BoolArray] = {}
    for name, layer in net.layers.items():
        a = np.asarray(layer.x, np.float64)
        into[name] = eps
        inexact = ~(exact & (a == 0))  # True where the value is not an exact 0
        if isinstance(layer, Convolution):
            weight, bias = np.abs(layer.W), np.abs(np.asarray(layer.b))
            # |W| ⋆ |a|, |W| ⋆ ε and |W| ⋆ [inexact] (> 0: some product is not an exact 0)
            stacked = np.concatenate([np.abs(a), eps, inexact.astype(np.float64)])
            products, carried, reaches = np.split(
                conv2d(stacked, weight, None, layer.stride, layer.pad), 3
            )
            reads: BoolArray = reaches > 0
            own = _sum_error(products, bias[:, None, None], reads, weight[0].size + 1)
            eps, exact = carried + own, ~reads
        elif isinstance(layer, Affine):
            weight, bias = np.abs(layer.W), np.abs(np.asarray(layer.b))
            rows, carried = np.abs(a).reshape(a.shape[0], -1), eps.reshape(a.shape[0], -1)
            row_reads = np.any(inexact.reshape(a.shape[0], -1), axis=1, keepdims=True)
            reads = np.broadcast_to(row_reads, (a.shape[0], weight.shape[1]))
            eps = carried @ weight + _sum_error(rows @ weight, bias, reads, weight.shape[0] + 1)
            exact = ~reads
        elif isinstance(layer, Relu) and margin is not None:
            undecided[name] = (np.abs(a) <= margin * eps) & ~exact
            off = (a <= 0) & ~undecided[name]  # decided inactive: an exact 0 everywhere
            eps, exact = np.where(off, 0.0, eps), exact | off
        elif isinstance(layer, MaxPooling):
            if margin is not None:
                undecided[name] = _pool_candidates(a, eps, exact, margin)
            eps = np.max(_windows(eps), axis=-1)  # bounds ε at any pixel the window may choose
            exact = np.all(_windows(exact), axis=-1)
        elif isinstance(layer, Dropout):
            scale = _dropout_scale(layer, a)
            eps = scale * eps + DROPOUT_ROUNDINGS * scale * np.abs(a)
            exact = exact & ((a == 0) | (scale == 0))
        elif not isinstance(layer, Relu):  # pragma: no cover - the networks hold only these
            raise TypeError(f"no error model for layer {name} ({type(layer).__name__})")
    return _Forward(net, logits, labels, into, eps, undecided)


def _onehot(t: Any, shape: tuple[int, ...]) -> Array:
    y = np.zeros(shape)
    y[np.arange(shape[0]), t] = 1
    return y


def _loss_error(forward: _Forward) -> Array:
    """ε of the loss: the logits' errors through |∂L/∂z| = |s − y|/N, plus its own roundings."""
    z, t, eps_z = forward.logits, forward.labels, forward.logit_error
    n, classes = z.shape
    counts = _loss_counts(classes, n)
    s, y = softmax(z, 1), _onehot(t, z.shape)
    carried = np.sum(np.abs(s - y) / n * eps_z)
    rows = np.arange(n)
    magnitude = LOG_SOFTMAX_MODEL.forward_magnitude(x=z, dim=1)[rows, t]
    picked = np.abs(log_softmax(z, 1)[rows, t])
    own = np.sum(counts["log_softmax"] * magnitude + counts["mean"] * picked) / n
    return np.asarray(carried + own)


def _loss_grad_error(forward: _Forward, g: float) -> Array:
    """E of ∂L/∂z: the logits' errors through softmax's Jacobian, plus the larger of refcnn's
    and torch's own roundings."""
    z, t, eps_z = forward.logits, forward.labels, forward.logit_error
    n, classes = z.shape
    counts = _loss_counts(classes, n)
    s, y = softmax(z, 1), _onehot(t, z.shape)
    weight = abs(g) / n
    carried = weight * (s * eps_z + s * np.sum(s * eps_z, axis=1, keepdims=True))
    refcnn = weight * (
        counts["softmax"] * SOFTMAX_MODEL.forward_magnitude(x=z, dim=1)
        + counts["difference"] * (s + y)
    )
    assert LOG_SOFTMAX_MODEL.backward_magnitudes is not None
    nll_grad = -weight * y  # torch: ∂L/∂log s = −g/N at the targets
    torch_own = LOG_SOFTMAX_MODEL.backward_magnitudes(nll_grad, x=z, dim=1)["x"]
    return np.asarray(carried + np.maximum(refcnn, counts["torch_backward"] * torch_own))


def _backward(forward: _Forward, g: float) -> tuple[dict[str, Array], dict[str, Array]]:
    """({input: E of its gradient}, {input: allowance A for undecided branches}).

    A is absolute (not in units of u): the gradient that an undecided relu unit may pass or
    block, or an undecided window may send to any of its candidates, carried down like E.
    """
    net, labels = forward.net, forward.labels
    net.last_layer.forward(forward.logits, labels)
    grad = net.last_layer.backward(np.asarray(g))  # G of the logits (float64)
    error = _loss_grad_error(forward, g)
    allowance = np.zeros_like(error)
    errors: dict[str, Array] = {}
    allowances: dict[str, Array] = {}
    names = {where: name for name, where in type(net).GRADIENTS.items()}  # (layer, "dW") -> W1
    for name, layer in reversed(net.layers.items()):
        a, eps_a, size = np.asarray(layer.x, np.float64), forward.into[name], np.abs(grad)
        if isinstance(layer, Dropout):
            scale = _dropout_scale(layer, a)
            error, allowance = scale * error + DROPOUT_ROUNDINGS * scale * size, scale * allowance
        elif isinstance(layer, Relu):
            undecided = forward.undecided[name]
            passes = (a > 0) | undecided
            error, allowance = error * passes, allowance * passes + size * undecided
        elif isinstance(layer, MaxPooling):
            candidates = forward.undecided[name]  # False outside undecided windows
            error = max_pool2d_backward(error, a, (2, 2), 2) + candidates * _spread(error, a.shape)
            allowance = max_pool2d_backward(allowance, a, (2, 2), 2) + candidates * _spread(
                allowance + size, a.shape
            )
        elif isinstance(layer, Affine):
            weight, n = np.abs(layer.W), a.shape[0]
            rows, row_errors = np.abs(a).reshape(n, -1), eps_a.reshape(n, -1)
            errors[names[(name, "dW")]] = rows.T @ error + row_errors.T @ size + n * (rows.T @ size)
            errors[names[(name, "db")]] = np.sum(error, axis=0) + n * np.sum(size, axis=0)
            allowances[names[(name, "dW")]] = rows.T @ allowance
            allowances[names[(name, "db")]] = np.sum(allowance, axis=0)
            error = (error @ weight.T + weight.shape[1] * (size @ weight.T)).reshape(a.shape)
            allowance = (allowance @ weight.T).reshape(a.shape)
        elif isinstance(layer, Convolution):
            weight, bias = np.abs(layer.W), np.abs(np.asarray(layer.b))
            geometry = (layer.stride, layer.pad)
            carried_x, carried_w, carried_b = conv2d_backward(
                error, np.abs(a), weight, bias, *geometry
            )
            _, stored_w, _ = conv2d_backward(size, eps_a, weight, bias, *geometry)
            own_x, own_w, own_b = conv2d_backward(size, np.abs(a), weight, bias, *geometry)
            allowed_x, allowed_w, allowed_b = conv2d_backward(
                allowance, np.abs(a), weight, bias, *geometry
            )
            k_x = weight.shape[0] * weight.shape[2] * weight.shape[3]
            k_w = size.shape[0] * size.shape[2] * size.shape[3]
            errors[names[(name, "dW")]] = carried_w + stored_w + k_w * own_w
            errors[names[(name, "db")]] = np.asarray(carried_b) + k_w * np.asarray(own_b)
            allowances[names[(name, "dW")]] = allowed_w
            allowances[names[(name, "db")]] = np.asarray(allowed_b)
            error, allowance = carried_x + k_x * own_x, allowed_x
        else:  # pragma: no cover
            raise TypeError(f"no error model for layer {name} ({type(layer).__name__})")
        grad = layer.backward(grad)
    errors["x"], allowances["x"] = error, allowance
    return errors, allowances


def _split(arrays: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Formula passes inputs and keyword arguments together; split them again."""
    kwargs = {k: v for k, v in arrays.items() if k in ("stride", "pad", "dropout_ratio")}
    return {k: v for k, v in arrays.items() if k not in kwargs}, kwargs


def _loss_magnitude(**arrays: Any) -> Array:
    """ε/C of the loss, by the Lipschitz rules (valid whatever the branches)."""
    inputs, kwargs = _split(arrays)
    return np.asarray(_loss_error(_forward(inputs, kwargs, None)) / _largest_count(inputs, kwargs))


def _grad_magnitudes(upstream: Array, **arrays: Any) -> dict[str, Array]:
    """E/C of every gradient with every branch as float64 takes it (no allowance): what
    :class:`_NetworkModel` uses when no branch is undecided."""
    inputs, kwargs = _split(arrays)
    errors, _ = _backward(_forward(inputs, kwargs, 0.0), float(upstream))
    largest = _largest_count(inputs, kwargs)
    return {name: error / largest for name, error in errors.items()}


def _roundings(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
    largest = _largest_count(inputs, kwargs)
    return {"out": largest, **{f"grad_{name}": largest for name in inputs if name[0] in "xWb"}}


@dataclass(frozen=True)
class _NetworkModel(Formula):
    """tolerance.Formula (γ_C·ε/C, see the module docstring), whose backward bounds add the
    allowance A for relu units and pool windows whose branch the dtype's rounding leaves
    undecided (zero almost always). The branches depend on the dtype, so the backward is
    computed here; ``backward_magnitudes`` is the same computation without allowance."""

    def backward_bounds(
        self,
        spec: OpSpec,
        inputs: Mapping[str, Any],
        kwargs: Mapping[str, Any],
        upstream: Any,
        dtype: DTypeLike,
    ) -> dict[str, Any]:
        wide = as_float64(inputs)
        largest = _largest_count(wide, kwargs)
        forward = _forward(wide, kwargs, _margin(dtype, largest))
        errors, allowances = _backward(forward, float(np.asarray(upstream, np.float64)))
        factor = gamma(largest, dtype) / largest
        return {name: np.asarray(factor * errors[name] + allowances[name]) for name in errors}


NETWORK_MODEL = _NetworkModel(
    roundings=_roundings,
    forward_magnitude=_loss_magnitude,
    backward_magnitudes=_grad_magnitudes,
    degree=0,  # the storage roundings of x and W are inside ε (STORED_FACTORS)
)


# --- the entries ---------------------------------------------------------------------------------

_NOT_APPLICABLE = {
    "adjoint": "nonlinear: relu, max pooling and the softmax loss",
    "batch_slices": "the loss is the mean over the batch: one scalar, no per-sample output",
}


def _error_cases(valid: Mapping[str, Any]) -> tuple[ErrorCase, ...]:
    x = valid["x"]
    return (
        ErrorCase("x is 3-D", {**valid, "x": ArraySpec(x.shape[1:])}, ValueError, r"x must be 4-D"),
        ErrorCase(
            "integer x",
            {**valid, "x": ArraySpec(x.shape, "int64")},
            TypeError,
            r"x must have a floating dtype",
        ),
        ErrorCase(
            "class index out of range",
            {**valid, "t": np.array([0.0, 3.0])},
            ValueError,
            r"t holds class 3, but the logits have 3 classes \(0 \.\. 2\)",
        ),
        ErrorCase(
            "fractional class index",
            {**valid, "t": np.array([0.0, 1.5])},
            ValueError,
            r"t must hold class indices \(whole numbers\)",
        ),
        ErrorCase(
            "t of the wrong length",
            {**valid, "t": np.array([0.0, 1.0, 2.0])},
            ValueError,
            r"t.shape=\(3,\), but the logits \(2, 3\) need t of \(2,\)",
        ),
        ErrorCase(
            "W1 with the wrong channels",
            {**valid, "W1": ArraySpec((valid["W1"].shape[0], 2, *valid["W1"].shape[2:]))},
            ValueError,
            r"W1.shape=.* but this \w+ expects",
        ),
        ErrorCase(
            "float32 bias with float64 x",
            {**valid, "b1": ArraySpec(valid["b1"].shape, "float32")},
            TypeError,
            r"b1.dtype=float32 differs from the network's dtype float64",
        ),
        ErrorCase(
            "grad_out not a scalar (backward)",
            {**valid, "grad_out": ArraySpec((1,))},
            ValueError,
            r"grad_out must be 0-D \(the loss is a scalar\)",
        ),
    )


def _valid_arguments(layout: Callable[[Params], Layout], params: Params) -> dict[str, Any]:
    shapes, kwargs = layout(params)
    arrays: dict[str, Any] = {
        name: ArraySpec(shape) for name, shape in shapes.items() if shape is not None
    }
    arrays["t"] = np.array([0.0, 2.0])
    for mask in ("mask1", "mask2"):
        if mask in arrays:
            arrays[mask] = np.ones(shapes[mask] or ())
    return {**arrays, **kwargs}


_SIMPLE_EXAMPLE = {
    "batch": 2,
    "channels": 1,
    "filters": 2,
    "filter_size": 5,
    "pad": 0,
    "stride": 1,
    "input_size": (6, 7),
    "hidden": 4,
    "classes": 3,
    "values_seed": 0,
}
_DEEP_EXAMPLE = {
    "batch": 2,
    "channels": 1,
    "filters": (1, 2, 2),
    "input_size": (4, 5),
    "hidden": 4,
    "classes": 3,
    "p": 0.5,
    "values_seed": 0,
}
_BOOK_SIZES = {  # SimpleConvNet's defaults in refcnn.networks (the book's, scaled down)
    **_SIMPLE_EXAMPLE,
    "batch": 3,
    "filters": 3,
    "input_size": (10, 10),
    "hidden": 10,
}
# Checks that run on the larger edge cases (the full Jacobian would take minutes there).
_ALL_BUT_FULL_JACOBIAN = (
    "directional_fd",
    "float32_tracks_float64",
    "upstream_linearity",
    "no_mutation",
    "repeatable",
    "matches_torch",
)


def _filled(layout: Callable[[Params], Layout], params: Params, **values: float) -> dict[str, Any]:
    """Arrays of one value each, shaped by the layout: {"x": 0.0} -> {"x": zeros of x's shape}."""
    shapes, _ = layout(params)
    return {name: np.full(shapes[name] or (), value) for name, value in values.items()}


_SIMPLE_EDGE_CASES = (
    EdgeCase(
        "the default sizes: 1×10×10 input, 3 filters 5×5, hidden 10",
        _BOOK_SIZES,
        checks=_ALL_BUT_FULL_JACOBIAN,
    ),
    EdgeCase("one sample, two classes", {**_SIMPLE_EXAMPLE, "batch": 1, "classes": 2}),
    EdgeCase(
        "stride 2, pad 1, 3×3 filters",
        {**_SIMPLE_EXAMPLE, "filter_size": 3, "pad": 1, "stride": 2, "input_size": (7, 8)},
    ),
    # Ties and kinks: only torch's convention can be checked there (both branches allowed).
    EdgeCase(
        "constant image: every pooling window a tie",
        _SIMPLE_EXAMPLE,
        arrays=_filled(_simple_layout, _SIMPLE_EXAMPLE, x=1.0),
        checks=("matches_torch",),
    ),
    EdgeCase(
        "zero image and bias: every relu input on its kink",
        _SIMPLE_EXAMPLE,
        arrays=_filled(_simple_layout, _SIMPLE_EXAMPLE, x=0.0, b1=0.0),
        checks=("matches_torch",),
    ),
)

_DEEP_EDGE_CASES = (
    EdgeCase("the smallest input, 4×4", {**_DEEP_EXAMPLE, "input_size": (4, 4)}),
    EdgeCase(
        "nothing dropped",
        _DEEP_EXAMPLE,
        arrays=_filled(_deep_layout, _DEEP_EXAMPLE, mask1=1.0, mask2=1.0),
    ),
    EdgeCase(
        "every logit dropped: L = log(classes), every gradient 0",
        _DEEP_EXAMPLE,
        arrays=_filled(_deep_layout, _DEEP_EXAMPLE, mask2=0.0),
    ),
    EdgeCase(
        "zero image and first bias: relu inputs on their kink",
        _DEEP_EXAMPLE,
        arrays=_filled(_deep_layout, _DEEP_EXAMPLE, x=0.0, b1=0.0),
        checks=("matches_torch",),
    ),
)


def _entry(**fields: Any) -> OpSpec:
    """What both network entries share."""
    return OpSpec(
        family="network",
        kind="network",
        tolerance=NETWORK_MODEL,
        docs="docs/networks.md",
        not_applicable=_NOT_APPLICABLE,
        # A full Jacobian of a whole network is 2 forwards per parameter: about a second per
        # example for DeepConvNet, so a quarter of the examples (every layer gets its own full
        # Jacobian with all of them; the networks' directional check gets all of them too).
        costly_checks=frozenset({"full_jacobian_fd"}),
        **fields,
    )


SIMPLE_CONV_NET = _entry(
    name="simple_conv_net",
    summary="the book's SimpleConvNet: conv5×5–relu–pool–affine–relu–affine–softmax loss",
    inputs=("x", "t", *SIMPLE_PARAMETERS),
    forward=_simple_forward,
    backward=_simple_backward,
    differentiable=("x", *SIMPLE_PARAMETERS),
    layout=_simple_layout,
    params=lambda budget: _simple_params(budget),
    fill=_fills("simple", SIMPLE_PARAMETERS),
    torch_name="torch.nn.functional conv2d, relu, max_pool2d, linear, cross_entropy",
    torch_forward=_torch_simple,
    edge_cases=_SIMPLE_EDGE_CASES,
    error_cases=_error_cases(_valid_arguments(_simple_layout, _SIMPLE_EXAMPLE)),
)

DEEP_CONV_NET = _entry(
    name="deep_conv_net",
    summary="the book's DeepConvNet: six conv3×3–relu, three pools, affine–relu–dropout–"
    "affine–dropout, softmax loss (given dropout masks)",
    inputs=("x", "t", *DEEP_PARAMETERS, "mask1", "mask2"),
    forward=_deep_forward,
    backward=_deep_backward,
    differentiable=("x", *DEEP_PARAMETERS),
    layout=_deep_layout,
    params=lambda budget: _deep_params(budget),
    fill={**_fills("deep", DEEP_PARAMETERS), "mask1": _keep_mask, "mask2": _keep_mask},
    torch_name="torch.nn.functional conv2d, relu, max_pool2d, linear, x·mask/(1 − p), "
    "cross_entropy",
    torch_forward=_torch_deep,
    edge_cases=_DEEP_EDGE_CASES,
    error_cases=_error_cases(_valid_arguments(_deep_layout, _DEEP_EXAMPLE)),
)

OPS: tuple[OpSpec, ...] = (SIMPLE_CONV_NET, DEEP_CONV_NET)
