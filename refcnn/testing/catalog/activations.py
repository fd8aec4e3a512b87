"""Catalog entries of the activations family: 21 pointwise ops, one factory.

Every activation has the same layout (one input ``x`` of any shape, hyperparameters as keyword
arguments), the same shape strategy and the same fill rule, so :func:`_activation` builds the
OpSpec from what differs: the functions, torch's name, the kinks, the rounding counts and
magnitudes of the tolerance model, the hyperparameter strategy and the hand-picked cases.

Tolerances (refcnn.testing.tolerance.Formula): ``|computed − exact| ≤ γ_c·M`` elementwise. ``c``
counts the roundings along the longer of refcnn's and torch's formula (L = LIBRARY_ROUNDINGS per
exp/log1p/expm1/tanh/erf; 1 per + − × ÷; 1 per hyperparameter or constant that float32 cannot
hold exactly). ``M`` bounds every intermediate quantity's sensitivity ``|v·∂f/∂v|`` (so a
rounding anywhere, and the cancellation in a difference like ``exp(x) − 1``, is covered: for
``a ± b`` the terms enter as ``|a| + |b|``) and ``|x·f'(x)|`` (one rounding of the input, as
finite differences make). Then ``Σ c_v·u·|v·∂f/∂v| ≤ c·u·M``. The backward's M is the same
analysis of ``grad_out·f'(x)``. Notation below: g = grad_out, σ = sigmoid, t = tanh(·).

Large |x| (overflow safety) is checked at ±30 and ±100, or ±80 for ops with an exponential tail:
at −100 their float32 values (σ(−100) = 3.7e-44, elu'(−100) = e^−100) are subnormal, where the
relative rounding model does not hold (torch's float32 sigmoid returns 0 there: exp(100)
overflows).
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from hypothesis import strategies as st

from refcnn.functional import activations as act
from refcnn.testing.opspec import (
    ArraySpec,
    EdgeCase,
    ErrorCase,
    KnownDeviation,
    Layout,
    OpSpec,
    Params,
)
from refcnn.testing.tolerance import LIBRARY_ROUNDINGS as L
from refcnn.testing.tolerance import Formula

Array = Any
Magnitude = Callable[..., Array]

# Inputs are drawn at least this far from every kink: far more than the finite-difference step
# (4.8e-6·max(1, |x|) in float64), far less than the distance between two kinks (≥ 0.25 here).
KINK_MARGIN = 0.05
SCALE = 3.0  # smooth ops: 3·N(0, 1), enough to reach the saturated tails
LARGE = (-100.0, -30.0, 30.0, 100.0)
LARGE_EXPONENTIAL_TAIL = (-80.0, -30.0, 30.0, 80.0)  # see the module docstring
NEAR_ZERO = (0.0, -0.0, 1e-8, -1e-8, 2.0, -2.0)

# --- strategies ---------------------------------------------------------------------------------


@st.composite
def _shapes(draw: Any, budget: str) -> tuple[int, ...]:
    """Any rank 1..4 (1..3 for full Jacobians); elementwise ops do not care about the layout."""
    rank = draw(st.integers(1, 4 if budget == "small" else 3), label="rank")
    largest = 4 if budget == "small" else 2
    return tuple(draw(st.integers(1, largest), label=f"size {axis}") for axis in range(rank))


def _grid(low: int, high: int, denominator: int) -> st.SearchStrategy[float]:
    """k / denominator for integer k in [low, high]: exact in float32, no subnormal surprises."""
    return st.integers(low, high).map(lambda k: k / denominator)


def _signed(low: int, high: int, denominator: int) -> st.SearchStrategy[float]:
    """±k / denominator, k in [low, high] (low ≥ 1: bounded away from 0)."""
    return st.one_of(_grid(low, high, denominator), _grid(-high, -low, denominator))


def _optional(**strategies: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Each hyperparameter drawn, or left out so that refcnn's and torch's defaults meet."""
    return st.fixed_dictionaries({}, optional=strategies)


@st.composite
def _hardtanh_range(draw: Any) -> dict[str, float]:
    """min_val in [−3, 1] and max_val at least 0.25 above it (or both left at −1, 1)."""
    if draw(st.booleans(), label="defaults"):
        return {}
    low = draw(_grid(-48, 16, 16), label="min_val")
    return {"min_val": low, "max_val": low + draw(_grid(4, 64, 16), label="max_val − min_val")}


def _params(hyperparameters: st.SearchStrategy[dict[str, Any]]) -> Callable[[str], Any]:
    @st.composite
    def params(draw: Any, budget: str) -> dict[str, Any]:
        shape = draw(_shapes(budget), label="shape")
        return {"shape": shape, **draw(hyperparameters, label="hyperparameters")}

    return params


def _layout(params: Params) -> Layout:
    return {"x": tuple(params["shape"])}, {k: v for k, v in params.items() if k != "shape"}


def _fill(kinks: Callable[[Params], tuple[float, ...]]) -> Any:
    """SCALE·N(0, 1), each value then moved KINK_MARGIN further from its nearest kink.

    |x − kink| ≥ KINK_MARGIN afterwards; a move towards another kink leaves it at least
    (separation / 2 − KINK_MARGIN) ≥ KINK_MARGIN away, since kinks are ≥ 4·KINK_MARGIN apart.
    """

    def fill(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Array:
        values = SCALE * rng.standard_normal(shape)
        points = np.asarray(kinks(params), dtype=np.float64)
        if points.size == 0:
            return values
        nearest = points[np.argmin(np.abs(values[..., None] - points), axis=-1)]
        offset = values - nearest
        return nearest + offset + np.where(offset >= 0, KINK_MARGIN, -KINK_MARGIN)

    return fill


# --- the factory --------------------------------------------------------------------------------


def _torch_binding(path: str) -> Callable[..., Any]:
    """``path`` ("torch.nn.functional.elu") called with the sample's keyword arguments."""
    module_name, _, function_name = path.rpartition(".")

    def binding(x: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module_name), function_name)(x, **kwargs)

    return binding


