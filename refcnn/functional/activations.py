"""Pointwise activations, ``torch.nn.functional`` names: forward and explicit backward per op.

Every activation maps each element on its own, ``out[i] = f(x[i])``, so its backward is the
one-variable chain rule::

    grad_x[i] = grad_out[i] · f'(x[i])

Each ``<name>_backward(grad_out, x, **params)`` takes the INPUT ``x`` (nothing is cached) and
returns ``grad_x`` itself, an array shaped like ``x`` (not a tuple). Arrays of any shape are
accepted; float32 in gives float32 out.

Where f has a kink, f' does not exist there and torch returns one fixed subgradient; refcnn
returns the same one (checked against torch 2.13): relu, relu6, hardtanh, hardsigmoid, threshold
and the shrinks give 0 exactly at their kinks (the flat or open side), leaky_relu gives its
negative slope at 0, elu/selu/celu take the x ≤ 0 branch at 0, hardswish gives 0 at −3 and 1 at
3, softplus uses log1p(exp(β·x))/β (not x) when β·x equals the threshold exactly.

Numerically stable forms (no intermediate overflow, hence no NumPy warning, for finite results)::

    σ(x)        = 1 / (1 + e)  for x ≥ 0,   e / (1 + e)  for x < 0,     e = exp(−|x|) ≤ 1
    softplus(z) = max(z, 0) + log1p(exp(−|z|))
    logsigmoid  = −softplus(−x) = min(x, 0) − log1p(exp(−|x|))
    Φ(x)        = erfc(−x / √2) / 2                          (no cancellation for x ≪ 0)

The derivatives, step by step and doctested: docs/activations.md.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from refcnn.geometry import FloatArray, check_float_tensor, check_grad_out

# SELU's constants (Klambauer et al. 2017), as torch defines them.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
# GELU's constants: 1/√2 for Φ, 1/√(2π) for the normal density φ, and the tanh approximation's
# √(2/π) and 0.044715.
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_TANH_BETA = math.sqrt(2.0 / math.pi)
_GELU_TANH_KAPPA = 0.044715


# --- validation ---------------------------------------------------------------------------------


def _check_upstream(grad_out: object, x: object) -> tuple[FloatArray, FloatArray]:
    """``grad_out`` is shaped like the output (like ``x``) and has x's dtype."""
    x = check_float_tensor(x, "x")
    return check_grad_out(grad_out, x, "the activation's output"), x


def _real(value: object, name: str) -> float:
    """A hyperparameter as a Python float (never np.float64: that would upcast float32 arrays)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, got {name}={value!r}")
    result = float(value)
    if math.isnan(result):
        raise ValueError(f"{name} must not be NaN, got {name}={value!r}")
    return result


# --- shared pieces ------------------------------------------------------------------------------


def _sigmoid_pair(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """σ(x) and σ(−x) = 1 − σ(x), from one exponential, without overflow or cancellation.

    With e = exp(−|x|) ≤ 1 and r = 1 / (1 + e): for x ≥ 0, σ(x) = r and σ(−x) = e·r; for x < 0
    the two swap. Neither is computed as 1 − (something close to 1).
    """
    e = np.exp(-np.abs(x))
    r = 1 / (1 + e)
    er = e * r
    nonnegative = x >= 0
    return np.where(nonnegative, r, er), np.where(nonnegative, er, r)


def _softplus_stable(z: FloatArray) -> FloatArray:
    """log(1 + exp(z)) = max(z, 0) + log1p(exp(−|z|)): exp never sees a positive argument."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


_erfc = np.vectorize(math.erfc, otypes=[np.float64])  # NumPy has no erf/erfc ufunc


def _normal_cdf(x: FloatArray) -> FloatArray:
    """Φ(x) = erfc(−x/√2) / 2, evaluated by Python's libm erfc and rounded to x's dtype."""
    complement: FloatArray = _erfc(-x * _SQRT_HALF)  # float64
    return (0.5 * complement).astype(x.dtype)


def _normal_pdf(x: FloatArray) -> FloatArray:
    """φ(x) = exp(−x²/2) / √(2π)."""
    return np.exp(-0.5 * (x * x)) * _INV_SQRT_2PI


# --- relu family: piecewise linear --------------------------------------------------------------


def relu(x: FloatArray) -> FloatArray:
    """The rectified linear unit, elementwise.

    relu(x) = max(x, 0)

    See docs/activations.md.
    """
    return np.maximum(check_float_tensor(x, "x"), 0)


