"""Optimizers with torch.optim's update rules (torch 2.13, the single-tensor path), state explicit.

Two layers, as in torch:

* a PURE step function per optimizer, ``<name>_step(param, grad, state, **hyperparameters) ->
  (new_param, new_state)``: it never modifies its arguments, and ``state`` is a plain dict with
  torch's ``optimizer.state[p]`` keys (``"step"``, ``"exp_avg"``, ...), in torch's order; an
  empty dict (or None) is a fresh state, created on the first step as torch creates it lazily;
* a CLASS per optimizer with torch.optim's constructor (``params`` = a list of arrays, the same
  hyperparameters, the same defaults, the same ValueError messages for invalid ones) whose
  ``step(grads)`` updates the arrays IN PLACE, so a layer holding an array sees it change.

The update rules, for a parameter θ and its gradient g (t counts steps from 1; every operation
is elementwise; ``maximize`` negates g first; ``weight_decay`` λ adds λ·θ to g, except for AdamW
and ``decoupled_weight_decay``, which shrink θ ← θ·(1 − lr·λ) instead)::

    SGD       b ← g (t = 1), b ← μ·b + (1 − τ)·g;  d = g + μ·b (nesterov) or b;  θ ← θ − lr·d
    Adagrad   s ← s + g²;  θ ← θ − lr/(1 + (t − 1)·lr_decay) · g/(√s + eps)
    RMSprop   v ← α·v + (1 − α)·g²;  a = √v + eps  (centered: √(v − ḡ²) + eps, ḡ ← α·ḡ + (1 − α)·g)
              b ← μ·b + g/a and θ ← θ − lr·b (momentum μ > 0), else θ ← θ − lr·g/a
    Adadelta  v ← ρ·v + (1 − ρ)·g²;  δ = √(A + eps)/√(v + eps)·g;  A ← ρ·A + (1 − ρ)·δ²
              θ ← θ − lr·δ
    Adam      m ← β₁·m + (1 − β₁)·g;  v ← β₂·v + (1 − β₂)·g²  (amsgrad: v_max ← max(v_max, v))
              θ ← θ − lr/(1 − β₁ᵗ) · m/(√v/√(1 − β₂ᵗ) + eps)
    Adamax    m as Adam;  u ← max(β₂·u, |g| + eps);  θ ← θ − lr/(1 − β₁ᵗ) · m/u
    NAdam     μₜ = β₁·(1 − ½·0.96^(t·ψ)), Πₜ = μ₁⋯μₜ;  m, v as Adam;  a = √(v/(1 − β₂ᵗ)) + eps
              θ ← θ − lr·(1 − μₜ)/(1 − Πₜ) · g/a − lr·μₜ₊₁/(1 − Πₜ·μₜ₊₁) · m/a
    RAdam     m, v as Adam;  ρ∞ = 2/(1 − β₂) − 1;  ρₜ = ρ∞ − 2t·β₂ᵗ/(1 − β₂ᵗ)
              θ ← θ − lr·m̂·r·√(1 − β₂ᵗ)/(√v + eps) if ρₜ > 5, else θ ← θ − lr·m̂
              (m̂ = m/(1 − β₁ᵗ), r = √((ρₜ − 4)(ρₜ − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρₜ)))

Each function below states its rule line by line, in torch's order of operations, except that a
moving average is written β·m + (1 − β)·g where torch calls ``m.lerp_(g, 1 − β)`` (the same value;
the catalog's rounding model covers both evaluations). Hyperparameters
are Python floats, so float32 arrays stay float32 (NumPy converts a Python float to the array's
dtype; an ``np.float64`` scalar would upcast). Step counts and the scalar coefficients (bias
corrections, NAdam's μ product) are computed in double precision, as torch computes them in
Python. The derivations next to torch's own pseudo-code, with examples: docs/optimizers.md.

The book's optimizer API ("Deep Learning from Scratch": ``update(params, grads)`` on dicts) is in
:mod:`refcnn.optim_book`, a thin layer over these functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from refcnn.geometry import FloatArray, check_float_tensor, check_same_dtype

State = dict[str, Any]  # torch's optimizer.state[p]: "step" (an int here) and the buffers

__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "State",
    "adadelta_step",
    "adagrad_init",
    "adagrad_step",
    "adam_step",
    "adamax_step",
    "adamw_step",
    "nadam_step",
    "radam_step",
    "rmsprop_step",
    "sgd_step",
]

# --- validation: torch.optim's checks and messages, one helper per kind of check ----------------
#
# torch writes each check as ``not 0.0 <= value`` (so NaN is rejected too), except SGD's, which
# are ``value < 0.0`` (so SGD accepts lr=nan). The helpers keep that difference.


def _at_least_zero(value: float, message: str) -> None:
    """torch's ``if not 0.0 <= value: raise ValueError(f"{message}: {value}")``."""
    if not value >= 0.0:
        raise ValueError(f"{message}: {value}")