def _at(case_id: str, values: tuple[float, ...], **kwargs: Any) -> EdgeCase:
    """Exact values on kinks: only torch's subgradient can be checked there."""
    return EdgeCase(
        case_id,
        {"shape": (len(values),), **kwargs},
        arrays={"x": values},
        checks=("matches_torch",),
    )


def _everywhere(case_id: str, values: tuple[float, ...], **kwargs: Any) -> EdgeCase:
    """Exact values away from kinks: every check applies."""
    return EdgeCase(case_id, {"shape": (len(values),), **kwargs}, arrays={"x": values})


def _activation(
    name: str,
    summary: str,
    forward: Callable[..., Array],
    backward: Callable[..., Array],
    torch_path: str,
    roundings: tuple[int, int] | Callable[[Mapping[str, Any]], tuple[int, int]],
    out_magnitude: Magnitude,
    grad_magnitude: Magnitude,
    *,
    hyperparameters: st.SearchStrategy[dict[str, Any]] | None = None,
    kinks: Callable[[Params], tuple[float, ...]] = lambda params: (),
    polynomial_degree: int | None = None,
    large: tuple[float, ...] = LARGE,
    required: Mapping[str, Any] | None = None,
    edge_cases: tuple[EdgeCase, ...] = (),
    error_cases: tuple[ErrorCase, ...] = (),
    known_deviations: tuple[KnownDeviation, ...] = (),
) -> OpSpec:
    """The OpSpec of an elementwise op ``forward(x, **params)``, ``backward(g, x, **params)``.

    roundings: (c_out, c_grad), or a function of the keyword arguments returning them
    out_magnitude(x, **params), grad_magnitude(g, x, **params): M of out and of grad_x
    kinks(params): where f or f' jumps; the fill stays KINK_MARGIN away
    polynomial_degree: the degree between kinks, for piecewise polynomials
    required: hyperparameters without a default (threshold's), used by the generic cases
    """
    required = dict(required or {})
    counts = roundings if callable(roundings) else (lambda kwargs: roundings)

    def rounding_counts(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
        c_out, c_grad = counts(kwargs)
        return {"out": c_out, "grad_x": c_grad}

    def grad_magnitudes(upstream: Array, x: Array, **kwargs: Any) -> dict[str, Array]:
        return {"x": grad_magnitude(np.abs(upstream), x, **kwargs)}

    valid = {"x": ArraySpec((2, 3)), **required}
    generic_errors = (
        ErrorCase(
            "integer x",
            {**valid, "x": ArraySpec((2, 3), "int64")},
            TypeError,
            r"x must have a floating dtype, got x.dtype=int64",
        ),
        ErrorCase(
            "x is a list", {**valid, "x": [0.5, -1.0]}, TypeError, r"x must be a numpy.ndarray"
        ),
        ErrorCase(
            "grad_out of another shape (backward)",
            {**valid, "grad_out": ArraySpec((3, 2))},
            ValueError,
            r"grad_out.shape=\(3, 2\), but the activation's output has x's shape \(2, 3\)",
        ),
        ErrorCase(
            "float32 grad_out, float64 x (backward)",
            {**valid, "grad_out": ArraySpec((2, 3), "float32")},
            TypeError,
            r"grad_out.dtype=float32 differs from x.dtype=float64",
        ),
    )
    # every real-valued hyperparameter is validated by name, in the forward and the backward
    signature = inspect.signature(forward).parameters
    real_names = [
        name
        for name, parameter in signature.items()
        if name in required or isinstance(parameter.default, float)
    ]
    hyperparameter_errors = tuple(
        ErrorCase(
            f"{name} a string{suffix}",
            {**valid, name: "1", **extra},
            TypeError,
            rf"{name} must be a real number, got {name}='1'",
        )
        for name in real_names
        for suffix, extra in (("", {}), (" (backward)", {"grad_out": ArraySpec((2, 3))}))
    )
    large_case = _everywhere("large |x| (overflow safety)", large, **required)
    return OpSpec(
        name=name,
        family="activation",
        kind="activation",
        summary=summary,
        inputs=("x",),
        forward=forward,
        backward=backward,
        differentiable=("x",),
        polynomial_degree=polynomial_degree,
        layout=_layout,
        params=_params(
            st.fixed_dictionaries(required) if hyperparameters is None else hyperparameters
        ),
        tolerance=Formula(rounding_counts, out_magnitude, grad_magnitudes),
        torch_name=torch_path,
        torch_forward=_torch_binding(torch_path),
        fill={"x": _fill(kinks)},
        docs="docs/activations.md",
        edge_cases=(large_case, *edge_cases),
        error_cases=generic_errors + hyperparameter_errors + error_cases,
        known_deviations=known_deviations,
        per_sample=lambda sample: ("x",) if sample.inputs["x"].ndim >= 1 else (),  # elementwise
        not_applicable={"adjoint": f"{name} is nonlinear in x"},
    )


# --- float64 helpers for the magnitudes ---------------------------------------------------------


def _sigmoid(x: Array) -> Array:
    return act.sigmoid(np.asarray(x, dtype=np.float64))


def _softplus(x: Array) -> Array:
    """log(1 + eˣ) without a threshold: −logsigmoid(−x)."""
    return -act.logsigmoid(-np.asarray(x, dtype=np.float64))


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _pdf(x: Array) -> Array:
    """Standard normal density φ(x)."""
    return np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


# --- relu family: piecewise linear --------------------------------------------------------------
# max, min, clip and where are exact: only a hyperparameter that float32 cannot hold, or an
# actual + − ×, rounds. M = |f| covers |x·f'(x)| = |x| on every linear piece through the origin.


def _inside(x: Array, low: float, high: float) -> Array:
    return (x > low) & (x < high)


RELU = _activation(
    "relu",
    "max(x, 0)",
    act.relu,
    act.relu_backward,
    "torch.nn.functional.relu",
    (0, 0),  # max(x, 0) and where(x > 0, g, 0) are exact
    lambda x: np.abs(act.relu(x)),
    lambda g, x: g * (x > 0),
    kinks=lambda params: (0.0,),
    polynomial_degree=1,
    edge_cases=(_at("x = 0 and -0 (subgradient 0)", (0.0, -0.0, 1.5, -2.0)),),
)

RELU6 = _activation(
    "relu6",
    "min(max(x, 0), 6)",
    act.relu6,
    act.relu6_backward,
    "torch.nn.functional.relu6",
    (0, 0),  # clip and where are exact
    lambda x: np.abs(act.relu6(x)),
    lambda g, x: g * _inside(x, 0, 6),
    kinks=lambda params: (0.0, 6.0),
    polynomial_degree=1,
    edge_cases=(_at("x = 0 and x = 6 (subgradient 0)", (0.0, 6.0, -0.0, 3.0, 7.0, -1.0)),),
)


def _leaky_slope(x: Array, negative_slope: float = 0.01) -> Array:
    return np.where(x > 0, 1.0, abs(negative_slope))


LEAKY_RELU = _activation(
    "leaky_relu",
    "x for x > 0, negative_slope·x otherwise",
    act.leaky_relu,
    act.leaky_relu_backward,
    "torch.nn.functional.leaky_relu",
    # out = x·s and grad = g·s: 1 product + 1 for s in float32; M = |f| = |x·f'|, |g·f'|
    (2, 2),
    lambda x, **kw: np.abs(x) * _leaky_slope(x, **kw),
    lambda g, x, **kw: g * _leaky_slope(x, **kw),
    hyperparameters=_optional(negative_slope=_grid(-64, 64, 64)),
    kinks=lambda params: (0.0,),
    polynomial_degree=1,
    edge_cases=(
        _at("x = 0 (subgradient: the slope)", (0.0, -0.0, 1.0, -1.0)),
        _at("x = 0, slope 0.25", (0.0, 2.0, -2.0), negative_slope=0.25),
        _at("x = 0, negative slope -0.5", (0.0, -1.0, 1.0), negative_slope=-0.5),
    ),
)


def _hardtanh_kinks(params: Params) -> tuple[float, ...]:
    return (params.get("min_val", -1.0), params.get("max_val", 1.0))


def _hardtanh_grad(g: Array, x: Array, min_val: float = -1.0, max_val: float = 1.0) -> Array:
    return g * _inside(x, min_val, max_val)


HARDTANH = _activation(
    "hardtanh",
    "min(max(x, min_val), max_val)",
    act.hardtanh,
    act.hardtanh_backward,
    "torch.nn.functional.hardtanh",
    # out: x itself, or min_val/max_val (1 rounding in float32); grad exact; M = |f|
    (1, 0),
    lambda x, **kw: np.abs(act.hardtanh(x, **kw)),
    _hardtanh_grad,
    hyperparameters=_hardtanh_range(),
    kinks=_hardtanh_kinks,
    polynomial_degree=1,
    edge_cases=(
        _at("x = ±1 (subgradient 0)", (-1.0, 1.0, 0.5, -3.0, 2.0)),
        _at("x on custom bounds", (-2.5, 0.5, 0.0, -3.0, 1.0), min_val=-2.5, max_val=0.5),
        EdgeCase(
            "min_val == max_val: a constant", {"shape": (2, 3), "min_val": 0.5, "max_val": 0.5}
        ),
    ),
    error_cases=(
        ErrorCase(
            "min_val > max_val",
            {"x": ArraySpec((3,)), "min_val": 1.0, "max_val": -1.0},
            ValueError,
            r"min_val cannot be greater than max_val.*min_val=1.0, max_val=-1.0",
        ),
    ),
)

THRESHOLD_DEFAULTS = {"threshold": 0.5, "value": -1.0}  # torch has no defaults: the cases' own

THRESHOLD = _activation(
    "threshold",
    "x for x > threshold, value otherwise",
    act.threshold,
    act.threshold_backward,
    "torch.nn.functional.threshold",
    (1, 0),  # out: x, or value (1 rounding in float32); grad exact; M = |f|
    lambda x, **kw: np.abs(act.threshold(x, **kw)),
    lambda g, x, threshold, value: g * (x > threshold),
    hyperparameters=st.fixed_dictionaries(
        {"threshold": _grid(-32, 32, 16), "value": _grid(-48, 48, 16)}
    ),
    kinks=lambda params: (params["threshold"],),
    polynomial_degree=1,
    required=THRESHOLD_DEFAULTS,
    edge_cases=(
        _at("x = threshold (gives value, gradient 0)", (1.5, 1.0, 2.0), threshold=1.5, value=-2.0),
    ),
    error_cases=(
        ErrorCase(
            "value is None",
            {"x": ArraySpec((3,)), "threshold": 0.5, "value": None},
            TypeError,
            r"value must be a real number, got value=None",
        ),
    ),
)


def _shrink_kinks(params: Params) -> tuple[float, ...]:
    lambd = params.get("lambd", 0.5)
    return (-lambd, lambd) if lambd > 0 else (0.0,) if lambd == 0 else ()


def _outside(g: Array, x: Array, lambd: float = 0.5) -> Array:
    return g * ((x > lambd) | (x < -lambd))


HARDSHRINK = _activation(
    "hardshrink",
    "x for |x| > lambd, 0 otherwise",
    act.hardshrink,
    act.hardshrink_backward,
    "torch.nn.functional.hardshrink",
    (0, 0),  # where: exact
    lambda x, **kw: np.abs(act.hardshrink(x, **kw)),
    _outside,
    # lambd < 0 is allowed by torch and keeps every x
    hyperparameters=_optional(lambd=st.one_of(_grid(4, 64, 32), _grid(-32, -1, 32))),
    kinks=_shrink_kinks,
    polynomial_degree=1,
    edge_cases=(
        _at("x = ±lambd (gives 0, gradient 0)", (-0.5, 0.5, 0.0, 1.0, -1.0)),
        _at("x = ±1.25, lambd 1.25", (-1.25, 1.25, 2.0), lambd=1.25),
        _at("lambd 0 at x = 0", (0.0, -0.0, 1.0), lambd=0.0),
        EdgeCase("lambd -0.5: the identity", {"shape": (3, 2), "lambd": -0.5}),
    ),
)

SOFTSHRINK = _activation(
    "softshrink",
    "x − lambd for x > lambd, x + lambd for x < −lambd, 0 otherwise",
    act.softshrink,
    act.softshrink_backward,
    "torch.nn.functional.softshrink",
    # out = x ∓ lambd: 1 rounding + 1 for lambd in float32, M = |x| + lambd; grad exact
    (2, 0),
    lambda x, lambd=0.5: np.where((x > lambd) | (x < -lambd), np.abs(x) + lambd, 0.0),
    _outside,
    hyperparameters=_optional(lambd=_grid(4, 64, 32)),
    kinks=_shrink_kinks,
    polynomial_degree=1,
    edge_cases=(
        _at("x = ±lambd (gives 0, gradient 0)", (-0.5, 0.5, 0.0, 1.0, -1.0)),
        _at("x = ±1.25, lambd 1.25", (-1.25, 1.25, 2.0, -2.0), lambd=1.25),
        _at("lambd 0 at x = 0", (0.0, -0.0, 1.0), lambd=0.0),
        EdgeCase("lambd 0: the identity", {"shape": (3, 2), "lambd": 0.0}),
    ),
    error_cases=(
        ErrorCase(
            "negative lambd",
            {"x": ArraySpec((3,)), "lambd": -0.5},
            ValueError,
            r"lambd must be >= 0 for softshrink .*lambd=-0.5",
        ),
    ),
)

# --- hard approximations: piecewise polynomials -------------------------------------------------

HARDSIGMOID = _activation(
    "hardsigmoid",
    "min(max(x + 3, 0), 6) / 6",
    act.hardsigmoid,
    act.hardsigmoid_backward,
    "torch.nn.functional.hardsigmoid",
    # out = (x + 3) / 6: 2 roundings; the sum's terms |x| + 3 give M = (|x| + 3)/6 ≥ |f|, |x·f'|
    # (0 and 1 outside are exact). grad = g·(1/6): torch multiplies by 1/6 (1 rounding of the
    # constant + 1 product), refcnn divides (1): 2.
    (2, 2),
    lambda x: np.where(_inside(x, -3, 3), (np.abs(x) + 3) / 6, np.abs(act.hardsigmoid(x))),
    lambda g, x: g * _inside(x, -3, 3) / 6,
    kinks=lambda params: (-3.0, 3.0),
    polynomial_degree=1,
    edge_cases=(_at("x = ±3 (subgradient 0)", (-3.0, 3.0, 0.0, 4.0, -4.0)),),
    known_deviations=(
        KnownDeviation(
            candidate="torch",
            dtype="float64",
            quantity="grad_x",
            relative=2.0**-24,  # |fl32(1/6) − 1/6| / (1/6) = 2.98e-8 < 2⁻²⁴
            reason="torch 2.13's float64 hardsigmoid backward multiplies by float32's 1/6 "
            "(0.1666666716337204): a relative error of 2.98e-8",
        ),
    ),
)


def _hardswish_out(x: Array) -> Array:
    # x·(x + 3)/6 between the kinks: 3 roundings (+, ×, ÷). M: the sum's terms give
    # |x|·(|x| + 3)/6, and |x·f'| = |x|·|2x + 3|/6 ≤ |x|·(2|x| + 3)/6, which covers both.
    # Above 3: x·6/6, exact; below −3: x·0.
    return np.where(_inside(x, -3, 3), np.abs(x) * (2 * np.abs(x) + 3) / 6, np.abs(x) * (x >= 3))


def _hardswish_grad(g: Array, x: Array) -> Array:
    # g·(x/3 + 1/2) between the kinks: 3 roundings, terms |x|/3 + 1/2; g above 3.
    return g * np.where(_inside(x, -3, 3), np.abs(x) / 3 + 0.5, 1.0 * (x >= 3))


HARDSWISH = _activation(
    "hardswish",
    "x·min(max(x + 3, 0), 6) / 6",
    act.hardswish,
    act.hardswish_backward,
    "torch.nn.functional.hardswish",
    (3, 3),
    _hardswish_out,
    _hardswish_grad,
    kinks=lambda params: (-3.0, 3.0),
    polynomial_degree=2,
    edge_cases=(_at("x = ±3 (gradient 0 at −3, 1 at 3)", (-3.0, 3.0, 0.0, 4.0, -4.0)),),
)

# --- exponential family: elu, selu, celu --------------------------------------------------------
# x ≤ 0: torch computes (exp(x·s) − 1)·c, refcnn c·expm1(x·s); the subtraction's terms give
# |c|·(eˣ + 1), which covers torch's cancellation near 0. x > 0: x·scale.


def _elu_out(x: Array, alpha: float = 1.0) -> Array:
    # x ≤ 0: exp L, − 1, × alpha 1, alpha in float32 1: L + 3. M = |α|(eˣ + 1) + |x·f'| = |α||x|eˣ
    e = np.exp(np.minimum(x, 0))
    return np.where(x > 0, np.abs(x), abs(alpha) * (e + 1 + np.abs(x) * e))


def _elu_grad(g: Array, x: Array, alpha: float = 1.0) -> Array:
    # x ≤ 0: g·α·eˣ: exp L, 2 products, alpha 1: L + 3; x > 0: g (exact)
    return g * np.where(x > 0, 1.0, abs(alpha) * np.exp(np.minimum(x, 0)))


ELU = _activation(
    "elu",
    "x for x > 0, alpha·(exp(x) − 1) otherwise",
    act.elu,
    act.elu_backward,
    "torch.nn.functional.elu",
    (L + 3, L + 3),
    _elu_out,
    _elu_grad,
    hyperparameters=_optional(alpha=_grid(-32, 48, 16)),
    kinks=lambda params: (0.0,),
    large=LARGE_EXPONENTIAL_TAIL,
    edge_cases=(
        _at("x = 0 (subgradient alpha)", (0.0, -0.0, 1.0, -1.0)),
        _at("x = 0, alpha 2", (0.0, -1.0), alpha=2.0),
        _at("x = 0, alpha -0.5", (0.0, -1.0, 1.0), alpha=-0.5),
    ),
)

_SELU_PRODUCT = act.SELU_SCALE * act.SELU_ALPHA


def _selu_out(x: Array) -> Array:
    # x ≤ 0: torch's scale·alpha is 3 roundings in float32 (both constants, their product),
    # exp L, − 1, × 1: L + 5. x > 0: scale·x, 2. M as for elu with c = scale·alpha.
    e = np.exp(np.minimum(x, 0))
    return np.where(x > 0, act.SELU_SCALE * np.abs(x), _SELU_PRODUCT * (e + 1 + np.abs(x) * e))


def _selu_grad(g: Array, x: Array) -> Array:
    # x ≤ 0: g·(scale·alpha)·eˣ: 3 + L + 2; x > 0: g·scale: 2
    return g * np.where(x > 0, act.SELU_SCALE, _SELU_PRODUCT * np.exp(np.minimum(x, 0)))


SELU = _activation(
    "selu",
    "scale·elu(x, alpha) with alpha = 1.6733, scale = 1.0507",
    act.selu,
    act.selu_backward,
    "torch.nn.functional.selu",
    (L + 5, L + 5),
    _selu_out,
    _selu_grad,
    kinks=lambda params: (0.0,),
    large=LARGE_EXPONENTIAL_TAIL,
    edge_cases=(_at("x = 0 (subgradient scale·alpha)", (0.0, -0.0, 1.0, -1.0)),),
)


def _celu_out(x: Array, alpha: float = 1.0) -> Array:
    # x ≤ 0, torch: elu with input scale 1/α: 1/α (1, +1 in float32), x·(1/α) 1, exp L, − 1,
    # × α (1, +1 in float32): L + 6. With s = x/α: M = |α|(eˢ + 1) + |x|eˢ, the last term for
    # the rounded argument (|s·∂f/∂s| = |x|eˢ), which is also |x·f'|.
    s = np.minimum(x, 0) / alpha
    return np.where(x > 0, np.abs(x), abs(alpha) * (np.exp(s) + 1) + np.abs(x) * np.exp(s))


def _celu_grad(g: Array, x: Array, alpha: float = 1.0) -> Array:
    # x ≤ 0, torch: g·(1/α)·α·exp(x·(1/α)): 1/α 2, argument 1, exp L, 3 products, α in
    # float32 1: L + 7. M = |g|·eˢ·(1 + |s|), |s| for the rounded argument.
    s = np.minimum(x, 0) / alpha
    return g * np.where(x > 0, 1.0, np.exp(s) * (1 + np.abs(s)))


CELU = _activation(
    "celu",
    "x for x > 0, alpha·(exp(x/alpha) − 1) otherwise; alpha ≠ 0",
    act.celu,
    act.celu_backward,
    "torch.nn.functional.celu",
    (L + 6, L + 7),
    _celu_out,
    _celu_grad,
    hyperparameters=_optional(alpha=_signed(8, 48, 16)),
    kinks=lambda params: (0.0,),  # f is C¹ there, f'' jumps
    large=LARGE_EXPONENTIAL_TAIL,
    edge_cases=(
        _at("x = 0, alpha 2 (gradient 1)", (0.0, -0.0, 1.0, -1.0), alpha=2.0),
        _at("x = 0, alpha -1.5", (0.0, -1.0, 1.0), alpha=-1.5),
    ),
    error_cases=(
        ErrorCase(
            "alpha 0",
            {"x": ArraySpec((3,)), "alpha": 0.0},
            ValueError,
            r"alpha must not be 0 for celu .*alpha=0.0",
        ),
    ),
)

# --- sigmoid family -----------------------------------------------------------------------------
# refcnn: σ(x) and σ(−x) from e = exp(−|x|): e L, 1 + e 1, r = 1/(1 + e) 1, e·r 1 → L + 3 for
# both. torch: 1/(1 + exp(−x)), L + 2. Every node's sensitivity is ≤ σ (≤ σ(−x) for σ(−x)).


def _sigmoid_out(x: Array) -> Array:
    # L + 3; M = σ + |x·σ'| = σ·(1 + |x|·σ(−x))
    s = _sigmoid(x)
    return s * (1 + np.abs(x) * _sigmoid(-x))


def _sigmoid_grad(g: Array, x: Array) -> Array:
    # refcnn g·σ(x)·σ(−x): L + 3 + 2. torch g·(1 − y)·y from the output y: y's L + 2, 1 − y 1,
    # 2 products: L + 5. Sensitivities: |g|·y·|1 − 2y| for y, |g|·y·(1 − y) else: M = |g|·σ.
    return g * _sigmoid(x)


SIGMOID = _activation(
    "sigmoid",
    "1 / (1 + exp(−x))",
    act.sigmoid,
    act.sigmoid_backward,
    "torch.sigmoid",
    (L + 3, L + 5),
    _sigmoid_out,
    _sigmoid_grad,
    large=LARGE_EXPONENTIAL_TAIL,
    edge_cases=(_everywhere("x = ±0 and tiny", NEAR_ZERO),),
)


def _logsigmoid_out(x: Array) -> Array:
    # min(x, 0) − log1p(exp(−|x|)): L + L + 1 (torch the same). Both terms are ≤ 0: no
    # cancellation, |f| covers them; e = exp(−|x|) has sensitivity e/(1 + e) ≤ log1p(e) ≤ |f|.
    # |x·f'| = |x|·σ(−x).
    return np.abs(act.logsigmoid(x)) + np.abs(x) * _sigmoid(-x)


def _logsigmoid_grad(g: Array, x: Array) -> Array:
    # torch: g·(max_deriv − sign·b/(1 + b)), b = exp(−|x|), max_deriv = 1 for x < 0 else 0:
    # b L, 1 + b 1, ÷ 1, − 1, × g 1: L + 4; the difference's terms: [x < 0] + σ(−|x|).
    # refcnn g·σ(−x): L + 4.
    return g * ((x < 0) + _sigmoid(-np.abs(x)))


LOGSIGMOID = _activation(
    "logsigmoid",
    "log σ(x) = −softplus(−x)",
    act.logsigmoid,
    act.logsigmoid_backward,
    "torch.nn.functional.logsigmoid",
    (2 * L + 1, L + 4),
    _logsigmoid_out,
    _logsigmoid_grad,
    large=LARGE_EXPONENTIAL_TAIL,
    edge_cases=(_everywhere("x = ±0 and tiny", NEAR_ZERO),),
)


def _silu_out(x: Array) -> Array:
    # refcnn x·σ(x): L + 3 + 1; torch x/(1 + exp(−x)): L + 2. The exponential's sensitivity is
    # |x|·σ·σ(−x) ≤ |x|σ = |f|; |x·f'| = |x|·σ·|1 + x·σ(−x)|: M = |x|·σ·(1 + |x|·σ(−x)).
    return np.abs(x) * _sigmoid(x) * (1 + np.abs(x) * _sigmoid(-x))


def _silu_grad(g: Array, x: Array) -> Array:
    # g·σ·(1 + x·(1 − σ)): torch σ L + 2, then 5 roundings; refcnn σ(x), σ(−x) L + 3, then 4:
    # L + 7. Sensitivities: σ's |g|·σ·|1 + x(1 − 2σ)| ≤ |g|σ(1 + |x|), the rest ≤ that.
    return g * _sigmoid(x) * (1 + np.abs(x))


SILU = _activation(
    "silu",
    "x·σ(x)",
    act.silu,
    act.silu_backward,
    "torch.nn.functional.silu",
    (L + 4, L + 7),
    _silu_out,
    _silu_grad,
    large=LARGE_EXPONENTIAL_TAIL,
    edge_cases=(_everywhere("x = ±0 and tiny", NEAR_ZERO),),
)


def _softplus_out(x: Array, beta: float = 1.0, threshold: float = 20.0) -> Array:
    # z = x·β (1, +1 for β in float32); torch log1p(exp(z))/β, refcnn
    # (max(z, 0) + log1p(exp(−|z|)))/β: 2L + 2 more: 2L + 4. Sensitivities: the sum, log1p
    # and ÷ |f|; the exponential σ(±|z|)/|β| ≤ σ(z)/|β|; z's |z|·σ(z)/|β| = |x|σ(z) = |x·f'|.
    # Above the threshold f = x.
    z = x * beta
    soft = np.abs(_softplus(z) / beta) + (1 + np.abs(z)) * _sigmoid(z) / abs(beta)
    return np.where(z > threshold, np.abs(x), soft)


def _softplus_grad(g: Array, x: Array, beta: float = 1.0, threshold: float = 20.0) -> Array:
    # torch g·e/(e + 1), e = exp(z): z 2, L, 3: L + 5; refcnn g·σ(z): 2 + L + 3 + 1: L + 6.
    # Sensitivities: z's |g|·σ(z)σ(−z)|z|, the rest ≤ |g|σ(z): M = |g|·σ(z)·(1 + |z|).
    z = x * beta
    return g * np.where(z > threshold, 1.0, _sigmoid(z) * (1 + np.abs(z)))


SOFTPLUS = _activation(
    "softplus",
    "log(1 + exp(beta·x)) / beta, x where beta·x > threshold",
    act.softplus,
    act.softplus_backward,
    "torch.nn.functional.softplus",
    (2 * L + 4, L + 6),
    _softplus_out,
    _softplus_grad,
    hyperparameters=_optional(beta=_signed(4, 64, 16), threshold=_grid(2, 120, 4)),
    # f jumps by log1p(exp(−threshold))/beta where beta·x = threshold
    kinks=lambda params: (params.get("threshold", 20.0) / params.get("beta", 1.0),),
    large=LARGE_EXPONENTIAL_TAIL,
    edge_cases=(
        _everywhere("x = ±0 and tiny", NEAR_ZERO),
        _at("beta·x = threshold (log1p branch)", (20.0, 19.5, 20.5, 0.0)),
        _at("beta 2, threshold 10: x = 5", (5.0, 4.0, 6.0), beta=2.0, threshold=10.0),
        _at("negative beta: beta·x = threshold", (-20.0, -21.0, 3.0), beta=-1.0),
    ),
    error_cases=(
        ErrorCase(
            "beta 0",
            {"x": ArraySpec((3,)), "beta": 0},
            ValueError,
            r"beta must not be 0 .*beta=0",
        ),
    ),
)


def _mish_terms(x: Array) -> tuple[Array, Array, Array]:
    soft = _softplus(x)
    return soft, np.tanh(soft), _sigmoid(x)


def _mish_out(x: Array) -> Array:
    # x·tanh(sp(x)): torch exp, log1p, tanh, × (3L + 1); refcnn's stable sp adds 1: 3L + 2.
    # Sensitivities: tanh and × |x|·|t|; sp's nodes |x|(1 − t²)·sp and the exponential's
    # |x|(1 − t²)·σ; |x·f'| ≤ |x|·|t| + x²·σ·(1 − t²).
    soft, t, s = _mish_terms(x)
    return np.abs(x) * (np.abs(t) + (1 - t * t) * (soft + s + np.abs(x) * s))


def _mish_grad(g: Array, x: Array) -> Array:
    # g·(t + x·σ·(1 − t²)): refcnn sp 2L + 1, tanh L, σ L + 3, then 6: 4L + 10 (torch 4L + 8).
    # Sensitivities: t's |t|·(1 + 2|x|σ|t|); σ's and (1 − t²)'s |x|σ(1 − t²), t·t's |x|σt²;
    # sp's and the exponential's (1 + 2|x|σ)(1 − t²)·(sp, σ).
    soft, t, s = _mish_terms(x)
    amplification = 1 + 2 * np.abs(x) * s
    return g * (
        np.abs(t) * amplification
        + np.abs(x) * s * (1 + t * t)
        + amplification * (1 - t * t) * (soft + s)
    )


MISH = _activation(
    "mish",
    "x·tanh(softplus(x))",
    act.mish,
    act.mish_backward,
    "torch.nn.functional.mish",
    (3 * L + 2, 4 * L + 10),
    _mish_out,
    _mish_grad,
    large=LARGE_EXPONENTIAL_TAIL,
    edge_cases=(_everywhere("x = ±0 and tiny", NEAR_ZERO),),
)

# --- tanh family --------------------------------------------------------------------------------


def _tanh_out(x: Array) -> Array:
    # tanh: L. M = |t| + |x·f'| = |t| + |x|(1 − t²)
    t = np.tanh(x)
    return np.abs(t) + np.abs(x) * (1 - t * t)


def _tanh_grad(g: Array, x: Array) -> Array:
    # g·(1 − t·t), torch from the output t: L + 3. The difference's terms: |g|·(1 + t²);
    # t's own sensitivity 2|g|t² gives 16u·t², within (L + 3)·u·(1 + t²).
    t = np.tanh(x)
    return g * (1 + t * t)


TANH = _activation(
    "tanh",
    "tanh(x)",
    act.tanh,
    act.tanh_backward,
    "torch.tanh",
    (L, L + 3),
    _tanh_out,
    _tanh_grad,
    edge_cases=(_everywhere("x = ±0 and tiny", NEAR_ZERO),),
)

TANHSHRINK = _activation(
    "tanhshrink",
    "x − tanh(x)",
    act.tanhshrink,
    act.tanhshrink_backward,
    "torch.nn.functional.tanhshrink",
    # out: tanh L, − 1: L + 1; the difference's terms |x| + |t| (≥ |x·f'| = |x|t²).
    # grad: torch's autograd g − g·(1 − t²): L + 4 (refcnn g·t², L + 2); M = |g|·(1 + t²)
    (L + 1, L + 4),
    lambda x: np.abs(x) + np.abs(np.tanh(x)),
    lambda g, x: g * (1 + np.tanh(x) ** 2),
    edge_cases=(_everywhere("x = ±0 and tiny", NEAR_ZERO),),
)

SOFTSIGN = _activation(
    "softsign",
    "x / (1 + |x|)",
    act.softsign,
    act.softsign_backward,
    "torch.nn.functional.softsign",
    # out: + and ÷: 2; M = |f| + |x·f'| = |x|/(1 + |x|) + |x|/(1 + |x|)² ≤ 2|x|/(1 + |x|).
    # grad: torch's autograd of x/(|x| + 1) adds g/d and −g·x/d²·sign(x) (d = 1 + |x|): 6
    # roundings, terms |g|/d + |g||x|/d²; refcnn g/(d·d), 3.
    (2, 6),
    lambda x: 2 * np.abs(x) / (1 + np.abs(x)),
    lambda g, x: g * (1 + 2 * np.abs(x)) / (1 + np.abs(x)) ** 2,
    kinks=lambda params: (0.0,),  # f'' jumps at 0
    edge_cases=(_at("x = ±0", (0.0, -0.0, 1.0, -1.0)),),
)

# --- gelu ---------------------------------------------------------------------------------------

_BETA = math.sqrt(2 / math.pi)
_KAPPA = 0.044715


def _gelu_roundings(kwargs: Mapping[str, Any]) -> tuple[int, int]:
    if kwargs.get("approximate", "none") == "tanh":
        # out, torch: x³ 2, κ 2 (decimal → float64 → float32), κ·x³ 1, x + 1, β 4 (√2·(2/√π)·½
        # in float64: 3, +1 in float32), β·() 1, tanh L, 1 + 1, × 1: L + 13.
        # grad: the same inner (x² 1, x³ 1 more) and tanh: L + 13; 1 + t 1, t·t 1, 1 − 1,
        # 3κ 1, ·x² 1, 1 + 1, β· 1, left·(1 − t²)·inner' 2, + 1, g· 1: L + 23.
        return L + 13, L + 23
    # out, torch: x·(1/√2) 2, erf L, 1 + 1, × 1 (x·½ exact): L + 4 (refcnn: erfc, cast: the same).
    # grad, torch: cdf L + 3; pdf: x·x 1, exp L, 1/√(2π) 4, × 1; x·pdf 1, + 1, g· 1: 2L + 12.
    return L + 4, 2 * L + 12


def _gelu_out(x: Array, approximate: str = "none") -> Array:
    if approximate == "tanh":
        # 0.5·x·(1 + t): the sum's terms 0.5|x|(1 + |t|); the inner nodes (x³, the sum, β·)
        # and |x·f'| all ≤ 0.5|x|·(1 − t²)·β·(|x| + 3κ|x|³).
        t = np.tanh(_BETA * (x + _KAPPA * x**3))
        return (
            0.5
            * np.abs(x)
            * (1 + np.abs(t) + (1 - t * t) * _BETA * (np.abs(x) + 3 * _KAPPA * np.abs(x) ** 3))
        )
    # x·½(1 + erf(x/√2)): the sum's terms ½|x|(1 + |erf|); erf's rounded argument: x²·φ(x),
    # which with the former also covers |x·f'| = |x|·|Φ + x·φ|.
    return 0.5 * np.abs(x) * (1 + np.abs(_erf(x / math.sqrt(2)))) + x * x * _pdf(x)


def _gelu_grad(g: Array, x: Array, approximate: str = "none") -> Array:
    if approximate == "tanh":
        # f' = ½(1 + t) + ½x(1 − t²)·D, D = β(1 + 3κx²). Terms: ½(1 + |t|); the difference
        # 1 − t·t: ½|x|(1 + t²)D (covers t's 2·½|x|t²D, D's nodes); the inner argument
        # (through t): (½ + |x|D)(1 − t²)·β(|x| + κ|x|³).
        t = np.tanh(_BETA * (x + _KAPPA * x**3))
        slope = _BETA * (1 + 3 * _KAPPA * x * x)
        inner = _BETA * (np.abs(x) + _KAPPA * np.abs(x) ** 3)
        return g * (
            0.5 * (1 + np.abs(t))
            + 0.5 * np.abs(x) * (1 + t * t) * slope
            + (0.5 + np.abs(x) * slope) * (1 - t * t) * inner
        )
    # f' = Φ + x·φ. Terms: cdf ½(1 + |erf|), x·φ; erf's rounded argument |x|φ; x·x (inside
    # exp) ½|x|³φ: M = |g|·(½(1 + |erf|) + |x|φ·(1 + ½x²)).
    return g * (
        0.5 * (1 + np.abs(_erf(x / math.sqrt(2)))) + np.abs(x) * _pdf(x) * (1 + 0.5 * x * x)
    )


GELU = _activation(
    "gelu",
    "x·Φ(x), or its tanh approximation (approximate='tanh')",
    act.gelu,
    act.gelu_backward,
    "torch.nn.functional.gelu",
    _gelu_roundings,
    _gelu_out,
    _gelu_grad,
    hyperparameters=_optional(approximate=st.sampled_from(["none", "tanh"])),
    edge_cases=(
        _everywhere("x = ±0 and tiny", NEAR_ZERO),
        _everywhere("tanh: x = ±0 and tiny", NEAR_ZERO, approximate="tanh"),
        _everywhere("tanh: large |x|", LARGE, approximate="tanh"),
    ),
    error_cases=(
        ErrorCase(
            "unknown approximation",
            {"x": ArraySpec((3,)), "approximate": "erf"},
            ValueError,
            r"approximate must be 'none' or 'tanh' .*'erf'",
        ),
    ),
)

OPS: tuple[OpSpec, ...] = (
    RELU,
    RELU6,
    LEAKY_RELU,
    ELU,
    SELU,
    CELU,
    GELU,
    SIGMOID,
    TANH,
    SOFTPLUS,
    SOFTSIGN,
    SILU,
    MISH,
    HARDTANH,
    HARDSIGMOID,
    HARDSWISH,
    LOGSIGMOID,
    TANHSHRINK,
    SOFTSHRINK,
    HARDSHRINK,
    THRESHOLD,
)
