"""Catalog entries of the optimizer family: SGD, Adagrad, RMSprop, Adadelta, Adam, AdamW, Adamax,
NAdam and RAdam, each run for T ≥ 10 steps and compared step by step with torch.optim.

Representation. An optimizer is an op of kind "optimizer" with two inputs, neither
differentiable: ``params`` (P,), the initial values, and ``grads`` (T, P), the gradient of every
step (drawn afresh per step; the drawn ``steps`` make some of them tiny, 1e-6·N(0, 1), and some
exactly zero). The keyword ``split`` is a tuple of 1 to 3 tensor shapes of different ranks whose
sizes add up to P: both implementations run on THOSE tensors (torch.optim on several parameters,
each with its own state), then flatten and concatenate them again. The hyperparameters are the
other keywords; a hyperparameter the strategy leaves out takes each implementation's own default,
so the defaults are compared too.

forward returns ONE array, the trajectory (T, K, P): ``out[t, 0]`` the parameters after step
t + 1, ``out[t, k]`` the k-th state buffer after it, in the order of torch's ``optimizer.state``
keys (the scalars ``step`` and NAdam's ``mu_product`` left out); each entry's summary lists them.
refcnn runs its class API (refcnn.optim, in place on copies of the tensors); torch runs
torch.optim with its default implementation, which on CPU tensors is the single-tensor loop
(``foreach=None`` resolves to False off CUDA; the binding asserts it), assigning ``.grad`` before
each ``step()``; no backward is involved.

Rounding-error model (tolerance.Formula, ``|computed − exact| ≤ γ_c·M`` elementwise), FIRST
ORDER in the unit roundoff u. The rounding counts differ from term to term and from step to
step, so they are carried inside M rather than in one c: ``c = 1`` and M = E, a running error
bound (Higham, *Accuracy and Stability*, §3.3) evaluated alongside the exact (float64) trajectory:
every rounding adds ``count·|the value it rounds|`` to E, and the errors already in a quantity
are carried forward through its partial derivatives. A sum of many terms therefore weighs each
term by its own count instead of all of them by the largest, and an amplification (a quotient by
a small √v, a bias correction 1 − βᵗ close to 0) appears in E as the factor it is. The rules,
E_a denoting the bound carried by a quantity a (exact inputs have E = 0):

    scalar s in double, cast      r_s = (roundings in double) + 1 for the cast to the array dtype
    s·a, a/s  (s scalar)           E = |s|·E_a + (r_s + 1)·|s·a|
    a ± b                          E = E_a + E_b + |a ± b|
    a·b  (arrays)                  E = |b|·E_a + |a|·E_b + |a·b|
    q = a/b  (arrays)              E = E_a/|b| + |q|·E_b/|b| + |q|
    √a                             E = E_a/(2√a) + √a
    a + eps                        E = E_a + eps (eps cast) + |a + eps|
    max(a, b)                      E = max(E_a, E_b)   (max is 1-Lipschitz)
    1 − βᵗ  (pow, subtraction)     r = L·βᵗ/(1 − βᵗ) + 1   (L = LIBRARY_ROUNDINGS per pow call):
                                   the bias correction's amplification κ = βᵗ/(1 − βᵗ)
    √(1 − βᵗ)  (x ** 0.5)          r/2 + L

A moving average new = β·old + w·x (w = 1 − β, computed in double and cast: 2 roundings) is
evaluated in one of three ways: β·old + w·x (refcnn; torch's ``mul_(β).addcmul_(…, value=w)``),
old + w·(x − old) (torch's ``lerp_`` for w < 0.5, the book's Adam), x − (1 − w)·(x − old)
(``lerp_`` for w ≥ 0.5). With d = |x − old| their roundings add up to 2β|old| + 3w|x|, 4w·d and
(3 − w)·d respectively; the model takes the largest (the third only when w ≥ 0.5), plus |new|
for the final addition, and carries β·E_old + w·E_x. x = g² adds its own rounding, w·g², with
E_x = 2|g|·E_g.

Per optimizer the lines of its docstring in refcnn.optim are bounded in that order with those
rules (the ``_<name>_error`` functions below follow them line by line). Weight decay in the
gradient, g' = ±g + λθ: E = λ·E_θ + 2λ|θ| + |g'|; decoupled, θ·f with f = 1 − lr·λ in double:
E = |f|·E_θ + (lr·λ + 2|f|)·|θ| + |θ·f|. The scalar coefficients are:

    SGD        lr, μ (cast: 1); 1 − τ (2)
    Adagrad    clr = lr/(1 + (t − 1)·lr_decay): 3 in double + cast = 4
    RMSprop,   lr, α, μ, ρ (1); 1 − α, 1 − ρ (2); centered: v − ḡ² has its cancellation in E
    Adadelta
    Adam       lr/(1 − β₁ᵗ): r₁ + 2;  √(1 − β₂ᵗ): r₂/2 + L + 1
    Adamax     lr/(1 − β₁ᵗ): r₁ + 2
    NAdam      p = 0.96^(tψ): L + tψ·(1 + |ln 0.96|) (the pow, its exponent's rounding, 0.96's own);
               μ = β₁(1 − p/2): (p/2)·r_p/(1 − p/2) + 2;  Πₜ = Πₜ₋₁·μₜ: r_Π + r_μ + 2 (cast of μ,
               product: torch keeps Π in a tensor);  Πₜμₜ₊₁: + r_μ' + 1;
               lr(1 − μ)/(1 − Π): μr_μ/(1 − μ) + Πr_Π/(1 − Π) + 5;
               lr·μ'/(1 − Π'), Π' = Πμ': r_μ' + Π'r_Π'/(1 − Π') + 4
    RAdam      m/(1 − β₁ᵗ): r₁ + 1 (cast) and the division;  ρ∞ = 2/(1 − β₂) − 1:
               r∞ = 2(ρ∞ + 1)/ρ∞ + 1;  ρₜ = ρ∞ − τ, τ = 2tβ₂ᵗ/(1 − β₂ᵗ) (r_τ = L + 2 + r₂):
               rₜ = (ρ∞r∞ + τr_τ)/ρₜ + 1 (the cancellation);  the rectifier (products, quotient,
               ** 0.5): ½(Σ of its factors' r + 5) + L with (ρₜ − 4), (ρₜ − 2), (ρ∞ − 4), (ρ∞ − 2)
               each ρr/|difference| + 1

Not modelled: a branch decided by a scalar within rounding of its threshold (RAdam's ρₜ > 5; both
implementations compute ρₜ by the same double expression, so they branch alike), and values
outside the normal range: below it an underflow's error is absolute, not relative. The strategies
keep every value normal in float32: decay factors (β, α, ρ, μ) are 0 or ≥ 1/8, and gradients are
at least 1e-3 (1e-9 on tiny steps) in magnitude, so 14 steps of decay stay above 1e-31. Excluded
from the strategies, with the reason next to the strategy: centered RMSprop with α = 0, where
v − ḡ² cancels completely (the exact value is 0, and torch's fused v − ḡ·ḡ returns the rounding
error of ḡ², so √ of a negative number: NaN; see tests/test_optim.py).

torch 2.13 keeps NAdam's ``mu_product`` in a 0-d tensor of torch's DEFAULT dtype, float32 unless
set, also for float64 parameters: its float64 trajectory then carries float32 roundings of Πₜ,
which no float64 model allows for. The torch binding runs with the default dtype set to the
sample's, as a float64 user of torch does; tests/test_optim.py runs torch's default against the
allowance :func:`nadam_float32_product_allowance` derives. That allowance covers θ without weight
decay only: with coupled weight decay θ's error feeds back into exp_avg and exp_avg_sq, which it
leaves at zero, so it cannot yet be declared as a KnownDeviation for every sample.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from hypothesis import strategies as st
from numpy.typing import NDArray

from refcnn import optim
from refcnn.geometry import check_float_array, check_same_dtype
from refcnn.testing.opspec import (
    ArraySpec,
    EdgeCase,
    ErrorCase,
    Layout,
    OpSpec,
    Params,
)
from refcnn.testing.tolerance import LIBRARY_ROUNDINGS as L
from refcnn.testing.tolerance import Formula

Array = NDArray[np.float64]
Shapes = tuple[tuple[int, ...], ...]

TINY = 1e-6  # the scale of a "tiny" step's gradient
FLOOR = 1e-3  # |a drawn N(0, 1) value| ≥ FLOOR before scaling (see _grads_fill)
STEP_KINDS = ("normal", "tiny", "zero")  # "normal" first: shrinking goes there

# --- the problem: tensors, steps, gradients -----------------------------------------------------


@st.composite
def _split(draw: Any) -> Shapes:
    """1 to 3 tensors of DIFFERENT ranks (so different shapes), sizes 1 to 3 per axis."""
    ranks = draw(st.permutations([1, 2, 3]), label="ranks")[: draw(st.integers(1, 3), label="n")]
    return tuple(
        tuple(draw(st.integers(1, 3), label=f"size {axis}") for axis in range(rank))
        for rank in ranks
    )


@st.composite
def _problem(draw: Any) -> dict[str, Any]:
    """The tensors (``split``) and what each of T = 10 … 14 steps' gradient is."""
    steps = draw(st.integers(10, 14), label="T")
    kinds = st.lists(st.sampled_from(STEP_KINDS), min_size=steps, max_size=steps)
    return {"split": draw(_split(), label="split"), "steps": tuple(draw(kinds, label="steps"))}