def relu_backward(grad_out: FloatArray, x: FloatArray) -> FloatArray:
    """∂L/∂x of :func:`relu`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = 1 for x > 0, else 0 (torch: 0 at x = 0)

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    return np.where(x > 0, grad_out, 0)


def relu6(x: FloatArray) -> FloatArray:
    """ReLU capped at 6, elementwise.

    relu6(x) = min(max(x, 0), 6)

    See docs/activations.md.
    """
    return np.clip(check_float_tensor(x, "x"), 0, 6)


def relu6_backward(grad_out: FloatArray, x: FloatArray) -> FloatArray:
    """∂L/∂x of :func:`relu6`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = 1 for 0 < x < 6, else 0 (torch: 0 at both kinks)

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    return np.where((x > 0) & (x < 6), grad_out, 0)


def leaky_relu(x: FloatArray, negative_slope: float = 0.01) -> FloatArray:
    """ReLU with a small slope for negative inputs, elementwise.

    leaky_relu(x) = x for x > 0, negative_slope·x otherwise

    See docs/activations.md.
    """
    x, slope = check_float_tensor(x, "x"), _real(negative_slope, "negative_slope")
    return np.where(x > 0, x, x * slope)


def leaky_relu_backward(
    grad_out: FloatArray, x: FloatArray, negative_slope: float = 0.01
) -> FloatArray:
    """∂L/∂x of :func:`leaky_relu`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = 1 for x > 0, else negative_slope (torch: the slope at x = 0)

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    slope = _real(negative_slope, "negative_slope")
    return np.where(x > 0, grad_out, grad_out * slope)


def hardtanh(x: FloatArray, min_val: float = -1.0, max_val: float = 1.0) -> FloatArray:
    """x clipped to [min_val, max_val], elementwise.

    hardtanh(x) = min(max(x, min_val), max_val)

    See docs/activations.md.
    """
    x = check_float_tensor(x, "x")
    low, high = _hardtanh_range(min_val, max_val)
    return np.clip(x, low, high)


def hardtanh_backward(
    grad_out: FloatArray, x: FloatArray, min_val: float = -1.0, max_val: float = 1.0
) -> FloatArray:
    """∂L/∂x of :func:`hardtanh`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = 1 for min_val < x < max_val, else 0 (torch: 0 at both kinks)

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    low, high = _hardtanh_range(min_val, max_val)
    return np.where((x > low) & (x < high), grad_out, 0)


def _hardtanh_range(min_val: object, max_val: object) -> tuple[float, float]:
    low, high = _real(min_val, "min_val"), _real(max_val, "max_val")
    if low > high:
        raise ValueError(
            f"min_val cannot be greater than max_val (as torch), got min_val={min_val!r}, "
            f"max_val={max_val!r}"
        )
    return low, high


def threshold(x: FloatArray, threshold: float, value: float) -> FloatArray:
    """x above a threshold, a constant below, elementwise.

    threshold(x) = x for x > threshold, else value (torch: value at x = threshold)

    See docs/activations.md.
    """
    x = check_float_tensor(x, "x")
    level, replacement = _real(threshold, "threshold"), _real(value, "value")
    return np.where(x > level, x, replacement)


def threshold_backward(
    grad_out: FloatArray, x: FloatArray, threshold: float, value: float
) -> FloatArray:
    """∂L/∂x of :func:`threshold`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = 1 for x > threshold, else 0 (the constant ``value`` has no slope)

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    level = _real(threshold, "threshold")
    _real(value, "value")
    return np.where(x > level, grad_out, 0)


def hardshrink(x: FloatArray, lambd: float = 0.5) -> FloatArray:
    """x where it is far from 0, else 0, elementwise.

    hardshrink(x) = x for |x| > lambd, else 0

    torch: 0 at x = ±lambd; a negative lambd keeps every x.

    See docs/activations.md.
    """
    x, bound = check_float_tensor(x, "x"), _real(lambd, "lambd")
    return np.where((x > bound) | (x < -bound), x, 0)


def hardshrink_backward(grad_out: FloatArray, x: FloatArray, lambd: float = 0.5) -> FloatArray:
    """∂L/∂x of :func:`hardshrink`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = 1 for |x| > lambd, else 0

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    bound = _real(lambd, "lambd")
    return np.where((x > bound) | (x < -bound), grad_out, 0)


