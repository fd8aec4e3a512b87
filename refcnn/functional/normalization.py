"""Normalisation layers (batch, layer and group norm): forward, explicit backward, torch's rules.

All three standardise ``x`` over some axes, then apply a learned affine map. Over one group of
``n`` values that share their statistics::

    μ  = mean(x)
    σ² = mean((x − μ)²)                 BIASED: divided by n, not n − 1 (as torch normalises)
    r  = 1 / sqrt(σ² + eps)             eps keeps r finite when σ² = 0
    x̂  = (x − μ)·r
    y  = weight·x̂ + bias               weight = 1 and bias = 0 when None

They differ only in which values form a group and what weight/bias are indexed by:

    batch_norm  x (N, C, *)   one group per channel: the N·(H·W…) values of channel c   weight (C,)
    layer_norm  x (*, D…)     one group per sample: the trailing normalized_shape values   weight D…
    group_norm  x (N, C, *)   one group per (sample, group of C/G channels)              weight (C,)

Backward, for the upstream gradient ``g = ∂L/∂y`` (derived step by step, with examples, in
docs/normalization.md). With ``ĝ = g·weight = ∂L/∂x̂`` and means over the group::

    ∂L/∂x      = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))
    ∂L/∂weight = Σ g·x̂          summed over every axis weight is broadcast along
    ∂L/∂bias   = Σ g

The two subtracted terms are the paths through μ and through σ²: x̂ is centred and scaled by the
group's own statistics, so moving one x moves every x̂ of its group. Batch norm in evaluation mode
uses the RUNNING statistics instead, which are constants, so only the first term survives:
``∂L/∂x = ĝ·r``.

Nothing here mutates its inputs. torch's ``F.batch_norm(training=True)`` also updates the running
buffers in place; refcnn returns the updated buffers from :func:`batch_norm_running_stats`.
"""

from __future__ import annotations

import numbers

import numpy as np

from refcnn.geometry import (
    FloatArray,
    check_float_array,
    check_float_tensor,
    check_grad_out,
    check_same_dtype,
)

Axes = tuple[int, ...]

# --- the shared core: standardise over some axes, and its backward -----------------------------


def _inverse_std(variance: FloatArray, eps: float) -> FloatArray:
    """r = 1 / sqrt(σ² + eps)."""
    inv_std: FloatArray = 1.0 / np.sqrt(variance + eps)
    return inv_std


def _standardize(x: FloatArray, axes: Axes, eps: float) -> tuple[FloatArray, FloatArray]:
    """``(x̂, r)``: x̂ = (x − μ)·r with the statistics of ``x`` over ``axes`` (kept as size 1)."""
    mean = x.mean(axis=axes, keepdims=True)  # μ
    centred = x - mean  # x − μ
    variance = (centred * centred).mean(axis=axes, keepdims=True)  # σ², biased: Σ/n
    inv_std = _inverse_std(variance, eps)  # r
    return centred * inv_std, inv_std


def _standardize_backward(
    grad_x_hat: FloatArray, x_hat: FloatArray, inv_std: FloatArray, axes: Axes
) -> FloatArray:
    """∂L/∂x = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) for ĝ = ∂L/∂x̂, means over ``axes``."""
    mean_grad = grad_x_hat.mean(axis=axes, keepdims=True)  # the path through μ
    mean_grad_x_hat = (grad_x_hat * x_hat).mean(axis=axes, keepdims=True)  # the path through σ²
    grad_x: FloatArray = inv_std * (grad_x_hat - mean_grad - x_hat * mean_grad_x_hat)
    return grad_x


def _affine(
    x_hat: FloatArray, weight: FloatArray | None, bias: FloatArray | None, shape: tuple[int, ...]
) -> FloatArray:
    """y = weight·x̂ + bias, weight and bias reshaped to ``shape`` to broadcast against x̂."""
    out = x_hat if weight is None else x_hat * weight.reshape(shape)
    return out if bias is None else out + bias.reshape(shape)