def _grads_fill(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
    """A fresh gradient per step, N(0, 1) moved FLOOR away from 0, then scaled by 1, TINY or 0
    as ``params["steps"]`` says. The floor keeps g² ≥ 1e-18 on tiny steps, so that a moving
    average decaying by β ≥ 1/8 over 14 steps stays a normal float32 (≥ 1e-31)."""
    scale = {"normal": 1.0, "tiny": TINY, "zero": 0.0}
    factors = np.array([scale[kind] for kind in params["steps"]])
    values = rng.standard_normal(shape)
    values = values + np.where(values >= 0, FLOOR, -FLOOR)
    return np.asarray(values * factors[:, None])


def _layout(params: Params) -> Layout:
    split = tuple(tuple(shape) for shape in params["split"])
    size = sum(math.prod(shape) for shape in split)
    hyperparameters = {k: v for k, v in params.items() if k not in ("split", "steps")}
    return (
        {"params": (size,), "grads": (len(params["steps"]), size)},
        {"split": split, **hyperparameters},
    )


def _pieces(split: Shapes) -> list[tuple[int, int, tuple[int, ...]]]:
    """(start, stop, shape) of each tensor in the flat vector."""
    pieces, start = [], 0
    for shape in split:
        stop = start + math.prod(shape)
        pieces.append((start, stop, tuple(shape)))
        start = stop
    return pieces


def _check_problem(params: object, grads: object, split: object) -> tuple[Any, Any, Shapes]:
    params = check_float_array(params, "params", 1, "(P,)")
    grads = check_float_array(grads, "grads", 2, "(T, P)")
    check_same_dtype("params", params, grads=grads)
    if grads.shape[1] != params.shape[0]:
        raise ValueError(
            f"grads.shape={grads.shape} must be (T, P) with P = params.size = {params.shape[0]}"
        )
    if not isinstance(split, tuple) or not all(
        isinstance(shape, tuple) and all(isinstance(n, int) and n >= 1 for n in shape)
        for shape in split
    ):
        raise TypeError(f"split must be a tuple of shapes (tuples of ints >= 1), got {split!r}")
    if sum(math.prod(shape) for shape in split) != params.shape[0]:
        raise ValueError(
            f"the sizes of split={split} add up to {sum(math.prod(s) for s in split)}, but "
            f"params.size={params.shape[0]}"
        )
    return params, grads, split


# --- the two implementations --------------------------------------------------------------------

Buffers = Callable[[Mapping[str, Any]], tuple[str, ...]]


def _trajectory(optimizer_class: type[optim.Optimizer], buffers: Buffers) -> Callable[..., Any]:
    """forward: refcnn's class API on copies of the split tensors, stepped T times, stacked."""

    def forward(params: Any, grads: Any, *, split: Shapes, **hyperparameters: Any) -> Any:
        params, grads, split = _check_problem(params, grads, split)
        pieces = _pieces(split)
        tensors = [params[a:b].reshape(shape).copy() for a, b, shape in pieces]
        optimizer = optimizer_class(tensors, **hyperparameters)  # validates, with torch's messages
        names = buffers(hyperparameters)
        rows = []
        for grad in grads:
            optimizer.step([grad[a:b].reshape(shape) for a, b, shape in pieces])
            row = [np.concatenate([t.reshape(-1) for t in tensors])]
            for name in names:
                row.append(np.concatenate([s[name].reshape(-1) for s in optimizer.state]))
            rows.append(np.stack(row))
        return np.stack(rows)

    return forward


def _torch_trajectory(name: str, buffers: Buffers) -> Callable[..., Any]:
    """torch.optim.<name> on the split tensors, ``.grad`` assigned before each step.

    torch.optim keeps its SCALAR state (the step counters, NAdam's μ product) in torch's default
    dtype, float32 unless set, whatever the parameters' dtype. The binding sets the default dtype
    to the sample's for the run, as a float64 user of torch does (torch.set_default_dtype): see
    the module docstring for what torch's float32 default does to NAdam. Step counters are exact
    integers in both.
    """

    def run(params: Any, grads: Any, *, split: Shapes, **hyperparameters: Any) -> Any:
        import torch
        from torch.optim.optimizer import _default_to_fused_or_foreach

        pieces = _pieces(split)
        tensors = [params[a:b].reshape(shape).clone() for a, b, shape in pieces]
        # torch's default (what users run): foreach=None, which resolves to the single-tensor
        # loop for CPU tensors; assert it, so that a change of default is noticed here
        if _default_to_fused_or_foreach(tensors, differentiable=False) != (False, False):
            raise AssertionError("torch would not take the single-tensor path on these tensors")
        names = buffers(hyperparameters)
        rows = []
        default_dtype = torch.get_default_dtype()
        torch.set_default_dtype(params.dtype)  # the scalar state's dtype: see the docstring
        try:
            optimizer = getattr(torch.optim, name)(tensors, **hyperparameters)
            for grad in grads:
                for (a, b, shape), tensor in zip(pieces, tensors, strict=True):
                    tensor.grad = grad[a:b].reshape(shape).clone()
                optimizer.step()
                state = optimizer.state[tensors[0]]
                kept = [k for k in state if k not in ("step", "mu_product")]
                if kept != list(names):
                    raise AssertionError(f"torch's state keys {kept} differ from {list(names)}")
                row = [torch.cat([t.reshape(-1) for t in tensors])]
                for key in names:
                    row.append(torch.cat([optimizer.state[t][key].reshape(-1) for t in tensors]))
                rows.append(torch.stack(row))
        finally:
            torch.set_default_dtype(default_dtype)
        return torch.stack(rows)

    return run


# --- the running error bound (the rules of the module docstring) --------------------------------
#
# A quantity is a pair (value, E): its exact value (float64) and the bound E with
# |computed − exact| ≤ u·E to first order.

Pair = tuple[Array, Array]


def _exact(value: Any) -> Pair:
    array = np.asarray(value, dtype=np.float64)
    return array, np.zeros_like(array)


def _sum(a: Pair, b: Pair) -> Pair:
    """a + b: E_a + E_b + |a + b|."""
    value = a[0] + b[0]
    return value, a[1] + b[1] + np.abs(value)


def _difference(a: Pair, b: Pair) -> Pair:
    value = a[0] - b[0]
    return value, a[1] + b[1] + np.abs(value)


def _scaled(a: Pair, s: float, r_s: float) -> Pair:
    """s·a with a scalar s of relative error r_s·u: |s|·E_a + (r_s + 1)·|s·a|."""
    value = s * a[0]
    return value, abs(s) * a[1] + (r_s + 1.0) * np.abs(value)


def _product(a: Pair, b: Pair) -> Pair:
    value = a[0] * b[0]
    return value, np.abs(b[0]) * a[1] + np.abs(a[0]) * b[1] + np.abs(value)


def _ratio(b_error: Array, b: Array) -> Array:
    """E_b/|b|, with 0/0 = 0 (an exact zero carries no error) and E/0 = ∞ otherwise."""
    out = np.zeros_like(b_error)
    np.divide(b_error, np.abs(b), out=out, where=b != 0)
    out[(b == 0) & (b_error > 0)] = np.inf
    return out


def _quotient(a: Pair, b: Pair) -> Pair:
    """a/b: E_a/|b| + |q|·E_b/|b| + |q| (b ≠ 0: every denominator here has eps added)."""
    value = a[0] / b[0]
    return value, _ratio(a[1] + np.abs(value) * b[1], b[0]) + np.abs(value)


def _square(a: Pair) -> Pair:
    return _product(a, a)


def _sqrt(a: Pair) -> Pair:
    """√a: E_a/(2√a) + √a (0 where a = 0 exactly with E_a = 0)."""
    root = np.sqrt(np.maximum(a[0], 0.0))
    return root, _ratio(a[1], 2.0 * root) + root


def _plus_eps(a: Pair, eps: float) -> Pair:
    """a + eps, eps cast to the dtype: E_a + eps + |a + eps|."""
    value = a[0] + eps
    return value, a[1] + eps + np.abs(value)


def _maximum(a: Pair, b: Pair) -> Pair:
    return np.maximum(a[0], b[0]), np.maximum(a[1], b[1])


def _ema(old: Pair, x: Pair, w: float, nonnegative: bool = False) -> Pair:
    """new = β·old + w·x (β = 1 − w) in any of the three forms of the module docstring.

    ``nonnegative``: old, x ≥ 0 (a mean of squares). Then new = 0 only when both of its terms
    are 0 (β = 0 or old = 0, and w = 0 or x = 0), where every form computes 0 exactly: E = 0
    there, which keeps √new's first-order bound E/(2√new) finite (α = 0, then a zero step).
    """
    beta = 1.0 - w
    value = beta * old[0] + w * x[0]
    gap = np.abs(x[0] - old[0])
    rounding = np.maximum(2.0 * beta * np.abs(old[0]) + 3.0 * w * np.abs(x[0]), 4.0 * w * gap)
    if w >= 0.5:
        rounding = np.maximum(rounding, (3.0 - w) * gap)
    error = beta * old[1] + w * x[1] + rounding + np.abs(value)
    if nonnegative:
        error = np.where(value == 0, 0.0, error)
    return value, error


def _grad_with_decay(theta: Pair, grad: Array, weight_decay: float, maximize: bool) -> Pair:
    """g' = ±g + λθ: λ·E_θ + 2λ|θ| + |g'| (nothing when λ = 0)."""
    signed = _exact(-grad if maximize else grad)
    if weight_decay == 0:
        return signed
    return _sum(signed, _scaled(theta, weight_decay, 1.0))


def _decoupled_decay(theta: Pair, lr: float, weight_decay: float) -> Pair:
    """θ·f, f = 1 − lr·λ in double and cast: |f|·E_θ + (lr·λ + 2|f|)·|θ| + |θ·f|."""
    if weight_decay == 0:
        return theta
    factor = 1.0 - lr * weight_decay
    value = theta[0] * factor
    rounding = (lr * weight_decay + 2.0 * abs(factor)) * np.abs(theta[0]) + np.abs(value)
    return value, abs(factor) * theta[1] + rounding


def _bias_correction(beta: float, step: int) -> tuple[float, float]:
    """(1 − βᵗ, its relative error count L·κ + 1 with κ = βᵗ/(1 − βᵗ))."""
    power = beta**step
    value = 1.0 - power
    return value, L * power / value + 1.0


def _stacked(rows: list[list[Array]]) -> Array:
    return np.asarray(np.stack([np.stack(row) for row in rows]))


# --- hyperparameter strategies ------------------------------------------------------------------


def _floats(low: float, high: float, **options: Any) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_subnormal=False, **options)


