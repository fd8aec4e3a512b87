"""Catalog entries of the normalization family: batch norm (training, evaluation and the running
statistics it updates), layer norm and group norm.

The error model shared by every entry is derived once, in the comment above ``_ErrorTerms``; each
entry's roundings say which of its terms it uses.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st
from numpy.typing import NDArray

from refcnn.functional.normalization import (
    batch_norm,
    batch_norm_backward,
    batch_norm_running_stats,
    group_norm,
    group_norm_backward,
    layer_norm,
    layer_norm_backward,
)
from refcnn.testing.opspec import (
    ArraySpec,
    EdgeCase,
    ErrorCase,
    Layout,
    OpSpec,
    Params,
    in_backward_too,
)
from refcnn.testing.tolerance import Formula

Array = NDArray[np.float64]
Axes = tuple[int, ...]

# --- fills: values that make the statistics work ------------------------------------------------
#
# x is z·scale + offset with one offset per statistics group (per channel for batch norm, per
# sample for layer norm, per (sample, group) for group norm) and one scale per group or channel:
# offsets of 1 to 100 against scales of 0.5 to 2, so that x − μ cancels most of x's digits, which
# is where a normalisation loses accuracy (and where torch's Welford variance and refcnn's
# two-pass one differ). Params may pin ``offset`` and ``scale`` (an edge case of severe
# cancellation).
#
# z is N(0, 1) noise STANDARDISED within each group (mean 0, mean square 1), so a group's spread is
# at least its smallest scale. Zero spread is the singular point of a normalisation (x̂'s curvature
# grows like 1/σ², held only by eps), as a kink is for relu: with raw noise, n = 2 values drawn
# 0.0016 apart next to an offset of −17 got a finite-difference step (∝ max|x|) of a twentieth of
# the spread, and Richardson's h² estimate then missed the h⁴ term (observed/bound 1.0001). The
# singular point itself is an edge case (a constant channel).


def _standardized_noise(rng: np.random.Generator, shape: tuple[int, ...], axes: Axes) -> Array:
    noise = rng.standard_normal(shape)
    centred = noise - noise.mean(axis=axes, keepdims=True)
    rms = np.sqrt((centred**2).mean(axis=axes, keepdims=True))
    # a group of one value has no spread to standardise: its noise is kept as drawn
    return np.asarray(np.where(rms > 0, centred / np.where(rms > 0, rms, 1.0), noise))


def _shifted_normal(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    params: Params,
    offset_shape: tuple[int, ...],
    scale_shape: tuple[int, ...],
) -> Array:
    """z·scale + offset; a group is what shares an offset (the axes where offset_shape is 1)."""
    group_axes = tuple(axis for axis, size in enumerate(offset_shape) if size == 1)
    noise = _standardized_noise(rng, shape, group_axes)
    scale = 2.0 ** rng.uniform(-1.0, 1.0, scale_shape)  # 0.5 … 2
    offset = rng.choice((-1.0, 1.0), offset_shape) * 10.0 ** rng.uniform(0.0, 2.0, offset_shape)
    if "offset" in params:
        offset = np.full(offset_shape, float(params["offset"]))
        scale = np.full(scale_shape, float(params["scale"]))
    return np.asarray(noise * scale + offset)


def _per_channel_x(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
    channel = (1, shape[1]) + (1,) * (len(shape) - 2)
    return _shifted_normal(rng, shape, params, channel, channel)


def _per_sample_x(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
    """Layer norm: one offset and scale per sample (the leading axes)."""
    normalized = len(params["normalized"])
    row = shape[: len(shape) - normalized] + (1,) * normalized
    return _shifted_normal(rng, shape, params, row, row)


def _per_group_x(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
    """Group norm: one offset per (sample, group), one scale per channel."""
    n, c, groups = shape[0], shape[1], params["groups"]
    grouped = (n, groups, c // groups, *shape[2:])
    ones = (1,) * (len(shape) - 2)
    offset_shape = (n, groups, 1, *ones)
    scale_shape = (1, groups, c // groups, *ones)
    return _shifted_normal(rng, grouped, params, offset_shape, scale_shape).reshape(shape)


def _running_mean_fill(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
    """±(1 … 100), like the offsets of x: x − running_mean is a real subtraction."""
    return np.asarray(rng.choice((-1.0, 1.0), shape) * 10.0 ** rng.uniform(0.0, 2.0, shape))


def _running_var_fill(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
    """Positive and away from 0: 0.25 … 4."""
    return np.asarray(2.0 ** rng.uniform(-2.0, 2.0, shape))


# --- strategies (constructive: every draw is valid) ---------------------------------------------

_LIMITS: dict[str, dict[str, int]] = {
    "small": {"batch": 4, "channels": 3, "size": 4, "groups": 3},
    "tiny": {"batch": 2, "channels": 2, "size": 2, "groups": 2},
}
_EPS = (1e-5, 1e-3, 0.1)  # torch's default first: shrinking goes there


def _spatial(draw: Any, axes: int, largest: int) -> tuple[int, ...]:
    """0, 1 or 2 spatial sizes; two are never equal (H ≠ W shows a transposed image)."""
    if axes == 0:
        return ()
    height = draw(st.integers(1, largest), label="H" if axes == 2 else "L")
    if axes == 1:
        return (height,)
    widths = [w for w in range(1, largest + 2) if w != height]
    return (height, draw(st.sampled_from(widths), label="W"))


def _affine_and_eps(draw: Any) -> dict[str, Any]:
    return {
        "weight": draw(st.booleans(), label="weight"),
        "bias": draw(st.booleans(), label="bias"),
        "eps": draw(st.sampled_from(_EPS), label="eps"),
    }


@st.composite
def _batch_norm_params(draw: Any, budget: str, training: bool) -> dict[str, Any]:
    """x (N, C), (N, C, L) or (N, C, H, W); training draws N ≥ 2, so n = N·H·W ≥ 2 always."""
    limit = _LIMITS[budget]
    spatial = _spatial(draw, draw(st.integers(0, 2), label="spatial axes"), limit["size"])
    params = {
        "batch": draw(st.integers(2 if training else 1, limit["batch"]), label="N"),
        "channels": draw(st.integers(1, limit["channels"]), label="C"),
        "spatial": spatial,
        **_affine_and_eps(draw),
    }
    if training:  # the running buffers do not change the output; torch takes them or None
        params["running_stats"] = draw(st.booleans(), label="running stats given")
    return {**params, "training": training}


@st.composite
def _running_stats_params(draw: Any, budget: str) -> dict[str, Any]:
    limit = _LIMITS[budget]
    spatial = _spatial(draw, draw(st.integers(0, 2), label="spatial axes"), limit["size"])
    momentum = st.floats(0.0, 1.0, exclude_min=True, allow_subnormal=False)
    return {
        "batch": draw(st.integers(2, limit["batch"]), label="N"),
        "channels": draw(st.integers(1, limit["channels"]), label="C"),
        "spatial": spatial,
        "momentum": draw(momentum, label="momentum"),
    }


@st.composite
def _layer_norm_params(draw: Any, budget: str) -> dict[str, Any]:
    """Leading (sample) axes, then the normalised ones; the last normalised size is ≥ 2."""
    limit = _LIMITS[budget]
    leading_axes = draw(st.integers(0, 2), label="leading axes")
    leading = tuple(
        draw(st.integers(1, limit["batch"]), label="leading size") for _ in range(leading_axes)
    )
    normalized_axes = draw(st.integers(1, 3 if budget == "small" else 2), label="normalized axes")
    last = draw(st.integers(2, limit["size"]), label="last normalized size")
    normalized = [last]
    if normalized_axes >= 2:
        normalized.insert(
            0,
            draw(
                st.sampled_from([s for s in range(1, limit["size"] + 2) if s != last]),
                label="second-to-last normalized size",
            ),
        )
    if normalized_axes == 3:
        normalized.insert(0, draw(st.integers(1, limit["channels"]), label="first normalized size"))
    return {"leading": leading, "normalized": tuple(normalized), **_affine_and_eps(draw)}


@st.composite
def _group_norm_params(draw: Any, budget: str) -> dict[str, Any]:
    """C = G·(C/G); when there is no spatial extent C/G ≥ 2, so every group has n ≥ 2 values."""
    limit = _LIMITS[budget]
    spatial = _spatial(draw, draw(st.integers(0, 2), label="spatial axes"), limit["size"])
    smallest_group = 2 if math.prod(spatial) == 1 else 1
    return {
        "batch": draw(st.integers(1, limit["batch"]), label="N"),
        "groups": draw(st.integers(1, limit["groups"]), label="G"),
        "channels_per_group": draw(
            st.integers(smallest_group, max(smallest_group, limit["channels"])), label="C/G"
        ),
        "spatial": spatial,
        **_affine_and_eps(draw),
    }


# --- the error model ----------------------------------------------------------------------------
#
# Notation, for ONE group of n values sharing their statistics (all in exact arithmetic):
#   μ = mean(x), d = x − μ, v = mean(d²), r = 1/sqrt(v + eps), x̂ = d·r, y = γ·x̂ + β
#   u the unit roundoff, γ_k = k·u/(1 − k·u); γ = 1 and β = 0 when absent. FIRST ORDER in u.
#
# Mean. n − 1 additions and one division: |δμ| ≤ γ_n·mean|x|.
# Variance. refcnn: two passes (d = x − μ̂, then mean(d²)); torch: a two-pass sum (batch norm's
#   CPU kernel) or a Welford/Chan cascade (layer and group norm). Two-pass: d² (1), the sum and
#   the division (n), the subtraction (1): γ_{n+3}·v; μ's error drops out to first order (Σd = 0).
#   Welford's running means M_k are off by up to γ_k·mean|x| and multiply the centred values
#   x_k − M_k, which adds up to 2·γ_n·mean(|d|·(|x| + mean|x|)) (the order of Chan, Golub &
#   LeVeque's 1983 estimate for Welford, relative error ≈ n·κ·u with κ = ‖x‖/‖d‖; an estimate,
#   not a proof, for Welford). One magnitude covers both:
#       |δv| ≤ γ_{n+3}·E,   E = v + 2·mean(|d|·(|x| + mean|x|))
# r. + eps, √, 1/· (3 roundings) and δv propagated (∂r/∂v = −r³/2):
#       |δr| ≤ r·(γ_3 + γ_{n+3}·E·r²/2) ≤ γ_{n+3}·r·ρ,   ρ = 1 + E·r²/2
# x̂. refcnn: fl(fl(x − μ̂)·r̂); torch: x·r − μ·r (its α·x + β' form, which cancels AFTER the
#   multiplication, so |x|·r appears, not |d|·r): r·|δμ| + 2u·|x̂| + r·u·(|x| + |μ|) + |d|·|δr|:
#       |δx̂| ≤ γ_{n+5}·X,   X = r·(|x| + mean|x|) + ρ·|x̂|
# y = γ·x̂ + β (2 roundings; |x̂| ≤ X):  |δy| ≤ γ_{n+7}·(|γ|·X + |β|).
#   One rounding of each input, as finite differences make, moves y by at most u·M: x's moves
#   x̂ by Σ_j |∂x̂_i/∂x_j|·u|x_j| ≤ u·(r·|x_i| + r·mean|x| + |x̂_i|·r²·mean(|d|·|x|)), within
#   u·X (E/2 ≥ mean(|d|·|x|)), γ's adds u·|γ·x̂| and β's u·|β|: disjoint parts of M, degree 1.
# ∂L/∂x = r·T, T = ĝ − A − x̂·B, ĝ = g·γ, A = mean(ĝ), B = mean(ĝ·x̂) (torch: the same terms, as
#   (g − mean g − d·r²·mean(d·g))·γ·r). ĝ (1), A (n), B (n + 1, plus x̂'s error), x̂·B (1), two
#   subtractions (2), ·r (1) and r's error ρ. With T_M = |ĝ| + mean|ĝ| + |x̂|·mean|ĝ·x̂|:
#       |δ(∂L/∂x)| ≤ γ_{n+5}·r·[(1 + ρ)·T_M + X·mean|ĝ·x̂| + |x̂|·mean(|ĝ|·(|x̂| + X))]
#   (own roundings ≤ γ_{n+4}·T_M, r's γ_{n+3}·ρ·T_M, x̂'s and B's errors γ_{n+5}·(…)). ρ enters
#   three times (r, and the x̂ in x̂·B and in B): torch's r² is covered by the same terms.
# ∂L/∂γ = Σ g·x̂ over n_γ values (N·H·W for batch and group norm, the number of samples for layer
#   norm): γ_{n_γ}·Σ|g·x̂| + γ_{n+5}·Σ|g|·X ≤ γ_{max(n_γ, n+5)}·Σ|g|·(|x̂| + X).
# ∂L/∂β = Σ g: γ_{n_γ}·Σ|g|.
# Batch norm in evaluation: μ, v are the running statistics (inputs, exact); no reductions:
#   r (3), x − μ (1; torch's x·r − μ·r cancels after scaling: r·(|x| + |μ|)), ·r (1), ·γ, +β (2):
#       |δy| ≤ γ_7·(|γ|·r·(|x| + |μ|) + |β|);   ∂L/∂x = g·γ·r: γ_5·|g·γ|·r
#       ∂L/∂γ: γ_{max(n_γ, 5)}·Σ|g|·(|x̂| + r·(|x| + |μ|));   ∂L/∂β: γ_{n_γ}·Σ|g|
#   Inputs rounded once move y by u·|γ|·r·|x| (x), u·|γ·x̂| (γ) and u·|β|: within 2u·M, degree 2.


@dataclass(frozen=True)
class _ErrorTerms:
    """The model's quantities for x̂ over ``axes``, float64, broadcastable against x."""

    x_hat: Array  # x̂
    inv_std: Array  # r
    rho: Array  # ρ = 1 + E·r²/2: |δr| ≤ γ·r·ρ
    x_hat_error: Array  # X = r·(|x| + mean|x|) + ρ·|x̂|: |δx̂| ≤ γ·X
    variance_error: Array  # E = v + 2·mean(|d|·(|x| + mean|x|)): |δv| ≤ γ·E


