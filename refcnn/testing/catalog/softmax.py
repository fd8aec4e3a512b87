"""Catalog entries of the softmax family: softmax, log_softmax, softmin along any dimension.

Rounding-error model (tolerance.Formula: |computed − exact| ≤ γ_c·M elementwise), per slice
along ``dim`` of length k, u the unit roundoff, L = LIBRARY_ROUNDINGS (one exp or log call).
Notation: m = max x, z = x − m, s = softmax(x), S = Σ exp(z) (≥ 1: its largest term is exp(0)),
a = |x| + |z| (the two values that carry a relative rounding into an exponent: the input itself,
as finite differences store x ± h·v, and the subtraction x − m), A = Σ_dim s ⊙ a.

softmax, forward: relative errors of ŝ_i, to first order,
    x_i − m rounded                   u·|z_i|, through exp: relative u·|z_i| on exp(z_i)
    exp(z_i)                          L·u
    S = Σ_j exp(z_j) (k terms > 0)    (k − 1)·u, plus the weighted errors of its terms:
                                      Σ_j s_j·(|z_j| + L)·u = L·u + u·Σ_j s_j·|z_j|
    normalisation e/S                 2·u (torch multiplies by the reciprocal 1/S: two roundings)
    one rounding of every input       u·(|x_i| + Σ_j s_j·|x_j|)   (s_i·|x_i|·|∂ log s_i/∂x_j|)
  total ≤ u·[(2L + k + 1) + a_i + A], so c_out = 2L + k + 1 and M_out = s ⊙ (1 + a + A).
  (max is exact; the shift by m is exact too, softmax does not depend on it.)

softmax, backward dx = s ⊙ (g − σ), σ = Σ_dim g ⊙ s. With G = Σ_dim |g| ⊙ s:
    the formula with exact s: g_j·s_j (1), the k-term sum (γ_k in all), g_i − σ (1), s_i·(…) (1):
        ≤ (k + 2)·u·s_i·(|g_i| + G)
    the error ε_j of ŝ_j (|ε_j| ≤ ρ_j = c_out·u·(1 + a_j + A), the forward bound over s_j):
        s_i·ρ_i·(|g_i| + G) + s_i·Σ_j |g_j|·s_j·ρ_j = c_out·u·P_i with
        P = M_out ⊙ (|g| + G) + s ⊙ Σ_dim |g| ⊙ M_out
  P ≥ s ⊙ (|g| + G) (its "1" terms), so c_grad = c_out + k + 2 and M_grad = P.

log_softmax, forward out = z − log S (refcnn) or x − (m + log S) (torch): absolute errors
    Ŝ = S·(1 + θ), |θ| ≤ (k − 1 + L)·u + u·Σ_j s_j·|z_j|  ->  log Ŝ = log S + θ (absolute)
    log call                          L·u·|log S|
    z rounded, z − log S rounded      u·|z_i| + u·|out_i|;  torch: u·(|m| + |log S|) + u·|out_i|
    one rounding of every input       u·(|x_i| + Σ_j s_j·|x_j|)   (∂out_i/∂x_j = δ_ij − s_j)
  every term has coefficient 1 except 1 (k − 1 + L) and |log S| (L + 1), so
  c_out = k + L + 1 and M_ls = 1 + |log S| + |x| + |m| + |z| + |out| + A.

log_softmax, backward dx = g − s ⊙ Σ_dim g, s = exp(out) (refcnn and torch alike):
    ŝ = exp(ôut)·(1 + L·u): relative error of s ≤ (c_ls + L)·u·M_ls   (M_ls ≥ 1)
    Σ g (k − 1), s·Σg (1), g − … (1):  ≤ (k + 1)·u·(|g_i| + s_i·Σ|g|)
  c_grad = c_ls + L + k + 1 and M_grad = |g| + s ⊙ M_ls ⊙ Σ_dim |g|.

softmin = softmax(−x): negation is exact and |−x| = |x|, so softmax's model at −x.

Not modelled: underflow. exp(z) below the smallest normal number (z < −87 in float32, −708 in
float64) loses relative accuracy; the strategies keep |z| ≤ 10·(range of ≤ 4 normals), and the
edge cases at ±1000 underflow to exactly 0 in both dtypes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from hypothesis import strategies as st
from numpy.typing import NDArray

from refcnn.functional.softmax import (
    log_softmax,
    log_softmax_backward,
    log_softmax_direct,
    softmax,
    softmax_backward,
    softmax_direct,
    softmin,
    softmin_backward,
    softmin_direct,
)
from refcnn.geometry import normalize_dim
from refcnn.testing.opspec import ArraySpec, EdgeCase, ErrorCase, Layout, OpSpec, Params, Sample
from refcnn.testing.tolerance import LIBRARY_ROUNDINGS, Formula

Array = NDArray[np.floating[Any]]
L = LIBRARY_ROUNDINGS

# --- strategies ---------------------------------------------------------------------------------

# (largest rank, largest size per dimension) per budget; "tiny" keeps full Jacobians cheap.
LIMITS = {"small": (4, 4), "tiny": (3, 3)}
SCALES = (1.0, 10.0)  # logits ~ N(0, 1) or N(0, 100): saturated slices and large |z| too


@st.composite
def _softmax_params(draw: Any, budget: str) -> dict[str, Any]:
    """A shape of rank 1–4, a dim within the rank (negative half the time) and a logit scale."""
    max_rank, max_size = LIMITS[budget]
    rank = draw(st.integers(1, max_rank), label="rank")
    shape = tuple(draw(st.integers(1, max_size), label=f"size {i}") for i in range(rank))
    return {
        "shape": shape,
        "dim": draw(st.integers(-rank, rank - 1), label="dim"),
        "scale": draw(st.sampled_from(SCALES), label="scale"),
    }


def _layout(params: Params) -> Layout:
    return {"x": tuple(params["shape"])}, {"dim": params["dim"]}


def _scaled_normal(
    rng: np.random.Generator, shape: tuple[int, ...], params: Params
) -> NDArray[np.float64]:
    """N(0, scale²) logits."""
    values: NDArray[np.float64] = params["scale"] * rng.standard_normal(shape)
    return values


def _params(shape: tuple[int, ...], dim: int, scale: float = 1.0) -> dict[str, Any]:
    return {"shape": shape, "dim": dim, "scale": scale}


# --- the rounding-error model (derivation in the module docstring) ------------------------------


def _times(s: Array, values: Array) -> Array:
    """s ⊙ values with 0·∞ = 0: a −∞ logit has s = 0 exactly and contributes nothing."""
    product: Array = np.multiply(
        s, values, out=np.zeros(np.broadcast(s, values).shape), where=s > 0
    )
    return product


def _slices(x: Array, dim: int) -> tuple[Array, int]:
    """x as an array of rank ≥ 1 (a 0-d x is a 1-entry slice) and the positive axis of dim."""
    return np.atleast_1d(x), normalize_dim(dim, np.ndim(x))


def _length(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> int:
    """k, the number of entries in one slice along dim."""
    x, axis = _slices(inputs["x"], kwargs["dim"])
    return int(x.shape[axis])


def _softmax_terms(x: Array, dim: int) -> tuple[Array, Array, Array, int]:
    """s, |x| + |z| and A = Σ_dim s ⊙ (|x| + |z|), for x of rank ≥ 1 (float64)."""
    axis = normalize_dim(dim, x.ndim)
    s = softmax(x, axis)
    largest: Array = np.max(x, axis=axis, keepdims=True, initial=-np.inf)  # an empty slice: -inf
    carried = np.abs(x) + np.abs(x - largest)
    weighted: Array = np.sum(_times(s, carried), axis=axis, keepdims=True)
    return s, carried, weighted, axis


def _softmax_magnitude(x: Array, dim: int) -> Array:
    """M_out = s ⊙ (1 + a + A)."""
    slices, _ = _slices(x, dim)
    s, carried, weighted, _ = _softmax_terms(slices, dim)
    return (s + _times(s, carried) + s * weighted).reshape(np.shape(x))


def _softmax_grad_magnitude(upstream: Array, x: Array, dim: int) -> dict[str, Array]:
    """P = M_out ⊙ (|g| + Σ|g|s) + s ⊙ Σ_dim(|g| ⊙ M_out)."""
    slices, axis = _slices(x, dim)
    g = np.abs(upstream).reshape(slices.shape)
    s, _, _, _ = _softmax_terms(slices, dim)
    m_out = _softmax_magnitude(slices, dim)
    spread = np.sum(g * s, axis=axis, keepdims=True)
    carried = s * np.sum(g * m_out, axis=axis, keepdims=True)
    return {"x": (m_out * (g + spread) + carried).reshape(np.shape(x))}


def _softmax_roundings(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
    k = _length(inputs, kwargs)
    c_out = 2 * L + k + 1
    return {"out": c_out, "grad_x": c_out + k + 2}


SOFTMAX_MODEL = Formula(
    roundings=_softmax_roundings,
    forward_magnitude=_softmax_magnitude,
    backward_magnitudes=_softmax_grad_magnitude,
)


def _softmin_magnitude(x: Array, dim: int) -> Array:
    return _softmax_magnitude(-x, dim)


def _softmin_grad_magnitude(upstream: Array, x: Array, dim: int) -> dict[str, Array]:
    return _softmax_grad_magnitude(upstream, -x, dim)


SOFTMIN_MODEL = Formula(
    roundings=_softmax_roundings,
    forward_magnitude=_softmin_magnitude,
    backward_magnitudes=_softmin_grad_magnitude,
)


def _log_softmax_magnitude(x: Array, dim: int) -> Array:
    """M_ls = 1 + |log S| + |x| + |m| + |z| + |out| + A."""
    slices, axis = _slices(x, dim)
    _, carried, weighted, _ = _softmax_terms(slices, dim)
    largest: Array = np.max(slices, axis=axis, keepdims=True, initial=-np.inf)
    shifted = slices - largest
    # an empty slice: log 0 and −inf + inf, in a per-slice term broadcast over no entries
    with np.errstate(divide="ignore", invalid="ignore"):
        log_sum: Array = np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
        out = shifted - log_sum
        magnitude = 1 + log_sum + np.abs(largest) + carried + np.abs(out) + weighted
    return magnitude.reshape(np.shape(x))


def _log_softmax_grad_magnitude(upstream: Array, x: Array, dim: int) -> dict[str, Array]:
    """|g| + s ⊙ M_ls ⊙ Σ_dim |g|."""
    slices, axis = _slices(x, dim)
    g = np.abs(upstream).reshape(slices.shape)
    s, _, _, _ = _softmax_terms(slices, dim)
    carried = _times(s, _log_softmax_magnitude(slices, dim))
    return {"x": (g + carried * np.sum(g, axis=axis, keepdims=True)).reshape(np.shape(x))}


def _log_softmax_roundings(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
    k = _length(inputs, kwargs)
    c_out = k + L + 1
    return {"out": c_out, "grad_x": c_out + L + k + 1}


LOG_SOFTMAX_MODEL = Formula(
    roundings=_log_softmax_roundings,
    forward_magnitude=_log_softmax_magnitude,
    backward_magnitudes=_log_softmax_grad_magnitude,
)


# --- torch bindings -----------------------------------------------------------------------------


def _torch_softmax(x: Any, dim: int) -> Any:
    import torch.nn.functional as F

    return F.softmax(x, dim)


def _torch_log_softmax(x: Any, dim: int) -> Any:
    import torch.nn.functional as F

    return F.log_softmax(x, dim)


def _torch_softmin(x: Any, dim: int) -> Any:
    import torch.nn.functional as F

    return F.softmin(x, dim)


# --- cases shared by the three ops --------------------------------------------------------------

LARGE_LOGITS = [[1000.0, 999.5, -1000.0, 0.0], [-1000.0, -999.0, -1000.5, -1000.0]]


def _edge_cases(large_logit_checks: tuple[str, ...] | None = None) -> tuple[EdgeCase, ...]:
    """The cases every member of the family gets."""
    return (
        EdgeCase(
            "large logits (±1000): stable",
            _params((2, 4), -1),
            arrays={"x": LARGE_LOGITS},
            checks=large_logit_checks,
        ),
        EdgeCase("all-equal logits", _params((3, 5), 1), arrays={"x": np.full((3, 5), 0.7)}),
        EdgeCase("dim = 0", _params((4, 3), 0)),
        EdgeCase("dim = -1 of a 3-D array", _params((2, 3, 4), -1)),
        EdgeCase("dim = 1 of a 4-D array (channels)", _params((2, 3, 2, 2), 1, scale=10.0)),
        EdgeCase("one entry along dim", _params((3, 1), 1)),
        EdgeCase(  # refcnn's own checks only: outside what the oracle asks of a candidate
            "no entry along dim (length 0): an empty result",
            _params((3, 0), 1),
            checks=("directional_fd", "full_jacobian_fd", "matches_definition"),
        ),
        EdgeCase(  # torch's values (forward and backward) only: x ± h·v is no longer an array
            "0-d x: a single entry (dim 0, as torch allows)",
            _params((), 0),
            checks=("matches_torch",),
        ),
    )


def _zero_probability_case(logit: float, label: str) -> EdgeCase:
    """A logit whose probability is exactly 0 (torch: probability 0, gradient 0 there).

    Not differentiable in the usual sense (an infinite input): torch's values only.
    """
    return EdgeCase(
        label,
        _params((2, 3), -1),
        arrays={"x": [[logit, 0.0, 1.0], [0.5, logit, logit]]},
        checks=("matches_torch",),
    )


def _error_cases() -> tuple[ErrorCase, ...]:
    x = ArraySpec((2, 3))
    return (
        ErrorCase("x is a list", {"x": [[1.0, 2.0]], "dim": 0}, TypeError, r"x must be a numpy"),
        ErrorCase(
            "integer x",
            {"x": ArraySpec((2, 3), "int64"), "dim": 1},
            TypeError,
            r"x must have a floating dtype, got x.dtype=int64",
        ),
        ErrorCase(
            "dim past the last",
            {"x": x, "dim": 2},
            ValueError,
            r"dim out of range \(expected to be in range of \[-2, 1\], but got dim=2\)",
        ),
        ErrorCase(
            "dim before the first",
            {"x": x, "dim": -3},
            ValueError,
            r"expected to be in range of \[-2, 1\], but got dim=-3",
        ),
        ErrorCase("float dim", {"x": x, "dim": 1.0}, TypeError, r"dim must be an int, got dim=1.0"),
        ErrorCase(
            "grad_out a list (backward)",
            {"x": x, "dim": 1, "grad_out": [[0.5, 0.5, 0.5]] * 2},
            TypeError,
            r"grad_out must be a numpy.ndarray, got list",
        ),
        ErrorCase(
            "grad_out of the wrong shape (backward)",
            {"grad_out": ArraySpec((3, 2)), "x": x, "dim": 1},
            ValueError,
            r"grad_out.shape=\(3, 2\), but the output has shape \(2, 3\)",
        ),
        ErrorCase(
            "float32 grad_out for float64 x (backward)",
            {"grad_out": ArraySpec((2, 3), "float32"), "x": x, "dim": 1},
            TypeError,
            r"grad_out.dtype=float32 differs from x.dtype=float64",
        ),
    )


def _independent_rows(sample: Sample) -> tuple[str, ...]:
    """Slices along axis 0 are independent unless the softmax runs along axis 0 itself."""
    x = sample.inputs["x"]
    return ("x",) if x.ndim >= 2 and normalize_dim(sample.kwargs["dim"], x.ndim) != 0 else ()


def _entry(**fields: Any) -> OpSpec:
    return OpSpec(
        family="softmax",
        kind="activation",
        inputs=("x",),
        differentiable=("x",),
        layout=_layout,
        params=lambda budget: _softmax_params(budget),
        fill={"x": _scaled_normal},
        error_cases=_error_cases(),
        docs="docs/softmax.md",
        per_sample=_independent_rows,
        not_applicable={"adjoint": "nonlinear in x: exp and a normalisation"},
        **fields,
    )


SOFTMAX = _entry(
    name="softmax",
    summary="exp(x) / Σ_dim exp(x) along any dim, stable (max subtracted)",
    forward=softmax,
    backward=softmax_backward,
    definition=softmax_direct,
    tolerance=SOFTMAX_MODEL,
    torch_name="torch.nn.functional.softmax",
    torch_forward=_torch_softmax,
    edge_cases=(*_edge_cases(), _zero_probability_case(-np.inf, "a -inf logit")),
)

LOG_SOFTMAX = _entry(
    name="log_softmax",
    summary="x − log Σ_dim exp(x) along any dim, stable (max subtracted)",
    forward=log_softmax,
    backward=log_softmax_backward,
    definition=log_softmax_direct,
    tolerance=LOG_SOFTMAX_MODEL,
    torch_name="torch.nn.functional.log_softmax",
    torch_forward=_torch_log_softmax,
    # The direct definition −log Σ_j exp(x_j − x_i) overflows for differences > 709, so it is
    # no oracle at ±1000. No −inf logit case: the output there is −inf in refcnn and torch alike,
    # but compare.py counts |−inf − (−inf)| = NaN as a mismatch (docs/softmax.md shows the
    # behaviour).
    edge_cases=_edge_cases(
        large_logit_checks=(
            "directional_fd",
            "full_jacobian_fd",
            "float32_tracks_float64",
            "matches_torch",
        )
    ),
)

SOFTMIN = _entry(
    name="softmin",
    summary="softmax(−x) along any dim",
    forward=softmin,
    backward=softmin_backward,
    definition=softmin_direct,
    tolerance=SOFTMIN_MODEL,
    torch_name="torch.nn.functional.softmin",
    torch_forward=_torch_softmin,
    edge_cases=(*_edge_cases(), _zero_probability_case(np.inf, "a +inf logit (softmin 0)")),
)

OPS: tuple[OpSpec, ...] = (SOFTMAX, LOG_SOFTMAX, SOFTMIN)