def _not_negative(value: float, message: str) -> None:
    """SGD's form, ``if value < 0.0``: NaN passes, as in torch."""
    if value < 0.0:
        raise ValueError(f"{message}: {value}")


def _check_betas(betas: object) -> tuple[float, float]:
    """``0 ≤ β₁ < 1`` and ``0 ≤ β₂ < 1`` with torch's messages; a pair is required."""
    if not isinstance(betas, tuple | list) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got betas={betas!r}")
    for index, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {index}: {beta}")
    return betas[0], betas[1]


def _check_adam_family(
    lr: float, betas: object, eps: float, weight_decay: float
) -> tuple[float, float]:
    """Adam, AdamW, Adamax, NAdam, RAdam: lr, eps, β₁, β₂, weight_decay (torch's order)."""
    _at_least_zero(lr, "Invalid learning rate")
    _at_least_zero(eps, "Invalid epsilon value")
    beta1, beta2 = _check_betas(betas)
    _at_least_zero(weight_decay, "Invalid weight_decay value")
    return beta1, beta2


def _check_adam_betas_are_floats(betas: tuple[float, float]) -> None:
    """torch's Adam and AdamW (not Adamax, NAdam, RAdam) reject betas such as ``(0, 0.999)``."""
    if not (isinstance(betas[0], float) and isinstance(betas[1], float)):
        raise ValueError("betas must be either both floats or both Tensors")


def _check_sgd(
    lr: float, momentum: float, dampening: float, weight_decay: float, nesterov: bool
) -> None:
    _not_negative(lr, "Invalid learning rate")
    _not_negative(momentum, "Invalid momentum value")
    _not_negative(weight_decay, "Invalid weight_decay value")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")


def _check_adagrad(
    lr: float, lr_decay: float, weight_decay: float, initial_accumulator_value: float, eps: float
) -> None:
    _at_least_zero(lr, "Invalid learning rate")
    _at_least_zero(lr_decay, "Invalid lr_decay value")
    _at_least_zero(weight_decay, "Invalid weight_decay value")
    _at_least_zero(initial_accumulator_value, "Invalid initial_accumulator_value value")
    _at_least_zero(eps, "Invalid epsilon value")


def _check_rmsprop(
    lr: float, alpha: float, eps: float, weight_decay: float, momentum: float
) -> None:
    """torch checks alpha ≥ 0 only: alpha > 1 is accepted (and makes v negative)."""
    _at_least_zero(lr, "Invalid learning rate")
    _at_least_zero(eps, "Invalid epsilon value")
    _at_least_zero(momentum, "Invalid momentum value")
    _at_least_zero(weight_decay, "Invalid weight_decay value")
    _at_least_zero(alpha, "Invalid alpha value")


def _check_adadelta(lr: float, rho: float, eps: float, weight_decay: float) -> None:
    _at_least_zero(lr, "Invalid learning rate")
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"Invalid rho value: {rho}")
    _at_least_zero(eps, "Invalid epsilon value")
    _at_least_zero(weight_decay, "Invalid weight_decay value")


# --- pieces every step shares -------------------------------------------------------------------


def _check_param_and_grad(param: object, grad: object) -> tuple[FloatArray, FloatArray]:
    """``param`` and ``grad``: floating arrays of one shape and one dtype."""
    param = check_float_tensor(param, "param")
    grad = check_float_tensor(grad, "grad")
    if grad.shape != param.shape:
        raise ValueError(f"grad.shape={grad.shape} must equal param.shape={param.shape}")
    check_same_dtype("param", param, grad=grad)
    return param, grad


def _effective_grad(
    param: FloatArray, grad: FloatArray, weight_decay: float, maximize: bool
) -> FloatArray:
    """g ← −g when maximizing; then g ← g + λ·θ (L2 weight decay folded into the gradient)."""
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad + float(weight_decay) * param  # torch: grad.add(param, alpha=weight_decay)
    return grad


def _decayed(param: FloatArray, lr: float, weight_decay: float) -> FloatArray:
    """Decoupled weight decay (AdamW): θ ← θ·(1 − lr·λ), the factor computed in double."""
    if weight_decay == 0:
        return param
    return param * (1.0 - float(lr) * float(weight_decay))


def _fresh(state: State | None) -> bool:
    return not state