def _affine_backward(
    grad_out: FloatArray,
    x_hat: FloatArray,
    weight: FloatArray | None,
    bias: FloatArray | None,
    shape: tuple[int, ...],
    broadcast_axes: Axes,
) -> tuple[FloatArray, FloatArray | None, FloatArray | None]:
    """``(ĝ, ∂L/∂weight, ∂L/∂bias)`` of y = weight·x̂ + bias.

    weight and bias were broadcast along ``broadcast_axes`` (every axis but the channel for batch
    and group norm, the sample axes for layer norm), so their gradients sum over them.
    """
    grad_x_hat = grad_out if weight is None else grad_out * weight.reshape(shape)  # ĝ = g·weight
    grad_weight = None if weight is None else (grad_out * x_hat).sum(axis=broadcast_axes)
    grad_bias = None if bias is None else grad_out.sum(axis=broadcast_axes)
    return grad_x_hat, grad_weight, grad_bias


# --- validation ---------------------------------------------------------------------------------


def _check_input(x: object, minimum_ndim: int, layout: str) -> FloatArray:
    """``x`` is a floating NumPy array with at least ``minimum_ndim`` dimensions."""
    x = check_float_tensor(x, "x")
    if x.ndim < minimum_ndim:
        raise ValueError(f"x must be at least {minimum_ndim}-D {layout}, got x.shape={x.shape}")
    return x


def _check_channel_vector(value: object, name: str, x: FloatArray) -> None:
    """A per-channel vector of shape (C,) with x's dtype (None allowed)."""
    if value is None:
        return
    check_float_array(value, name, 1, "(C,)")
    check_same_dtype("x", x, **{name: value})
    assert isinstance(value, np.ndarray)
    if value.shape != (x.shape[1],):
        raise ValueError(
            f"{name}.shape={value.shape}, but x.shape={x.shape} has C={x.shape[1]} channels"
        )


def _check_eps(eps: object, *, positive: bool, why: str = "") -> float:
    """eps as a Python float (so it never upcasts float32), > 0 or ≥ 0."""
    if not isinstance(eps, numbers.Real) or isinstance(eps, bool):
        raise TypeError(f"eps must be a real number, got eps={eps!r}")
    value = float(eps)
    if positive and not value > 0:
        raise ValueError(f"eps must be positive{why}, got eps={eps!r}")
    if not value >= 0:
        raise ValueError(f"eps must be non-negative{why}, got eps={eps!r}")
    return value


def _check_momentum(momentum: object) -> float:
    """momentum as a Python float in [0, 1] (torch takes any float; outside [0, 1] the running
    average is no average, so refcnn refuses it)."""
    if not isinstance(momentum, numbers.Real) or isinstance(momentum, bool):
        raise TypeError(f"momentum must be a real number, got momentum={momentum!r}")
    value = float(momentum)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got momentum={momentum!r}")
    return value


# --- batch norm ---------------------------------------------------------------------------------


def _batch_norm_axes(
    x: object,
    running_mean: object,
    running_var: object,
    weight: object,
    bias: object,
    training: object,
    momentum: object,
    eps: object,
) -> tuple[Axes, tuple[int, ...], float]:
    """Validate (torch's rules); return the statistics' axes, the channel shape and eps."""
    x = _check_input(x, 2, "(N, C, *)")
    _check_momentum(momentum)
    if not isinstance(training, bool | np.bool_):
        raise TypeError(f"training must be a bool, got training={training!r}")
    if (running_mean is None) != (running_var is None):
        raise ValueError(
            "running_mean and running_var must both be None or both be arrays, got "
            f"running_mean={type(running_mean).__name__}, running_var={type(running_var).__name__}"
        )
    if not training and running_mean is None:
        raise ValueError("running_mean and running_var must be given in evaluation mode")
    for name, value in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        _check_channel_vector(value, name, x)
    axes = (0, *range(2, x.ndim))  # every axis but the channel axis
    per_channel = x.size // x.shape[1]
    if training and per_channel == 1:
        raise ValueError(
            "Expected more than 1 value per channel when training (as torch), got "
            f"x.shape={x.shape}"
        )
    if training:
        eps_value = _check_eps(eps, positive=True, why=" in training (as torch)")
    else:
        eps_value = _check_eps(eps, positive=False, why=" (as torch)")
    channel_shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    return axes, channel_shape, eps_value