def _optional(**strategies: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Each hyperparameter drawn, or left out so that refcnn's and torch's defaults meet."""
    return st.fixed_dictionaries({}, optional=strategies)


# A decay factor (β, α, ρ, μ) is 0 or at least 1/8: a state that decays by it over 14 steps
# (zero gradients) stays in float32's normal range, where the rounding model holds (below it,
# underflow errors are absolute, not relative). Up to 1 exclusive, extremes like 1 − 2⁻⁵³ included.
DECAY = st.one_of(st.just(0.0), _floats(0.125, 1.0, exclude_max=True))
LR = _floats(1e-4, 1.0)
EPS = st.sampled_from((1e-8, 1e-10, 1e-6, 1e-3, 0.1))  # > 0: with eps = 0 a zero step is 0/0
WEIGHT_DECAY = st.one_of(st.just(0.0), _floats(1e-4, 0.5))
BETAS = st.tuples(DECAY, DECAY)  # torch's range is [0, 1)
MOMENTUM = st.one_of(st.just(0.0), _floats(0.125, 0.99))  # torch accepts > 1 too: it diverges
FLAG = st.booleans()
# what Adam, AdamW, Adamax, NAdam and RAdam all take
ADAM_FAMILY = {"lr": LR, "betas": BETAS, "eps": EPS, "weight_decay": WEIGHT_DECAY, "maximize": FLAG}


Hyperparameters = st.SearchStrategy[dict[str, Any]]


def _params(hyperparameters: Hyperparameters) -> Callable[[str], Any]:
    """params(budget): the problem and the optimizer's hyperparameters (one budget for all)."""

    @st.composite
    def params(draw: Any, budget: str) -> dict[str, Any]:
        problem = draw(_problem(), label="problem")
        return {**problem, **draw(hyperparameters, label="hyperparameters")}

    return params


def _problem_params(**hyperparameters: Any) -> dict[str, Any]:
    """A fixed problem for edge cases: tensors (3,), (2, 2) and (1, 2, 1); 10 steps, the first
    zero, two tiny."""
    steps = ("zero", "normal", "tiny", "normal", "normal", "tiny") + ("normal",) * 4
    return {"split": ((3,), (2, 2), (1, 2, 1)), "steps": steps, **hyperparameters}


def _error_case(case_id: str, error: type[Exception], match: str, **arguments: Any) -> ErrorCase:
    defaults: dict[str, Any] = {
        "params": ArraySpec((5,)),
        "grads": ArraySpec((10, 5)),
        "split": ((5,),),
    }
    return ErrorCase(case_id, {**defaults, **arguments}, error, match)


def _array_errors() -> tuple[ErrorCase, ...]:
    """Bad problems, the same for every optimizer (refcnn's messages: torch has no such call)."""
    return (
        _error_case(
            "params is 2-D", ValueError, r"params must be 1-D \(P,\)", params=ArraySpec((5, 1))
        ),
        _error_case(
            "integer params",
            TypeError,
            r"params must have a floating dtype",
            params=ArraySpec((5,), "int64"),
        ),
        _error_case(
            "grads for another P",
            ValueError,
            r"grads.shape=\(10, 4\) must be \(T, P\) with P = params.size = 5",
            grads=ArraySpec((10, 4)),
        ),
        _error_case(
            "float32 grads with float64 params",
            TypeError,
            r"grads.dtype=float32 differs from params.dtype=float64",
            grads=ArraySpec((10, 5), "float32"),
        ),
        _error_case(
            "split of the wrong size",
            ValueError,
            r"the sizes of split=\(\(2, 2\),\) add up to 4, but params.size=5",
            split=((2, 2),),
        ),
    )


def _common_errors(lr: bool = True, eps: bool = True) -> tuple[ErrorCase, ...]:
    cases = [
        _error_case(
            "negative weight_decay",
            ValueError,
            r"^Invalid weight_decay value: -0.01$",
            weight_decay=-0.01,
        )
    ]
    if lr:
        cases.append(
            _error_case("negative lr", ValueError, r"^Invalid learning rate: -0.1$", lr=-0.1)
        )
    if eps:
        cases.append(
            _error_case("negative eps", ValueError, r"^Invalid epsilon value: -1e-08$", eps=-1e-8)
        )
    return (*cases, *_array_errors())


def _beta_errors() -> tuple[ErrorCase, ...]:
    return (
        _error_case(
            "beta1 = 1",
            ValueError,
            r"^Invalid beta parameter at index 0: 1.0$",
            betas=(1.0, 0.999),
        ),
        _error_case(
            "negative beta2",
            ValueError,
            r"^Invalid beta parameter at index 1: -0.5$",
            betas=(0.9, -0.5),
        ),
        _error_case("lr NaN", ValueError, r"^Invalid learning rate: nan$", lr=float("nan")),
    )


def _with_defaults(
    optimizer_class: type[optim.Optimizer], model: Callable[..., Array]
) -> Callable[..., Array]:
    """``model(params, grads, **hyperparameters)`` as a Formula magnitude: the sample's split
    dropped (elementwise rules), and refcnn's defaults for what the sample leaves out (the torch
    comparison checks those defaults against torch's)."""
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(optimizer_class).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }

    def magnitude(params: Array, grads: Array, split: Shapes, **given: Any) -> Array:
        return model(params, grads, **{**defaults, **given})

    return magnitude