def _variance_error(x: Array, axes: Axes) -> tuple[Array, Array]:
    """(v, E) over ``axes``, kept as size-1 axes."""
    centred = x - x.mean(axis=axes, keepdims=True)
    variance = (centred**2).mean(axis=axes, keepdims=True)
    mean_abs = np.abs(x).mean(axis=axes, keepdims=True)
    spread = (np.abs(centred) * (np.abs(x) + mean_abs)).mean(axis=axes, keepdims=True)
    return variance, variance + 2.0 * spread


def _error_terms(x: Array, axes: Axes, eps: float) -> _ErrorTerms:
    variance, variance_error = _variance_error(x, axes)
    inv_std = 1.0 / np.sqrt(variance + eps)
    x_hat = (x - x.mean(axis=axes, keepdims=True)) * inv_std
    mean_abs = np.abs(x).mean(axis=axes, keepdims=True)
    rho = 1.0 + variance_error * inv_std**2 / 2.0
    x_hat_error = inv_std * (np.abs(x) + mean_abs) + rho * np.abs(x_hat)
    return _ErrorTerms(x_hat, inv_std, rho, x_hat_error, variance_error)


def _abs_or(value: Array | None, default: float) -> Array | float:
    return default if value is None else np.abs(value)


def _grad_x_magnitude(terms: _ErrorTerms, grad_x_hat: Array, axes: Axes) -> Array:
    """r·[(1 + ρ)·T_M + X·mean|ĝ·x̂| + |x̂|·mean(|ĝ|·(|x̂| + X))], ĝ already absolute."""
    x_hat = np.abs(terms.x_hat)
    mean_g = grad_x_hat.mean(axis=axes, keepdims=True)
    mean_g_x_hat = (grad_x_hat * x_hat).mean(axis=axes, keepdims=True)
    mean_g_error = (grad_x_hat * (x_hat + terms.x_hat_error)).mean(axis=axes, keepdims=True)
    t_m = grad_x_hat + mean_g + x_hat * mean_g_x_hat
    return np.asarray(
        terms.inv_std
        * ((1.0 + terms.rho) * t_m + terms.x_hat_error * mean_g_x_hat + x_hat * mean_g_error)
    )