def _checked_buffers(state: State, param: FloatArray, names: tuple[str, ...]) -> None:
    """The state's buffers are arrays shaped and typed like ``param``."""
    for name in names:
        buffer = state.get(name)
        if not isinstance(buffer, np.ndarray) or buffer.shape != param.shape:
            raise ValueError(
                f"state[{name!r}] must be an array of param's shape {param.shape}, got "
                f"{type(buffer).__name__}"
                + (f" of shape {buffer.shape}" if isinstance(buffer, np.ndarray) else "")
            )
        check_same_dtype("param", param, **{f"state[{name!r}]": buffer})


# --- SGD ----------------------------------------------------------------------------------------


def sgd_step(
    param: FloatArray,
    grad: FloatArray,
    state: State | None = None,
    *,
    lr: float = 1e-3,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
) -> tuple[FloatArray, State]:
    """One step of torch.optim.SGD. State: ``momentum_buffer`` when momentum ≠ 0 (else none).

    The buffer starts as the first gradient itself, undamped (torch's rule, not zeros)::

        g ← −g (maximize);  g ← g + λ·θ
        b ← g                              at the first step
        b ← μ·b + (1 − τ)·g                afterwards (τ = dampening)
        d ← g + μ·b  (nesterov)  or  b     (d ← g when μ = 0)
        θ ← θ − lr·d

    See docs/optimizers.md.
    """
    _check_sgd(lr, momentum, dampening, weight_decay, nesterov)
    param, grad = _check_param_and_grad(param, grad)
    grad = _effective_grad(param, grad, weight_decay, maximize)
    new_state: State = dict(state or {})
    direction = grad
    if momentum != 0:
        if "momentum_buffer" not in new_state:
            buffer = grad.copy()  # b ← g
        else:
            _checked_buffers(new_state, param, ("momentum_buffer",))
            old = new_state["momentum_buffer"]
            buffer = float(momentum) * old + (1.0 - float(dampening)) * grad  # b ← μ·b + (1 − τ)·g
        new_state["momentum_buffer"] = buffer
        direction = grad + float(momentum) * buffer if nesterov else buffer
    return param - float(lr) * direction, new_state  # θ ← θ − lr·d


# --- Adagrad ------------------------------------------------------------------------------------


def adagrad_init(param: FloatArray, initial_accumulator_value: float = 0.0) -> State:
    """torch creates Adagrad's state in the constructor: step 0, sum = initial_accumulator_value.

    state = {"step": 0, "sum": s₀} with s₀ = initial_accumulator_value in every element

    See docs/optimizers.md.
    """
    return {"step": 0, "sum": np.full_like(param, float(initial_accumulator_value))}