def softshrink(x: FloatArray, lambd: float = 0.5) -> FloatArray:
    """x shrunk towards 0 by lambd (soft thresholding), elementwise.

    softshrink(x) = x − lambd for x > lambd, x + lambd for x < −lambd, else 0

    See docs/activations.md.
    """
    x, bound = check_float_tensor(x, "x"), _shrink_lambda(lambd)
    return np.where(x > bound, x - bound, np.where(x < -bound, x + bound, 0))


def softshrink_backward(grad_out: FloatArray, x: FloatArray, lambd: float = 0.5) -> FloatArray:
    """∂L/∂x of :func:`softshrink`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = 1 for |x| > lambd, else 0 (torch: 0 at x = ±lambd)

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    bound = _shrink_lambda(lambd)
    return np.where((x > bound) | (x < -bound), grad_out, 0)


def _shrink_lambda(lambd: object) -> float:
    bound = _real(lambd, "lambd")
    if bound < 0:
        raise ValueError(f"lambd must be >= 0 for softshrink (as torch), got lambd={lambd!r}")
    return bound


# --- the "hard" approximations: piecewise polynomials -------------------------------------------


def hardsigmoid(x: FloatArray) -> FloatArray:
    """A piecewise-linear sigmoid, elementwise.

    hardsigmoid(x) = min(max(x + 3, 0), 6) / 6: 0 below −3, 1 above 3, x/6 + 1/2 between

    See docs/activations.md.
    """
    return np.clip(check_float_tensor(x, "x") + 3, 0, 6) / 6


def hardsigmoid_backward(grad_out: FloatArray, x: FloatArray) -> FloatArray:
    """∂L/∂x of :func:`hardsigmoid`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = 1/6 for −3 < x < 3, else 0 (torch: 0 at both kinks)

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    return np.where((x > -3) & (x < 3), grad_out / 6, 0)


def hardswish(x: FloatArray) -> FloatArray:
    """x times its hard sigmoid, elementwise.

    hardswish(x) = x · hardsigmoid(x) = x · min(max(x + 3, 0), 6) / 6

    See docs/activations.md.
    """
    x = check_float_tensor(x, "x")
    return x * np.clip(x + 3, 0, 6) / 6


def hardswish_backward(grad_out: FloatArray, x: FloatArray) -> FloatArray:
    """∂L/∂x of :func:`hardswish`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = 0 for x ≤ −3, x/3 + 1/2 for −3 < x < 3, 1 for x ≥ 3 (torch: 0 at −3, 1 at 3)

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    inside = grad_out * (x / 3 + 0.5)  # d/dx [x·(x + 3)/6] = (2x + 3)/6
    return np.where(x <= -3, 0, np.where(x < 3, inside, grad_out))


# --- exponential family: elu, selu, celu --------------------------------------------------------


def elu(x: FloatArray, alpha: float = 1.0) -> FloatArray:
    """The exponential linear unit, elementwise.

    elu(x) = x for x > 0, alpha·(exp(x) − 1) for x ≤ 0 (expm1: accurate near 0)

    See docs/activations.md.
    """
    x, a = check_float_tensor(x, "x"), _real(alpha, "alpha")
    return np.where(
        x > 0, x, a * np.expm1(np.minimum(x, 0))
    )  # min: no overflow in the unused branch


def elu_backward(grad_out: FloatArray, x: FloatArray, alpha: float = 1.0) -> FloatArray:
    """∂L/∂x of :func:`elu`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = 1 for x > 0, alpha·exp(x) for x ≤ 0 (torch: alpha at x = 0)

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    a = _real(alpha, "alpha")
    return np.where(x > 0, grad_out, grad_out * (a * np.exp(np.minimum(x, 0))))


def selu(x: FloatArray) -> FloatArray:
    """The scaled exponential linear unit, elementwise.

    selu(x) = scale·x for x > 0, scale·alpha·(exp(x) − 1) for x ≤ 0

    scale = SELU_SCALE and alpha = SELU_ALPHA, torch's constants.

    See docs/activations.md.
    """
    x = check_float_tensor(x, "x")
    return np.where(x > 0, SELU_SCALE * x, (SELU_SCALE * SELU_ALPHA) * np.expm1(np.minimum(x, 0)))