def _affine_magnitudes(
    grad_out: Array, terms_x_hat: Array, terms_error: Array, broadcast_axes: Axes, shape: Any
) -> dict[str, Array]:
    """∂L/∂γ: Σ|g|·(|x̂| + X); ∂L/∂β: Σ|g|; summed over ``broadcast_axes``."""
    g = np.abs(grad_out)
    return {
        "weight": (g * (np.abs(terms_x_hat) + terms_error)).sum(axis=broadcast_axes).reshape(shape),
        "bias": g.sum(axis=broadcast_axes).reshape(shape),
    }


# --- batch norm ---------------------------------------------------------------------------------


def _channel_shape(x: Any) -> tuple[int, ...]:
    return (1, int(x.shape[1])) + (1,) * (int(x.ndim) - 2)


def _channel_axes(x: Any) -> Axes:
    return (0, *range(2, x.ndim))


def _batch_norm_layout(params: Mapping[str, Any]) -> Layout:
    c = params["channels"]
    running = (c,) if params.get("running_stats", True) else None
    shapes: dict[str, tuple[int, ...] | None] = {
        "x": (params["batch"], c, *params["spatial"]),
        "running_mean": running,
        "running_var": running,
        "weight": (c,) if params["weight"] else None,
        "bias": (c,) if params["bias"] else None,
    }
    return shapes, {"training": params["training"], "eps": params["eps"]}


