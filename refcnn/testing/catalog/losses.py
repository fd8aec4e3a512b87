"""Catalog entries of the loss family: cross_entropy (class indices, probabilities), nll_loss,
the book's softmax_with_loss, mse/l1/smooth_l1/huber, binary_cross_entropy (with logits too).

Targets, class weights and pos_weight are NON-differentiable inputs with their own fills. A
sample's arrays are all floats of the sample's dtype (opspec draws float64, then casts), so class
indices travel as exact small integers in floats: the catalog's forward/backward wrappers
(``_with_indices``) and torch bindings (``.long()``) turn them into int64 before the call. refcnn
itself takes class indices only as integer arrays (a floating target means probabilities).

Rounding-error model (tolerance.Formula, |computed − exact| ≤ γ_c·M elementwise). u is the unit
roundoff, L = LIBRARY_ROUNDINGS per exp/log/log1p call, FIRST ORDER in u; c counts along the
longer of refcnn's and torch's evaluation, and M is the sum of the absolute values of the terms
either combines, plus |x·∂ℓ/∂x| for one rounding of the differentiated input (degree 1). The
sample's inputs are exact, so a difference of two inputs is one relative rounding.

Reductions, over n positions with per-position error ≤ c_e·u·M_e: 'none' keeps (c_e, M_e);
'sum' adds n − 1 roundings (an n-term sum, any order) on Σ M_e; 'mean' adds n + 1 (the sum, then
÷ n, or torch's sum · (1/n): 2) on mean(M_e). A backward's upstream a = ∂L/∂ℓ is g ('none',
'sum') or g/n ('mean': up to 2 roundings, torch's 1/n constant in the dtype and the product).

Cross-entropy, index targets (k = C classes, w = weight or 1, ε = label_smoothing). From
catalog/softmax.py: log p_c = log_softmax(x)_c is within c_ls·u·Mls_c, c_ls = k + L + 1, and Mls
(≥ 1, ≥ |log p|) covers one rounding of every logit. Per kept position, t its class,
    ℓ = (1 − ε)·w_t·(−log p_t) + (ε/k)·Σ_c w_c·(−log p_c)
  w_t·log p_t (1), (1 − ε) as a dtype constant (1) and its product (1); w_c·log p_c (1), the
  k-term sum (k − 1), ε/k (1) and its product (1); the final + (1). With |log p| ≤ Mls:
    |δℓ| ≤ (c_ls + k + 3)·u·P,   P = (1 − ε)·|w_t|·Mls_t + (ε/k)·Σ_c |w_c|·Mls_c  (0 ignored)
  'mean' divides by W = Σ w_t over kept positions: W's own sum (n − 1, relative: the catalog's
  weights are positive) and ÷ (1), so c = c_ls + k + 3 + 2n − 1, M = Σ P / W. (torch reduces the
  nll and the smoothing parts separately, then combines: the same counts.)
  Backward: ∂L/∂x_c = a·(p_c·B − G_c), G_c = (1 − ε)·w_t·[c = t] + (ε/k)·w_c, B = Σ_c G_c.
  torch: dL/dlog p = −a·G ((1 − ε) or ε/k (1), ·g (1), ÷ W (1 + W's n − 1 for 'mean'), ·w (1),
  the two parts added (1): n + 4 relative), then log_softmax's backward G̃ − p·Σ G̃ with
  p = exp(log p) within (c_ls + L)·u·Mls relative (catalog/softmax.py), Σ G̃ (k − 1), p·Σ (1),
  − (1). refcnn's a·(p·B − G) takes fewer roundings. With Mls ≥ 1:
    c = c_ls + L + k + 5 (+ n for 'mean'),   M = |a|·(|G_c| + p_c·Mls_c·Σ_c' |G_c'|)
Cross-entropy, probability targets q: q' = (1 − ε)·q + ε/k (4 roundings, relative to
  q̄' = (1 − ε)·|q| + ε/k), products w·q'·log p (2), k-term sum (k − 1):
    c_e = c_ls + k + 5,   P = Σ_c |w_c|·q̄'_c·Mls_c
  torch sums all n·k products at once for 'mean' and 'sum' (n·k − 1 ≥ n + k − 2, which covers
  refcnn's class sum then position sum): c = c_ls + n·k + 5 ('sum'), + 1 for ÷ n ('mean').
  Backward: G_c = w_c·q'_c, a = g or g/n: G̃ = −a·G is within 7 roundings (q' 4, ·w, ·a, a), so
    c = c_ls + L + k + 8,   M = |a|·(|G_c| + p_c·Mls_c·Σ_c' |G_c'|)   (G with q̄')
nll_loss, ℓ = −w_t·y_t from log-probabilities y: one product (c_e = 1, M_e = |w_t·y_t|, which
  also covers a rounding of y: ℓ is linear in y); 'mean' adds W's n − 1 and ÷: c = 2n.
  Backward: −a·w_t at the target class: c = 1, or n + 1 for 'mean' (W, ÷); M = |a·w_t|.
softmax_with_loss = cross_entropy(x, t) with 'mean', no weight, no smoothing: index t uses the
  index-target model, one-hot t the probability-target model.

Regression, d = y − t (one rounding, relative), z = |d|, a as above:
  mse      ℓ = d·d: 3u·d² (d's error twice, the product); y's rounding moves ℓ by 2|d|·u|y|:
           c_e = 3, M_e = d² + 2|d|·|y|.  Backward a·2·d (d, ·a; torch's 2/n constant and its
           product for 'mean'): c = 2 (+2 'mean'), M = 2|a·d|.
  l1       ℓ = z (1); y's rounding u|y|: c_e = 1, M_e = z + |y|. Backward a·sign(d): exact,
           c = 0 (+2 'mean', M = |a|; torch's MeanBackward divides: 1).
  smooth_l1 (β; the catalog's β are multiples of 1/2: exact) z < β: 0.5·z·z/β (z twice, ·, ÷:
           4); else z − β/2 (z, −: 2). c_e = 4, M_e = z²/(2β) + |y|·z/β or z + β/2 + |y|.
           Backward a·d/β or a·sign(d) (d, ÷β, ·a): c = 3 (+2 'mean'), M = |a·slope|.
  huber    (δ) z < δ: 0.5·z·z (3); else δ·(z − δ/2) (z, −, ·δ: 3). c_e = 3, M_e = z²/2 + |y|·z
           or δ·(z + δ/2) + |y|·δ. Backward a·d or a·δ·sign(d): c = 2 (+2 'mean'),
           M = |a·slope|.
binary_cross_entropy, torch's (t − 1)·log1p(−p) − t·log p, logs clamped at −100, ·w:
  log (L) and ·t (1); (t − 1) (1), log1p (L), · (1); − (1); ·w (1):
    c_e = L + 4,  M_e = |w|·(|1 − t|·|log(1 − p)| + |t|·|log p| + |t| + p·|1 − t|/(1 − p))
  (the last two: |p·∂ℓ/∂p| ≤ t + p·(1 − t)/(1 − p), one rounding of p). Backward
  a·w·(p − t)/max(p·(1 − p), ε): p − t, 1 − p, ·p, ÷, ·w, ·a: c = 6 (+2 'mean'),
  M = |a·w·(p − t)|/max(p·(1 − p), ε): every rounding is relative.
binary_cross_entropy_with_logits, r = pos_weight (1 if None), e = exp(−|x|), τ = log1p(e)
  (within 2L·u·τ: log1p's own L, and exp's L through ∂τ/∂e = 1/(1 + e), e/(1 + e) ≤ τ),
  s = softplus(−x) = max(−x, 0) + τ (2L + 1), σ± = σ(±x). torch: (1 − t)·x − lw·log σ(x),
  lw = (r − 1)·t + 1 (3 roundings); refcnn: max(x, 0) − x·t + τ + (r − 1)·t·s. Longest chain
  torch's lw·s term: (2L + 1) + 3 + · + − + ·w = 2L + 7. Terms of both, plus |x·∂ℓ/∂x| ≤
  |x|·(|1 − t| + |lw|·σ−):
    c_e = 2L + 7,  M_e = |w|·[|x|·(|1 − t| + |t|) + max(x, 0) + τ + (1 + 2|r − 1|·|t|)·s
                             + |x|·(1 + |r − 1|·|t|)·σ−]
  Backward. torch: ((r·t + 1 − t)·σ+ − r·t)·w·g (÷ n), σ+ = 1/(1 + exp(−x)) within (L + 2)u;
  refcnn: (σ+ − t − (r − 1)·t·σ−)·w·a, its sigmoid within (L + 3)u. Longest chains: with r,
  torch's r·t, +1, −t (3), ·σ+ (1 + L + 2), −, ·w, ·g (3) and refcnn's σ− (L + 3), r − 1, ·t,
  ·, −, ·w, ·a (6): c = L + 9; without r, refcnn's σ+ (L + 3), − t, ·w, ·a: c = L + 6; both
  +2 for 'mean'.
    M = |a·w|·[(|r·t| + 1 + |t|)·σ+ + |r·t| + σ+ + |t| + |r − 1|·|t|·σ−]   (r given)
    M = |a·w|·(σ+ + |t|)                                                    (r None)

Not modelled: underflow (the fills keep exp(−|x|) normal in float32: |x| ≤ 80 in the cases, and
scale-10 logits of at most a few tens), and negative or zero class weights (W's relative error
assumes positive weights; torch accepts any). The finite-difference step is scaled by the
largest |value| of ANY input, a target's ignore_index −100 included: h = 4.8e-4 in float64 then,
still far inside the smooth region of every loss here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from hypothesis import strategies as st
from numpy.typing import NDArray

from refcnn.functional import losses
from refcnn.testing.catalog.softmax import LOG_SOFTMAX_MODEL
from refcnn.testing.opspec import (
    ArraySpec,
    EdgeCase,
    ErrorCase,
    Layout,
    OpSpec,
    Params,
    Sample,
    in_backward_too,
)
from refcnn.testing.tolerance import LIBRARY_ROUNDINGS, Formula

Array = NDArray[np.float64]
L = LIBRARY_ROUNDINGS
DOCS = "docs/losses.md"

# --- strategies (constructive: every draw is valid) ---------------------------------------------

# small: N ≤ 4, C ≤ 5, up to 2 extra axes of size ≤ 3; tiny keeps full Jacobians cheap.
_LIMITS: dict[str, dict[str, int]] = {
    "small": {"batch": 4, "classes": 5, "extra_axes": 2, "extra_size": 3, "rank": 3, "size": 4},
    "tiny": {"batch": 2, "classes": 3, "extra_axes": 1, "extra_size": 2, "rank": 2, "size": 2},
}
_FORMS = ("(N, C)", "(N, C, d1, ...)", "(C,)")
_REDUCTIONS = ("mean", "sum", "none")  # torch's default first: shrinking goes there
_SMOOTHING = (0.0, 0.1, 0.25, 1.0)
_SCALES = (1.0, 10.0)  # logits ~ N(0, 1) or N(0, 100): saturated rows and large |log p| too
_BETAS = (1.0, 0.5, 2.0, 1.5, 0.0)  # multiples of 1/2 (see _off_grid_prediction); 0: l1


@st.composite
def _classification_params(draw: Any, budget: str, *, probabilities: bool, smoothing: bool) -> Any:
    """Logits (C,), (N, C) or (N, C, d1, ...), class weights or none, a reduction, ignore_index
    (−100 or, with C ≥ 2, one of the classes: index targets only) and a label smoothing."""
    limit = _LIMITS[budget]
    form = draw(st.sampled_from(_FORMS), label="form")
    extra: tuple[int, ...] = ()
    if form == "(N, C, d1, ...)":
        axes = draw(st.integers(1, limit["extra_axes"]), label="extra axes")
        extra = tuple(
            draw(st.integers(1, limit["extra_size"]), label=f"d{axis + 1}") for axis in range(axes)
        )
    classes = draw(st.integers(1, limit["classes"]), label="C")
    params: dict[str, Any] = {
        "form": form,
        "batch": draw(st.integers(1, limit["batch"]), label="N"),
        "classes": classes,
        "extra": extra,
        "weight": draw(st.booleans(), label="weight"),
        "reduction": draw(st.sampled_from(_REDUCTIONS), label="reduction"),
        "scale": draw(st.sampled_from(_SCALES), label="scale"),
    }
    if smoothing:
        params["label_smoothing"] = draw(st.sampled_from(_SMOOTHING), label="label_smoothing")
    if not probabilities:
        choices = ("-100", "a class") if classes >= 2 else ("-100",)
        if draw(st.sampled_from(choices), label="ignore_index") == "a class":
            params["ignore_index"] = draw(st.integers(0, classes - 1), label="ignored class")
        else:
            params["ignore_index"] = -100
    return params


def _class_params(**overrides: Any) -> dict[str, Any]:
    """Hand-written params for edge cases (index targets, cross_entropy's keys)."""
    params = {
        "form": "(N, C)",
        "batch": 3,
        "classes": 4,
        "extra": (),
        "weight": False,
        "reduction": "mean",
        "scale": 1.0,
        "label_smoothing": 0.0,
        "ignore_index": -100,
    }
    return {**params, **overrides}


def _scores_shape(params: Params) -> tuple[int, ...]:
    if params["form"] == "(C,)":
        return (params["classes"],)
    return (params["batch"], params["classes"], *params["extra"])


def _positions_shape(params: Params) -> tuple[int, ...]:
    """The shape of class-index targets and of the 'none' loss."""
    if params["form"] == "(C,)":
        return ()
    return (params["batch"], *params["extra"])


def _classification_layout(
    scores: str, probabilities: bool, keys: tuple[str, ...]
) -> Callable[[Params], Layout]:
    def layout(params: Params) -> Layout:
        shapes: dict[str, tuple[int, ...] | None] = {
            scores: _scores_shape(params),
            "target": _scores_shape(params) if probabilities else _positions_shape(params),
            "weight": (params["classes"],) if params["weight"] else None,
        }
        return shapes, {key: params[key] for key in keys if key in params}

    return layout


@st.composite
def _softmax_with_loss_params(draw: Any, budget: str) -> dict[str, Any]:
    limit = _LIMITS[budget]
    return {
        "batch": draw(st.integers(1, limit["batch"]), label="N"),
        "classes": draw(st.integers(1, limit["classes"]), label="C"),
        "t": draw(st.sampled_from(("index", "one-hot")), label="t"),
        "scale": draw(st.sampled_from(_SCALES), label="scale"),
    }


def _softmax_with_loss_layout(params: Params) -> Layout:
    n, c = params["batch"], params["classes"]
    return {"x": (n, c), "t": (n,) if params["t"] == "index" else (n, c)}, {}


@st.composite
def _shape(draw: Any, budget: str) -> tuple[int, ...]:
    """Rank 0–3 (0–2 tiny): elementwise losses take any shape, a 0-d one too."""
    limit = _LIMITS[budget]
    rank = draw(st.integers(0, limit["rank"]), label="rank")
    return tuple(draw(st.integers(1, limit["size"]), label=f"size {i}") for i in range(rank))


@st.composite
def _regression_strategy(draw: Any, budget: str, hyperparameter: str | None) -> dict[str, Any]:
    params = {
        "shape": draw(_shape(budget), label="shape"),
        "reduction": draw(st.sampled_from(_REDUCTIONS), label="reduction"),
    }
    if hyperparameter is not None and draw(st.booleans(), label=f"{hyperparameter} given"):
        values = _BETAS if hyperparameter == "beta" else _BETAS[:-1]  # δ > 0
        params[hyperparameter] = draw(st.sampled_from(values), label=hyperparameter)
    return params


def _regression_layout(params: Params) -> Layout:
    shape = tuple(params["shape"])
    kwargs = {k: params[k] for k in ("reduction", "beta", "delta") if k in params}
    return {"prediction": shape, "target": shape}, kwargs


@st.composite
def _binary_strategy(draw: Any, budget: str, logits: bool) -> dict[str, Any]:
    """A shape, a reduction, hard (0/1) or soft targets, weight none/full/per last axis, and for
    logits a scale and pos_weight (one per class of the last axis) or none."""
    shape = draw(_shape(budget), label="shape")
    forms = ("none", "full", "last") if shape else ("none", "full")
    params: dict[str, Any] = {
        "shape": shape,
        "reduction": draw(st.sampled_from(_REDUCTIONS), label="reduction"),
        "hard_targets": draw(st.booleans(), label="hard targets"),
        "weight": draw(st.sampled_from(forms), label="weight"),
    }
    if logits:
        params["scale"] = draw(st.sampled_from(_SCALES), label="scale")
        params["pos_weight"] = bool(shape) and draw(st.booleans(), label="pos_weight")
    return params


def _binary_layout(name: str) -> Callable[[Params], Layout]:
    def layout(params: Params) -> Layout:
        shape = tuple(params["shape"])
        weight = {"none": None, "full": shape, "last": shape[-1:]}[params["weight"]]
        shapes: dict[str, tuple[int, ...] | None] = {name: shape, "target": shape, "weight": weight}
        if name == "logits":
            shapes["pos_weight"] = shape[-1:] if params["pos_weight"] else None
        return shapes, {"reduction": params["reduction"]}

    return layout


# --- fills --------------------------------------------------------------------------------------


def _scaled_normal(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
    return np.asarray(params["scale"] * rng.standard_normal(shape))  # 0-d stays an array


def _log_probabilities(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
    """log_softmax of scaled normal logits along the class axis: what nll_loss is fed."""
    logits = params["scale"] * rng.standard_normal(shape)
    axis = 1 if len(shape) >= 2 else 0
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return np.asarray(shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True)))


def _class_indices(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
    """Class indices in [0, C) (as floats); about a quarter of the positions, never the first,
    hold ignore_index. When ignore_index is a class, the kept positions avoid it, so at least
    one position counts and Σ w[t] > 0."""
    classes, ignore = params["classes"], params.get("ignore_index", -100)
    ignored = np.asarray(rng.random(shape) < 0.25)
    ignored.flat[:1] = False
    if 0 <= ignore < classes:
        drawn = rng.integers(0, classes - 1, shape)
        drawn = drawn + (drawn >= ignore)  # the C − 1 classes other than the ignored one
    else:
        drawn = rng.integers(0, classes, shape)
    return np.where(ignored, ignore, drawn).astype(np.float64)


def _class_probabilities(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
    """One probability vector per position (Dirichlet(1, …, 1)) along the class axis."""
    if len(shape) < 2:
        return np.asarray(rng.dirichlet(np.ones(shape[0])))
    positions = (shape[0], *shape[2:])
    return np.moveaxis(rng.dirichlet(np.ones(shape[1]), size=positions), -1, 1)


def _class_weights(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
    """Positive weights, 0.25 … 2 (also BCE's weight)."""
    return np.asarray(rng.uniform(0.25, 2.0, shape))


def _book_targets(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
    """Class indices t (N,), or their one-hot rows (N, C): the book's two forms."""
    indices = rng.integers(0, params["classes"], shape[0])
    if len(shape) == 1:
        return indices.astype(np.float64)
    return np.eye(params["classes"])[indices]


_GRID = 0.5  # every kink of l1/smooth_l1/huber is a multiple of it (β, δ ∈ _BETAS)
_SPREAD = 3.0


def _grid_target(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
    """Targets on the grid (1/2)·ℤ, |t| ≲ 10."""
    return np.asarray(np.round(_SPREAD * rng.standard_normal(shape) / _GRID) * _GRID)


def _off_grid_prediction(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
    """Predictions a quarter off the grid, ± 0.15: y − t lies 0.1 … 0.4 away from every multiple
    of 1/2, so at least 0.1 from every kink (0 and ±β), far beyond the finite-difference step
    (≤ 5e-5 here)."""
    jitter = rng.uniform(-0.15, 0.15, shape)
    return np.asarray(_grid_target(rng, shape, params) + _GRID / 2 + jitter)


def _open_probabilities(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
    """σ(2·N(0, 1)): inside (0, 1), mostly 0.02 … 0.98, rarely within 1e-3 of an end."""
    return np.asarray(1.0 / (1.0 + np.exp(-2.0 * rng.standard_normal(shape))))


def _binary_targets(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
    if params["hard_targets"]:
        return rng.integers(0, 2, shape).astype(np.float64)
    return np.asarray(rng.uniform(0.0, 1.0, shape))


def _pos_weights(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
    return np.asarray(rng.uniform(0.25, 4.0, shape))


# --- index targets travel as floats: cast at the boundary ---------------------------------------


def _as_indices(target: Any) -> Any:
    """A floating array of exact class indices -> int64 (other values pass, to be validated)."""
    if isinstance(target, np.ndarray) and np.issubdtype(target.dtype, np.floating):
        return target.astype(np.int64)
    return target


def _with_indices(function: Callable[..., Any], argument: str = "target") -> Callable[..., Any]:
    """``function`` with ``argument`` cast by :func:`_as_indices` first."""

    def call(*args: Any, **kwargs: Any) -> Any:
        kwargs[argument] = _as_indices(kwargs[argument])
        return function(*args, **kwargs)

    call.__name__ = call.__qualname__ = function.__name__
    call.__doc__ = function.__doc__
    return call


def _book_t(t: Any) -> Any:
    """softmax_with_loss: a 1-D t holds class indices."""
    return _as_indices(t) if isinstance(t, np.ndarray) and t.ndim == 1 else t


def _softmax_with_loss(x: Any, t: Any) -> Any:
    return losses.softmax_with_loss(x, _book_t(t))


def _softmax_with_loss_backward(grad_out: Any, x: Any, t: Any) -> Any:
    return losses.softmax_with_loss_backward(grad_out, x, _book_t(t))


# --- the rounding-error model (derivation in the module docstring) ------------------------------


def _classes_last(values: Array) -> Array:
    return np.moveaxis(values, 1, -1) if values.ndim >= 2 else values


def _classes_back(values: Array) -> Array:
    return np.moveaxis(values, -1, 1) if values.ndim >= 2 else values


def _log_softmax_terms(logits: Array) -> tuple[int, Array, Array]:
    """c_ls, Mls and p = softmax, classes last (catalog/softmax.py's log_softmax model)."""
    dim = 1 if logits.ndim >= 2 else 0
    c_ls = int(LOG_SOFTMAX_MODEL.roundings({"x": logits}, {"dim": dim})["out"])
    magnitude = _classes_last(np.asarray(LOG_SOFTMAX_MODEL.forward_magnitude(x=logits, dim=dim)))
    shifted = logits - logits.max(axis=dim, keepdims=True)
    probs = np.exp(shifted)
    probs = _classes_last(probs / probs.sum(axis=dim, keepdims=True))
    return c_ls, magnitude, probs


def _times(a: Array, b: Array) -> Array:
    """a·b with 0·∞ = 0 (a −inf logit: probability 0, infinite magnitude, no contribution)."""
    product: Array = np.multiply(a, b, out=np.zeros(np.broadcast(a, b).shape), where=a != 0)
    return product


def _reduced(magnitude: Array, reduction: str, denominator: Any) -> Array:
    """M of the reduced loss from the per-position M_e: itself, Σ, or Σ / D."""
    if reduction == "none":
        return magnitude
    if reduction == "sum":
        return np.asarray(np.sum(magnitude))
    with np.errstate(divide="ignore", invalid="ignore"):  # W = 0: NaN bound, NaN loss in both
        return np.asarray(np.sum(magnitude) / denominator)


def _scale(upstream: Array, reduction: str, denominator: Any) -> Array:
    """|a|: |g|, or |g|/D for 'mean' (NaN when D = 0: the loss and its gradient are NaN too)."""
    g = np.abs(upstream)
    if reduction != "mean":
        return np.asarray(g)
    return np.asarray(g / denominator if denominator != 0 else np.full_like(g, np.nan))


class _IndexTargets:
    """The index-target quantities of the model, in float64, classes last."""

    def __init__(self, logits: Array, target: Array, weight: Array | None, ignore_index: int):
        self.classes = logits.shape[1] if logits.ndim >= 2 else logits.shape[0]
        indices = np.asarray(target).astype(np.int64)
        self.kept = indices != ignore_index
        self.safe = np.where(self.kept, indices, 0)
        self.weight = np.ones(self.classes) if weight is None else np.abs(weight)
        self.target_weight = np.where(self.kept, self.weight[self.safe], 0.0)  # |w_t|
        self.total_weight = float(np.sum(self.target_weight))  # W (positive weights)
        self.one_hot = (np.arange(self.classes) == self.safe[..., None]) & self.kept[..., None]

    def target_weights(self, smoothing: float) -> Array:
        """|G|: (1 − ε)·|w_t|·[c = t] + (ε/k)·|w_c|, 0 where ignored."""
        weights = np.where(self.one_hot, self.weight, 0.0)
        if smoothing > 0:
            uniform = np.where(self.kept[..., None], self.weight, 0.0)
            weights = (1 - smoothing) * weights + (smoothing / self.classes) * uniform
        return weights


def _cross_entropy_magnitude(
    logits: Array,
    target: Array,
    weight: Array | None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Array:
    """Σ or mean of P = (1 − ε)·|w_t|·Mls_t + (ε/k)·Σ_c |w_c|·Mls_c (index targets), or
    P = Σ_c |w_c|·q̄'_c·Mls_c (probabilities); ÷ W or n for 'mean'."""
    _, mls, _ = _log_softmax_terms(logits)
    if logits.shape == np.shape(target):  # probabilities
        weights = np.ones(mls.shape[-1]) if weight is None else np.abs(weight)
        per_position, _ = _probability_weights(target, weights, label_smoothing, mls)
        return _reduced(per_position, reduction, per_position.size)
    terms = _IndexTargets(logits, target, weight, ignore_index)
    per_position = np.sum(_times(terms.target_weights(label_smoothing), mls), axis=-1)
    return _reduced(per_position, reduction, terms.total_weight)


def _probability_weights(
    target: Array, weights: Array, smoothing: float, mls: Array
) -> tuple[Array, Array]:
    """(P per position, |G| = |w|·q̄') for probability targets, classes last."""
    q = np.abs(_classes_last(target))
    if smoothing > 0:
        q = (1 - smoothing) * q + smoothing / q.shape[-1]
    g = weights * q
    return np.sum(_times(g, mls), axis=-1), g


def _cross_entropy_grad_magnitude(
    upstream: Array,
    logits: Array,
    target: Array,
    weight: Array | None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> dict[str, Array]:
    """|a|·(|G_c| + p_c·Mls_c·Σ_c' |G_c'|), a = g or g/D, 0 where ignored."""
    _, mls, probs = _log_softmax_terms(logits)
    if logits.shape == np.shape(target):
        weights = np.ones(mls.shape[-1]) if weight is None else np.abs(weight)
        g = _probability_weights(target, weights, label_smoothing, mls)[1]
        scale = _scale(upstream, reduction, mls[..., 0].size)
    else:
        terms = _IndexTargets(logits, target, weight, ignore_index)
        g = terms.target_weights(label_smoothing)
        scale = np.where(terms.kept, _scale(upstream, reduction, terms.total_weight), 0.0)
    spread = _times(probs, mls) * np.sum(g, axis=-1, keepdims=True)
    return {"logits": _classes_back(np.asarray(scale)[..., None] * (g + spread))}


def _cross_entropy_roundings(
    inputs: Mapping[str, Any], kwargs: Mapping[str, Any]
) -> dict[str, int]:
    logits, target = inputs["logits"], inputs["target"]
    c_ls, _, _ = _log_softmax_terms(np.asarray(logits))
    k = logits.shape[1] if logits.ndim >= 2 else logits.shape[0]
    n = logits.size // k
    reduction = kwargs.get("reduction", "mean")
    if logits.shape == np.shape(target):  # probabilities: torch sums all n·k products at once
        c_e = c_ls + k + 5
        c_out = {"none": c_e, "sum": c_ls + n * k + 5, "mean": c_ls + n * k + 6}[reduction]
        return {"out": c_out, "grad_logits": c_ls + L + k + 8}
    c_e = c_ls + k + 3
    c_out = {"none": c_e, "sum": c_e + n - 1, "mean": c_e + 2 * n - 1}[reduction]
    return {"out": c_out, "grad_logits": c_ls + L + k + 5 + (n if reduction == "mean" else 0)}


CROSS_ENTROPY_MODEL = Formula(
    roundings=_cross_entropy_roundings,
    forward_magnitude=_cross_entropy_magnitude,
    backward_magnitudes=_cross_entropy_grad_magnitude,
)


def _nll_magnitude(
    log_probs: Array,
    target: Array,
    weight: Array | None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Array:
    """Σ |w_t·y_t| (÷ W for 'mean')."""
    terms = _IndexTargets(log_probs, target, weight, ignore_index)
    rows = _classes_last(log_probs)
    picked = np.abs(np.take_along_axis(rows, terms.safe[..., None], axis=-1)[..., 0])
    return _reduced(terms.target_weight * picked, reduction, terms.total_weight)


def _nll_grad_magnitude(
    upstream: Array,
    log_probs: Array,
    target: Array,
    weight: Array | None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> dict[str, Array]:
    """|a·w_t| at the target class."""
    terms = _IndexTargets(log_probs, target, weight, ignore_index)
    scale = np.where(terms.kept, _scale(upstream, reduction, terms.total_weight), 0.0)
    grad = np.where(terms.one_hot, scale[..., None] * terms.weight, 0.0)
    return {"log_probs": _classes_back(grad)}


def _nll_roundings(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
    n = int(np.asarray(inputs["target"]).size)
    mean = kwargs.get("reduction", "mean") == "mean"
    c_out = {"none": 1, "sum": n, "mean": 2 * n}[kwargs.get("reduction", "mean")]
    return {"out": c_out, "grad_log_probs": n + 1 if mean else 1}


NLL_MODEL = Formula(
    roundings=_nll_roundings,
    forward_magnitude=_nll_magnitude,
    backward_magnitudes=_nll_grad_magnitude,
)


def _book_magnitude(x: Array, t: Array) -> Array:
    return _cross_entropy_magnitude(x, t, None)


def _book_grad_magnitude(upstream: Array, x: Array, t: Array) -> dict[str, Array]:
    return {"x": _cross_entropy_grad_magnitude(upstream, x, t, None)["logits"]}


def _book_roundings(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
    counts = _cross_entropy_roundings({"logits": inputs["x"], "target": inputs["t"]}, {})
    return {"out": counts["out"], "grad_x": counts["grad_logits"]}


SOFTMAX_WITH_LOSS_MODEL = Formula(
    roundings=_book_roundings,
    forward_magnitude=_book_magnitude,
    backward_magnitudes=_book_grad_magnitude,
)


def _elementwise_model(
    c_element: int,
    c_grad: int,
    element_magnitude: Callable[..., Array],
    slope: Callable[..., Array],
) -> Formula:
    """The Formula of an elementwise loss: per-element (c_e, M_e), reduced; the backward's
    M = |a|·slope_magnitude, c = c_grad (+2 for 'mean')."""

    def roundings(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
        reduction = kwargs.get("reduction", "mean")
        n = int(np.asarray(next(iter(inputs.values()))).size)
        c_out = {"none": c_element, "sum": c_element + n - 1, "mean": c_element + n + 1}
        name = next(iter(inputs))
        return {"out": c_out[reduction], f"grad_{name}": c_grad + (2 if reduction == "mean" else 0)}

    def forward(**arguments: Any) -> Array:
        reduction = arguments.pop("reduction", "mean")
        per_element = element_magnitude(**arguments)
        return _reduced(per_element, reduction, per_element.size)

    def backward(upstream: Array, **arguments: Any) -> dict[str, Array]:
        reduction = arguments.pop("reduction", "mean")
        name = next(iter(arguments))
        size = np.asarray(arguments[name]).size
        return {name: _scale(upstream, reduction, size) * slope(**arguments)}

    return Formula(roundings=roundings, forward_magnitude=forward, backward_magnitudes=backward)


def _mse_element(prediction: Array, target: Array) -> Array:
    d = prediction - target
    return np.asarray(d * d + 2 * np.abs(d) * np.abs(prediction))  # d² + 2|d|·|y|


def _l1_element(prediction: Array, target: Array) -> Array:
    return np.asarray(np.abs(prediction - target) + np.abs(prediction))  # z + |y|


def _smooth_l1_element(prediction: Array, target: Array, beta: float = 1.0) -> Array:
    z, y = np.abs(prediction - target), np.abs(prediction)
    with np.errstate(divide="ignore", invalid="ignore"):  # β = 0: the quadratic branch is unused
        quadratic = z * z / (2 * beta) + y * z / beta
    return np.asarray(np.where(z < beta, quadratic, z + beta / 2 + y))


def _smooth_l1_slope(prediction: Array, target: Array, beta: float = 1.0) -> Array:
    z = np.abs(prediction - target)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(z < beta, z / beta, 1.0))


def _huber_element(prediction: Array, target: Array, delta: float = 1.0) -> Array:
    z, y = np.abs(prediction - target), np.abs(prediction)
    linear = delta * (z + delta / 2) + y * delta
    return np.asarray(np.where(z < delta, z * z / 2 + y * z, linear))


def _huber_slope(prediction: Array, target: Array, delta: float = 1.0) -> Array:
    z = np.abs(prediction - target)
    return np.asarray(np.where(z < delta, z, delta))


MSE_MODEL = _elementwise_model(
    3, 2, _mse_element, lambda prediction, target: 2 * np.abs(prediction - target)
)
L1_MODEL = _elementwise_model(1, 0, _l1_element, lambda prediction, target: np.ones_like(target))
SMOOTH_L1_MODEL = _elementwise_model(4, 3, _smooth_l1_element, _smooth_l1_slope)
HUBER_MODEL = _elementwise_model(3, 2, _huber_element, _huber_slope)


def _optional(value: Array | None, default: float) -> Any:
    return default if value is None else np.abs(value)


def _bce_element(probabilities: Array, target: Array, weight: Array | None) -> Array:
    """|w|·(|1 − t|·|log(1 − p)| + |t|·|log p| + |t| + p·|1 − t|/(1 − p)), logs clamped."""
    p, t = probabilities, target
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), losses.BCE_LOG_FLOOR)
        log_not_p = np.maximum(np.log1p(-p), losses.BCE_LOG_FLOOR)
    with np.errstate(divide="ignore", invalid="ignore"):  # p = 1 (edge cases only): inf
        input_rounding = np.abs(t) + p * np.abs(1 - t) / (1 - p)
    terms = np.abs(1 - t) * np.abs(log_not_p) + np.abs(t) * np.abs(log_p) + input_rounding
    return np.asarray(_optional(weight, 1.0) * terms)


def _bce_slope(probabilities: Array, target: Array, weight: Array | None) -> Array:
    p = probabilities
    slope = np.abs(p - target) / np.maximum(p * (1 - p), losses.BCE_EPSILON)
    return np.asarray(_optional(weight, 1.0) * slope)


BCE_MODEL = _elementwise_model(L + 4, 6, _bce_element, _bce_slope)


def _sigmoids(x: Array) -> tuple[Array, Array, Array, Array]:
    """σ(x), σ(−x), τ = log1p(exp(−|x|)) and softplus(−x), float64."""
    e = np.exp(-np.abs(x))
    tail = np.log1p(e)
    positive = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    negative = np.where(x >= 0, e / (1 + e), 1 / (1 + e))
    return positive, negative, tail, np.maximum(-x, 0) + tail


def _bce_logits_element(
    logits: Array, target: Array, weight: Array | None, pos_weight: Array | None
) -> Array:
    x, t = logits, np.abs(target)
    _, sigma_negative, tail, softplus = _sigmoids(x)
    r_minus_1 = 0.0 if pos_weight is None else np.abs(pos_weight - 1)
    terms = (
        np.abs(x) * (np.abs(1 - target) + t)
        + np.maximum(x, 0)
        + tail
        + (1 + 2 * r_minus_1 * t) * softplus
        + np.abs(x) * (1 + r_minus_1 * t) * sigma_negative
    )
    return np.asarray(_optional(weight, 1.0) * terms)


def _bce_logits_slope(
    logits: Array, target: Array, weight: Array | None, pos_weight: Array | None
) -> Array:
    sigma_positive, sigma_negative, _, _ = _sigmoids(logits)
    t = np.abs(target)
    if pos_weight is None:
        terms = sigma_positive + t
    else:
        rt = np.abs(pos_weight) * t
        terms = (
            (rt + 1 + t) * sigma_positive
            + rt
            + sigma_positive
            + t
            + np.abs(pos_weight - 1) * t * sigma_negative
        )
    return np.asarray(_optional(weight, 1.0) * terms)


def _bce_logits_model() -> Formula:
    """c_grad depends on whether pos_weight is given: L + 9 with it, L + 6 without."""
    base = _elementwise_model(2 * L + 7, L + 6, _bce_logits_element, _bce_logits_slope)

    def roundings(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
        counts = dict(base.roundings(inputs, kwargs))
        if inputs.get("pos_weight") is not None:
            counts["grad_logits"] += 3
        return counts

    return Formula(
        roundings=roundings,
        forward_magnitude=base.forward_magnitude,
        backward_magnitudes=base.backward_magnitudes,
    )


BCE_LOGITS_MODEL = _bce_logits_model()


# --- torch bindings (torch imported inside; class indices arrive as floats: .long()) ------------


def _torch_cross_entropy(
    logits: Any,
    target: Any,
    weight: Any,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Any:
    import torch.nn.functional as F

    if target.shape != logits.shape:
        target = target.long()  # class indices
    return F.cross_entropy(
        logits,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )


def _torch_nll_loss(
    log_probs: Any, target: Any, weight: Any, ignore_index: int = -100, reduction: str = "mean"
) -> Any:
    import torch.nn.functional as F

    return F.nll_loss(
        log_probs, target.long(), weight=weight, ignore_index=ignore_index, reduction=reduction
    )


def _torch_softmax_with_loss(x: Any, t: Any) -> Any:
    import torch.nn.functional as F

    return F.cross_entropy(x, t.long() if t.ndim == 1 else t)


def _torch_elementwise(name: str) -> Callable[..., Any]:
    """``torch.nn.functional.<name>(prediction, target, **kwargs)``."""

    def binding(prediction: Any, target: Any, **kwargs: Any) -> Any:
        import torch.nn.functional as F

        return getattr(F, name)(prediction, target, **kwargs)

    return binding


def _torch_binary_cross_entropy(
    probabilities: Any, target: Any, weight: Any, reduction: str = "mean"
) -> Any:
    import torch.nn.functional as F

    return F.binary_cross_entropy(probabilities, target, weight=weight, reduction=reduction)


def _torch_binary_cross_entropy_with_logits(
    logits: Any, target: Any, weight: Any, pos_weight: Any, reduction: str = "mean"
) -> Any:
    import torch.nn.functional as F

    return F.binary_cross_entropy_with_logits(
        logits, target, weight=weight, pos_weight=pos_weight, reduction=reduction
    )


# --- per-sample inputs: with reduction 'none', position n of the batch depends on sample n only --


def _per_position_classes(scores: str) -> Callable[[Sample], tuple[str, ...]]:
    """Scores (N, C, …) and their target, unreduced; the class weight is shared."""

    def batched(sample: Sample) -> tuple[str, ...]:
        unreduced = sample.kwargs.get("reduction", "mean") == "none"
        return (scores, "target") if unreduced and sample.inputs[scores].ndim >= 2 else ()

    return batched


def _per_element(name: str) -> Callable[[Sample], tuple[str, ...]]:
    """An elementwise loss, unreduced: the input, its target, and a weight or pos_weight of the
    same shape (one per last axis is shared)."""

    def batched(sample: Sample) -> tuple[str, ...]:
        first = sample.inputs[name]
        if sample.kwargs.get("reduction", "mean") != "none" or first.ndim == 0:
            return ()
        optional = [
            other
            for other in ("weight", "pos_weight")
            if sample.inputs.get(other) is not None and sample.inputs[other].shape == first.shape
        ]
        return (name, "target", *optional)

    return batched


# --- edge and error cases -----------------------------------------------------------------------

LARGE_LOGITS = [[1000.0, 999.5, -1000.0, 0.0], [-1000.0, -999.0, -1000.5, -1000.0]]


def _classification_edge_cases(scores: str, probabilities: bool) -> tuple[EdgeCase, ...]:
    """Cases every cross-entropy entry gets (index or probability targets)."""
    base = _class_params()
    if probabilities:
        del base["ignore_index"]
    cases = [
        EdgeCase(
            "spatial positions (N, C, H, W), class weights, 'none'",
            {
                **base,
                "form": "(N, C, d1, ...)",
                "extra": (2, 3),
                "weight": True,
                "reduction": "none",
            },
        ),
        EdgeCase("one unbatched sample: (C,)", {**base, "form": "(C,)", "weight": True}),
        EdgeCase("one class (C = 1)", {**base, "classes": 1, "reduction": "sum"}),
        EdgeCase("batch of one, 'sum'", {**base, "batch": 1, "reduction": "sum", "scale": 10.0}),
    ]
    cases.append(
        EdgeCase(
            "large logits (±1000): stable", {**base, "batch": 2}, arrays={scores: LARGE_LOGITS}
        )
    )
    return tuple(cases)


def _index_edge_cases(scores: str) -> tuple[EdgeCase, ...]:
    """Cases of class-index targets (cross_entropy and nll_loss): ignore_index."""
    base = _class_params() if scores == "logits" else _nll_params()
    return (
        EdgeCase(
            "ignore_index is a class; weights; ignored and kept targets",
            {**base, "classes": 5, "batch": 4, "ignore_index": 2, "weight": True},
            arrays={"target": [2, 0, 2, 4]},
        ),
        EdgeCase(
            "ignore_index −100 among the targets, weights, 'none'",
            {**base, "weight": True, "reduction": "none"},
            arrays={"target": [1, -100, 3]},
        ),
        EdgeCase(
            # torch: Σ w[t] = 0, the loss 0/0 = NaN; its gradient is 0 (nothing is selected)
            "every target ignored: NaN loss, zero gradient",
            {**base, "weight": True},
            arrays={"target": [-100, -100, -100]},
            checks=("matches_torch",),
        ),
        EdgeCase(
            # torch: 0/0 = NaN again, but now NaN reaches the gradient of every kept position
            "every kept target weighted 0: NaN loss and gradient",
            {**base, "weight": True},
            arrays={"target": [0, -100, 1], "weight": [0.0, 0.0, 1.0, 1.0]},
            checks=("matches_torch",),
        ),
    )


def _reduction_error_cases(valid: Mapping[str, Any], scalar_grad: Any) -> tuple[ErrorCase, ...]:
    """Cases every loss shares: an unknown reduction, a non-scalar upstream for 'mean', an
    upstream of another dtype than the scores (``valid``'s first entry), which it names."""
    scores = next(iter(valid))
    return (
        ErrorCase(
            "float32 grad_out (backward)",
            {**valid, "grad_out": np.asarray(0.3, np.float32)},
            TypeError,
            rf"grad_out.dtype=float32 differs from {scores}.dtype=float64",
        ),
        ErrorCase(
            "unknown reduction",
            {**valid, "reduction": "avg"},
            ValueError,
            r"reduction must be 'none', 'mean' or 'sum', got reduction='avg'",
        ),
        ErrorCase(
            "grad_out not a scalar for 'mean' (backward)",
            {**valid, "grad_out": scalar_grad},
            ValueError,
            r"grad_out.shape=\(3,\), but the loss \(reduction='mean'\) has shape \(\)",
        ),
    )


_LOGITS = ArraySpec((3, 4))
_INDICES = np.array([0, 3, 1])


def _index_error_cases(scores: str) -> tuple[ErrorCase, ...]:
    valid: dict[str, Any] = {scores: _LOGITS, "target": _INDICES}
    return (
        *_reduction_error_cases(valid, ArraySpec((3,))),
        ErrorCase(
            f"integer {scores}",
            {**valid, scores: ArraySpec((3, 4), "int64")},
            TypeError,
            rf"{scores} must have a floating dtype, got {scores}.dtype=int64",
        ),
        ErrorCase(
            f"0-d {scores}: no class axis",
            {**valid, scores: ArraySpec(()), "target": np.array(0)},
            ValueError,
            rf"{scores} must have a class axis",
        ),
        ErrorCase(
            "target of another batch size",
            {**valid, "target": np.array([0, 1])},
            ValueError,
            rf"target.shape=\(2,\), but {scores}.shape=\(3, 4\) needs class indices of shape "
            r"\(3,\)",
        ),
        ErrorCase(
            "spatial target of the wrong size",
            {**valid, scores: ArraySpec((2, 3, 4)), "target": np.zeros((2, 5), np.int64)},
            ValueError,
            r"target.shape=\(2, 5\), but .* needs class indices of shape \(2, 4\)",
        ),
        ErrorCase(
            "class index C",
            {**valid, "target": np.array([0, 4, 1])},
            ValueError,
            r"class index 4 at \(1,\), outside \[0, 4\) for C=4 classes and not "
            r"ignore_index=-100",
        ),
        ErrorCase(
            "negative class index other than ignore_index",
            {**valid, "target": np.array([0, -1, 1])},
            ValueError,
            r"class index -1 at \(1,\), outside \[0, 4\)",
        ),
        ErrorCase(
            "−100 when ignore_index is another value",
            {**valid, "target": np.array([0, -100, 1]), "ignore_index": 3},
            ValueError,
            r"class index -100 .* not ignore_index=3",
        ),
        ErrorCase(
            "float ignore_index",
            {**valid, "ignore_index": -100.0},
            TypeError,
            r"ignore_index must be an int, got ignore_index=-100.0",
        ),
        ErrorCase(
            "weight of the wrong length",
            {**valid, "weight": ArraySpec((3,))},
            ValueError,
            rf"weight.shape=\(3,\), but {scores}.shape=\(3, 4\) has C=4 classes",
        ),
        ErrorCase(
            f"float32 weight for float64 {scores}",
            {**valid, "weight": ArraySpec((4,), "float32")},
            TypeError,
            rf"weight.dtype=float32 differs from {scores}.dtype=float64",
        ),
        ErrorCase(
            "target a list",
            {**valid, "target": [0, 3, 1]},
            TypeError,
            r"target must be a numpy.ndarray, got list",
        ),
        ErrorCase(
            "grad_out of the wrong shape for 'none' (backward)",
            {**valid, "reduction": "none", "grad_out": ArraySpec((4,))},
            ValueError,
            r"grad_out.shape=\(4,\), but the loss \(reduction='none'\) has shape \(3,\)",
        ),
    )


def _smoothing_error_cases(valid: Mapping[str, Any]) -> tuple[ErrorCase, ...]:
    return (
        ErrorCase(
            "label_smoothing above 1",
            {**valid, "label_smoothing": 1.5},
            ValueError,
            r"label_smoothing must be in \[0.0, 1.0\], got label_smoothing=1.5",
        ),
        ErrorCase(
            # torch 2.13 silently treats a negative label_smoothing as 0
            "negative label_smoothing",
            {**valid, "label_smoothing": -0.1},
            ValueError,
            r"label_smoothing must be in \[0.0, 1.0\], got label_smoothing=-0.1",
        ),
        ErrorCase(
            "label_smoothing a string",
            {**valid, "label_smoothing": "0.1"},
            TypeError,
            r"label_smoothing must be a real number, got label_smoothing='0.1'",
        ),
    )


def _probability_error_cases() -> tuple[ErrorCase, ...]:
    valid: dict[str, Any] = {"logits": _LOGITS, "target": ArraySpec((3, 4))}
    return (
        *_reduction_error_cases(valid, ArraySpec((3,))),
        *_smoothing_error_cases(valid),
        ErrorCase(
            "floating target of another shape",
            {**valid, "target": ArraySpec((3,))},
            ValueError,
            r"a floating target holds class probabilities and must have logits' shape \(3, 4\), "
            r"got target.shape=\(3,\)",
        ),
        ErrorCase(
            "float32 target for float64 logits",
            {**valid, "target": ArraySpec((3, 4), "float32")},
            TypeError,
            r"target.dtype=float32 differs from logits.dtype=float64",
        ),
        ErrorCase(
            "ignore_index with probability targets",
            {**valid, "ignore_index": 0},
            ValueError,
            r"ignore_index=0 is not supported for probability targets",
        ),
        ErrorCase(
            "boolean target",
            {**valid, "target": np.ones((3, 4), bool)},
            TypeError,
            r"target must hold class indices \(an integer dtype\) or probabilities",
        ),
        ErrorCase(
            "grad_out of the wrong shape for 'none' (backward)",
            {**valid, "reduction": "none", "grad_out": ArraySpec((3, 4))},
            ValueError,
            r"grad_out.shape=\(3, 4\), but the loss \(reduction='none'\) has shape \(3,\)",
        ),
    )


CROSS_ENTROPY = OpSpec(
    name="cross_entropy",
    family="loss",
    kind="loss",
    summary="cross-entropy of logits against class indices: class weights, ignore_index, label "
    "smoothing, (N, C, d1, ...) positions, mean over Σ w[t]",
    inputs=("logits", "target", "weight"),
    forward=_with_indices(losses.cross_entropy),
    backward=_with_indices(losses.cross_entropy_backward),
    differentiable=("logits",),
    layout=_classification_layout(
        "logits", False, ("ignore_index", "reduction", "label_smoothing")
    ),
    params=lambda budget: _classification_params(budget, probabilities=False, smoothing=True),
    tolerance=CROSS_ENTROPY_MODEL,
    fill={"logits": _scaled_normal, "target": _class_indices, "weight": _class_weights},
    per_sample=_per_position_classes("logits"),
    not_applicable={"adjoint": "cross-entropy is nonlinear in the logits"},
    torch_name="torch.nn.functional.cross_entropy (class-index target, .long())",
    torch_forward=_torch_cross_entropy,
    docs=DOCS,
    edge_cases=(
        *_classification_edge_cases("logits", probabilities=False),
        *_index_edge_cases("logits"),
        EdgeCase(
            "label smoothing 1: the uniform target only",
            _class_params(label_smoothing=1.0, weight=True),
        ),
        EdgeCase(
            "label smoothing with weights and an ignored target, 'mean'",
            _class_params(label_smoothing=0.25, weight=True, scale=10.0),
            arrays={"target": [0, -100, 3]},
        ),
        EdgeCase(
            # a −inf logit: probability 0; finite loss while no target (and no smoothing) uses it
            "a −inf logit of a class no target names",
            _class_params(),
            arrays={
                "logits": [[-np.inf, 0.5, 1.0, 0.0], [0.3, -np.inf, -1.0, 2.0], [0, 0, 0, -np.inf]],
                "target": [1, 2, 0],
            },
            checks=("matches_torch",),
        ),
        EdgeCase(
            # smoothing sums over every class: −log p = +inf there, so ℓ = inf; the gradient
            # (p·ΣG − G) stays finite, p = 0 at the −inf logit
            "a −inf logit with label smoothing: infinite loss, finite gradient",
            _class_params(label_smoothing=0.1, weight=True, reduction="none"),
            arrays={
                "logits": [[-np.inf, 0.5, 1.0, 0.0], [0.3, 1.5, -1.0, 2.0], [0, 0, 0, -np.inf]],
                "target": [1, 2, 0],
            },
            checks=("matches_torch",),
        ),
    ),
    error_cases=(
        *_index_error_cases("logits"),
        *_smoothing_error_cases({"logits": _LOGITS, "target": _INDICES}),
    ),
)

CROSS_ENTROPY_PROBS = OpSpec(
    name="cross_entropy_probs",
    family="loss",
    kind="loss",
    summary="cross-entropy of logits against class probabilities (a target shaped like the "
    "logits): class weights, label smoothing, mean over the positions",
    inputs=("logits", "target", "weight"),
    forward=losses.cross_entropy,
    backward=losses.cross_entropy_backward,
    differentiable=("logits",),
    layout=_classification_layout("logits", True, ("reduction", "label_smoothing")),
    params=lambda budget: _classification_params(budget, probabilities=True, smoothing=True),
    tolerance=CROSS_ENTROPY_MODEL,
    fill={"logits": _scaled_normal, "target": _class_probabilities, "weight": _class_weights},
    per_sample=_per_position_classes("logits"),
    not_applicable={"adjoint": "cross-entropy is nonlinear in the logits"},
    torch_name="torch.nn.functional.cross_entropy (probability target)",
    torch_forward=_torch_cross_entropy,
    docs=DOCS,
    edge_cases=(
        *_classification_edge_cases("logits", probabilities=True),
        EdgeCase(
            "one-hot probabilities (the index target's loss)",
            {**_class_params(weight=True), "label_smoothing": 0.0},
            arrays={"target": np.eye(4)[[2, 0, 3]]},
        ),
        EdgeCase(
            "targets that do not sum to 1 (torch takes any values)",
            {**_class_params(reduction="none"), "label_smoothing": 0.1},
            arrays={"target": [[0.5, 0.5, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 0.2, 0.0, 0.3]]},
        ),
        EdgeCase(
            "label smoothing with weights, spatial, 'mean'",
            {
                **_class_params(form="(N, C, d1, ...)", extra=(3,), weight=True),
                "label_smoothing": 0.25,
            },
        ),
    ),
    error_cases=_probability_error_cases(),
)


def _nll_params(**overrides: Any) -> dict[str, Any]:
    params = _class_params(**overrides)
    del params["label_smoothing"]
    return params


NLL_LOSS = OpSpec(
    name="nll_loss",
    family="loss",
    kind="loss",
    summary="negative log-likelihood of log-probabilities at class indices: class weights, "
    "ignore_index, (N, C, d1, ...) positions, mean over Σ w[t]",
    inputs=("log_probs", "target", "weight"),
    forward=_with_indices(losses.nll_loss),
    backward=_with_indices(losses.nll_loss_backward),
    differentiable=("log_probs",),
    linear_in=("log_probs",),
    polynomial_degree=1,
    layout=_classification_layout("log_probs", False, ("ignore_index", "reduction")),
    params=lambda budget: _classification_params(budget, probabilities=False, smoothing=False),
    tolerance=NLL_MODEL,
    fill={"log_probs": _log_probabilities, "target": _class_indices, "weight": _class_weights},
    per_sample=_per_position_classes("log_probs"),
    torch_name="torch.nn.functional.nll_loss (target .long())",
    torch_forward=_torch_nll_loss,
    docs=DOCS,
    edge_cases=(
        EdgeCase(
            "spatial positions (N, C, H, W), class weights, 'none'",
            _nll_params(form="(N, C, d1, ...)", extra=(2, 3), weight=True, reduction="none"),
        ),
        EdgeCase("one unbatched sample: (C,)", _nll_params(form="(C,)", weight=True)),
        *_index_edge_cases("log_probs"),
    ),
    error_cases=_index_error_cases("log_probs"),
)


def _book_params(**overrides: Any) -> dict[str, Any]:
    return {"batch": 3, "classes": 4, "t": "index", "scale": 1.0, **overrides}


SOFTMAX_WITH_LOSS = OpSpec(
    name="softmax_with_loss",
    family="loss",
    kind="loss",
    summary="the book's SoftmaxWithLoss: softmax, then the batch-mean cross-entropy error "
    "(one-hot or index t), exact (no 1e-7 in the log); backward (y − t)/N",
    inputs=("x", "t"),
    forward=_softmax_with_loss,
    backward=_softmax_with_loss_backward,
    differentiable=("x",),
    layout=_softmax_with_loss_layout,
    params=lambda budget: _softmax_with_loss_params(budget),
    tolerance=SOFTMAX_WITH_LOSS_MODEL,
    fill={"x": _scaled_normal, "t": _book_targets},
    not_applicable={
        "adjoint": "softmax_with_loss is nonlinear in x",
        "batch_slices": "the loss is the batch mean: ÷ N couples the samples (cross_entropy "
        "with reduction 'none' checks that positions are independent)",
    },
    torch_name="torch.nn.functional.cross_entropy (reduction 'mean')",
    torch_forward=_torch_softmax_with_loss,
    docs=DOCS,
    edge_cases=(
        EdgeCase("index t", _book_params()),
        EdgeCase("one-hot t", _book_params(t="one-hot")),
        EdgeCase("batch of one", _book_params(batch=1, t="one-hot", scale=10.0)),
        EdgeCase("one class", _book_params(classes=1)),
        EdgeCase(  # the backward is y·Σ_c t_c − t, not y − t, when rows do not sum to 1;
            # outside the book's domain (one-hot t): finite differences on refcnn only (the oracle
            # judges candidates on the edge cases of matches_torch)
            "soft t whose rows do not sum to 1",
            _book_params(t="one-hot"),
            arrays={"t": [[0.5, 0.0, 0.25, 0.0], [0.0, 2.0, 0.0, 0.5], [0.1, 0.1, 0.1, 0.1]]},
            checks=("directional_fd", "full_jacobian_fd"),
        ),
        EdgeCase(
            "large logits (±1000): stable, no log 0",
            _book_params(batch=2),
            arrays={"x": LARGE_LOGITS, "t": [2, 3]},
        ),
    ),
    error_cases=(
        ErrorCase(
            "x is 1-D",
            {"x": ArraySpec((4,)), "t": np.array([1])},
            ValueError,
            r"x must be 2-D \(N, C\), got x.shape=\(4,\)",
        ),
        ErrorCase(
            "index t of another length",
            {"x": _LOGITS, "t": np.array([0, 1])},
            ValueError,
            r"class indices t must be \(N,\) = \(3,\), got t.shape=\(2,\)",
        ),
        ErrorCase(
            "class index out of range",
            {"x": _LOGITS, "t": np.array([0, 4, 1])},
            ValueError,
            r"class index 4 at \(1,\), outside \[0, 4\) for C=4 classes$",
        ),
        ErrorCase(
            "one-hot t of another shape",
            {"x": _LOGITS, "t": ArraySpec((3, 5))},
            ValueError,
            r"one-hot t must have x's shape \(3, 4\), got t.shape=\(3, 5\)",
        ),
        ErrorCase(
            "grad_out not a scalar (backward)",
            {"x": _LOGITS, "t": _INDICES, "grad_out": ArraySpec((3,))},
            ValueError,
            r"grad_out.shape=\(3,\), but the loss \(reduction='mean'\) has shape \(\)",
        ),
        ErrorCase(
            "float32 grad_out (backward)",
            {"x": _LOGITS, "t": _INDICES, "grad_out": np.asarray(0.3, np.float32)},
            TypeError,
            r"grad_out.dtype=float32 differs from x.dtype=float64",
        ),
        ErrorCase(
            "integer x",
            {"x": ArraySpec((3, 4), "int64"), "t": _INDICES},
            TypeError,
            r"x must have a floating dtype, got x.dtype=int64",
        ),
        ErrorCase(
            "float32 one-hot t for float64 x",
            {"x": _LOGITS, "t": ArraySpec((3, 4), "float32")},
            TypeError,
            r"t.dtype=float32 differs from x.dtype=float64",
        ),
    ),
)


# --- regression ---------------------------------------------------------------------------------


def _regression_error_cases(**extra: Any) -> tuple[ErrorCase, ...]:
    valid: dict[str, Any] = {"prediction": ArraySpec((3, 2)), "target": ArraySpec((3, 2))}
    return (
        *_reduction_error_cases({**valid, **extra}, ArraySpec((3,))),
        ErrorCase(
            "integer prediction",
            {**valid, "prediction": ArraySpec((3, 2), "int64")},
            TypeError,
            r"prediction must have a floating dtype, got prediction.dtype=int64",
        ),
        ErrorCase(
            "target of another shape (no broadcasting)",
            {**valid, "target": ArraySpec((1, 2))},
            ValueError,
            r"target.shape=\(1, 2\) differs from prediction.shape=\(3, 2\); refcnn does not "
            "broadcast",
        ),
        ErrorCase(
            "float32 target for float64 prediction",
            {**valid, "target": ArraySpec((3, 2), "float32")},
            TypeError,
            r"target.dtype=float32 differs from prediction.dtype=float64",
        ),
        ErrorCase(
            "grad_out of the wrong shape for 'none' (backward)",
            {**valid, "reduction": "none", "grad_out": ArraySpec((2, 3))},
            ValueError,
            r"grad_out.shape=\(2, 3\), but the loss \(reduction='none'\) has shape \(3, 2\)",
        ),
    )


def _regression_params(**overrides: Any) -> dict[str, Any]:
    return {"shape": (2, 3), "reduction": "mean", **overrides}


def _on_kinks(case_id: str, prediction: list[float], target: list[float], **kw: Any) -> EdgeCase:
    """Exact values on kinks: torch's subgradient only."""
    return EdgeCase(
        case_id,
        _regression_params(shape=(len(prediction),), reduction="none", **kw),
        arrays={"prediction": prediction, "target": target},
        checks=("matches_torch",),
    )


def _regression_entry(
    name: str,
    summary: str,
    tolerance: Formula,
    polynomial_degree: int,
    hyperparameter: str | None = None,
    kink_fill: bool = True,
    edge_cases: tuple[EdgeCase, ...] = (),
    error_cases: tuple[ErrorCase, ...] = (),
) -> OpSpec:
    fill = {"prediction": _off_grid_prediction, "target": _grid_target} if kink_fill else {}
    return OpSpec(
        name=name,
        family="loss",
        kind="loss",
        summary=summary,
        inputs=("prediction", "target"),
        forward=getattr(losses, name),
        backward=getattr(losses, f"{name}_backward"),
        differentiable=("prediction",),
        polynomial_degree=polynomial_degree,
        layout=_regression_layout,
        params=lambda budget: _regression_strategy(budget, hyperparameter),
        tolerance=tolerance,
        fill=fill,
        per_sample=_per_element("prediction"),
        not_applicable={"adjoint": f"{name} is nonlinear in the prediction"},
        torch_name=f"torch.nn.functional.{name}",
        torch_forward=_torch_elementwise(name),
        docs=DOCS,
        edge_cases=(
            EdgeCase("0-d prediction", _regression_params(shape=())),
            EdgeCase("4 elements, 'sum'", _regression_params(shape=(4,), reduction="sum")),
            EdgeCase("3-D, 'none'", _regression_params(shape=(2, 1, 3), reduction="none")),
            *edge_cases,
        ),
        error_cases=(*_regression_error_cases(), *error_cases),
    )


MSE_LOSS = _regression_entry(
    "mse_loss",
    "mean squared error (y − t)² (no ½), reduction mean/sum/none",
    MSE_MODEL,
    polynomial_degree=2,
    kink_fill=False,
)

L1_LOSS = _regression_entry(
    "l1_loss",
    "mean absolute error |y − t|; subgradient 0 at y = t",
    L1_MODEL,
    polynomial_degree=1,
    edge_cases=(
        _on_kinks("y = t: torch's subgradient sign(0) = 0", [0.5, -2.0, 0.0], [0.5, -2.0, -0.0]),
    ),
)

SMOOTH_L1_LOSS = _regression_entry(
    "smooth_l1_loss",
    "z²/(2β) for z = |y − t| < β, else z − β/2 (β = 0: l1)",
    SMOOTH_L1_MODEL,
    polynomial_degree=2,
    hyperparameter="beta",
    edge_cases=(
        _on_kinks(
            "on the kinks: |y − t| = β and y = t",
            [1.5, -0.5, 2.0, 3.0],
            [1.0, 0.0, 2.0, 1.0],
            beta=0.5,
        ),
        _on_kinks(
            "β = 0 is l1: subgradient 0 at y = t", [1.0, 2.0, -1.0], [1.0, 0.5, 0.0], beta=0.0
        ),
        EdgeCase("β = 2, 'sum'", _regression_params(reduction="sum", beta=2.0)),
    ),
    error_cases=(
        ErrorCase(
            "negative beta",
            {"prediction": ArraySpec((3,)), "target": ArraySpec((3,)), "beta": -1.0},
            ValueError,
            r"beta must be in \[0.0, inf\], got beta=-1.0",
        ),
        ErrorCase(
            "beta a string",
            {"prediction": ArraySpec((3,)), "target": ArraySpec((3,)), "beta": "1"},
            TypeError,
            r"beta must be a real number, got beta='1'",
        ),
    ),
)

HUBER_LOSS = _regression_entry(
    "huber_loss",
    "z²/2 for z = |y − t| < δ, else δ·(z − δ/2): δ·smooth_l1(β = δ)",
    HUBER_MODEL,
    polynomial_degree=2,
    hyperparameter="delta",
    edge_cases=(
        _on_kinks("on the kinks: |y − t| = δ", [2.5, -1.0, 0.0], [1.0, 0.5, 0.0], delta=1.5),
        EdgeCase("δ = 0.5, 'sum'", _regression_params(reduction="sum", delta=0.5)),
    ),
    error_cases=(
        ErrorCase(
            "delta 0 (torch: non-positive values not supported)",
            {"prediction": ArraySpec((3,)), "target": ArraySpec((3,)), "delta": 0.0},
            ValueError,
            r"delta must be positive .*got delta=0.0",
        ),
        ErrorCase(
            "negative delta",
            {"prediction": ArraySpec((3,)), "target": ArraySpec((3,)), "delta": -1.0},
            ValueError,
            r"delta must be in \[0.0, inf\], got delta=-1.0",
        ),
    ),
)


# --- binary -------------------------------------------------------------------------------------


def _binary_params(**overrides: Any) -> dict[str, Any]:
    params = {"shape": (2, 3), "reduction": "mean", "hard_targets": False, "weight": "none"}
    return {**params, **overrides}


def _binary_error_cases(name: str) -> tuple[ErrorCase, ...]:
    inside = np.full((2, 4), 0.5)
    valid: dict[str, Any] = {name: inside, "target": np.full((2, 4), 0.25)}
    return (
        *_reduction_error_cases(valid, ArraySpec((3,))),
        ErrorCase(
            f"integer {name}",
            {**valid, name: np.ones((2, 4), np.int64)},
            TypeError,
            rf"{name} must have a floating dtype, got {name}.dtype=int64",
        ),
        ErrorCase(
            "target of another shape (no broadcasting)",
            {**valid, "target": np.full((4,), 0.5)},
            ValueError,
            rf"target.shape=\(4,\) differs from {name}.shape=\(2, 4\)",
        ),
        ErrorCase(
            "weight that does not broadcast",
            {**valid, "weight": np.ones(3)},
            ValueError,
            rf"weight.shape=\(3,\) does not broadcast to {name}.shape=\(2, 4\)",
        ),
        ErrorCase(
            "weight that would enlarge the loss",
            {**valid, "weight": np.ones((3, 2, 4))},
            ValueError,
            rf"weight.shape=\(3, 2, 4\) does not broadcast to {name}.shape=\(2, 4\)",
        ),
        ErrorCase(
            f"float32 weight for float64 {name}",
            {**valid, "weight": np.ones(4, np.float32)},
            TypeError,
            rf"weight.dtype=float32 differs from {name}.dtype=float64",
        ),
        ErrorCase(
            f"float32 target for float64 {name}",
            {**valid, "target": np.full((2, 4), 0.25, np.float32)},
            TypeError,
            rf"target.dtype=float32 differs from {name}.dtype=float64",
        ),
    )


BINARY_CROSS_ENTROPY = OpSpec(
    name="binary_cross_entropy",
    family="loss",
    kind="loss",
    summary="−w·(t·log p + (1 − t)·log(1 − p)) of probabilities, logs clamped at −100 (torch), "
    "weight broadcast",
    inputs=("probabilities", "target", "weight"),
    forward=losses.binary_cross_entropy,
    backward=losses.binary_cross_entropy_backward,
    differentiable=("probabilities",),
    layout=_binary_layout("probabilities"),
    params=lambda budget: _binary_strategy(budget, logits=False),
    tolerance=BCE_MODEL,
    fill={
        "probabilities": _open_probabilities,
        "target": _binary_targets,
        "weight": _class_weights,
    },
    per_sample=_per_element("probabilities"),
    not_applicable={"adjoint": "binary_cross_entropy is nonlinear in the probabilities"},
    torch_name="torch.nn.functional.binary_cross_entropy",
    torch_forward=_torch_binary_cross_entropy,
    docs=DOCS,
    edge_cases=(
        EdgeCase(
            "hard targets, weight per last axis", _binary_params(hard_targets=True, weight="last")
        ),
        EdgeCase("0-d, full weight", _binary_params(shape=(), weight="full")),
        EdgeCase(
            # log 0 clamped at −100; the gradient's p·(1 − p) floored at float32(1e-12)
            "p at 0 and 1: clamped logs, torch's floored gradient",
            _binary_params(shape=(6,), reduction="none"),
            arrays={
                "probabilities": [0.0, 0.0, 1.0, 1.0, 1e-13, 0.5],
                "target": [0.0, 1.0, 0.0, 1.0, 0.0, 1.0],
            },
            checks=("matches_torch",),
        ),
    ),
    error_cases=(
        *_binary_error_cases("probabilities"),
        ErrorCase(
            "probability above 1",
            {"probabilities": np.array([0.5, 1.5]), "target": np.array([1.0, 0.0])},
            ValueError,
            r"probabilities must lie in \[0, 1\] \(torch: all elements of input should be "
            r"between 0 and 1\), got probabilities\[\(1,\)\]=1.5",
        ),
        ErrorCase(
            "negative probability",
            {"probabilities": np.array([-0.1, 0.5]), "target": np.array([1.0, 0.0])},
            ValueError,
            r"probabilities must lie in \[0, 1\]",
        ),
        ErrorCase(
            "NaN probability",
            {"probabilities": np.array([0.5, np.nan]), "target": np.array([1.0, 0.0])},
            ValueError,
            r"probabilities must lie in \[0, 1\].*got probabilities\[\(1,\)\]=nan",
        ),
        ErrorCase(
            "target outside [0, 1]",
            {"probabilities": np.array([0.5, 0.5]), "target": np.array([1.0, 2.0])},
            ValueError,
            r"target must lie in \[0, 1\] \(torch: all elements of target should be between 0 "
            r"and 1\), got target\[\(1,\)\]=2.0",
        ),
    ),
)


def _logit_params(**overrides: Any) -> dict[str, Any]:
    return _binary_params(**{"scale": 1.0, "pos_weight": False, **overrides})


BINARY_CROSS_ENTROPY_WITH_LOGITS = OpSpec(
    name="binary_cross_entropy_with_logits",
    family="loss",
    kind="loss",
    summary="BCE of σ(x) from the logits x, stable: max(x, 0) − x·t + log1p(exp(−|x|)); weight "
    "and pos_weight broadcast",
    inputs=("logits", "target", "weight", "pos_weight"),
    forward=losses.binary_cross_entropy_with_logits,
    backward=losses.binary_cross_entropy_with_logits_backward,
    differentiable=("logits",),
    layout=_binary_layout("logits"),
    params=lambda budget: _binary_strategy(budget, logits=True),
    tolerance=BCE_LOGITS_MODEL,
    fill={
        "logits": _scaled_normal,
        "target": _binary_targets,
        "weight": _class_weights,
        "pos_weight": _pos_weights,
    },
    per_sample=_per_element("logits"),
    not_applicable={"adjoint": "binary_cross_entropy_with_logits is nonlinear in the logits"},
    torch_name="torch.nn.functional.binary_cross_entropy_with_logits",
    torch_forward=_torch_binary_cross_entropy_with_logits,
    docs=DOCS,
    edge_cases=(
        EdgeCase(
            "pos_weight, hard targets, weight per last axis",
            _logit_params(hard_targets=True, weight="last", pos_weight=True),
        ),
        EdgeCase("0-d, full weight", _logit_params(shape=(), weight="full")),
        EdgeCase(
            # exp(−80) = 1.8e-35 is still a normal float32 (torch's float32 σ(−100) underflows)
            "large logits ±30, ±80: stable",
            _logit_params(shape=(2, 4), reduction="none", pos_weight=True),
            arrays={
                "logits": [[-80.0, -30.0, 30.0, 80.0], [80.0, 30.0, -30.0, -80.0]],
                "target": [[1.0, 0.0, 1.0, 0.0], [1.0, 0.25, 0.75, 0.0]],
            },
        ),
    ),
    error_cases=(
        *_binary_error_cases("logits"),
        ErrorCase(
            "pos_weight that does not broadcast",
            {"logits": np.zeros((2, 4)), "target": np.zeros((2, 4)), "pos_weight": np.ones(3)},
            ValueError,
            r"pos_weight.shape=\(3,\) does not broadcast to logits.shape=\(2, 4\)",
        ),
        ErrorCase(
            "float32 pos_weight for float64 logits",
            {
                "logits": np.zeros((2, 4)),
                "target": np.zeros((2, 4)),
                "pos_weight": np.ones(4, np.float32),
            },
            TypeError,
            r"pos_weight.dtype=float32 differs from logits.dtype=float64",
        ),
    ),
)


def _scalar_upstream(arguments: Mapping[str, Any]) -> Any:
    """A 0-d upstream: every loss's default reduction is 'mean' (cases that set another are
    not posed to the backward)."""
    return None if "reduction" in arguments else np.asarray(0.3)


# Every loss's forward error cases run through its backward too.
OPS: tuple[OpSpec, ...] = tuple(
    dataclasses.replace(spec, error_cases=in_backward_too(spec.error_cases, _scalar_upstream))
    for spec in (
        CROSS_ENTROPY,
        CROSS_ENTROPY_PROBS,
        NLL_LOSS,
        SOFTMAX_WITH_LOSS,
        MSE_LOSS,
        L1_LOSS,
        SMOOTH_L1_LOSS,
        HUBER_LOSS,
        BINARY_CROSS_ENTROPY,
        BINARY_CROSS_ENTROPY_WITH_LOGITS,
    )
)