def _counts_in_the_magnitude(
    inputs: Mapping[str, Any], kwargs: Mapping[str, Any]
) -> dict[str, int]:
    """c = 1: each rounding's count is carried inside M = E, the running bound (see above)."""
    return {"out": 1}


def _optimizer(
    name: str,
    summary: str,
    optimizer_class: type[optim.Optimizer],
    buffers: Buffers,
    error: Callable[..., Array],
    hyperparameters: Hyperparameters,
    *,
    edge_cases: tuple[EdgeCase, ...] = (),
    error_cases: tuple[ErrorCase, ...] = (),
) -> OpSpec:
    """The OpSpec of torch.optim.<optimizer_class.__name__> (same name in refcnn.optim)."""
    torch_name = optimizer_class.__name__
    return OpSpec(
        name=name,
        family="optimizer",
        kind="optimizer",
        summary=summary,
        inputs=("params", "grads"),
        forward=_trajectory(optimizer_class, buffers),
        layout=_layout,
        params=_params(hyperparameters),
        tolerance=Formula(
            roundings=_counts_in_the_magnitude,
            forward_magnitude=_with_defaults(optimizer_class, error),
        ),
        fill={"grads": _grads_fill},
        torch_name=f"torch.optim.{torch_name} (default single-tensor path on CPU)",
        torch_forward=_torch_trajectory(torch_name, buffers),
        docs="docs/optimizers.md",
        edge_cases=edge_cases,
        error_cases=error_cases,
        not_applicable={
            "directional_fd": "no backward: an optimizer's steps are not differentiated, params "
            "and grads are data",
            "adjoint": "the trajectory is nonlinear in params and grads (and has no backward)",
            "batch_slices": "grads' axis 0 is the step, and each step starts from the last one",
        },
    )


# --- SGD ----------------------------------------------------------------------------------------