def selu_backward(grad_out: FloatArray, x: FloatArray) -> FloatArray:
    """∂L/∂x of :func:`selu`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = scale for x > 0, scale·alpha·exp(x) for x ≤ 0 (torch: scale·alpha at 0)

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    negative = grad_out * ((SELU_SCALE * SELU_ALPHA) * np.exp(np.minimum(x, 0)))
    return np.where(x > 0, grad_out * SELU_SCALE, negative)


def celu(x: FloatArray, alpha: float = 1.0) -> FloatArray:
    """The continuously differentiable ELU, elementwise.

    celu(x) = x for x > 0, alpha·(exp(x/alpha) − 1) for x ≤ 0; alpha ≠ 0

    See docs/activations.md.
    """
    x, a = check_float_tensor(x, "x"), _celu_alpha(alpha)
    return np.where(x > 0, x, a * np.expm1(np.minimum(x, 0) / a))


def celu_backward(grad_out: FloatArray, x: FloatArray, alpha: float = 1.0) -> FloatArray:
    """∂L/∂x of :func:`celu`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = 1 for x > 0, exp(x/alpha) for x ≤ 0 (1 at x = 0 from both sides)

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    a = _celu_alpha(alpha)
    return np.where(x > 0, grad_out, grad_out * np.exp(np.minimum(x, 0) / a))


def _celu_alpha(alpha: object) -> float:
    a = _real(alpha, "alpha")
    if a == 0:
        raise ValueError(f"alpha must not be 0 for celu (as torch), got alpha={alpha!r}")
    return a


# --- sigmoid family -----------------------------------------------------------------------------


def sigmoid(x: FloatArray) -> FloatArray:
    """The logistic sigmoid, elementwise.

    σ(x) = 1 / (1 + exp(−x))

    Computed in the overflow-free form of :func:`_sigmoid_pair`.

    See docs/activations.md.
    """
    return _sigmoid_pair(check_float_tensor(x, "x"))[0]


def sigmoid_backward(grad_out: FloatArray, x: FloatArray) -> FloatArray:
    """∂L/∂x of :func:`sigmoid`: grad_x = grad_out · f'(x), elementwise.

    σ'(x) = σ(x)·(1 − σ(x)) = σ(x)·σ(−x)

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    positive, negative = _sigmoid_pair(x)
    return grad_out * (positive * negative)


def logsigmoid(x: FloatArray) -> FloatArray:
    """The log of the sigmoid, elementwise.

    logsigmoid(x) = log σ(x) = −softplus(−x) = min(x, 0) − log1p(exp(−|x|))

    See docs/activations.md.
    """
    x = check_float_tensor(x, "x")
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def logsigmoid_backward(grad_out: FloatArray, x: FloatArray) -> FloatArray:
    """∂L/∂x of :func:`logsigmoid`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = σ'(x)/σ(x) = 1 − σ(x) = σ(−x)

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    return grad_out * _sigmoid_pair(x)[1]


def silu(x: FloatArray) -> FloatArray:
    """The sigmoid linear unit (also called swish), elementwise.

    silu(x) = x·σ(x)

    See docs/activations.md.
    """
    x = check_float_tensor(x, "x")
    return x * _sigmoid_pair(x)[0]


def silu_backward(grad_out: FloatArray, x: FloatArray) -> FloatArray:
    """∂L/∂x of :func:`silu`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = σ(x) + x·σ(x)·(1 − σ(x)) = σ(x)·(1 + x·σ(−x))

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    positive, negative = _sigmoid_pair(x)
    return grad_out * positive * (1 + x * negative)


def softplus(x: FloatArray, beta: float = 1.0, threshold: float = 20.0) -> FloatArray:
    """A smooth ReLU, elementwise.

    softplus(x) = log(1 + exp(β·x)) / β, and x itself where β·x > threshold (as torch)

    beta may be negative (torch allows it); beta = 0 is rejected (torch returns inf).

    See docs/activations.md.
    """
    x = check_float_tensor(x, "x")
    b, level = _softplus_beta(beta), _real(threshold, "threshold")
    z = x * b
    return np.where(z > level, x, _softplus_stable(z) / b)


def softplus_backward(
    grad_out: FloatArray, x: FloatArray, beta: float = 1.0, threshold: float = 20.0
) -> FloatArray:
    """∂L/∂x of :func:`softplus`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = σ(β·x), and 1 where β·x > threshold (the linear branch)

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    b, level = _softplus_beta(beta), _real(threshold, "threshold")
    z = x * b
    return np.where(z > level, grad_out, grad_out * _sigmoid_pair(z)[0])


def _softplus_beta(beta: object) -> float:
    b = _real(beta, "beta")
    if b == 0:
        raise ValueError(f"beta must not be 0 (softplus divides by it), got beta={beta!r}")
    return b