def _per_channel_count(x: Any) -> int:
    return int(x.size // x.shape[1])


def _batch_norm_roundings(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
    """n = N·H·W values per channel; see the error model above."""
    n = _per_channel_count(inputs["x"])
    if kwargs["training"]:
        return {
            "out": n + 7,
            "grad_x": n + 5,
            "grad_weight": n + 5,  # max(n_γ, n + 5) with n_γ = n: the same N·H·W values
            "grad_bias": n,
        }
    return {"out": 7, "grad_x": 5, "grad_weight": max(n, 5), "grad_bias": n}


def _eval_terms(
    x: Array, running_mean: Array, running_var: Array, eps: float
) -> tuple[Array, Array, Array]:
    """(x̂, r, r·(|x| + |μ|)) with the running statistics, per channel."""
    shape = _channel_shape(x)
    inv_std = 1.0 / np.sqrt(running_var.reshape(shape) + eps)
    mean = running_mean.reshape(shape)
    return (x - mean) * inv_std, inv_std, inv_std * (np.abs(x) + np.abs(mean))


def _batch_norm_out_magnitude(
    x: Array,
    running_mean: Array | None,
    running_var: Array | None,
    weight: Array | None,
    bias: Array | None,
    training: bool,
    eps: float,
) -> Array:
    """Training: |γ|·X + |β|; evaluation: |γ|·r·(|x| + |μ|) + |β| (the model above)."""
    shape = _channel_shape(x)
    gamma = _abs_or(None if weight is None else weight.reshape(shape), 1.0)
    beta = _abs_or(None if bias is None else bias.reshape(shape), 0.0)
    if training:
        error = _error_terms(x, _channel_axes(x), eps).x_hat_error
    else:
        assert running_mean is not None and running_var is not None
        error = _eval_terms(x, running_mean, running_var, eps)[2]
    return np.asarray(gamma * error + beta)


def _batch_norm_grad_magnitudes(
    grad_out: Array,
    x: Array,
    running_mean: Array | None,
    running_var: Array | None,
    weight: Array | None,
    bias: Array | None,
    training: bool,
    eps: float,
) -> dict[str, Array]:
    shape, axes = _channel_shape(x), _channel_axes(x)
    gamma = _abs_or(None if weight is None else weight.reshape(shape), 1.0)
    grad_x_hat = np.abs(grad_out) * gamma  # |ĝ|
    if training:
        terms = _error_terms(x, axes, eps)
        grad_x = _grad_x_magnitude(terms, grad_x_hat, axes)
        x_hat, x_hat_error = terms.x_hat, terms.x_hat_error
    else:
        assert running_mean is not None and running_var is not None
        x_hat, inv_std, x_hat_error = _eval_terms(x, running_mean, running_var, eps)
        grad_x = grad_x_hat * inv_std  # |g·γ|·r
    c = (x.shape[1],)
    return {"x": grad_x, **_affine_magnitudes(grad_out, x_hat, x_hat_error, axes, c)}


def _torch_batch_norm(
    x: Any, running_mean: Any, running_var: Any, weight: Any, bias: Any, **kwargs: Any
) -> Any:
    """The adapter hands over fresh tensors: torch's in-place buffer update touches only them."""
    import torch.nn.functional as F

    return F.batch_norm(x, running_mean, running_var, weight, bias, **kwargs)


def _bn_params(training: bool, **overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "batch": 3,
        "channels": 2,
        "spatial": (2, 3),
        "weight": True,
        "bias": True,
        "eps": 1e-5,
        "training": training,
    }
    if training:
        params["running_stats"] = True
    return {**params, **overrides}


def _bn_error(case_id: str, error: type[Exception], match: str, **arguments: Any) -> ErrorCase:
    defaults: dict[str, Any] = {
        "x": ArraySpec((4, 3, 2, 2)),
        "running_mean": ArraySpec((3,)),
        "running_var": ArraySpec((3,)),
    }
    return ErrorCase(case_id, {**defaults, **arguments}, error, match)


def _constant_channel_x() -> Array:
    """x (3, 2, 2): channel 0 constant (σ² = 0), channel 1 varied."""
    x = np.empty((3, 2, 2))
    x[:, 0, :] = 5.0
    x[:, 1, :] = np.array([[0.3, -1.2], [2.1, 0.4], [-0.7, 1.5]])
    return x


_BN_FILL = {
    "x": _per_channel_x,
    "running_mean": _running_mean_fill,
    "running_var": _running_var_fill,
}
_BN_TOLERANCE_TRAIN = Formula(
    roundings=_batch_norm_roundings,
    forward_magnitude=_batch_norm_out_magnitude,
    backward_magnitudes=_batch_norm_grad_magnitudes,
    degree=1,
)

BATCH_NORM_TRAIN = OpSpec(
    name="batch_norm_train",
    not_applicable={
        "adjoint": "nonlinear in x: divides by the batch's standard deviation",
        "batch_slices": "the batch statistics couple the samples",
    },
    family="normalization",
    kind="layer",
    summary="batch norm, training mode: per-channel batch statistics (biased variance), full "
    "backward through the mean and the variance",
    inputs=("x", "running_mean", "running_var", "weight", "bias"),
    forward=batch_norm,
    backward=batch_norm_backward,
    differentiable=("x", "weight", "bias"),
    layout=_batch_norm_layout,
    params=lambda budget: _batch_norm_params(budget, training=True),
    tolerance=_BN_TOLERANCE_TRAIN,
    fill=_BN_FILL,
    torch_name="torch.nn.functional.batch_norm (training=True)",
    torch_forward=_torch_batch_norm,
    docs="docs/normalization.md",
    edge_cases=(
        EdgeCase(
            "(N, C) with N = 2: the fewest values training allows",
            _bn_params(True, batch=2, spatial=()),
        ),
        EdgeCase("batch 1, n = H·W values per channel", _bn_params(True, batch=1, spatial=(1, 3))),
        EdgeCase("(N, C, L)", _bn_params(True, spatial=(5,))),
        EdgeCase(
            "no affine, no running buffers",
            _bn_params(True, weight=False, bias=False, running_stats=False),
        ),
        EdgeCase(
            # eps 1e-3: near σ = 0 the curvature scale is sqrt(eps), which must stay far above
            # the finite-difference step (2.4e-5 here)
            "a constant channel: σ² = 0, only eps keeps r finite",
            _bn_params(True, batch=3, spatial=(2,), eps=1e-3),
            arrays={"x": _constant_channel_x()},
        ),
        EdgeCase(
            # the rounding bounds under 1e4:1 cancellation; finite differences are left out: their
            # step (∝ max|x| = 1000) is 5% of the spread, beyond Richardson's h² estimate
            "severe cancellation: offset 1000, scale 0.1",
            _bn_params(True, batch=4, offset=1000.0, scale=0.1),
            checks=("matches_torch", "float32_tracks_float64"),
        ),
    ),
    error_cases=(
        _bn_error(
            "x is 1-D",
            ValueError,
            r"x must be at least 2-D \(N, C, \*\), got x.shape=\(3,\)",
            x=ArraySpec((3,)),
            training=True,
        ),
        _bn_error(
            "integer x",
            TypeError,
            r"x must have a floating dtype, got x.dtype=int64",
            x=ArraySpec((4, 3), "int64"),
            training=True,
        ),
        _bn_error(
            "one value per channel in training (N = 1, no spatial extent)",
            ValueError,
            r"Expected more than 1 value per channel when training.*x.shape=\(1, 3\)",
            x=ArraySpec((1, 3)),
            training=True,
        ),
        _bn_error(
            "one value per channel in training (1x1 image)",
            ValueError,
            r"Expected more than 1 value per channel when training.*x.shape=\(1, 3, 1, 1\)",
            x=ArraySpec((1, 3, 1, 1)),
            training=True,
        ),
        _bn_error(
            "momentum None (torch: TypeError too)",
            TypeError,
            r"momentum must be a real number, got momentum=None",
            momentum=None,
            training=True,
        ),
        _bn_error(
            "eps 0 in training",
            ValueError,
            r"eps must be positive in training \(as torch\), got eps=0.0",
            eps=0.0,
            training=True,
        ),
        _bn_error(
            "eps a string", TypeError, r"eps must be a real number, got eps='0.1'", eps="0.1"
        ),
        _bn_error(
            "running_mean of the wrong length",
            ValueError,
            r"running_mean.shape=\(4,\), but x.shape=\(4, 3, 2, 2\) has C=3",
            running_mean=ArraySpec((4,)),
            training=True,
        ),
        _bn_error(
            "only one running buffer",
            ValueError,
            r"running_mean and running_var must both be None or both be arrays",
            running_var=None,
            training=True,
        ),
        _bn_error(
            "weight of the wrong length",
            ValueError,
            r"weight.shape=\(2,\), but x.shape=\(4, 3, 2, 2\) has C=3",
            weight=ArraySpec((2,)),
            training=True,
        ),
        _bn_error(
            "bias of the wrong length",
            ValueError,
            r"bias.shape=\(4,\)",
            bias=ArraySpec((4,)),
            training=True,
        ),
        _bn_error(
            "float32 x with float64 weight",
            TypeError,
            r"weight.dtype=float64 differs from x.dtype=float32",
            x=ArraySpec((4, 3, 2, 2), "float32"),
            running_mean=ArraySpec((3,), "float32"),
            running_var=ArraySpec((3,), "float32"),
            weight=ArraySpec((3,)),
            training=True,
        ),
        _bn_error(
            "grad_out of the wrong shape (backward)",
            ValueError,
            r"grad_out.shape=\(4, 3, 2\), but the output has x's shape \(4, 3, 2, 2\)",
            grad_out=ArraySpec((4, 3, 2)),
            training=True,
        ),
    ),
)

BATCH_NORM_EVAL = OpSpec(
    name="batch_norm_eval",
    per_sample=lambda sample: ("x",),
    family="normalization",
    kind="layer",
    summary="batch norm, evaluation mode: the running statistics as constants, the layer's own "
    "weight and bias",
    inputs=("x", "running_mean", "running_var", "weight", "bias"),
    forward=batch_norm,
    backward=batch_norm_backward,
    differentiable=("x", "weight", "bias"),
    linear_in=("x",),  # y = x·γ·r + (β − μ·γ·r): affine in x
    layout=_batch_norm_layout,
    params=lambda budget: _batch_norm_params(budget, training=False),
    tolerance=Formula(
        roundings=_batch_norm_roundings,
        forward_magnitude=_batch_norm_out_magnitude,
        backward_magnitudes=_batch_norm_grad_magnitudes,
        degree=2,
    ),
    fill=_BN_FILL,
    torch_name="torch.nn.functional.batch_norm (training=False)",
    torch_forward=_torch_batch_norm,
    docs="docs/normalization.md",
    edge_cases=(
        EdgeCase("batch 1 (allowed in evaluation)", _bn_params(False, batch=1, spatial=())),
        EdgeCase("eps 0 (allowed in evaluation)", _bn_params(False, eps=0.0)),
        EdgeCase("no affine", _bn_params(False, weight=False, bias=False, spatial=(4,))),
    ),
    error_cases=(
        _bn_error(
            "no running statistics in evaluation",
            ValueError,
            r"running_mean and running_var must be given in evaluation mode",
            running_mean=None,
            running_var=None,
        ),
        _bn_error(
            "negative eps",
            ValueError,
            r"eps must be non-negative \(as torch\), got eps=-1.0",
            eps=-1.0,
        ),
        _bn_error(
            "running_var of the wrong length",
            ValueError,
            r"running_var.shape=\(2,\), but x.shape=\(4, 3, 2, 2\) has C=3",
            running_var=ArraySpec((2,)),
        ),
        _bn_error(
            "2-D running_mean",
            ValueError,
            r"running_mean must be 1-D \(C,\), got running_mean.shape=\(3, 1\)",
            running_mean=ArraySpec((3, 1)),
        ),
        _bn_error(
            "integer running_var",
            TypeError,
            r"running_var must have a floating dtype",
            running_var=ArraySpec((3,), "int64"),
        ),
        _bn_error("training not a bool", TypeError, r"training must be a bool", training="yes"),
    ),
)


# --- the running statistics ---------------------------------------------------------------------


def _running_stats_layout(params: Mapping[str, Any]) -> Layout:
    c = params["channels"]
    shapes: dict[str, tuple[int, ...] | None] = {
        "x": (params["batch"], c, *params["spatial"]),
        "running_mean": (c,),
        "running_var": (c,),
    }
    return shapes, {"momentum": params["momentum"]}


def _running_stats_stacked(x: Any, running_mean: Any, running_var: Any, **kwargs: Any) -> Any:
    """The new (running_mean, running_var) as one (2, C) array: one output per catalog op.
    Keywords pass through, so that a keyword left out takes batch_norm_running_stats's own
    default (the signature below is its, for the checks that read the defaults)."""
    return np.stack(batch_norm_running_stats(x, running_mean, running_var, **kwargs))


_running_stats_stacked.__signature__ = inspect.signature(batch_norm_running_stats)  # type: ignore[attr-defined]


def _running_stats_roundings(
    inputs: Mapping[str, Any], kwargs: Mapping[str, Any]
) -> dict[str, int]:
    """(1 − m) in double then in the dtype (2), ·old (1), + (1); m in the dtype (1), ·new (1):
    the mean's n gives n + 3, the unbiased variance's n + 3 (as v) gives n + 6."""
    return {"out": _per_channel_count(inputs["x"]) + 6}


def _running_stats_magnitude(
    x: Array, running_mean: Array, running_var: Array, momentum: float
) -> Array:
    """(1 − m)·|old| + m·(mean|x| for the mean; E·n/(n − 1) for the unbiased variance)."""
    axes, n = _channel_axes(x), _per_channel_count(x)
    mean_abs = np.abs(x).mean(axis=axes)
    variance_error = _variance_error(x, axes)[1].reshape(-1) * n / (n - 1)
    keep = 1.0 - momentum
    return np.stack(
        [
            keep * np.abs(running_mean) + momentum * mean_abs,
            keep * np.abs(running_var) + momentum * variance_error,
        ]
    )


def _torch_running_stats(x: Any, running_mean: Any, running_var: Any, **kwargs: Any) -> Any:
    """F.batch_norm(training=True) on CLONES of the buffers, which it updates in place."""
    import torch
    import torch.nn.functional as F

    mean, var = running_mean.clone(), running_var.clone()
    F.batch_norm(x, mean, var, training=True, **kwargs)  # momentum: F.batch_norm's default
    return torch.stack([mean, var])


def _rs_params(**overrides: Any) -> dict[str, Any]:
    return {"batch": 3, "channels": 2, "spatial": (2, 3), "momentum": 0.1, **overrides}


def _rs_error(case_id: str, error: type[Exception], match: str, **arguments: Any) -> ErrorCase:
    defaults: dict[str, Any] = {
        "x": ArraySpec((4, 3, 2)),
        "running_mean": ArraySpec((3,)),
        "running_var": ArraySpec((3,)),
    }
    return ErrorCase(case_id, {**defaults, **arguments}, error, match)


BATCH_NORM_RUNNING_STATS = OpSpec(
    name="batch_norm_running_stats",
    not_applicable={
        "directional_fd": "a state update: no gradient flows into running buffers "
        "(none in torch either)",
        "adjoint": "no backward: a state update",
        "batch_slices": "statistics over the whole batch",
    },
    family="normalization",
    kind="state update",
    summary="batch norm's running-statistics update in training: momentum-weighted batch mean "
    "and UNBIASED variance, returned stacked as (2, C)",
    inputs=("x", "running_mean", "running_var"),
    forward=_running_stats_stacked,
    layout=_running_stats_layout,
    params=lambda budget: _running_stats_params(budget),
    tolerance=Formula(
        roundings=_running_stats_roundings, forward_magnitude=_running_stats_magnitude
    ),
    fill={
        "x": _per_channel_x,
        "running_mean": _running_mean_fill,
        "running_var": _running_var_fill,
    },
    torch_name="torch.nn.functional.batch_norm (training=True): the updated running buffers",
    torch_forward=_torch_running_stats,
    docs="docs/normalization.md",
    edge_cases=(
        EdgeCase("momentum 1: the buffers become the batch statistics", _rs_params(momentum=1.0)),
        EdgeCase("momentum 0: the buffers stay as they were", _rs_params(momentum=0.0)),
        EdgeCase("n = 2: the unbiased variance divides by 1", _rs_params(batch=2, spatial=())),
        EdgeCase("batch 1, n = H·W", _rs_params(batch=1, spatial=(3, 2))),
    ),
    error_cases=(
        _rs_error(
            "x is 1-D",
            ValueError,
            r"x must be at least 2-D \(N, C, \*\), got x.shape=\(3,\)",
            x=ArraySpec((3,)),
        ),
        _rs_error(
            "one value per channel",
            ValueError,
            r"Expected more than 1 value per channel.*x.shape=\(1, 3\)",
            x=ArraySpec((1, 3)),
        ),
        _rs_error(
            "momentum above 1",
            ValueError,
            r"momentum must be in \[0, 1\], got momentum=1.5",
            momentum=1.5,
        ),
        _rs_error("momentum None", TypeError, r"momentum must be a real number", momentum=None),
        _rs_error(
            "no running_mean", ValueError, r"running_mean must be an array", running_mean=None
        ),
        _rs_error(
            "running_var of the wrong length",
            ValueError,
            r"running_var.shape=\(4,\)",
            running_var=ArraySpec((4,)),
        ),
    ),
)


# --- layer norm ---------------------------------------------------------------------------------


def _layer_norm_layout(params: Mapping[str, Any]) -> Layout:
    normalized = tuple(params["normalized"])
    shapes: dict[str, tuple[int, ...] | None] = {
        "x": (*params["leading"], *normalized),
        "weight": normalized if params["weight"] else None,
        "bias": normalized if params["bias"] else None,
    }
    # torch also takes an int for one normalised axis; the edge case below passes one
    shape_argument = normalized[0] if params.get("int_shape") else normalized
    return shapes, {"normalized_shape": shape_argument, "eps": params["eps"]}


def _as_shape(normalized_shape: int | tuple[int, ...]) -> tuple[int, ...]:
    """layer_norm accepts an int for a single normalised axis, as torch does."""
    if isinstance(normalized_shape, int):
        return (normalized_shape,)
    return tuple(normalized_shape)


def _layer_norm_axes(x: Any, normalized_shape: int | tuple[int, ...]) -> tuple[Axes, Axes]:
    k = len(_as_shape(normalized_shape))
    return tuple(range(x.ndim - k, x.ndim)), tuple(range(x.ndim - k))


def _layer_norm_roundings(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
    """n = prod(normalized_shape) per sample; n_γ = the number of samples."""
    n = math.prod(_as_shape(kwargs["normalized_shape"]))
    samples = int(inputs["x"].size // n)
    return {"out": n + 7, "grad_x": n + 5, "grad_weight": max(samples, n + 5), "grad_bias": samples}


def _layer_norm_out_magnitude(
    x: Array,
    weight: Array | None,
    bias: Array | None,
    normalized_shape: tuple[int, ...],
    eps: float,
) -> Array:
    """|γ|·X + |β|, γ and β elementwise over the normalised axes."""
    axes, _ = _layer_norm_axes(x, normalized_shape)
    error = _error_terms(x, axes, eps).x_hat_error
    return np.asarray(_abs_or(weight, 1.0) * error + _abs_or(bias, 0.0))


def _layer_norm_grad_magnitudes(
    grad_out: Array,
    x: Array,
    weight: Array | None,
    bias: Array | None,
    normalized_shape: tuple[int, ...],
    eps: float,
) -> dict[str, Array]:
    axes, leading = _layer_norm_axes(x, normalized_shape)
    terms = _error_terms(x, axes, eps)
    grad_x_hat = np.abs(grad_out) * _abs_or(weight, 1.0)
    grad_x = _grad_x_magnitude(terms, grad_x_hat, axes)
    affine = _affine_magnitudes(
        grad_out, terms.x_hat, terms.x_hat_error, leading, _as_shape(normalized_shape)
    )
    return {"x": grad_x, **affine}


def _torch_layer_norm(
    x: Any, weight: Any, bias: Any, normalized_shape: int | tuple[int, ...], **kwargs: Any
) -> Any:
    import torch.nn.functional as F

    return F.layer_norm(x, list(_as_shape(normalized_shape)), weight, bias, **kwargs)


def _ln_params(**overrides: Any) -> dict[str, Any]:
    params = {"leading": (3,), "normalized": (2, 4), "weight": True, "bias": True, "eps": 1e-5}
    return {**params, **overrides}


def _ln_error(case_id: str, error: type[Exception], match: str, **arguments: Any) -> ErrorCase:
    defaults: dict[str, Any] = {"x": ArraySpec((2, 6, 3, 2)), "normalized_shape": (3, 2)}
    return ErrorCase(case_id, {**defaults, **arguments}, error, match)


LAYER_NORM = OpSpec(
    name="layer_norm",
    not_applicable={
        "adjoint": "nonlinear in x: divides by each sample's standard deviation",
    },
    per_sample=lambda sample: (
        ("x",)
        if sample.inputs["x"].ndim > len(_as_shape(sample.kwargs["normalized_shape"]))
        else ()
    ),
    family="normalization",
    kind="layer",
    summary="layer norm: per-sample statistics over the trailing normalized_shape (biased "
    "variance), elementwise affine",
    inputs=("x", "weight", "bias"),
    forward=layer_norm,
    backward=layer_norm_backward,
    differentiable=("x", "weight", "bias"),
    layout=_layer_norm_layout,
    params=lambda budget: _layer_norm_params(budget),
    tolerance=Formula(
        roundings=_layer_norm_roundings,
        forward_magnitude=_layer_norm_out_magnitude,
        backward_magnitudes=_layer_norm_grad_magnitudes,
        degree=1,
    ),
    fill={"x": _per_sample_x},
    torch_name="torch.nn.functional.layer_norm",
    torch_forward=_torch_layer_norm,
    docs="docs/normalization.md",
    edge_cases=(
        EdgeCase(
            "(N, D): the feature axis of a transformer", _ln_params(leading=(4,), normalized=(5,))
        ),
        EdgeCase("every axis normalised: one group", _ln_params(leading=(), normalized=(2, 3, 4))),
        EdgeCase(
            "one value per group: x̂ = 0, y = bias", _ln_params(leading=(2, 3), normalized=(1,))
        ),
        EdgeCase("no affine", _ln_params(weight=False, bias=False)),
        EdgeCase(
            "normalized_shape an int (one axis)",
            _ln_params(leading=(3, 2), normalized=(5,), int_shape=True),
        ),
    ),
    error_cases=(
        _ln_error(
            "grad_out of another shape (backward)",
            ValueError,
            r"grad_out.shape=\(2, 6, 3\), but the output has x's shape \(2, 6, 3, 2\)",
            grad_out=ArraySpec((2, 6, 3)),
        ),
        _ln_error(
            "normalized_shape not the trailing dims",
            ValueError,
            r"normalized_shape=\(3,\) must equal the trailing dimensions of x, got "
            r"x.shape=\(2, 6, 3, 2\)",
            normalized_shape=(3,),
        ),
        _ln_error(
            "normalized_shape longer than x",
            ValueError,
            r"x must be at least 3-D \(\*, 1, 3, 2\), got x.shape=\(3, 2\)",
            x=ArraySpec((3, 2)),
            normalized_shape=(1, 3, 2),
        ),
        _ln_error(
            "empty normalized_shape", ValueError, r"at least one dimension", normalized_shape=()
        ),
        _ln_error(
            "float normalized_shape",
            TypeError,
            r"normalized_shape must be an int or a tuple",
            normalized_shape=2.5,
        ),
        _ln_error(
            "integer x", TypeError, r"x must have a floating dtype", x=ArraySpec((2, 3, 2), "int64")
        ),
        _ln_error(
            "weight of the wrong shape",
            ValueError,
            r"weight.shape=\(2, 3\) must equal normalized_shape=\(3, 2\)",
            weight=ArraySpec((2, 3)),
        ),
        _ln_error(
            "flat weight",
            ValueError,
            r"weight must be 2-D normalized_shape=\(3, 2\), got weight.shape=\(6,\)",
            weight=ArraySpec((6,)),
        ),
        _ln_error(
            "float32 weight with float64 x",
            TypeError,
            r"weight.dtype=float32 differs from x.dtype=float64",
            weight=ArraySpec((3, 2), "float32"),
        ),
        _ln_error(
            "a float inside normalized_shape",
            TypeError,
            r"normalized_shape must be an int or a tuple of ints, got \(3, 2.0\)",
            normalized_shape=(3, 2.0),
        ),
        _ln_error(
            "bias of the wrong shape",
            ValueError,
            r"bias.shape=\(3, 1\) must equal normalized_shape=\(3, 2\)",
            bias=ArraySpec((3, 1)),
        ),
        _ln_error(
            "negative eps (torch: NaN)",
            ValueError,
            r"eps must be non-negative \(torch returns NaN for eps < 0\), got eps=-0.1",
            eps=-0.1,
        ),
        _ln_error(
            "grad_out of the wrong shape (backward)",
            ValueError,
            r"grad_out.shape=\(2, 6, 3\)",
            grad_out=ArraySpec((2, 6, 3)),
        ),
    ),
)


# --- group norm ---------------------------------------------------------------------------------


def _group_norm_layout(params: Mapping[str, Any]) -> Layout:
    c = params["groups"] * params["channels_per_group"]
    shapes: dict[str, tuple[int, ...] | None] = {
        "x": (params["batch"], c, *params["spatial"]),
        "weight": (c,) if params["weight"] else None,
        "bias": (c,) if params["bias"] else None,
    }
    return shapes, {"num_groups": params["groups"], "eps": params["eps"]}


def _group_norm_roundings(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
    """n = (C/G)·H·W per (sample, group); n_γ = N·H·W per channel."""
    x = inputs["x"]
    n = int(x.size // (x.shape[0] * kwargs["num_groups"]))
    per_channel = _per_channel_count(x)
    return {
        "out": n + 7,
        "grad_x": n + 5,
        "grad_weight": max(per_channel, n + 5),
        "grad_bias": per_channel,
    }


def _grouped_terms(x: Array, num_groups: int, eps: float) -> tuple[_ErrorTerms, tuple[int, ...]]:
    n, c = x.shape[:2]
    grouped = x.reshape(n, num_groups, c // num_groups, *x.shape[2:])
    return _error_terms(grouped, tuple(range(2, grouped.ndim)), eps), grouped.shape


def _group_norm_out_magnitude(
    x: Array, weight: Array | None, bias: Array | None, num_groups: int, eps: float
) -> Array:
    """|γ_c|·X + |β_c|, with X from the (sample, group) statistics."""
    shape = _channel_shape(x)
    terms, _ = _grouped_terms(x, num_groups, eps)
    gamma = _abs_or(None if weight is None else weight.reshape(shape), 1.0)
    beta = _abs_or(None if bias is None else bias.reshape(shape), 0.0)
    return np.asarray(gamma * terms.x_hat_error.reshape(x.shape) + beta)


def _group_norm_grad_magnitudes(
    grad_out: Array,
    x: Array,
    weight: Array | None,
    bias: Array | None,
    num_groups: int,
    eps: float,
) -> dict[str, Array]:
    shape = _channel_shape(x)
    terms, grouped_shape = _grouped_terms(x, num_groups, eps)
    gamma = _abs_or(None if weight is None else weight.reshape(shape), 1.0)
    grad_x_hat = (np.abs(grad_out) * gamma).reshape(grouped_shape)
    grad_x = _grad_x_magnitude(terms, grad_x_hat, tuple(range(2, len(grouped_shape))))
    affine = _affine_magnitudes(
        grad_out,
        terms.x_hat.reshape(x.shape),
        terms.x_hat_error.reshape(x.shape),
        _channel_axes(x),
        (x.shape[1],),
    )
    return {"x": grad_x.reshape(x.shape), **affine}


def _torch_group_norm(x: Any, weight: Any, bias: Any, num_groups: int, **kwargs: Any) -> Any:
    """torch 2.13 (CPU) cannot differentiate group_norm w.r.t. bias when weight is None
    ("RuntimeError: tensor does not have a device"); a weight of ones is the same function, and
    x̂·1 is exact, so it stands in for None there (forward and gradients bit-identical)."""
    import torch
    import torch.nn.functional as F

    if weight is None and bias is not None:
        weight = torch.ones(x.shape[1], dtype=x.dtype, device=x.device)
    return F.group_norm(x, num_groups, weight, bias, **kwargs)


def _gn_params(**overrides: Any) -> dict[str, Any]:
    params = {
        "batch": 2,
        "groups": 2,
        "channels_per_group": 2,
        "spatial": (3, 2),
        "weight": True,
        "bias": True,
        "eps": 1e-5,
    }
    return {**params, **overrides}


def _gn_error(case_id: str, error: type[Exception], match: str, **arguments: Any) -> ErrorCase:
    defaults: dict[str, Any] = {"x": ArraySpec((2, 6, 3, 2)), "num_groups": 3}
    return ErrorCase(case_id, {**defaults, **arguments}, error, match)


GROUP_NORM = OpSpec(
    name="group_norm",
    not_applicable={
        "adjoint": "nonlinear in x: divides by each group's standard deviation",
    },
    # one sample with one value per group is an error (torch's rule), so slices must keep more
    per_sample=lambda sample: (
        ("x",) if sample.inputs["x"][0].size // sample.kwargs["num_groups"] > 1 else ()
    ),
    family="normalization",
    kind="layer",
    summary="group norm: statistics per (sample, group of C/G channels) over (C/G, H, W), "
    "per-channel affine",
    inputs=("x", "weight", "bias"),
    forward=group_norm,
    backward=group_norm_backward,
    differentiable=("x", "weight", "bias"),
    layout=_group_norm_layout,
    params=lambda budget: _group_norm_params(budget),
    tolerance=Formula(
        roundings=_group_norm_roundings,
        forward_magnitude=_group_norm_out_magnitude,
        backward_magnitudes=_group_norm_grad_magnitudes,
        degree=1,
    ),
    fill={"x": _per_group_x},
    torch_name="torch.nn.functional.group_norm",
    torch_forward=_torch_group_norm,
    docs="docs/normalization.md",
    edge_cases=(
        EdgeCase(
            "one group: layer norm over (C, H, W), per-channel affine",
            _gn_params(groups=1, channels_per_group=3),
        ),
        EdgeCase("G = C: instance norm", _gn_params(groups=3, channels_per_group=1)),
        EdgeCase(
            "one value per group, batch 2 (torch allows it: y = bias)",
            _gn_params(groups=4, channels_per_group=1, spatial=()),
        ),
        EdgeCase("(N, C, L), no affine", _gn_params(spatial=(5,), weight=False, bias=False)),
    ),
    error_cases=(
        _gn_error(
            "C not divisible by num_groups",
            ValueError,
            r"C=6, x.shape=\(2, 6, 3, 2\)\) must be divisible by num_groups=4",
            num_groups=4,
        ),
        _gn_error(
            "num_groups 0", ValueError, r"num_groups must be >= 1, got num_groups=0", num_groups=0
        ),
        _gn_error("float num_groups", TypeError, r"num_groups must be an int", num_groups=3.0),
        _gn_error(
            "x is 1-D",
            ValueError,
            r"x must be at least 2-D \(N, C, \*\), got x.shape=\(6,\)",
            x=ArraySpec((6,)),
        ),
        _gn_error(
            "integer x", TypeError, r"x must have a floating dtype", x=ArraySpec((2, 6), "int32")
        ),
        _gn_error(
            "weight of the wrong length",
            ValueError,
            r"weight.shape=\(5,\), but x.shape=\(2, 6, 3, 2\) has C=6",
            weight=ArraySpec((5,)),
        ),
        _gn_error(
            "bias of the wrong length",
            ValueError,
            r"bias.shape=\(5,\), but x.shape=\(2, 6, 3, 2\) has C=6",
            bias=ArraySpec((5,)),
        ),
        _gn_error(
            "one sample with one value per group",
            ValueError,
            r"Expected more than 1 value per group.*x.shape=\(1, 4, 1, 1\) with num_groups=4",
            x=ArraySpec((1, 4, 1, 1)),
            num_groups=4,
        ),
        _gn_error(
            "negative eps (torch: NaN)",
            ValueError,
            r"eps must be non-negative \(torch returns NaN for eps < 0\), got eps=-1e-05",
            eps=-1e-5,
        ),
        _gn_error(
            "grad_out of the wrong shape (backward)",
            ValueError,
            r"grad_out.shape=\(2, 6, 2, 3\), but the output has x's shape \(2, 6, 3, 2\)",
            grad_out=ArraySpec((2, 6, 2, 3)),
        ),
    ),
)


def _upstream_like_x(arguments: Mapping[str, Any]) -> Any:
    """An upstream shaped like x (the output), when x is a well-formed array placeholder."""
    x = arguments.get("x")
    return ArraySpec(x.shape) if isinstance(x, ArraySpec) and x.dtype == "float64" else None


# The layers' forward error cases run through their backward too; the running-statistics
# update has no backward.
OPS: tuple[OpSpec, ...] = (
    *(
        dataclasses.replace(spec, error_cases=in_backward_too(spec.error_cases, _upstream_like_x))
        for spec in (BATCH_NORM_TRAIN, BATCH_NORM_EVAL)
    ),
    BATCH_NORM_RUNNING_STATS,
    *(
        dataclasses.replace(spec, error_cases=in_backward_too(spec.error_cases, _upstream_like_x))
        for spec in (LAYER_NORM, GROUP_NORM)
    ),
)