def _batch_norm_standardize(
    x: FloatArray,
    running_mean: FloatArray | None,
    running_var: FloatArray | None,
    axes: Axes,
    shape: tuple[int, ...],
    training: bool,
    eps: float,
) -> tuple[FloatArray, FloatArray]:
    """(x̂, r): x standardised with the batch's statistics (training) or the running ones."""
    if training:
        return _standardize(x, axes, eps)
    assert running_mean is not None and running_var is not None
    inv_std = _inverse_std(running_var.reshape(shape), eps)  # r from the running variance
    return (x - running_mean.reshape(shape)) * inv_std, inv_std


def batch_norm(
    x: FloatArray,
    running_mean: FloatArray | None,
    running_var: FloatArray | None,
    weight: FloatArray | None = None,
    bias: FloatArray | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> FloatArray:
    """``torch.nn.functional.batch_norm``'s output for x (N, C), (N, C, L), (N, C, H, W), ….

    y = weight·(x − μ)/√(σ² + eps) + bias per channel; training: μ, σ² of the batch over
    (N, *), σ² BIASED (Σ/n); evaluation: μ = running_mean, σ² = running_var.

    Same signature as torch (so a positional call ports unchanged), but nothing is mutated:
    ``momentum`` (checked here) only shapes the running buffers, which
    :func:`batch_norm_running_stats` returns.

    See docs/normalization.md.
    """
    axes, shape, eps = _batch_norm_axes(
        x, running_mean, running_var, weight, bias, training, momentum, eps
    )
    x_hat, _ = _batch_norm_standardize(x, running_mean, running_var, axes, shape, training, eps)
    return _affine(x_hat, weight, bias, shape)


def batch_norm_backward(
    grad_out: FloatArray,
    x: FloatArray,
    running_mean: FloatArray | None,
    running_var: FloatArray | None,
    weight: FloatArray | None = None,
    bias: FloatArray | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[FloatArray, FloatArray | None, FloatArray | None]:
    """``(grad_x, grad_weight, grad_bias)`` of :func:`batch_norm`; None for an absent weight/bias.

    training: dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)), ĝ = g·weight, r = 1/√(σ² + eps);
    evaluation: dx = g·weight·r;   dweight = Σ g·x̂,  dbias = Σ g  (sums over (N, *)).

    In evaluation the running statistics are constants: only the direct path through x is left.
    The running buffers get no gradient.

    See docs/normalization.md.
    """
    axes, shape, eps = _batch_norm_axes(
        x, running_mean, running_var, weight, bias, training, momentum, eps
    )
    grad_out = check_grad_out(grad_out, x, "the output")
    x_hat, inv_std = _batch_norm_standardize(
        x, running_mean, running_var, axes, shape, training, eps
    )
    grad_x_hat, grad_weight, grad_bias = _affine_backward(
        grad_out, x_hat, weight, bias, shape, axes
    )
    if training:
        grad_x = _standardize_backward(grad_x_hat, x_hat, inv_std, axes)
    else:
        grad_x = grad_x_hat * inv_std  # μ and σ² are constants: only the direct path
    return grad_x, grad_weight, grad_bias


def batch_norm_running_stats(
    x: FloatArray,
    running_mean: FloatArray,
    running_var: FloatArray,
    momentum: float = 0.1,
) -> tuple[FloatArray, FloatArray]:
    """The running statistics after one training step, as torch writes them into its buffers.

    With n = N·(H·W…) values per channel, μ their mean and s² their UNBIASED variance::

        running_mean ← (1 − momentum)·running_mean + momentum·μ
        running_var  ← (1 − momentum)·running_var  + momentum·s²,    s² = Σ(x − μ)² / (n − 1)

    The output is normalised with the biased variance, the running variance tracks the unbiased
    one: a classic mismatch. torch's momentum 0.1 is the weight of the NEW batch (the book's
    BatchNormalization calls 0.9 momentum: the weight of the OLD value). Returns new arrays.

    See docs/normalization.md.
    """
    x = _check_input(x, 2, "(N, C, *)")
    for name, value in (("running_mean", running_mean), ("running_var", running_var)):
        if value is None:
            raise ValueError(f"{name} must be an array of shape (C,), got None")
        _check_channel_vector(value, name, x)
    momentum = _check_momentum(momentum)  # a Python float never upcasts float32
    axes = (0, *range(2, x.ndim))
    n = x.size // x.shape[1]
    if n == 1:
        raise ValueError(
            "Expected more than 1 value per channel when training (as torch), got "
            f"x.shape={x.shape}"
        )
    mean = x.mean(axis=axes)  # μ per channel
    centred = x - mean.reshape((1, x.shape[1]) + (1,) * (x.ndim - 2))
    unbiased_var = (centred * centred).sum(axis=axes) / (n - 1)  # s² = Σ(x − μ)² / (n − 1)
    new_mean = (1.0 - momentum) * running_mean + momentum * mean
    new_var = (1.0 - momentum) * running_var + momentum * unbiased_var
    return new_mean, new_var


# --- layer norm ---------------------------------------------------------------------------------


def _layer_norm_axes(
    x: object, normalized_shape: object, weight: object, bias: object, eps: object
) -> tuple[Axes, Axes, float]:
    """Validate; return (the normalised trailing axes, the leading axes, eps)."""
    if isinstance(normalized_shape, numbers.Integral) and not isinstance(normalized_shape, bool):
        normalized_shape = (int(normalized_shape),)
    if not isinstance(normalized_shape, tuple | list) or not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in normalized_shape
    ):
        raise TypeError(
            f"normalized_shape must be an int or a tuple of ints, got {normalized_shape!r}"
        )
    shape = tuple(int(d) for d in normalized_shape)
    if not shape:
        raise ValueError("normalized_shape must have at least one dimension, got ()")
    x = _check_input(x, len(shape), f"(*, {', '.join(map(str, shape))})")
    if x.shape[x.ndim - len(shape) :] != shape:
        raise ValueError(
            f"normalized_shape={shape} must equal the trailing dimensions of x, got "
            f"x.shape={x.shape}"
        )
    for name, value in (("weight", weight), ("bias", bias)):
        if value is None:
            continue
        check_float_array(value, name, len(shape), f"normalized_shape={shape}")
        check_same_dtype("x", x, **{name: value})
        assert isinstance(value, np.ndarray)
        if value.shape != shape:
            raise ValueError(f"{name}.shape={value.shape} must equal normalized_shape={shape}")
    eps_value = _check_eps(eps, positive=False, why=" (torch returns NaN for eps < 0)")
    leading = x.ndim - len(shape)
    return tuple(range(leading, x.ndim)), tuple(range(leading)), eps_value


def layer_norm(
    x: FloatArray,
    normalized_shape: int | tuple[int, ...],
    weight: FloatArray | None = None,
    bias: FloatArray | None = None,
    eps: float = 1e-5,
) -> FloatArray:
    """``torch.nn.functional.layer_norm``: standardise each sample over its trailing dimensions.

    y = weight ⊙ (x − μ)/√(σ² + eps) + bias, μ and σ² (biased) over the trailing
    ``normalized_shape`` dimensions of each sample; weight and bias have shape
    ``normalized_shape`` (an ELEMENTWISE affine map).

    See docs/normalization.md.
    """
    axes, _, eps = _layer_norm_axes(x, normalized_shape, weight, bias, eps)
    x_hat, _ = _standardize(x, axes, eps)
    return _affine(x_hat, weight, bias, x.shape[x.ndim - len(axes) :])


def layer_norm_backward(
    grad_out: FloatArray,
    x: FloatArray,
    normalized_shape: int | tuple[int, ...],
    weight: FloatArray | None = None,
    bias: FloatArray | None = None,
    eps: float = 1e-5,
) -> tuple[FloatArray, FloatArray | None, FloatArray | None]:
    """``(grad_x, grad_weight, grad_bias)`` of :func:`layer_norm`.

    dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)), ĝ = g ⊙ weight, means over each sample's normalised
    dims;  dweight = Σ g ⊙ x̂,  dbias = Σ g, summed over the leading (sample) axes.

    See docs/normalization.md.
    """
    axes, leading, eps = _layer_norm_axes(x, normalized_shape, weight, bias, eps)
    grad_out = check_grad_out(grad_out, x, "the output")
    x_hat, inv_std = _standardize(x, axes, eps)
    shape = x.shape[x.ndim - len(axes) :]
    grad_x_hat, grad_weight, grad_bias = _affine_backward(
        grad_out, x_hat, weight, bias, shape, leading
    )
    return _standardize_backward(grad_x_hat, x_hat, inv_std, axes), grad_weight, grad_bias


# --- group norm ---------------------------------------------------------------------------------


def _group_norm_checks(
    x: object, num_groups: object, weight: object, bias: object, eps: object
) -> tuple[int, float]:
    """Validate (torch's rules); return num_groups and eps."""
    x = _check_input(x, 2, "(N, C, *)")
    if not isinstance(num_groups, numbers.Integral) or isinstance(num_groups, bool):
        raise TypeError(f"num_groups must be an int, got num_groups={num_groups!r}")
    groups = int(num_groups)
    if groups < 1:
        raise ValueError(f"num_groups must be >= 1, got num_groups={groups}")
    if x.shape[1] % groups != 0:
        raise ValueError(
            f"the channels of x (C={x.shape[1]}, x.shape={x.shape}) must be divisible by "
            f"num_groups={groups}"
        )
    for name, value in (("weight", weight), ("bias", bias)):
        _check_channel_vector(value, name, x)
    if x.size // groups == 1:
        # torch's check: N·(C/G)·(H·W…) == 1, i.e. one sample with a single value per group
        raise ValueError(
            "Expected more than 1 value per group when training (as torch), got "
            f"x.shape={x.shape} with num_groups={groups}"
        )
    return groups, _check_eps(eps, positive=False, why=" (torch returns NaN for eps < 0)")


def _grouped(x: FloatArray, groups: int) -> tuple[FloatArray, Axes]:
    """x (N, C, *S) viewed as (N, G, C/G, *S), and the axes of one group: (2, 3, …)."""
    n, c = x.shape[:2]
    grouped = x.reshape(n, groups, c // groups, *x.shape[2:])
    return grouped, tuple(range(2, grouped.ndim))


def group_norm(
    x: FloatArray,
    num_groups: int,
    weight: FloatArray | None = None,
    bias: FloatArray | None = None,
    eps: float = 1e-5,
) -> FloatArray:
    """``torch.nn.functional.group_norm``: standardise each (sample, group of channels).

    y = weight·(x − μ)/√(σ² + eps) + bias: the C channels split into ``num_groups`` groups of
    C/G consecutive channels; μ, σ² (biased) over each (sample, group)'s (C/G, *) values; then
    a PER-CHANNEL affine map (weight, bias of shape (C,)).

    See docs/normalization.md.
    """
    groups, eps = _group_norm_checks(x, num_groups, weight, bias, eps)
    grouped, axes = _grouped(x, groups)
    x_hat, _ = _standardize(grouped, axes, eps)
    channel_shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    return _affine(x_hat.reshape(x.shape), weight, bias, channel_shape)


def group_norm_backward(
    grad_out: FloatArray,
    x: FloatArray,
    num_groups: int,
    weight: FloatArray | None = None,
    bias: FloatArray | None = None,
    eps: float = 1e-5,
) -> tuple[FloatArray, FloatArray | None, FloatArray | None]:
    """``(grad_x, grad_weight, grad_bias)`` of :func:`group_norm`.

    dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)), ĝ = g·weight, means over each (sample, group);
    dweight = Σ g·x̂,  dbias = Σ g, summed per channel over (N, *).

    See docs/normalization.md.
    """
    groups, eps = _group_norm_checks(x, num_groups, weight, bias, eps)
    grad_out = check_grad_out(grad_out, x, "the output")
    grouped, axes = _grouped(x, groups)
    x_hat_grouped, inv_std = _standardize(grouped, axes, eps)
    x_hat = x_hat_grouped.reshape(x.shape)
    channel_shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    per_channel_axes = (0, *range(2, x.ndim))
    grad_x_hat, grad_weight, grad_bias = _affine_backward(
        grad_out, x_hat, weight, bias, channel_shape, per_channel_axes
    )
    grad_x = _standardize_backward(
        grad_x_hat.reshape(grouped.shape), x_hat_grouped, inv_std, axes
    ).reshape(x.shape)
    return grad_x, grad_weight, grad_bias