def mish(x: FloatArray) -> FloatArray:
    """Mish, elementwise.

    mish(x) = x·tanh(softplus(x))

    See docs/activations.md.
    """
    x = check_float_tensor(x, "x")
    return x * np.tanh(_softplus_stable(x))


def mish_backward(grad_out: FloatArray, x: FloatArray) -> FloatArray:
    """∂L/∂x of :func:`mish`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = t + x·σ(x)·(1 − t²) with t = tanh(softplus(x)), since softplus' = σ

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    t = np.tanh(_softplus_stable(x))
    grad_x: FloatArray = grad_out * (t + x * _sigmoid_pair(x)[0] * (1 - t * t))
    return grad_x


# --- tanh family --------------------------------------------------------------------------------


def tanh(x: FloatArray) -> FloatArray:
    """The hyperbolic tangent, elementwise.

    tanh(x) = (exp(x) − exp(−x)) / (exp(x) + exp(−x))

    See docs/activations.md.
    """
    return np.tanh(check_float_tensor(x, "x"))


def tanh_backward(grad_out: FloatArray, x: FloatArray) -> FloatArray:
    """∂L/∂x of :func:`tanh`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = 1 − tanh²(x)

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    t = np.tanh(x)
    grad_x: FloatArray = grad_out * (1 - t * t)
    return grad_x


def tanhshrink(x: FloatArray) -> FloatArray:
    """x minus its tanh, elementwise.

    tanhshrink(x) = x − tanh(x)

    See docs/activations.md.
    """
    x = check_float_tensor(x, "x")
    return x - np.tanh(x)


def tanhshrink_backward(grad_out: FloatArray, x: FloatArray) -> FloatArray:
    """∂L/∂x of :func:`tanhshrink`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = 1 − (1 − tanh²(x)) = tanh²(x)

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    t = np.tanh(x)
    grad_x: FloatArray = grad_out * (t * t)
    return grad_x


def softsign(x: FloatArray) -> FloatArray:
    """A rational sigmoid-shaped function of range (−1, 1), elementwise.

    softsign(x) = x / (1 + |x|)

    See docs/activations.md.
    """
    x = check_float_tensor(x, "x")
    denominator: FloatArray = 1 + np.abs(x)
    return x / denominator


def softsign_backward(grad_out: FloatArray, x: FloatArray) -> FloatArray:
    """∂L/∂x of :func:`softsign`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = ((1 + |x|) − x·sign(x)) / (1 + |x|)² = 1 / (1 + |x|)²

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    denominator = 1 + np.abs(x)
    grad_x: FloatArray = grad_out / (denominator * denominator)
    return grad_x


# --- gelu ---------------------------------------------------------------------------------------


def gelu(x: FloatArray, approximate: str = "none") -> FloatArray:
    """The Gaussian error linear unit, elementwise.

    gelu(x) = x·Φ(x) (Φ the standard normal CDF), or with approximate='tanh'::

        0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))

    See docs/activations.md.
    """
    x = check_float_tensor(x, "x")
    if _gelu_approximation(approximate) == "tanh":
        inner = _GELU_TANH_BETA * (x + _GELU_TANH_KAPPA * (x * x * x))
        t: FloatArray = np.tanh(inner)
        return 0.5 * x * (1 + t)
    return x * _normal_cdf(x)


def gelu_backward(grad_out: FloatArray, x: FloatArray, approximate: str = "none") -> FloatArray:
    """∂L/∂x of :func:`gelu`: grad_x = grad_out · f'(x), elementwise.

    f'(x) = Φ(x) + x·φ(x), φ the normal density; for 'tanh', with t = tanh(inner)::

        f'(x) = 0.5·(1 + t) + 0.5·x·(1 − t²)·inner',   inner' = √(2/π)·(1 + 3·0.044715·x²)

    See docs/activations.md.
    """
    grad_out, x = _check_upstream(grad_out, x)
    if _gelu_approximation(approximate) == "tanh":
        square = x * x
        t = np.tanh(_GELU_TANH_BETA * (x + _GELU_TANH_KAPPA * (square * x)))
        inner_slope = _GELU_TANH_BETA * (1 + (3 * _GELU_TANH_KAPPA) * square)
        grad_x: FloatArray = grad_out * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * inner_slope)
        return grad_x
    return grad_out * (_normal_cdf(x) + x * _normal_pdf(x))


def _gelu_approximation(approximate: object) -> str:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh' (as torch), got {approximate!r}")
    return str(approximate)
