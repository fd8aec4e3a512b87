"""The bug zoo: deliberately broken variants of refcnn ops, each a bug people actually write.

A mutant is a catalog entry with one function swapped for a broken one. The test suite must
catch every mutant (``tests/test_bugzoo.py`` runs each one against the check that names it and
asserts that hypothesis finds a counterexample, on which refcnn itself passes); the oracle uses
the same variants to NAME what is wrong with a candidate ("dx matches 'col2im assigns instead of
accumulating'"). Legitimate alternatives (the book's dropout, TensorFlow's RMSprop) are not bugs:
they live in :mod:`refcnn.testing.conventions`; names are unique across both modules.

A mutant that changes the arithmetic materially (a missing 1/N, another formula for a gradient)
carries its own rounding model, so that a candidate with the bug matches it within the bound:
the catalog's model with the mutant's magnitudes, derived next to it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refcnn import optim
from refcnn.functional.conv import conv2d, conv2d_backward
from refcnn.functional.linear import flatten, linear_backward
from refcnn.functional.losses import cross_entropy_backward
from refcnn.functional.normalization import (
    _affine,
    _affine_backward,
    _batch_norm_axes,
    _standardize,
    _standardize_backward,
    batch_norm_backward,
)
from refcnn.functional.pooling import (
    _as_batch,
    _like_input,
    _upstream_batch,
    avg_pool2d,
    avg_pool2d_backward,
)
from refcnn.functional.softmax import softmax, softmax_backward
from refcnn.geometry import (
    WindowGeometry,
    check_grad_out,
    int_pair,
    normalize_padding,
    pooling_geometry,
    window_geometry,
)
from refcnn.im2col import col2im, im2col
from refcnn.optim import _effective_grad
from refcnn.testing import catalog
from refcnn.testing.catalog import optimizers as optim_catalog
from refcnn.testing.catalog.losses import _as_indices
from refcnn.testing.catalog.pooling import _max_pool_out_magnitude, _max_pool_roundings
from refcnn.testing.conventions import (
    _scatter_windows,
    _windows,
    adam_error,
    adam_step_with_step_size,
    trajectory_variant,
)
from refcnn.testing.opspec import Fill, OpSpec, Params
from refcnn.testing.tolerance import Formula


@dataclass(frozen=True)
class Mutant:
    """``op`` with the fields in ``replace`` swapped; ``caught_by`` is the check that must fail.

    ``fill`` says how the bug-zoo test draws the inputs it searches (the catalog's fill where it
    says nothing): a bug that only ties show needs samples with ties, which the catalog's fill
    avoids on purpose. It is not part of the mutant's spec.
    """

    name: str
    op: str
    caught_by: str  # a function name in refcnn.testing.checks: the cheapest that catches it
    replace: dict[str, Any]  # OpSpec fields to swap, e.g. {"backward": broken_backward}
    fill: Mapping[str, Fill] = field(default_factory=dict)

    def spec(self) -> OpSpec:
        return dataclasses.replace(catalog.get(self.op), **self.replace)

    def search_spec(self, spec: OpSpec | None = None) -> OpSpec:
        """``spec`` (the mutant's by default) drawing its samples with :attr:`fill`."""
        spec = self.spec() if spec is None else spec
        return dataclasses.replace(spec, fill={**spec.fill, **self.fill})


KwargsMap = Callable[[dict[str, Any]], dict[str, Any]]


def _same(kwargs: dict[str, Any]) -> dict[str, Any]:
    return kwargs


def _model_for(op: str, forward: KwargsMap = _same, backward: KwargsMap = _same) -> Formula:
    """``op``'s catalog model evaluated on keyword arguments changed by ``forward`` (for the
    output) and ``backward`` (for the gradients): the arithmetic of a mutant that is the
    catalog's for other arguments (batch statistics in evaluation are training's; a softmax over
    the batch axis is dim 0's), so a candidate with the bug matches it within a sound bound."""
    model = catalog.get(op).tolerance
    assert isinstance(model, Formula) and model.backward_magnitudes is not None
    out, grads = model.forward_magnitude, model.backward_magnitudes

    def roundings(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
        counts = model.roundings(inputs, forward(dict(kwargs)))
        gradient_counts = model.roundings(inputs, backward(dict(kwargs)))
        return {"out": counts["out"], **{k: v for k, v in gradient_counts.items() if k != "out"}}

    def forward_magnitude(**arguments: Any) -> Any:
        return out(**forward(arguments))

    def backward_magnitudes(upstream: Any, **arguments: Any) -> Any:
        return grads(upstream, **backward(arguments))

    return Formula(roundings, forward_magnitude, backward_magnitudes, model.degree)


# --- col2im that assigns --------------------------------------------------------------------------


def _window_slices(geometry: WindowGeometry, i: int, j: int) -> tuple[slice, slice]:
    """Rows and columns of the PADDED image that kernel tap (i, j) reads, for all windows: the
    book's col2im pads, then crops (refcnn clips to the input instead: im2col.tap_blocks)."""
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    oh, ow = geometry.output_size
    top, left = i * dh, j * dw
    return (
        slice(top, top + sh * (oh - 1) + 1, sh),
        slice(left, left + sw * (ow - 1) + 1, sw),
    )


def col2im_assigning(
    col: Any,
    input_shape: tuple[int, int, int, int],
    kernel_size: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
) -> Any:
    """col2im with ``=`` where ``+=`` belongs: a pixel keeps only its LAST window's gradient."""
    n, c, h, w = input_shape
    geometry = window_geometry((h, w), kernel_size, stride, padding, dilation)
    kh, kw = geometry.kernel_size
    oh, ow = geometry.output_size
    windows = col.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    x_pad = np.zeros((n, c, *geometry.padded_size), dtype=col.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, cols = _window_slices(geometry, i, j)
            x_pad[:, :, rows, cols] = windows[:, :, i, j]  # BUG: overwrites overlapping windows
    top, _, left, _ = geometry.padding
    return x_pad[:, :, top : top + h, left : left + w]


def _im2col_backward_assigning(grad_out: Any, x: Any, **geometry: Any) -> tuple[Any]:
    return (col2im_assigning(grad_out, x.shape, **geometry),)


def _conv2d_backward_assigning(
    grad_out: Any,
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> tuple[Any, Any, Any]:
    """conv2d's backward with a grad_x rebuilt through the assigning col2im."""
    _, grad_weight, grad_bias = conv2d_backward(
        grad_out, x, weight, bias, stride, padding, dilation, groups
    )
    c_out, _, kh, kw = weight.shape
    n, _, oh, ow = grad_out.shape
    upstream = grad_out.transpose(0, 2, 3, 1).reshape(n * oh * ow, groups, -1).transpose(1, 0, 2)
    grad_col = upstream @ weight.reshape(groups, c_out // groups, -1)
    grad_col = grad_col.transpose(1, 0, 2).reshape(n * oh * ow, -1)
    grad_x = col2im_assigning(grad_col, x.shape, (kh, kw), stride, padding, dilation)
    return grad_x, grad_weight, grad_bias


# --- conv2d bugs ----------------------------------------------------------------------------------


def _conv2d_backward_bias_first_sample(
    grad_out: Any, x: Any, weight: Any, bias: Any = None, **kwargs: Any
) -> tuple[Any, Any, Any]:
    """grad_bias summed over the spatial axes of sample 0 only: forgets the batch sum."""
    grad_x, grad_weight, grad_bias = conv2d_backward(grad_out, x, weight, bias, **kwargs)
    if grad_bias is not None:
        grad_bias = grad_out[0].sum(axis=(1, 2))  # BUG: should be grad_out.sum(axis=(0, 2, 3))
    return grad_x, grad_weight, grad_bias


def _conv2d_flipped_kernel(x: Any, weight: Any, bias: Any = None, **kwargs: Any) -> Any:
    """True convolution (kernel rotated 180°), not torch's cross-correlation."""
    return conv2d(x, weight[:, :, ::-1, ::-1], bias, **kwargs)


def _conv2d_same_pads_top_left(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Any:
    """padding='same' with the extra row/column on top/left instead of bottom/right."""
    if padding == "same":
        top, bottom, left, right = normalize_padding(
            padding,
            weight.shape[2:],
            int_pair(dilation, "dilation", minimum=1),
            int_pair(stride, "stride", minimum=1),
        )
        padding = (bottom, top, right, left)  # BUG: sides swapped
    return conv2d(x, weight, bias, stride, padding, dilation, groups)


# --- layers of issue 3: softmax, normalisation, dropout, linear, pooling, activations -------------


def _softmax_backward_diagonal(grad_out: Any, x: Any, dim: int) -> tuple[Any]:
    """dx = g·s·(1 − s): only the Jacobian's diagonal, forgetting −s_i·s_j off it."""
    s = softmax(x, dim)
    return (grad_out * s * (1 - s),)


def _channel_axes(x: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Batch norm's reduction axes (all but channels) and the shape of a per-channel vector."""
    return (0, *range(2, x.ndim)), (1, -1, *([1] * (x.ndim - 2)))


def _batch_norm_unbiased(
    x: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    eps: float = 1e-5,
) -> Any:
    """Training batch norm normalising with the UNBIASED variance (n − 1 in the denominator)."""
    axes, shape = _channel_axes(x)
    mean = x.mean(axis=axes, keepdims=True)
    variance = x.var(axis=axes, ddof=1, keepdims=True)  # BUG: torch normalises with ddof=0
    y = (x - mean) / np.sqrt(variance + eps)
    y = y if weight is None else y * weight.reshape(shape)
    return y if bias is None else y + bias.reshape(shape)


def _batch_norm_backward_constant_statistics(
    grad_out: Any,
    x: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    eps: float = 1e-5,
) -> tuple[Any, Any, Any]:
    """dx = g·γ·r as if the batch mean and variance did not depend on x."""
    _, grad_weight, grad_bias = batch_norm_backward(
        grad_out, x, running_mean, running_var, weight, bias, training, eps=eps
    )
    axes, shape = _channel_axes(x)
    inv_std = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    scale = inv_std if weight is None else inv_std * weight.reshape(shape)
    return grad_out * scale, grad_weight, grad_bias  # BUG: drops −mean(ĝ) − x̂·mean(ĝ·x̂)


def _dropout_forward_not_inverted(x: Any, mask: Any, p: float, training: bool = True) -> Any:
    """The book's forward (train x·mask, test x·(1 − p)) with torch's inverted backward
    g·mask/(1 − p) left as it was: half of a port between the conventions. (Both halves the
    book's way is the convention "dropout not inverted", not a bug.)"""
    return x * mask if training else x * (1 - p)


def _linear_backward_bias_first_row(
    grad_out: Any, x: Any, weight: Any, bias: Any = None
) -> tuple[Any, Any, Any]:
    """grad_bias taken from the first row of the batch instead of summed over it."""
    grad_x, grad_weight, grad_bias = linear_backward(grad_out, x, weight, bias)
    if grad_bias is not None:
        grad_bias = grad_out.reshape(-1, grad_out.shape[-1])[0]  # BUG: should be a sum
    return grad_x, grad_weight, grad_bias


def _avg_pool2d_divides_by_kernel_area(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Any = None,
) -> Any:
    """Every window divided by KH·KW, ignoring count_include_pad=False and the ceil overhang."""
    kh, kw = int_pair(kernel_size, "kernel_size", minimum=1)
    area = divisor_override if divisor_override is not None else kh * kw  # BUG
    return avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, area)


def _leaky_relu_backward_without_slope(
    grad_out: Any, x: Any, negative_slope: float = 0.01
) -> tuple[Any]:
    """leaky_relu's gradient with relu's derivative: 0 instead of the slope for x < 0."""
    return (np.where(x > 0, grad_out, 0 * grad_out),)


# --- invariants: mutation and aliasing ------------------------------------------------------------


def _relu_in_place(x: Any) -> Any:
    """relu computed in place to save memory: the caller's x is changed."""
    np.maximum(x, 0, out=x)  # BUG: writes into the input
    return x


def _flatten_view(x: Any, start_dim: int = 1, end_dim: int = -1) -> Any:
    """flatten returning numpy's view: an in-place update of the result changes x."""
    return x.reshape(flatten(x, start_dim, end_dim).shape)  # BUG: a view of x, not a copy


def _softmax_over_batch_axis(x: Any, dim: int) -> Any:
    """softmax over axis 0 whatever dim says; the backward below matches it, so finite
    differences agree with it: only a check that slices the batch (or torch) sees it."""
    return softmax(x, 0)


def _softmax_backward_over_batch_axis(grad_out: Any, x: Any, dim: int) -> Any:
    return softmax_backward(grad_out, x, 0)


def _over_batch_axis(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**kwargs, "dim": 0}


def _conv2d_reversed_channels(x: Any, weight: Any, bias: Any = None, **kwargs: Any) -> Any:
    """conv2d pairing input channel c with weight channel C − 1 − c (an indexing slip)."""
    return conv2d(x, weight[:, ::-1], bias, **kwargs)


def _conv2d_backward_reversed_channels(
    grad_out: Any, x: Any, weight: Any, bias: Any = None, **kwargs: Any
) -> tuple[Any, Any, Any]:
    """The backward of that slip, consistent with it: finite differences see nothing."""
    grad_x, grad_weight, grad_bias = conv2d_backward(grad_out, x, weight[:, ::-1], bias, **kwargs)
    return grad_x, grad_weight[:, ::-1], grad_bias


# --- weight gradients laid out wrong --------------------------------------------------------------


def _linear_backward_weight_reshaped(
    grad_out: Any, x: Any, weight: Any, bias: Any = None
) -> tuple[Any, Any, Any]:
    """∂L/∂W computed as Xᵀ·G, which is (in, out), then RESHAPED to weight's (out, in) where a
    transpose belongs: right only when in or out is 1 (the reshape of a vector)."""
    grad_x, _, grad_bias = linear_backward(grad_out, x, weight, bias)
    out_features, in_features = weight.shape
    x_rows = x.reshape(-1, in_features)
    upstream_rows = grad_out.reshape(-1, out_features)
    grad_weight = (x_rows.T @ upstream_rows).reshape(weight.shape)  # BUG: (in, out) needs .T
    return grad_x, grad_weight, grad_bias


def _linear_backward_weight_transposed(
    grad_out: Any, x: Any, weight: Any, bias: Any = None
) -> tuple[Any, Any, Any]:
    """∂L/∂W returned as Xᵀ·G, (in, out): the book's Affine layout (W is (in, out) there) kept
    for a weight stored (out, in). Wrong in shape unless in == out, and then wrong in values."""
    grad_x, grad_weight, grad_bias = linear_backward(grad_out, x, weight, bias)
    return grad_x, grad_weight.T.copy(), grad_bias  # BUG: weight is (out, in)


def _conv2d_backward_weight_not_transposed(
    grad_out: Any,
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> tuple[Any, Any, Any]:
    """The book's ``dW = colᵀ·dout`` is (C·KH·KW, C_out); its ``.transpose(1, 0)`` forgotten
    before ``.reshape(C_out, C, KH, KW)`` (per group when groups > 1)."""
    grad_x, _, grad_bias = conv2d_backward(
        grad_out, x, weight, bias, stride, padding, dilation, groups
    )
    n, _, oh, ow = grad_out.shape
    col = im2col(x, weight.shape[2:], stride, padding, dilation)  # (P, C_in·KH·KW)
    col_g = col.reshape(col.shape[0], groups, -1).transpose(1, 0, 2)  # (G, P, Cg·KH·KW)
    upstream = grad_out.transpose(0, 2, 3, 1).reshape(n * oh * ow, groups, -1)
    upstream_g = upstream.transpose(1, 0, 2)  # (G, P, Og)
    grad_weight = (col_g.transpose(0, 2, 1) @ upstream_g).reshape(weight.shape)  # BUG: no .T
    return grad_x, grad_weight, grad_bias


# --- padding on one side only ---------------------------------------------------------------------


def _top_left_only(padding: Any) -> Any:
    """An int p or a pair (ph, pw) applied to the top and left only: (p, 0, p, 0), as
    ``np.pad(x, ((0, 0), (0, 0), (p, 0), (p, 0)))`` does; other forms are left alone."""
    if isinstance(padding, int):
        return (padding, 0, padding, 0)
    if isinstance(padding, tuple) and len(padding) == 2:
        return (padding[0], 0, padding[1], 0)
    return padding


def _conv2d_pads_top_left_only(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Any:
    """conv2d with its int or pair padding on the top and left sides only: the output loses
    rows and columns at the bottom/right (or the kernel no longer fits, and it raises)."""
    return conv2d(x, weight, bias, stride, _top_left_only(padding), dilation, groups)


def _conv2d_backward_pads_top_left_only(
    grad_out: Any,
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> tuple[Any, Any, Any]:
    """The backward of that forward, consistent with it: finite differences see nothing."""
    return conv2d_backward(
        grad_out, x, weight, bias, stride, _top_left_only(padding), dilation, groups
    )


# --- max pooling: the gradient to every tied maximum ----------------------------------------------


def _max_pool2d_backward_to_every_tie(
    grad_out: Any,
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> Any:
    """Every pixel EQUAL to its window's maximum gets the window's whole gradient, the mask
    ``x == max`` (``dx = dout * (x == out)``); torch sends it to the first maximum only. Right
    wherever a window has one maximum, wrong on ties."""
    batch = _as_batch(x)
    geometry = pooling_geometry(batch.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    upstream = _upstream_batch(grad_out, x, (*batch.shape[:2], *geometry.output_size))
    values = _windows(batch, geometry)  # (N, OH, OW, C, K)
    inside = _windows(np.ones((1, 1, *batch.shape[2:]), dtype=batch.dtype), geometry) == 1
    candidates = np.where(inside, values, batch.dtype.type(-np.inf))
    is_max = inside & (candidates == candidates.max(axis=-1, keepdims=True))  # BUG: every tie
    grad_rows = is_max * upstream.transpose(0, 2, 3, 1)[..., np.newaxis]
    return _like_input(_scatter_windows(grad_rows, batch.shape, geometry), x)


def _max_pool2d_tie_magnitudes(upstream: Any, x: Any, **kwargs: Any) -> dict[str, Any]:
    """The catalog's model with this routing: Σ of |G| over the windows whose maximum a pixel
    ties with (at most the windows containing it: the catalog's count still holds)."""
    return {"x": _max_pool2d_backward_to_every_tie(np.abs(upstream), x, **kwargs)}


def _ties(rng: np.random.Generator, shape: tuple[int, ...], params: Params) -> Any:
    """Values 0, 1 or 2: nearly every window holds a tie."""
    return rng.integers(0, 3, shape).astype(np.float64)


# --- a loss gradient without its 1/N --------------------------------------------------------------


def _cross_entropy_backward_without_mean(
    grad_out: Any, logits: Any, target: Any, weight: Any = None, **kwargs: Any
) -> Any:
    """reduction='mean' differentiated as 'sum': the 1/Σ w[t] (1/N without weights) of the mean
    forgotten in the backward, as when a batch-mean loss's gradient is written per sample."""
    if kwargs.get("reduction", "mean") == "mean":
        kwargs = {**kwargs, "reduction": "sum"}  # BUG: the forward divides, the backward not
    return cross_entropy_backward(grad_out, logits, _as_indices(target), weight, **kwargs)


def _mean_as_sum(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The gradient a 'mean' sample gets is the 'sum' reduction's."""
    if kwargs.get("reduction", "mean") == "mean":
        return {**kwargs, "reduction": "sum"}
    return kwargs


# --- optimizers -----------------------------------------------------------------------------------


def _adam_without_bias_correction_step(
    param: Any, grad: Any, state: Any = None, **hyperparameters: Any
) -> tuple[Any, Any]:
    """Adam's moments without their bias corrections: θ ← θ − lr·m/(√v + eps). The early
    steps are off by the factor (1 − β₁ᵗ)/√(1 − β₂ᵗ) that torch divides out (≈ 3.2 at t = 1
    with the default betas: m₁ = 0.1·g against √v₁ = 0.03·|g|)."""
    lr = float(hyperparameters.get("lr", 1e-3))
    return adam_step_with_step_size(param, grad, state, lambda step: lr, **hyperparameters)


class _AdamWithoutBiasCorrection(optim.Adam):
    step_function = staticmethod(_adam_without_bias_correction_step)


def _adam_without_bias_correction_error(params: Any, grads: Any, **hyperparameters: Any) -> Any:
    """Conventions' Adam bound with the step size lr (its cast: 1 rounding)."""
    return adam_error(params, grads, step_size=lambda lr, step: (lr, 1.0), **hyperparameters)


def _sgd_nesterov_old_order_step(
    param: Any, grad: Any, state: Any = None, **hyperparameters: Any
) -> tuple[Any, Any]:
    """torch.optim.SGD, except Nesterov in the order of the book's published Nesterov (and of
    chainer's NesterovAG, which it follows): the velocity first, then θ with the NEW velocity::

        v ← μ·v − lr·g;   θ ← θ + μ²·v − (1 + μ)·lr·g

    With v = −lr·b (torch's buffer: b ← μ·b + g, b₁ = g) that is θ ← θ − lr·(μ²·b + (1 + μ)·g).
    torch, like Bengio et al. (2012), updates θ with the OLD velocity: θ ← θ − lr·(μ²·b_old +
    (1 + μ)·g) = θ − lr·(g + μ·b), exactly torch's rule. The book's order differs by lr·μ²·(b −
    b_old) = lr·μ²·((μ − 1)·b_old + g) in exact arithmetic: not a rounding matter."""
    new_param, new = optim.sgd_step(param, grad, state, **hyperparameters)
    if not hyperparameters.get("nesterov", False):
        return new_param, new
    grad = _effective_grad(
        param,
        grad,
        hyperparameters.get("weight_decay", 0.0),
        hyperparameters.get("maximize", False),
    )  # g ← ±g + λ·θ, as torch
    mu, lr = float(hyperparameters["momentum"]), float(hyperparameters.get("lr", 1e-3))
    buffer = new["momentum_buffer"]  # b, after this step's update
    return param - lr * (mu * mu * buffer + (1.0 + mu) * grad), new  # BUG: the new b


class _SGDNesterovOldOrder(optim.SGD):
    step_function = staticmethod(_sgd_nesterov_old_order_step)


def _sgd_nesterov_old_order_error(
    params: Any,
    grads: Any,
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
) -> Any:
    """The catalog's SGD bound, with d = μ²·b + (1 + μ)·g' for Nesterov: μ² and 1 + μ in double
    and cast (2 each), their products and the sum; then θ − lr·d as the catalog."""
    if not nesterov:
        return optim_catalog._sgd_error(
            params,
            grads,
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
    exact, add, scaled = optim_catalog._exact, optim_catalog._sum, optim_catalog._scaled
    theta, buffer, rows = exact(params), None, []
    for grad in grads:
        effective = optim_catalog._grad_with_decay(theta, grad, weight_decay, maximize)
        if buffer is None:
            buffer = effective
        else:
            buffer = add(scaled(buffer, momentum, 1.0), scaled(effective, 1.0 - dampening, 2.0))
        direction = add(
            scaled(buffer, momentum * momentum, 2.0), scaled(effective, 1 + momentum, 2.0)
        )
        theta = add(theta, scaled(direction, -lr, 1.0))
        rows.append([theta[1], buffer[1]])
    return optim_catalog._stacked(rows)


# --- activations: the derivative from the input instead of the output -----------------------------


def _activation_model(op: str, grad_roundings: int, grad_magnitude: Callable[..., Any]) -> Formula:
    """The catalog's model of ``op``'s forward, with a mutant backward's count and M."""
    model = catalog.get(op).tolerance
    assert isinstance(model, Formula)

    def roundings(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
        return {**model.roundings(inputs, kwargs), "grad_x": grad_roundings}

    def magnitudes(upstream: Any, x: Any) -> dict[str, Any]:
        return {"x": np.abs(upstream) * grad_magnitude(x)}

    return Formula(roundings, model.forward_magnitude, magnitudes, model.degree)


def _sigmoid_backward_from_input(grad_out: Any, x: Any) -> Any:
    """σ'(x) written y·(1 − y) with the INPUT x for the output y: g·x·(1 − x)."""
    return grad_out * (x * (1 - x))  # BUG: should be σ(x)·(1 − σ(x))


def _tanh_backward_from_input(grad_out: Any, x: Any) -> Any:
    """tanh'(x) written 1 − y² with the INPUT x for the output y: g·(1 − x²)."""
    return grad_out * (1 - x * x)  # BUG: should be 1 − tanh²(x)


# g·x·(1 − x): 1 − x, ·x, ·g (3 roundings); M = |g|·(|x|·|1 − x| + |x|·|1 − 2x|), the second
# term for one rounding of x (|x·∂/∂x| = |x|·|1 − 2x|). g·(1 − x²): x·x, 1 −, ·g (3);
# M = |g|·(1 + x² + 2x²), the last for x's rounding.
_SIGMOID_FROM_INPUT_MODEL = _activation_model(
    "sigmoid", 3, lambda x: np.abs(x) * (np.abs(1 - x) + np.abs(1 - 2 * x))
)
_TANH_FROM_INPUT_MODEL = _activation_model("tanh", 3, lambda x: 1 + 3 * x * x)


def _log_softmax_backward_constant_normalizer(grad_out: Any, x: Any, dim: int) -> Any:
    """∂L/∂x = g: log Σ exp(x) treated as a constant, like the max the forward subtracts (which
    IS one: shifting x changes nothing), so the −softmax(x)·Σ_dim g term is lost."""
    return np.array(grad_out, copy=True)  # BUG: should be g − softmax(x)·Σ_dim g


# --- batch norm in evaluation with the batch's statistics -----------------------------------------


def _batch_norm_eval_with_batch_statistics(
    x: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Any:
    """Evaluation that standardises with the BATCH's mean and variance (the training flag
    ignored, a model left in training mode): each output depends on the rest of the batch."""
    axes, shape, eps = _batch_norm_axes(
        x, running_mean, running_var, weight, bias, training, momentum, eps
    )
    x_hat, _ = _standardize(x, axes, eps)  # BUG: evaluation uses running_mean, running_var
    return _affine(x_hat, weight, bias, shape)


def _batch_norm_eval_with_batch_statistics_backward(
    grad_out: Any,
    x: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[Any, Any, Any]:
    """The training backward, consistent with that forward."""
    axes, shape, eps = _batch_norm_axes(
        x, running_mean, running_var, weight, bias, training, momentum, eps
    )
    grad_out = check_grad_out(grad_out, x, "the output")
    x_hat, inv_std = _standardize(x, axes, eps)
    grad_x_hat, grad_weight, grad_bias = _affine_backward(
        grad_out, x_hat, weight, bias, shape, axes
    )
    return _standardize_backward(grad_x_hat, x_hat, inv_std, axes), grad_weight, grad_bias


def _in_training(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**kwargs, "training": True}


# --- dropout's backward without the mask ----------------------------------------------------------


def _dropout_backward_without_mask(
    grad_out: Any, x: Any, mask: Any, p: float, training: bool = True
) -> Any:
    """g/(1 − p) everywhere: the scale kept, the mask forgotten, so dropped elements get a
    gradient too."""
    if not training or p == 0:
        return np.array(grad_out, copy=True)
    if p == 1:
        return grad_out * 0.0
    return grad_out / (1.0 - p)  # BUG: should be g·mask/(1 − p)


# --- im2col with the channel axis last in a row ---------------------------------------------------


def _im2col_channels_last(
    x: Any, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1
) -> Any:
    """Each row ordered (i, j, c), channel fastest (an NHWC habit), where the book's rows and
    torch's unfold are (c, i, j): a weight reshaped (C_out, C·KH·KW) then pairs the wrong
    values."""
    col = im2col(x, kernel_size, stride, padding, dilation)
    rows, channels = col.shape[0], x.shape[1]
    return col.reshape(rows, channels, -1).transpose(0, 2, 1).reshape(rows, -1)  # BUG: (i, j, c)


def _im2col_channels_last_backward(grad_out: Any, x: Any, **geometry: Any) -> Any:
    """col2im of that layout, consistent with it: the adjoint identity holds."""
    rows, channels = grad_out.shape[0], x.shape[1]
    grad = grad_out.reshape(rows, -1, channels).transpose(0, 2, 1).reshape(rows, -1)
    return col2im(grad, x.shape, **geometry)


# --- avg_pool2d's count_include_pad read the other way round --------------------------------------


def _avg_pool2d_count_include_pad_inverted(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Any = None,
) -> Any:
    """count_include_pad=True divides by the real pixels, False by the padded window."""
    return avg_pool2d(
        x, kernel_size, stride, padding, ceil_mode, not count_include_pad, divisor_override
    )


def _avg_pool2d_count_include_pad_inverted_backward(
    grad_out: Any,
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Any = None,
) -> Any:
    """The backward of that forward, consistent with it."""
    return avg_pool2d_backward(
        grad_out,
        x,
        kernel_size,
        stride,
        padding,
        ceil_mode,
        not count_include_pad,
        divisor_override,
    )


def _count_include_pad_inverted(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**kwargs, "count_include_pad": not kwargs["count_include_pad"]}


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "col2im assigns instead of accumulating",
        "im2col",
        "adjoint",
        {"backward": _im2col_backward_assigning},
    ),
    Mutant(
        "conv2d grad_x through a col2im that assigns",
        "conv2d",
        "directional_fd",
        {"backward": _conv2d_backward_assigning},
    ),
    Mutant(
        "conv2d grad_bias not summed over the batch",
        "conv2d",
        "directional_fd",
        {"backward": _conv2d_backward_bias_first_sample},
    ),
    Mutant(
        "conv2d flips the kernel (true convolution)",
        "conv2d",
        "matches_definition",
        {"forward": _conv2d_flipped_kernel},
    ),
    Mutant(
        "padding='same' puts the extra pad top/left",
        "conv2d",
        "matches_definition",
        {"forward": _conv2d_same_pads_top_left},
    ),
    Mutant(
        "softmax backward uses only the Jacobian diagonal",
        "softmax",
        "directional_fd",
        {"backward": _softmax_backward_diagonal},
    ),
    Mutant(
        "batch norm normalises with the unbiased variance",
        "batch_norm_train",
        "directional_fd",
        {"forward": _batch_norm_unbiased},
    ),
    Mutant(
        "batch norm backward treats mean and variance as constants",
        "batch_norm_train",
        "directional_fd",
        {"backward": _batch_norm_backward_constant_statistics},
    ),
    Mutant(
        "dropout forward not inverted, backward inverted (half ported from the book)",
        "dropout",
        "directional_fd",
        {"forward": _dropout_forward_not_inverted},
    ),
    Mutant(
        "linear grad_bias not summed over the batch",
        "linear",
        "directional_fd",
        {"backward": _linear_backward_bias_first_row},
    ),
    Mutant(
        "avg_pool2d always divides by the kernel area",
        "avg_pool2d",
        "matches_definition",
        {"forward": _avg_pool2d_divides_by_kernel_area},
    ),
    Mutant(
        "leaky_relu backward drops the negative slope",
        "leaky_relu",
        "directional_fd",
        {"backward": _leaky_relu_backward_without_slope},
    ),
    Mutant(
        "relu computed in place (the input changes)",
        "relu",
        "no_mutation",
        {"forward": _relu_in_place},
    ),
    Mutant(
        "flatten returns a view of its input", "flatten", "no_mutation", {"forward": _flatten_view}
    ),
    Mutant(
        "softmax normalises over the batch axis (forward and backward agree)",
        "softmax",
        "batch_slices",
        {
            "forward": _softmax_over_batch_axis,
            "backward": _softmax_backward_over_batch_axis,
            "tolerance": _model_for("softmax", _over_batch_axis, _over_batch_axis),
        },
    ),
    Mutant(
        "conv2d pairs input channel c with weight channel C-1-c (backward agrees)",
        "conv2d",
        "channel_permutation",
        {"forward": _conv2d_reversed_channels, "backward": _conv2d_backward_reversed_channels},
    ),
    Mutant(
        "linear grad_weight returned as Xᵀ·G, (in, out) like the book's W",
        "linear",
        "repeatable",
        {"backward": _linear_backward_weight_transposed},
    ),
    Mutant(
        "linear grad_weight is Xᵀ·G reshaped, not transposed, to (out, in)",
        "linear",
        "directional_fd",
        {"backward": _linear_backward_weight_reshaped},
    ),
    Mutant(
        "conv2d grad_weight reshaped from (C·KH·KW, C_out) without its transpose",
        "conv2d",
        "directional_fd",
        {"backward": _conv2d_backward_weight_not_transposed},
    ),
    Mutant(
        "conv2d applies an int or pair padding to the top and left only",
        "conv2d",
        "matches_definition",
        {"forward": _conv2d_pads_top_left_only, "backward": _conv2d_backward_pads_top_left_only},
    ),
    Mutant(
        "max_pool2d backward sends the gradient to every tied maximum",
        "max_pool2d",
        "matches_torch",
        {
            "backward": _max_pool2d_backward_to_every_tie,
            "tolerance": Formula(
                _max_pool_roundings, _max_pool_out_magnitude, _max_pool2d_tie_magnitudes, degree=1
            ),
        },
        fill={"x": _ties},
    ),
    Mutant(
        "cross_entropy backward forgets the 1/N of reduction 'mean'",
        "cross_entropy",
        "directional_fd",
        {
            "backward": _cross_entropy_backward_without_mean,
            "tolerance": _model_for("cross_entropy", backward=_mean_as_sum),
        },
    ),
    Mutant(
        "Adam without bias correction",
        "adam",
        "matches_torch",
        trajectory_variant(
            _AdamWithoutBiasCorrection,
            optim_catalog._adam_buffers,
            _adam_without_bias_correction_error,
        ),
    ),
    Mutant(
        "SGD Nesterov updates θ with the new velocity (the book's published order)",
        "sgd",
        "matches_torch",
        trajectory_variant(
            _SGDNesterovOldOrder, optim_catalog._sgd_buffers, _sgd_nesterov_old_order_error
        ),
    ),
    Mutant(
        "sigmoid backward x·(1 − x) from the input instead of the output",
        "sigmoid",
        "directional_fd",
        {"backward": _sigmoid_backward_from_input, "tolerance": _SIGMOID_FROM_INPUT_MODEL},
    ),
    Mutant(
        "tanh backward 1 − x² from the input instead of the output",
        "tanh",
        "directional_fd",
        {"backward": _tanh_backward_from_input, "tolerance": _TANH_FROM_INPUT_MODEL},
    ),
    Mutant(
        "log_softmax backward treats log Σ exp(x) as a constant",
        "log_softmax",
        "directional_fd",
        {"backward": _log_softmax_backward_constant_normalizer},
    ),
    Mutant(
        "batch norm in evaluation normalises with the batch statistics",
        "batch_norm_eval",
        "batch_slices",
        {
            "forward": _batch_norm_eval_with_batch_statistics,
            "backward": _batch_norm_eval_with_batch_statistics_backward,
            "tolerance": _model_for("batch_norm_train", _in_training, _in_training),
        },
    ),
    Mutant(
        "dropout backward ignores the mask",
        "dropout",
        "directional_fd",
        {"backward": _dropout_backward_without_mask},
    ),
    Mutant(
        "im2col puts the channel axis last in a row, (i, j, c)",
        "im2col",
        "matches_torch",
        {"forward": _im2col_channels_last, "backward": _im2col_channels_last_backward},
    ),
    Mutant(
        "avg_pool2d reads count_include_pad the other way round",
        "avg_pool2d",
        "matches_definition",
        {
            "forward": _avg_pool2d_count_include_pad_inverted,
            "backward": _avg_pool2d_count_include_pad_inverted_backward,
            "tolerance": _model_for(
                "avg_pool2d", _count_include_pad_inverted, _count_include_pad_inverted
            ),
        },
    ),
)


def get(name: str) -> Mutant:
    for mutant in MUTANTS:
        if mutant.name == name:
            return mutant
    raise KeyError(f"no mutant {name!r}; known: {[m.name for m in MUTANTS]}")


def for_op(op: str) -> tuple[Mutant, ...]:
    """The mutants of catalog op ``op``."""
    return tuple(mutant for mutant in MUTANTS if mutant.op == op)