def adagrad_step(
    param: FloatArray,
    grad: FloatArray,
    state: State | None = None,
    *,
    lr: float = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> tuple[FloatArray, State]:
    """One step of torch.optim.Adagrad. State: ``step``, ``sum``.

    ``initial_accumulator_value`` is used only when ``state`` is fresh::

        g ← −g (maximize);  g ← g + λ·θ
        clr = lr / (1 + (t − 1)·lr_decay)
        s ← s + g²
        θ ← θ − clr · g / (√s + eps)          eps OUTSIDE the root

    See docs/optimizers.md.
    """
    _check_adagrad(lr, lr_decay, weight_decay, initial_accumulator_value, eps)
    param, grad = _check_param_and_grad(param, grad)
    old = adagrad_init(param, initial_accumulator_value) if _fresh(state) else dict(state or {})
    _checked_buffers(old, param, ("sum",))
    step = int(old["step"]) + 1
    grad = _effective_grad(param, grad, weight_decay, maximize)
    clr = float(lr) / (1.0 + (step - 1) * float(lr_decay))  # in double, as torch
    accumulated = old["sum"] + grad * grad  # s ← s + g²
    std = np.sqrt(accumulated) + float(eps)  # √s + eps
    new_param = param - clr * (grad / std)  # torch: param.addcdiv_(grad, std, value=-clr)
    return new_param, {"step": step, "sum": accumulated}


# --- RMSprop ------------------------------------------------------------------------------------


def rmsprop_step(
    param: FloatArray,
    grad: FloatArray,
    state: State | None = None,
    *,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
) -> tuple[FloatArray, State]:
    """One step of torch.optim.RMSprop. State: ``step``, ``square_avg``, then
    ``momentum_buffer`` (momentum > 0) and ``grad_avg`` (centered), all starting at zero.

    No bias correction, and eps OUTSIDE the root::

        g ← −g (maximize);  g ← g + λ·θ
        v ← α·v + (1 − α)·g²
        ḡ ← α·ḡ + (1 − α)·g;  a = √(v − ḡ²) + eps        (centered)
                               a = √v + eps               (otherwise)
        b ← μ·b + g/a;  θ ← θ − lr·b                      (momentum μ > 0)
        θ ← θ − lr·g/a                                     (otherwise)

    See docs/optimizers.md.
    """
    _check_rmsprop(lr, alpha, eps, weight_decay, momentum)
    param, grad = _check_param_and_grad(param, grad)
    buffers: tuple[str, ...] = ("square_avg",)
    if momentum > 0:
        buffers += ("momentum_buffer",)
    if centered:
        buffers += ("grad_avg",)
    if _fresh(state):
        old: State = {"step": 0, **{name: np.zeros_like(param) for name in buffers}}
    else:
        old = dict(state or {})
    _checked_buffers(old, param, buffers)
    grad = _effective_grad(param, grad, weight_decay, maximize)
    alpha = float(alpha)
    new: State = {"step": int(old["step"]) + 1}
    square_avg = alpha * old["square_avg"] + (1.0 - alpha) * (grad * grad)  # v ← α·v + (1 − α)·g²
    new["square_avg"] = square_avg
    if centered:
        grad_avg = alpha * old["grad_avg"] + (1.0 - alpha) * grad  # ḡ ← α·ḡ + (1 − α)·g
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + float(eps)  # √(v − ḡ²) + eps
    else:
        avg = np.sqrt(square_avg) + float(eps)  # √v + eps
    if momentum > 0:
        buffer = float(momentum) * old["momentum_buffer"] + grad / avg  # b ← μ·b + g/a
        new["momentum_buffer"] = buffer
        new_param = param - float(lr) * buffer  # θ ← θ − lr·b
    else:
        new_param = param - float(lr) * (grad / avg)  # θ ← θ − lr·g/a
    if centered:
        new["grad_avg"] = grad_avg  # torch's key order: step, square_avg, momentum_buffer, grad_avg
    return new_param, new


# --- Adadelta -----------------------------------------------------------------------------------


def adadelta_step(
    param: FloatArray,
    grad: FloatArray,
    state: State | None = None,
    *,
    lr: float = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> tuple[FloatArray, State]:
    """One step of torch.optim.Adadelta. State: ``step``, ``square_avg``, ``acc_delta``.

    eps INSIDE both roots; the accumulated update is taken before lr scales it::

        g ← −g (maximize);  g ← g + λ·θ
        v ← ρ·v + (1 − ρ)·g²
        δ = √(A + eps) / √(v + eps) · g        (A = acc_delta, the OLD one)
        A ← ρ·A + (1 − ρ)·δ²
        θ ← θ − lr·δ

    See docs/optimizers.md.
    """
    _check_adadelta(lr, rho, eps, weight_decay)
    param, grad = _check_param_and_grad(param, grad)
    buffers = ("square_avg", "acc_delta")
    if _fresh(state):
        old: State = {"step": 0, **{name: np.zeros_like(param) for name in buffers}}
    else:
        old = dict(state or {})
    _checked_buffers(old, param, buffers)
    grad = _effective_grad(param, grad, weight_decay, maximize)
    rho, eps = float(rho), float(eps)
    square_avg = rho * old["square_avg"] + (1.0 - rho) * (grad * grad)  # v ← ρ·v + (1 − ρ)·g²
    std = np.sqrt(square_avg + eps)  # √(v + eps)
    delta = np.sqrt(old["acc_delta"] + eps) / std * grad  # δ = √(A + eps)/√(v + eps)·g
    acc_delta = rho * old["acc_delta"] + (1.0 - rho) * (delta * delta)  # A ← ρ·A + (1 − ρ)·δ²
    new_param = param - float(lr) * delta  # θ ← θ − lr·δ
    return new_param, {
        "step": int(old["step"]) + 1,
        "square_avg": square_avg,
        "acc_delta": acc_delta,
    }


# --- Adam and AdamW -----------------------------------------------------------------------------


def _moments(old: State, grad: FloatArray, beta1: float, beta2: float) -> tuple[FloatArray, ...]:
    """m ← β₁·m + (1 − β₁)·g and v ← β₂·v + (1 − β₂)·g² (biased: they start at zero)."""
    exp_avg = beta1 * old["exp_avg"] + (1.0 - beta1) * grad
    exp_avg_sq = beta2 * old["exp_avg_sq"] + (1.0 - beta2) * (grad * grad)
    return exp_avg, exp_avg_sq


def adam_step(
    param: FloatArray,
    grad: FloatArray,
    state: State | None = None,
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> tuple[FloatArray, State]:
    """One step of torch.optim.Adam. State: ``step``, ``exp_avg``, ``exp_avg_sq`` and, with
    amsgrad, ``max_exp_avg_sq``.

    eps is added OUTSIDE the root and AFTER the bias correction of v (not the Adam paper's
    ε̂ = ε·√(1 − β₂ᵗ)); amsgrad keeps the maximum of the UNcorrected v::

        g ← −g (maximize);  g ← g + λ·θ,  or θ ← θ·(1 − lr·λ) when decoupled (AdamW)
        m ← β₁·m + (1 − β₁)·g
        v ← β₂·v + (1 − β₂)·g²
        v_max ← max(v_max, v)                       (amsgrad; then v_max replaces v below)
        θ ← θ − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + eps)

    See docs/optimizers.md.
    """
    beta1, beta2 = _check_adam_family(lr, betas, eps, weight_decay)
    _check_adam_betas_are_floats((beta1, beta2))
    param, grad = _check_param_and_grad(param, grad)
    buffers = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())
    if _fresh(state):
        old: State = {"step": 0, **{name: np.zeros_like(param) for name in buffers}}
    else:
        old = dict(state or {})
    _checked_buffers(old, param, buffers)
    step = int(old["step"]) + 1
    if maximize:
        grad = -grad
    if decoupled_weight_decay:
        param = _decayed(param, lr, weight_decay)  # θ ← θ·(1 − lr·λ), before the moments
    else:
        grad = _effective_grad(param, grad, weight_decay, maximize=False)  # g ← g + λ·θ
    exp_avg, exp_avg_sq = _moments(old, grad, float(beta1), float(beta2))
    new: State = {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
    second = exp_avg_sq
    if amsgrad:
        second = np.maximum(old["max_exp_avg_sq"], exp_avg_sq)  # v_max ← max(v_max, v)
        new["max_exp_avg_sq"] = second
    bias_correction1 = 1.0 - float(beta1) ** step  # 1 − β₁ᵗ, in double
    bias_correction2_sqrt = (1.0 - float(beta2) ** step) ** 0.5  # √(1 − β₂ᵗ)
    step_size = float(lr) / bias_correction1
    denom = np.sqrt(second) / bias_correction2_sqrt + float(eps)  # √v̂ + eps
    new_param = param - step_size * (exp_avg / denom)  # torch: addcdiv_(m, denom, -step_size)
    return new_param, new


def adamw_step(
    param: FloatArray,
    grad: FloatArray,
    state: State | None = None,
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    maximize: bool = False,
) -> tuple[FloatArray, State]:
    """One step of torch.optim.AdamW: Adam with DECOUPLED weight decay (λ never enters m or v).

    θ ← θ·(1 − lr·λ) before the moments, then :func:`adam_step`'s rule without λ·θ in g;
    torch's default λ = 1e-2 (Adam's is 0).

    See docs/optimizers.md.
    """
    return adam_step(
        param,
        grad,
        state,
        lr=lr,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
        amsgrad=amsgrad,
        maximize=maximize,
        decoupled_weight_decay=True,
    )


# --- Adamax -------------------------------------------------------------------------------------


def adamax_step(
    param: FloatArray,
    grad: FloatArray,
    state: State | None = None,
    *,
    lr: float = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> tuple[FloatArray, State]:
    """One step of torch.optim.Adamax. State: ``step``, ``exp_avg``, ``exp_inf``.

    The infinity norm takes eps INSIDE the max (so u ≥ eps > 0) and has no bias correction::

        g ← −g (maximize);  g ← g + λ·θ
        m ← β₁·m + (1 − β₁)·g
        u ← max(β₂·u, |g| + eps)
        θ ← θ − lr/(1 − β₁ᵗ) · m/u

    See docs/optimizers.md.
    """
    beta1, beta2 = _check_adam_family(lr, betas, eps, weight_decay)
    param, grad = _check_param_and_grad(param, grad)
    buffers = ("exp_avg", "exp_inf")
    if _fresh(state):
        old: State = {"step": 0, **{name: np.zeros_like(param) for name in buffers}}
    else:
        old = dict(state or {})
    _checked_buffers(old, param, buffers)
    step = int(old["step"]) + 1
    grad = _effective_grad(param, grad, weight_decay, maximize)
    beta1 = float(beta1)
    exp_avg = beta1 * old["exp_avg"] + (1.0 - beta1) * grad  # m ← β₁·m + (1 − β₁)·g
    exp_inf = np.maximum(float(beta2) * old["exp_inf"], np.abs(grad) + float(eps))  # u
    clr = float(lr) / (1.0 - beta1**step)  # lr/(1 − β₁ᵗ), in double
    new_param = param - clr * (exp_avg / exp_inf)  # θ ← θ − clr·m/u
    return new_param, {"step": step, "exp_avg": exp_avg, "exp_inf": exp_inf}


# --- NAdam --------------------------------------------------------------------------------------


def _nadam_mu(beta1: float, step: int, momentum_decay: float) -> float:
    """The momentum schedule μₜ = β₁·(1 − ½·0.96^(t·ψ)), ψ = momentum_decay (Dozat 2016)."""
    return beta1 * (1.0 - 0.5 * float(0.96 ** (step * momentum_decay)))


def nadam_step(
    param: FloatArray,
    grad: FloatArray,
    state: State | None = None,
    *,
    lr: float = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> tuple[FloatArray, State]:
    """One step of torch.optim.NAdam. State: ``step``, ``mu_product`` (a float: Πₜ = μ₁⋯μₜ),
    ``exp_avg``, ``exp_avg_sq``.

    Unlike Adam, eps is added to √(v/(1 − β₂ᵗ)) and m is corrected by the μ products::

        g ← −g (maximize);  g ← g + λ·θ,  or θ ← θ·(1 − lr·λ) when decoupled
        μₜ, μₜ₊₁ from the schedule;  Πₜ = Πₜ₋₁·μₜ
        m ← β₁·m + (1 − β₁)·g;  v ← β₂·v + (1 − β₂)·g²
        a = √(v/(1 − β₂ᵗ)) + eps
        θ ← θ − lr·(1 − μₜ)/(1 − Πₜ) · g/a
        θ ← θ − lr·μₜ₊₁/(1 − Πₜ·μₜ₊₁) · m/a

    torch 2.13 keeps ``mu_product`` in a 0-d tensor of torch's DEFAULT dtype (float32 unless
    changed), also for float64 parameters; here it is a Python float (double).

    See docs/optimizers.md.
    """
    beta1, beta2 = _check_adam_family(lr, betas, eps, weight_decay)
    _at_least_zero(momentum_decay, "Invalid momentum_decay value")
    param, grad = _check_param_and_grad(param, grad)
    buffers = ("exp_avg", "exp_avg_sq")
    if _fresh(state):
        old: State = {"step": 0, "mu_product": 1.0, **{n: np.zeros_like(param) for n in buffers}}
    else:
        old = dict(state or {})
    _checked_buffers(old, param, buffers)
    step = int(old["step"]) + 1
    beta1, beta2, lr = float(beta1), float(beta2), float(lr)
    bias_correction2 = 1.0 - beta2**step
    if maximize:
        grad = -grad
    if decoupled_weight_decay:
        param = _decayed(param, lr, weight_decay)
    else:
        grad = _effective_grad(param, grad, weight_decay, maximize=False)
    mu = _nadam_mu(beta1, step, float(momentum_decay))  # μₜ
    mu_next = _nadam_mu(beta1, step + 1, float(momentum_decay))  # μₜ₊₁
    mu_product = float(old["mu_product"]) * mu  # Πₜ
    exp_avg, exp_avg_sq = _moments(old, grad, beta1, beta2)
    denom = np.sqrt(exp_avg_sq / bias_correction2) + float(eps)  # a = √(v/(1 − β₂ᵗ)) + eps
    mu_product_next = mu_product * mu_next  # Πₜ·μₜ₊₁
    param = param + (-lr * (1.0 - mu) / (1.0 - mu_product)) * (grad / denom)
    param = param + (-lr * mu_next / (1.0 - mu_product_next)) * (exp_avg / denom)
    new: State = {"step": step, "mu_product": mu_product, "exp_avg": exp_avg}
    new["exp_avg_sq"] = exp_avg_sq
    return param, new


# --- RAdam --------------------------------------------------------------------------------------


def radam_step(
    param: FloatArray,
    grad: FloatArray,
    state: State | None = None,
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> tuple[FloatArray, State]:
    """One step of torch.optim.RAdam. State: ``step``, ``exp_avg``, ``exp_avg_sq``.

    While the variance estimate is unreliable (ρₜ ≤ 5, the first steps) the step is plain
    bias-corrected momentum; afterwards it is rectified Adam, eps added to the UNcorrected √v::

        g ← −g (maximize);  g ← g + λ·θ,  or θ ← θ·(1 − lr·λ) when decoupled
        m ← β₁·m + (1 − β₁)·g;  v ← β₂·v + (1 − β₂)·g²;  m̂ = m/(1 − β₁ᵗ)
        ρ∞ = 2/(1 − β₂) − 1;  ρₜ = ρ∞ − 2t·β₂ᵗ/(1 − β₂ᵗ)
        ρₜ > 5:  r = √((ρₜ − 4)(ρₜ − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρₜ))
                 θ ← θ − m̂·lr·(√(1 − β₂ᵗ)/(√v + eps))·r
        else:    θ ← θ − m̂·lr

    See docs/optimizers.md.
    """
    beta1, beta2 = _check_adam_family(lr, betas, eps, weight_decay)
    param, grad = _check_param_and_grad(param, grad)
    buffers = ("exp_avg", "exp_avg_sq")
    if _fresh(state):
        old: State = {"step": 0, **{name: np.zeros_like(param) for name in buffers}}
    else:
        old = dict(state or {})
    _checked_buffers(old, param, buffers)
    step = int(old["step"]) + 1
    beta1, beta2, lr = float(beta1), float(beta2), float(lr)
    if maximize:
        grad = -grad
    if decoupled_weight_decay:
        param = _decayed(param, lr, weight_decay)
    else:
        grad = _effective_grad(param, grad, weight_decay, maximize=False)
    exp_avg, exp_avg_sq = _moments(old, grad, beta1, beta2)
    bias_correction1 = 1.0 - beta1**step
    bias_correction2 = 1.0 - beta2**step
    corrected = exp_avg / bias_correction1  # m̂
    rho_inf = 2.0 / (1.0 - beta2) - 1.0  # ρ∞
    rho_t = rho_inf - 2.0 * step * (beta2**step) / bias_correction2  # ρₜ
    if rho_t > 5.0:
        rect = (
            (rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)
        ) ** 0.5
        adaptive_lr = bias_correction2**0.5 / (np.sqrt(exp_avg_sq) + float(eps))
        param = param - corrected * lr * adaptive_lr * rect  # θ ← θ − m̂·lr·(…)·r
    else:
        param = param - corrected * lr  # θ ← θ − m̂·lr
    return param, {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}


# --- the classes: torch.optim's constructors, in-place steps ------------------------------------


def _hyperparameters(arguments: dict[str, Any]) -> dict[str, Any]:
    """A constructor's ``locals()``: its hyperparameters, without self, params and super's cell."""
    return {k: v for k, v in arguments.items() if k not in ("self", "params", "__class__")}


class Optimizer:
    """torch.optim.Optimizer's shape over NumPy arrays: one parameter group, state per array.

    (params[i], state[i]) ← step_function(params[i], grads[i], state[i], **hyperparameters)

    ``step(grads)`` takes one gradient per parameter (None skips it, as torch skips a parameter
    whose ``.grad`` is None), runs the optimizer's pure ``step_function`` and writes the new values
    INTO the parameter arrays, so the arrays a layer holds change. ``state[i]`` is parameter i's
    state dict (torch's ``optimizer.state[p]``), created at its first step.

    See docs/optimizers.md.
    """

    step_function: Callable[..., tuple[FloatArray, State]]

    def __init__(self, params: Iterable[FloatArray], hyperparameters: dict[str, Any]) -> None:
        if isinstance(params, np.ndarray):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of arrays, "
                "but got numpy.ndarray (wrap one array in a list)"
            )
        self.params: list[FloatArray] = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        for index, param in enumerate(self.params):
            check_float_tensor(param, f"params[{index}]")
            if not param.flags.writeable:
                raise ValueError(f"params[{index}] is read-only; the optimizer updates in place")
        self.hyperparameters = hyperparameters
        self.state: list[State] = [{} for _ in self.params]

    def step(self, grads: Sequence[FloatArray | None]) -> None:
        """Update every parameter in place from its gradient (``grads[i]`` for ``params[i]``).

        θ_new, state[i] = step_function(params[i], grads[i], state[i]);  params[i][...] = θ_new

        See docs/optimizers.md.
        """
        if len(grads) != len(self.params):
            raise ValueError(
                f"expected one gradient per parameter ({len(self.params)}), got {len(grads)}"
            )
        for index, (param, grad) in enumerate(zip(self.params, grads, strict=True)):
            if grad is None:
                continue
            new_param, self.state[index] = type(self).step_function(
                param, grad, self.state[index], **self.hyperparameters
            )
            param[...] = new_param  # in place


class SGD(Optimizer):
    """torch.optim.SGD; see :func:`sgd_step`.

    θ ← θ − lr·d,  d = g (μ = 0), b (momentum μ) or g + μ·b (nesterov);  b ← μ·b + (1 − τ)·g, b₁ = g

    See docs/optimizers.md.
    """

    step_function = staticmethod(sgd_step)

    def __init__(
        self,
        params: Iterable[FloatArray],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        _check_sgd(lr, momentum, dampening, weight_decay, nesterov)
        super().__init__(params, _hyperparameters(locals()))


class Adagrad(Optimizer):
    """torch.optim.Adagrad; see :func:`adagrad_step`.

    s ← s + g²;  θ ← θ − lr/(1 + (t − 1)·lr_decay) · g/(√s + eps)

    As torch, the state is created here, in the constructor (the other optimizers create it at a
    parameter's first step).

    See docs/optimizers.md.
    """

    step_function = staticmethod(adagrad_step)

    def __init__(
        self,
        params: Iterable[FloatArray],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        _check_adagrad(lr, lr_decay, weight_decay, initial_accumulator_value, eps)
        super().__init__(params, _hyperparameters(locals()))
        self.state = [adagrad_init(p, initial_accumulator_value) for p in self.params]


class RMSprop(Optimizer):
    """torch.optim.RMSprop; see :func:`rmsprop_step`.

    v ← α·v + (1 − α)·g²;  θ ← θ − lr·g/(√v + eps)   (plus the centered and momentum variants)

    See docs/optimizers.md.
    """

    step_function = staticmethod(rmsprop_step)

    def __init__(
        self,
        params: Iterable[FloatArray],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        _check_rmsprop(lr, alpha, eps, weight_decay, momentum)
        super().__init__(params, _hyperparameters(locals()))


class Adadelta(Optimizer):
    """torch.optim.Adadelta; see :func:`adadelta_step`.

    v ← ρ·v + (1 − ρ)·g²;  δ = √(A + eps)/√(v + eps)·g;  A ← ρ·A + (1 − ρ)·δ²;  θ ← θ − lr·δ

    See docs/optimizers.md.
    """

    step_function = staticmethod(adadelta_step)

    def __init__(
        self,
        params: Iterable[FloatArray],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
    ) -> None:
        _check_adadelta(lr, rho, eps, weight_decay)
        super().__init__(params, _hyperparameters(locals()))


class Adam(Optimizer):
    """torch.optim.Adam; see :func:`adam_step`.

    m ← β₁·m + (1 − β₁)·g;  v ← β₂·v + (1 − β₂)·g²;  θ ← θ − lr/(1 − β₁ᵗ) · m/(√v/√(1 − β₂ᵗ) + eps)

    See docs/optimizers.md.
    """

    step_function: Callable[..., tuple[FloatArray, State]] = staticmethod(adam_step)

    def __init__(
        self,
        params: Iterable[FloatArray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        _check_adam_betas_are_floats(_check_adam_family(lr, betas, eps, weight_decay))
        super().__init__(params, _hyperparameters(locals()))


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay; see :func:`adamw_step`.

    θ ← θ·(1 − lr·λ), then Adam's step without λ·θ in g; default λ = 1e-2

    As in torch, a subclass of Adam.

    See docs/optimizers.md.
    """

    step_function = staticmethod(adamw_step)

    def __init__(
        self,
        params: Iterable[FloatArray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        _check_adam_betas_are_floats(_check_adam_family(lr, betas, eps, weight_decay))
        Optimizer.__init__(self, params, _hyperparameters(locals()))  # not Adam's constructor


class Adamax(Optimizer):
    """torch.optim.Adamax; see :func:`adamax_step`.

    m ← β₁·m + (1 − β₁)·g;  u ← max(β₂·u, |g| + eps);  θ ← θ − lr/(1 − β₁ᵗ) · m/u

    See docs/optimizers.md.
    """

    step_function = staticmethod(adamax_step)

    def __init__(
        self,
        params: Iterable[FloatArray],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
    ) -> None:
        _check_adam_family(lr, betas, eps, weight_decay)
        super().__init__(params, _hyperparameters(locals()))


class NAdam(Optimizer):
    """torch.optim.NAdam; see :func:`nadam_step`.

    θ ← θ − lr·(1 − μₜ)/(1 − Πₜ) · g/a − lr·μₜ₊₁/(1 − Πₜ·μₜ₊₁) · m/a,   a = √(v/(1 − β₂ᵗ)) + eps

    See docs/optimizers.md.
    """

    step_function = staticmethod(nadam_step)

    def __init__(
        self,
        params: Iterable[FloatArray],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        _check_adam_family(lr, betas, eps, weight_decay)
        _at_least_zero(momentum_decay, "Invalid momentum_decay value")
        super().__init__(params, _hyperparameters(locals()))


class RAdam(Optimizer):
    """torch.optim.RAdam; see :func:`radam_step`.

    θ ← θ − lr·m̂·r·√(1 − β₂ᵗ)/(√v + eps) once ρₜ > 5, else θ ← θ − lr·m̂   (m̂ = m/(1 − β₁ᵗ))

    See docs/optimizers.md.
    """

    step_function = staticmethod(radam_step)

    def __init__(
        self,
        params: Iterable[FloatArray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        _check_adam_family(lr, betas, eps, weight_decay)
        super().__init__(params, _hyperparameters(locals()))