def _sgd_buffers(kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    return ("momentum_buffer",) if kwargs.get("momentum", 0.0) != 0 else ()


def _sgd_error(
    params: Array,
    grads: Array,
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
) -> Array:
    """b ← g at t = 1: E_b = E_g';  b ← μ·b + (1 − τ)·g: μE_b + |1 − τ|E_g' + 2μ|b| + 3|1 − τ||g'|
    + |b_new|;  nesterov d = g' + μ·b: E_g' + μE_b + 2μ|b| + |d|;  θ − lr·d: E_θ + lr·E_d
    + 2·lr|d| + |θ_new|."""
    theta, buffer, rows = _exact(params), None, []
    for grad in grads:
        effective = _grad_with_decay(theta, grad, weight_decay, maximize)
        direction = effective
        if momentum != 0:
            if buffer is None:
                buffer = effective
            else:
                buffer = _sum(
                    _scaled(buffer, momentum, 1.0), _scaled(effective, 1.0 - dampening, 2.0)
                )
            direction = _sum(effective, _scaled(buffer, momentum, 1.0)) if nesterov else buffer
        theta = _sum(theta, _scaled(direction, -lr, 1.0))
        rows.append([theta[1]] + ([] if buffer is None else [buffer[1]]))
    return _stacked(rows)


@st.composite
def _sgd_hyperparameters(draw: Any) -> dict[str, Any]:
    """Nesterov needs momentum > 0 and no dampening: drawn in that order, never filtered."""
    values: dict[str, Any] = draw(
        _optional(lr=LR, weight_decay=WEIGHT_DECAY, maximize=FLAG), label="lr, λ, maximize"
    )
    if draw(FLAG, label="nesterov"):
        return {**values, "nesterov": True, "momentum": draw(_floats(0.125, 0.99), label="μ")}
    more = _optional(momentum=MOMENTUM, dampening=_floats(0.0, 1.0))
    return {**values, **draw(more, label="momentum, dampening")}


SGD = _optimizer(
    "sgd",
    "torch.optim.SGD for T steps; trajectory (T, K, P): θ[, momentum_buffer]",
    optim.SGD,
    _sgd_buffers,
    _sgd_error,
    _sgd_hyperparameters(),
    edge_cases=(
        EdgeCase("torch's defaults (lr 1e-3, no momentum)", _problem_params()),
        EdgeCase(
            "momentum: the buffer starts at g, undamped",
            _problem_params(lr=0.1, momentum=0.9, dampening=0.5),
        ),
        EdgeCase(
            "nesterov, weight decay, maximize",
            _problem_params(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True),
        ),
        EdgeCase(
            "dampening 1: the buffer keeps decaying its first gradient",
            _problem_params(lr=0.5, momentum=0.5, dampening=1.0),
        ),
        EdgeCase(
            "every step zero: θ only decays",
            _problem_params(lr=0.1, weight_decay=0.3, momentum=0.5, steps=("zero",) * 10),
        ),
    ),
    error_cases=(
        *_common_errors(eps=False),
        _error_case(
            "negative momentum", ValueError, r"^Invalid momentum value: -0.5$", momentum=-0.5
        ),
        _error_case(
            "nesterov without momentum",
            ValueError,
            r"^Nesterov momentum requires a momentum and zero dampening$",
            nesterov=True,
        ),
        _error_case(
            "nesterov with dampening",
            ValueError,
            r"^Nesterov momentum requires a momentum and zero dampening$",
            nesterov=True,
            momentum=0.9,
            dampening=0.1,
        ),
    ),
)


# --- Adagrad ------------------------------------------------------------------------------------


def _adagrad_error(
    params: Array,
    grads: Array,
    *,
    lr: float,
    lr_decay: float,
    weight_decay: float,
    initial_accumulator_value: float,
    eps: float,
    maximize: bool,
) -> Array:
    """s₀ = init (cast: E = |init|);  s ← s + g'²: E_s + 2|g'|E_g' + g'² + |s_new|;
    a = √s + eps;  θ − clr·(g'/a) with r_clr = 4."""
    theta, rows = _exact(params), []
    total: Pair = (
        np.full_like(params, initial_accumulator_value),
        np.full_like(params, abs(initial_accumulator_value)),
    )
    for step, grad in enumerate(grads, start=1):
        effective = _grad_with_decay(theta, grad, weight_decay, maximize)
        clr = lr / (1.0 + (step - 1) * lr_decay)
        total = _sum(total, _square(effective))
        std = _plus_eps(_sqrt(total), eps)
        theta = _sum(theta, _scaled(_quotient(effective, std), -clr, 4.0))
        rows.append([theta[1], total[1]])
    return _stacked(rows)


ADAGRAD = _optimizer(
    "adagrad",
    "torch.optim.Adagrad for T steps; trajectory (T, K, P): θ, sum",
    optim.Adagrad,
    lambda kwargs: ("sum",),
    _adagrad_error,
    _optional(
        lr=LR,
        lr_decay=st.one_of(st.just(0.0), _floats(1e-3, 1.0)),
        weight_decay=WEIGHT_DECAY,
        initial_accumulator_value=st.one_of(st.just(0.0), _floats(1e-3, 1.0)),
        eps=EPS,
        maximize=FLAG,
    ),
    edge_cases=(
        EdgeCase("torch's defaults (lr 1e-2, eps 1e-10)", _problem_params()),
        EdgeCase(
            "lr_decay and an initial accumulator",
            _problem_params(lr=0.5, lr_decay=0.5, initial_accumulator_value=0.1),
        ),
        EdgeCase("the book's AdaGrad: eps 1e-7", _problem_params(lr=0.01, eps=1e-7)),
    ),
    error_cases=(
        *_common_errors(),
        _error_case(
            "negative lr_decay", ValueError, r"^Invalid lr_decay value: -0.001$", lr_decay=-1e-3
        ),
        _error_case(
            "negative initial_accumulator_value",
            ValueError,
            r"^Invalid initial_accumulator_value value: -1.0$",
            initial_accumulator_value=-1.0,
        ),
    ),
)


# --- RMSprop ------------------------------------------------------------------------------------


def _rmsprop_buffers(kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    names: tuple[str, ...] = ("square_avg",)
    if kwargs.get("momentum", 0.0) > 0:
        names += ("momentum_buffer",)
    if kwargs.get("centered", False):
        names += ("grad_avg",)
    return names


def _rmsprop_error(
    params: Array,
    grads: Array,
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool,
) -> Array:
    """v, ḡ: moving averages (w = 1 − α);  centered x = v − ḡ²: E_v + 2|ḡ|E_ḡ + ḡ² + |x|, whose
    cancellation 1/√x amplifies in √x;  a = √x + eps;  b ← μ·b + g'/a: μE_b + E_q + 2μ|b|
    + |b_new|, θ − lr·b;  or θ − lr·(g'/a)."""
    theta, rows = _exact(params), []
    square_avg, grad_avg, buffer = _exact(np.zeros_like(params)), None, None
    if centered:
        grad_avg = _exact(np.zeros_like(params))
    if momentum > 0:
        buffer = _exact(np.zeros_like(params))
    for grad in grads:
        effective = _grad_with_decay(theta, grad, weight_decay, maximize)
        square_avg = _ema(square_avg, _square(effective), 1.0 - alpha, nonnegative=True)
        spread = square_avg
        if grad_avg is not None:
            grad_avg = _ema(grad_avg, effective, 1.0 - alpha)
            spread = _difference(square_avg, _square(grad_avg))
        avg = _plus_eps(_sqrt(spread), eps)
        if buffer is not None:
            buffer = _sum(_scaled(buffer, momentum, 1.0), _quotient(effective, avg))
            theta = _sum(theta, _scaled(buffer, -lr, 1.0))
        else:
            theta = _sum(theta, _scaled(_quotient(effective, avg), -lr, 1.0))
        row = [theta[1], square_avg[1]]
        row += [] if buffer is None else [buffer[1]]
        row += [] if grad_avg is None else [grad_avg[1]]
        rows.append(row)
    return _stacked(rows)


@st.composite
def _rmsprop_hyperparameters(draw: Any) -> dict[str, Any]:
    """α in {0} ∪ [1/8, 1): torch accepts α > 1 too, where v can turn negative; α = 1 keeps
    v = 0 and steps by lr·g/eps, which with weight decay grows θ by lr·λ/eps per step, past
    float32's range (an edge case has it, with eps 0.1). Centered RMSprop leaves out α = 0 too:
    v − ḡ² cancels like 1/α after the first step (x/v = α), completely at α = 0."""
    values: dict[str, Any] = draw(
        _optional(lr=LR, eps=EPS, weight_decay=WEIGHT_DECAY, momentum=MOMENTUM, maximize=FLAG),
        label="lr, eps, λ, μ, maximize",
    )
    if draw(FLAG, label="centered"):
        alpha = draw(_floats(0.125, 1.0, exclude_max=True), label="α")
        return {**values, "centered": True, "alpha": alpha}
    return {**values, **draw(_optional(alpha=DECAY), label="α")}


RMSPROP = _optimizer(
    "rmsprop",
    "torch.optim.RMSprop for T steps; trajectory (T, K, P): θ, square_avg[, momentum_buffer]"
    "[, grad_avg]",
    optim.RMSprop,
    _rmsprop_buffers,
    _rmsprop_error,
    _rmsprop_hyperparameters(),
    edge_cases=(
        EdgeCase("torch's defaults (lr 1e-2, α 0.99)", _problem_params()),
        EdgeCase(
            "centered with momentum and weight decay",
            _problem_params(alpha=0.9, centered=True, momentum=0.9, weight_decay=0.1),
        ),
        EdgeCase(
            "α = 1: v stays 0, the step is lr·g/eps",
            _problem_params(alpha=1.0, eps=0.1, lr=1e-3),
        ),
        EdgeCase("α = 0: v = g², a signed step", _problem_params(alpha=0.0, maximize=True)),
        EdgeCase("the book's RMSprop: eps 1e-7", _problem_params(alpha=0.99, eps=1e-7)),
    ),
    error_cases=(
        *_common_errors(),
        _error_case("negative alpha", ValueError, r"^Invalid alpha value: -0.5$", alpha=-0.5),
        _error_case(
            "negative momentum", ValueError, r"^Invalid momentum value: -0.1$", momentum=-0.1
        ),
    ),
)


# --- Adadelta -----------------------------------------------------------------------------------


def _adadelta_error(
    params: Array,
    grads: Array,
    *,
    lr: float,
    rho: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> Array:
    """v: moving average;  √(v + eps), √(A + eps);  δ = (√(A + eps)/√(v + eps))·g' (quotient,
    product);  A: moving average of δ²;  θ − lr·δ. eps inside the roots bounds 1/√ by 1/√eps."""
    theta, rows = _exact(params), []
    square_avg, acc_delta = _exact(np.zeros_like(params)), _exact(np.zeros_like(params))
    for grad in grads:
        effective = _grad_with_decay(theta, grad, weight_decay, maximize)
        square_avg = _ema(square_avg, _square(effective), 1.0 - rho, nonnegative=True)
        std = _sqrt(_plus_eps(square_avg, eps))
        delta = _product(_quotient(_sqrt(_plus_eps(acc_delta, eps)), std), effective)
        acc_delta = _ema(acc_delta, _square(delta), 1.0 - rho, nonnegative=True)
        theta = _sum(theta, _scaled(delta, -lr, 1.0))
        rows.append([theta[1], square_avg[1], acc_delta[1]])
    return _stacked(rows)


ADADELTA = _optimizer(
    "adadelta",
    "torch.optim.Adadelta for T steps; trajectory (T, K, P): θ, square_avg, acc_delta",
    optim.Adadelta,
    lambda kwargs: ("square_avg", "acc_delta"),
    _adadelta_error,
    _optional(
        lr=_floats(1e-2, 1.0),
        rho=st.one_of(DECAY, st.just(1.0)),  # torch's range is [0, 1]
        eps=st.sampled_from((1e-6, 1e-8, 1e-3)),
        weight_decay=WEIGHT_DECAY,
        maximize=FLAG,
    ),
    edge_cases=(
        EdgeCase("torch's defaults (lr 1.0, ρ 0.9, eps 1e-6)", _problem_params()),
        EdgeCase("ρ = 1: nothing accumulates, δ = g", _problem_params(rho=1.0, lr=0.1)),
        EdgeCase("ρ = 0, weight decay", _problem_params(rho=0.0, weight_decay=0.1)),
    ),
    error_cases=(
        *_common_errors(),
        _error_case("ρ above 1", ValueError, r"^Invalid rho value: 1.5$", rho=1.5),
    ),
)


# --- Adam and AdamW -----------------------------------------------------------------------------


def _adam_buffers(kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if kwargs.get("amsgrad") else ())


def _adam_error(
    params: Array,
    grads: Array,
    *,
    lr: float,
    betas: tuple[float, float],
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    maximize: bool,
    decoupled_weight_decay: bool,
) -> Array:
    """m, v: moving averages;  v_max = max(v_max, v);  r = √v̂/√(1 − β₂ᵗ) (r₂/2 + L + 1 for the
    scalar);  a = r + eps;  θ − (lr/(1 − β₁ᵗ))·(m/a) with r₁ + 2."""
    beta1, beta2 = betas
    theta, rows = _exact(params), []
    exp_avg, exp_avg_sq = _exact(np.zeros_like(params)), _exact(np.zeros_like(params))
    max_sq = _exact(np.zeros_like(params))
    for step, grad in enumerate(grads, start=1):
        if decoupled_weight_decay:
            theta = _decoupled_decay(theta, lr, weight_decay)
            effective = _grad_with_decay(theta, grad, 0.0, maximize)
        else:
            effective = _grad_with_decay(theta, grad, weight_decay, maximize)
        exp_avg = _ema(exp_avg, effective, 1.0 - beta1)
        exp_avg_sq = _ema(exp_avg_sq, _square(effective), 1.0 - beta2, nonnegative=True)
        second = exp_avg_sq
        if amsgrad:
            max_sq = second = _maximum(max_sq, exp_avg_sq)
        correction1, r1 = _bias_correction(beta1, step)
        correction2, r2 = _bias_correction(beta2, step)
        root = _scaled(_sqrt(second), 1.0 / math.sqrt(correction2), r2 / 2.0 + L + 1.0)
        denom = _plus_eps(root, eps)
        theta = _sum(theta, _scaled(_quotient(exp_avg, denom), -lr / correction1, r1 + 2.0))
        row = [theta[1], exp_avg[1], exp_avg_sq[1]]
        rows.append(row + ([max_sq[1]] if amsgrad else []))
    return _stacked(rows)


def _adamw_error(params: Array, grads: Array, **hyperparameters: Any) -> Array:
    """Adam's model with decoupled weight decay (AdamW's own defaults come with the sample)."""
    return _adam_error(params, grads, decoupled_weight_decay=True, **hyperparameters)


def _adam_errors() -> tuple[ErrorCase, ...]:
    return (
        *_common_errors(),
        *_beta_errors(),
        _error_case(
            "integer beta1 (torch rejects it in Adam and AdamW)",
            ValueError,
            r"^betas must be either both floats or both Tensors$",
            betas=(0, 0.999),
        ),
    )


ADAM = _optimizer(
    "adam",
    "torch.optim.Adam for T steps; trajectory (T, K, P): θ, exp_avg, exp_avg_sq[, max_exp_avg_sq]",
    optim.Adam,
    _adam_buffers,
    _adam_error,
    _optional(**ADAM_FAMILY, amsgrad=FLAG, decoupled_weight_decay=FLAG),
    edge_cases=(
        EdgeCase("torch's defaults (lr 1e-3, betas (0.9, 0.999))", _problem_params()),
        EdgeCase(
            "amsgrad, maximize, weight decay",
            _problem_params(lr=0.1, amsgrad=True, maximize=True, weight_decay=0.1),
        ),
        EdgeCase("β₁ = 0, β₂ = 0: θ − lr·g/(|g| + eps)", _problem_params(lr=0.1, betas=(0.0, 0.0))),
        EdgeCase(
            "β₂ close to 1: 1 − β₂ᵗ ≈ t·1e-7",
            _problem_params(lr=0.1, betas=(0.5, 1.0 - 1e-7)),
        ),
        EdgeCase(
            "decoupled weight decay (AdamW's rule in Adam)",
            _problem_params(lr=0.1, weight_decay=0.2, decoupled_weight_decay=True),
        ),
        EdgeCase(
            "eps = 0 (allowed), no zero step",
            _problem_params(lr=0.1, eps=0.0, steps=("normal", "tiny") * 5),
        ),
    ),
    error_cases=_adam_errors(),
)

ADAMW = _optimizer(
    "adamw",
    "torch.optim.AdamW (decoupled weight decay, default 1e-2) for T steps; trajectory "
    "(T, K, P): θ, exp_avg, exp_avg_sq[, max_exp_avg_sq]",
    optim.AdamW,
    _adam_buffers,
    _adamw_error,
    _optional(**ADAM_FAMILY, amsgrad=FLAG),
    edge_cases=(
        EdgeCase("torch's defaults (weight decay 1e-2)", _problem_params()),
        EdgeCase(
            "lr·λ = 1: θ·(1 − lr·λ) = 0 before the step",
            _problem_params(lr=0.5, weight_decay=2.0, amsgrad=True),
        ),
    ),
    error_cases=_adam_errors(),
)


# --- Adamax -------------------------------------------------------------------------------------


def _adamax_error(
    params: Array,
    grads: Array,
    *,
    lr: float,
    betas: tuple[float, float],
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> Array:
    """m: moving average;  u = max(β₂·u, |g'| + eps): max(β₂E_u + 2β₂|u|, E_g' + eps + |b|);
    θ − (lr/(1 − β₁ᵗ))·(m/u) with r₁ + 2."""
    beta1, beta2 = betas
    theta, rows = _exact(params), []
    exp_avg, exp_inf = _exact(np.zeros_like(params)), _exact(np.zeros_like(params))
    for step, grad in enumerate(grads, start=1):
        effective = _grad_with_decay(theta, grad, weight_decay, maximize)
        exp_avg = _ema(exp_avg, effective, 1.0 - beta1)
        magnitude = _plus_eps((np.abs(effective[0]), effective[1]), eps)
        exp_inf = _maximum(_scaled(exp_inf, beta2, 1.0), magnitude)
        correction1, r1 = _bias_correction(beta1, step)
        theta = _sum(theta, _scaled(_quotient(exp_avg, exp_inf), -lr / correction1, r1 + 2.0))
        rows.append([theta[1], exp_avg[1], exp_inf[1]])
    return _stacked(rows)


ADAMAX = _optimizer(
    "adamax",
    "torch.optim.Adamax for T steps; trajectory (T, K, P): θ, exp_avg, exp_inf",
    optim.Adamax,
    lambda kwargs: ("exp_avg", "exp_inf"),
    _adamax_error,
    _optional(**ADAM_FAMILY),
    edge_cases=(
        EdgeCase("torch's defaults (lr 2e-3)", _problem_params()),
        EdgeCase(
            "β₂ = 0: u = |g| + eps, integer β₁ accepted",
            _problem_params(lr=0.1, betas=(0, 0.0), maximize=True),
        ),
    ),
    error_cases=(*_common_errors(), *_beta_errors()),
)


# --- NAdam --------------------------------------------------------------------------------------


def _nadam_schedule(beta1: float, step: int, momentum_decay: float) -> tuple[float, float]:
    """(μₜ, its relative error count): p = 0.96^(tψ) with L + tψ·(1 + |ln 0.96|), then
    h = 1 − p/2 with (p/2)·r_p/h + 1, then β₁·h with one more."""
    exponent = step * momentum_decay
    power = 0.96**exponent
    r_power = L + exponent * (1.0 + abs(math.log(0.96)))
    half = 1.0 - 0.5 * power
    return beta1 * half, 0.5 * power * r_power / half + 2.0


def _nadam_scalars(
    lr: float, beta1: float, momentum_decay: float, steps: int
) -> list[tuple[float, float, float, float, float, float]]:
    """Per step: (a₁, r₁, a₂, r₂, Π·r_Π/(1 − Π), Π'·r_Π'/(1 − Π')) where a₁ = lr(1 − μ)/(1 − Π),
    a₂ = lr·μ'/(1 − Π') (Π' = Πμ'), with their relative error counts; the last two are what a
    relative error of Π and Π' contributes to a₁ and a₂ per unit roundoff."""
    product, r_product, out = 1.0, 0.0, []
    for step in range(1, steps + 1):
        mu, r_mu = _nadam_schedule(beta1, step, momentum_decay)
        mu_next, r_mu_next = _nadam_schedule(beta1, step + 1, momentum_decay)
        product, r_product = product * mu, r_product + r_mu + 2.0
        product_next, r_product_next = product * mu_next, r_product + r_mu_next + 1.0
        amplified = product * r_product / (1.0 - product)
        amplified_next = product_next * r_product_next / (1.0 - product_next)
        a1 = lr * (1.0 - mu) / (1.0 - product)
        r1 = mu * r_mu / (1.0 - mu) + amplified + 5.0
        a2 = lr * mu_next / (1.0 - product_next)
        r2 = r_mu_next + amplified_next + 4.0
        out.append((a1, r1, a2, r2, amplified, amplified_next))
    return out


def _nadam_run(
    params: Array,
    grads: Array,
    *,
    lr: float,
    betas: tuple[float, float],
    eps: float,
    weight_decay: float,
    momentum_decay: float,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> tuple[Array, list[tuple[Array, Array]]]:
    """m, v: moving averages;  a = √(v/(1 − β₂ᵗ)) + eps (r₂ + 1 for the scalar);  θ − a₁·(g'/a)
    − a₂·(m/a) with the coefficients' counts of :func:`_nadam_scalars`. Returns the error rows,
    and per step |Δ₁| = |a₁·g'/a| and |Δ₂| = |a₂·m/a| (for the float32-Π allowance)."""
    beta1, beta2 = betas
    theta, rows, steps = _exact(params), [], []
    exp_avg, exp_avg_sq = _exact(np.zeros_like(params)), _exact(np.zeros_like(params))
    scalars = _nadam_scalars(lr, beta1, momentum_decay, len(grads))
    for step, grad in enumerate(grads, start=1):
        a1, r1, a2, r2, _, _ = scalars[step - 1]
        correction2, r_c2 = _bias_correction(beta2, step)
        if decoupled_weight_decay:
            theta = _decoupled_decay(theta, lr, weight_decay)
            effective = _grad_with_decay(theta, grad, 0.0, maximize)
        else:
            effective = _grad_with_decay(theta, grad, weight_decay, maximize)
        exp_avg = _ema(exp_avg, effective, 1.0 - beta1)
        exp_avg_sq = _ema(exp_avg_sq, _square(effective), 1.0 - beta2, nonnegative=True)
        denom = _plus_eps(_sqrt(_scaled(exp_avg_sq, 1.0 / correction2, r_c2 + 1.0)), eps)
        first = _scaled(_quotient(effective, denom), -a1, r1)
        second = _scaled(_quotient(exp_avg, denom), -a2, r2)
        theta = _sum(_sum(theta, first), second)
        rows.append([theta[1], exp_avg[1], exp_avg_sq[1]])
        steps.append((np.abs(first[0]), np.abs(second[0])))
    return _stacked(rows), steps


def _nadam_error(params: Array, grads: Array, **hyperparameters: Any) -> Array:
    return _nadam_run(params, grads, **hyperparameters)[0]


def _nadam_float32_product(params: Array, grads: Array, **hyperparameters: Any) -> Array:
    """What torch's float32 Πₜ adds to its float64 θₜ: 2 float32 roundings per step (the cast of
    μₜ and the product) give Πₜ a relative error ≤ 2t·u₃₂, which reaches a₁ and a₂ amplified by
    Π/(1 − Π); summed over the steps so far: u₃₂·Σₛ 2s·(|Δ₁ₛ|·Πₛ/(1 − Πₛ) + |Δ₂ₛ|·Π'ₛ/(1 − Π'ₛ)).
    The state buffers do not depend on Π (zero allowance)."""
    _, steps = _nadam_run(params, grads, **hyperparameters)
    u32 = float(np.finfo(np.float32).eps) / 2.0
    beta1, momentum_decay = hyperparameters["betas"][0], hyperparameters["momentum_decay"]
    allowance = np.zeros((len(grads), 3, params.shape[0]))
    carried = np.zeros(params.shape[0])
    product = 1.0
    for step, (first, second) in enumerate(steps, start=1):
        product *= _nadam_schedule(beta1, step, momentum_decay)[0]
        product_next = product * _nadam_schedule(beta1, step + 1, momentum_decay)[0]
        carried = carried + u32 * 2.0 * step * (
            first * product / (1.0 - product) + second * product_next / (1.0 - product_next)
        )
        allowance[step - 1, 0] = carried
    return allowance


nadam_float32_product_allowance = _with_defaults(optim.NAdam, _nadam_float32_product)

NADAM = _optimizer(
    "nadam",
    "torch.optim.NAdam for T steps; trajectory (T, K, P): θ, exp_avg, exp_avg_sq "
    "(mu_product, a scalar, left out)",
    optim.NAdam,
    lambda kwargs: ("exp_avg", "exp_avg_sq"),
    _nadam_error,
    _optional(
        **ADAM_FAMILY,
        momentum_decay=st.one_of(st.just(0.0), _floats(1e-3, 1.0)),
        decoupled_weight_decay=FLAG,
    ),
    edge_cases=(
        EdgeCase("torch's defaults (lr 2e-3, ψ 4e-3)", _problem_params()),
        EdgeCase("ψ = 0: μ = β₁/2 at every step", _problem_params(lr=0.1, momentum_decay=0.0)),
        EdgeCase(
            "decoupled weight decay, maximize",
            _problem_params(lr=0.1, weight_decay=0.1, decoupled_weight_decay=True, maximize=True),
        ),
    ),
    error_cases=(
        *_common_errors(),
        *_beta_errors(),
        _error_case(
            "negative momentum_decay",
            ValueError,
            r"^Invalid momentum_decay value: -1.0$",
            momentum_decay=-1.0,
        ),
    ),
)


# --- RAdam --------------------------------------------------------------------------------------


# β₂ for which the double expression of ρ₆ (refcnn's and torch's alike) is exactly 5.0: found by
# bisecting ρ₆(β₂) = 5 and stepping through neighbouring doubles; the boundary of ``ρₜ > 5``.
RADAM_BOUNDARY_BETA2 = 0.8397685748659791


def _radam_rectifier(beta2: float, step: int) -> tuple[float, float] | None:
    """(r, its relative error count) when ρₜ > 5, None otherwise (the unrectified branch)."""
    correction2, r2 = _bias_correction(beta2, step)
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    r_inf = 2.0 * (rho_inf + 1.0) / rho_inf + 1.0
    tail = 2.0 * step * beta2**step / correction2
    r_tail = L + 2.0 + r2
    rho_t = rho_inf - tail
    if not rho_t > 5.0:
        return None
    r_t = (rho_inf * r_inf + tail * r_tail) / rho_t + 1.0

    def difference(value: float, r_value: float, constant: float) -> float:
        return value * r_value / abs(value - constant) + 1.0

    numerator = difference(rho_t, r_t, 4.0) + difference(rho_t, r_t, 2.0) + r_inf
    denominator = difference(rho_inf, r_inf, 4.0) + difference(rho_inf, r_inf, 2.0) + r_t
    rect = (
        (rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)
    ) ** 0.5
    return rect, 0.5 * (numerator + denominator + 5.0) + L


def _radam_error(
    params: Array,
    grads: Array,
    *,
    lr: float,
    betas: tuple[float, float],
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> Array:
    """m, v: moving averages;  m̂ = m/(1 − β₁ᵗ) (r₁ + 1);  ρₜ > 5: ad = √(1 − β₂ᵗ)/(√v + eps)
    (the scalar r₂/2 + L + 1), θ − ((m̂·lr)·ad)·rect (rect's count from :func:`_radam_rectifier`);
    else θ − m̂·lr."""
    beta1, beta2 = betas
    theta, rows = _exact(params), []
    exp_avg, exp_avg_sq = _exact(np.zeros_like(params)), _exact(np.zeros_like(params))
    for step, grad in enumerate(grads, start=1):
        if decoupled_weight_decay:
            theta = _decoupled_decay(theta, lr, weight_decay)
            effective = _grad_with_decay(theta, grad, 0.0, maximize)
        else:
            effective = _grad_with_decay(theta, grad, weight_decay, maximize)
        exp_avg = _ema(exp_avg, effective, 1.0 - beta1)
        exp_avg_sq = _ema(exp_avg_sq, _square(effective), 1.0 - beta2, nonnegative=True)
        correction1, r1 = _bias_correction(beta1, step)
        correction2, r2 = _bias_correction(beta2, step)
        corrected = _scaled(exp_avg, 1.0 / correction1, r1 + 1.0)
        update = _scaled(corrected, lr, 1.0)
        rectifier = _radam_rectifier(beta2, step)
        if rectifier is not None:
            rect, r_rect = rectifier
            inverse = _quotient(_exact(np.ones_like(params)), _plus_eps(_sqrt(exp_avg_sq), eps))
            adaptive = _scaled(inverse, math.sqrt(correction2), r2 / 2.0 + L + 1.0)
            update = _scaled(_product(update, adaptive), rect, r_rect + 1.0)
        theta = _sum(theta, (-update[0], update[1]))
        rows.append([theta[1], exp_avg[1], exp_avg_sq[1]])
    return _stacked(rows)


RADAM = _optimizer(
    "radam",
    "torch.optim.RAdam for T steps; trajectory (T, K, P): θ, exp_avg, exp_avg_sq",
    optim.RAdam,
    lambda kwargs: ("exp_avg", "exp_avg_sq"),
    _radam_error,
    _optional(**ADAM_FAMILY, decoupled_weight_decay=FLAG),
    edge_cases=(
        EdgeCase(
            "torch's defaults: ρₜ passes 5 at step 6, rectified from then on", _problem_params()
        ),
        EdgeCase("β₂ = 0.5: ρ∞ = 3, never rectified", _problem_params(lr=0.1, betas=(0.9, 0.5))),
        EdgeCase(
            "ρₜ = 5 exactly at step 6 (β₂ = 0.8397685748659791): not rectified (ρₜ > 5), "
            "rectified from step 7",
            _problem_params(lr=0.1, betas=(0.9, RADAM_BOUNDARY_BETA2)),
        ),
        EdgeCase(
            "decoupled weight decay, maximize",
            _problem_params(lr=0.1, weight_decay=0.1, decoupled_weight_decay=True, maximize=True),
        ),
    ),
    error_cases=(*_common_errors(), *_beta_errors()),
)

OPS: tuple[OpSpec, ...] = (SGD, ADAGRAD, RMSPROP, ADADELTA, ADAM, ADAMW, ADAMAX, NADAM, RADAM)
