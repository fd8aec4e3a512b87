"""Conventions: legitimate alternatives to the catalog's (torch's) semantics, as full variants.

The catalog follows torch 2.13. Other sources settled some choices another way, and code that
follows one of them is not wrong: it follows another convention. The book ("Deep Learning from
Scratch", O'Reilly Japan, and the many copies of its ``common/`` code) does not invert dropout,
adds 1e-7 inside the cross-entropy's log, keeps batch-norm statistics per activation and folds
Adam's bias corrections into the step size; TensorFlow puts RMSprop's and Adagrad's eps inside
the square root. A :class:`Convention` is the catalog entry with the functions that differ
swapped for the convention's, forward AND backward, and with a rounding-error model of its own
where its arithmetic differs (derived like the catalog's, next to it; never widened to pass).

The oracle (``python -m refcnn check``) uses them two ways: a candidate that DECLARES
conventions is judged against them instead of the default (:func:`spec_for`), and a failing
candidate that matches one on its shrunk case "conforms under convention X". The bug zoo
(:mod:`refcnn.testing.bugzoo`) holds the other kind of variant, deliberate bugs; names are
unique across both. tests/test_conventions.py checks that every convention differs from the
default, that its backward is the gradient of its forward (where its source's is:
:attr:`Convention.backward_is_gradient`), that its rounding model holds in float32, and that no
two variants of an op, conventions and mutants together, agree on a generic sample.

A convention has no torch binding and no direct definition (both are torch's convention), so
the checks that compare with those do not apply to it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from refcnn import optim
from refcnn.functional.dropout import _check_dropout
from refcnn.functional.losses import (
    _check_regression,
    _check_softmax_with_loss,
    _check_upstream,
    _reduce,
)
from refcnn.functional.normalization import (
    _affine,
    _affine_backward,
    _batch_norm_axes,
    _check_channel_vector,
    _check_input,
    _check_momentum,
    _standardize,
    _standardize_backward,
    batch_norm,
    batch_norm_backward,
)
from refcnn.functional.pooling import _as_batch, _like_input, _upstream_batch
from refcnn.functional.softmax import softmax
from refcnn.geometry import (
    FloatArray,
    PoolingGeometry,
    check_float_tensor,
    check_grad_out,
    check_same_dtype,
    pooling_geometry,
)
from refcnn.im2col import col2im, col2im_with_geometry, im2col, im2col_with_geometry
from refcnn.optim import _effective_grad
from refcnn.testing import catalog
from refcnn.testing.catalog import losses as losses_catalog
from refcnn.testing.catalog import normalization as norm_catalog
from refcnn.testing.catalog import optimizers as optim_catalog
from refcnn.testing.catalog.pooling import _max_pool_roundings
from refcnn.testing.catalog.softmax import _softmax_terms
from refcnn.testing.opspec import OpSpec, Params
from refcnn.testing.tolerance import LIBRARY_ROUNDINGS as L
from refcnn.testing.tolerance import Formula

Array = NDArray[np.float64]


def _windows(x: FloatArray, geometry: PoolingGeometry) -> FloatArray:
    """Every pooling window as a row: (N, OH, OW, C, KH·KW), padding (and ceil overhang) read
    as 0: the book's im2col view of pooling (refcnn's pooling loops over taps instead)."""
    n, c = x.shape[:2]
    oh, ow = geometry.output_size
    return im2col_with_geometry(x, geometry.windows).reshape(n, oh, ow, c, -1)


def _scatter_windows(
    rows: FloatArray, shape: tuple[int, ...], geometry: PoolingGeometry
) -> FloatArray:
    """Adjoint of :func:`_windows`: add every window row back into an (N, C, H, W) array."""
    n, c, h, w = shape
    return col2im_with_geometry(
        rows.reshape(-1, rows.shape[3] * rows.shape[4]), (n, c, h, w), geometry.windows
    )


@dataclass(frozen=True)
class Convention:
    """``op`` as ``summary`` says some source defines it: the fields in ``replace`` swapped.

    ``replace`` holds whole functions (forward and backward of the convention, its rounding
    model, a fill that keeps finite differences off its own kinks), never a patch of the
    default's, so :meth:`spec` is a complete alternative implementation.
    """

    name: str
    op: str
    summary: str  # one line: what differs, and where the convention comes from
    replace: Mapping[str, Any]

    def spec(self) -> OpSpec:
        return dataclasses.replace(catalog.get(self.op), **self.replace)

    @property
    def backward_is_gradient(self) -> bool:
        """False where the source's own backward is not the exact gradient of its forward (the
        book's SoftmaxWithLoss); the spec then says why in ``not_applicable``."""
        spec = self.spec()
        return spec.backward is None or "directional_fd" not in spec.not_applicable


def _alternative(summary: str, **fields: Any) -> dict[str, Any]:
    """The replacement fields of a convention: its functions, and no torch binding or direct
    definition (those implement torch's convention, not this one)."""
    return {
        "summary": summary,
        "definition": None,
        "torch_forward": None,
        "torch_name": None,
        "known_deviations": (),
        **fields,
    }


# --- dropout: the book scales at test time --------------------------------------------------------


def dropout_not_inverted(
    x: FloatArray, mask: FloatArray, p: float, training: bool = True
) -> FloatArray:
    """The book's Dropout (ch. 6.4.3): ``y = x ⊙ mask`` in training, ``y = x·(1 − p)`` in
    evaluation. The expected output is (1 − p)·x in both modes, where torch's inverted dropout
    divides by 1 − p while training and is the identity in evaluation. p = 0 and p = 1 are no
    special cases: the mask decides (the book's own mask, rand > p, keeps everything at p = 0).
    """
    keep, p = _check_dropout(x, mask, p, training)
    if training:
        return x * keep  # y = x ⊙ mask
    return x * (1.0 - p)  # y = x·(1 − p)


def dropout_not_inverted_backward(
    grad_out: FloatArray, x: FloatArray, mask: FloatArray, p: float, training: bool = True
) -> FloatArray:
    """``∂L/∂x = g ⊙ mask`` in training (the book's ``dout * self.mask``), ``g·(1 − p)`` in
    evaluation (the book only calls backward after a training forward; this is the exact
    gradient of its evaluation output)."""
    keep, p = _check_dropout(x, mask, p, training)
    upstream = check_float_tensor(grad_out, "grad_out")
    check_same_dtype("x", x, grad_out=upstream)
    if upstream.shape != x.shape:
        raise ValueError(
            f"grad_out.shape={upstream.shape}, but dropout's output has shape {x.shape}"
        )
    if training:
        return upstream * keep
    return upstream * (1.0 - p)


# The catalog's model stays: Multilinear evaluates the magnitude through THIS forward (|x|·mask,
# |x|·(1 − p)), and x·mask is exact, x·(1 − p) three roundings (1 − p in double, its cast, the
# product), within the catalog's four.
DROPOUT_NOT_INVERTED = Convention(
    "dropout not inverted",
    "dropout",
    "train x·mask, evaluation x·(1 − p), no 1/(1 − p): the book's Dropout (ch. 6.4.3)",
    _alternative(
        "dropout not inverted (the book's): train x·mask, evaluation x·(1 − p)",
        forward=dropout_not_inverted,
        backward=dropout_not_inverted_backward,
    ),
)


# --- cross-entropy: the book adds 1e-7 inside the log ---------------------------------------------

BOOK_LOG_GUARD = 1e-7  # the book's cross_entropy_error: np.log(y + 1e-7)


def softmax_with_loss_log_guard(x: FloatArray, t: NDArray[Any]) -> FloatArray:
    """The book's SoftmaxWithLoss with its ``cross_entropy_error(y, t)``::

        y = softmax(x),   loss = −(1/N)·Σ_n Σ_c t_nc·log(y_nc + 1e-7)

    (class indices t pick log(y_{n,t_n} + 1e-7)). The 1e-7 guards against log 0; it also caps
    the loss of a confidently wrong row at −log 1e-7 ≈ 16.1 instead of the exact value.
    """
    x, t, indices = _check_softmax_with_loss(x, t)
    y = softmax(x, 1)
    batch = x.shape[0]
    if indices:
        picked = y[np.arange(batch), t]  # y_{n, t_n}
        return np.asarray(-np.sum(np.log(picked + BOOK_LOG_GUARD)) / batch)
    return np.asarray(-np.sum(t * np.log(y + BOOK_LOG_GUARD)) / batch)


def _softmax_with_loss_log_guard(x: Any, t: Any) -> Any:
    return softmax_with_loss_log_guard(x, losses_catalog._book_t(t))  # float indices -> int


# Rounding model of the forward, per row n and class c (k = C classes, u the unit roundoff).
# From catalog/softmax.py: ŷ_c = y_c·(1 + θ), |θ| ≤ c_s·u·R_c with c_s = 2L + k + 1 and
# R_c = 1 + a_c + A (one rounding of every logit included). Then
#   y + δ: δ's cast (u·δ) and the addition (u·(y + δ)); with ŷ's error, relative to y + δ:
#          ≤ u·(c_s·R_c + 2)  ->  log(y + δ) off by u·(c_s·R_c + 2) (absolute)
#   log call: L·u·|log(y + δ)|;  t·log (1), the k-term class sum (k − 1), relative to
#          Σ_c |t_c|·|log(y_c + δ)|;  Σ over the N rows (N − 1) and ÷ N (1): N·u·mean_n(…)
# With R_c ≥ 1 every term is within c·u·M for
#   c = c_s + 2 + L + k + N,   M = mean_n Σ_c |t_nc|·(R_nc + |log(y_nc + δ)|)
# The backward is the catalog's (the book returns (y − t)/N), and so is its model.


def _rows_of_t(x: Array, t: Array) -> Array:
    """t as one row of class weights per sample: one-hot rows for class indices."""
    if t.ndim == 1:
        return np.asarray((np.arange(x.shape[1]) == t[:, np.newaxis]).astype(np.float64))
    return np.abs(t)


def _log_guard_roundings(inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, int]:
    batch, k = inputs["x"].shape
    c_softmax = 2 * L + k + 1
    book = losses_catalog.SOFTMAX_WITH_LOSS_MODEL.roundings(inputs, kwargs)
    return {"out": c_softmax + 2 + L + k + batch, "grad_x": book["grad_x"]}


def _log_guard_magnitude(x: Array, t: Array) -> Array:
    s, carried, weighted, _ = _softmax_terms(x, 1)
    relative = 1 + carried + weighted  # R = 1 + a + A
    terms = _rows_of_t(x, t) * (relative + np.abs(np.log(s + BOOK_LOG_GUARD)))
    return np.asarray(np.sum(terms) / x.shape[0])


LOG_GUARD = Convention(
    "cross-entropy adds 1e-7 inside the log",
    "softmax_with_loss",
    "loss −mean Σ t·log(softmax(x) + 1e-7), backward still (y − t)/N: the book's "
    "SoftmaxWithLoss and cross_entropy_error",
    _alternative(
        "the book's SoftmaxWithLoss: −mean Σ t·log(y + 1e-7); backward (y − t)/N, which is not "
        "the exact gradient of that loss",
        forward=_softmax_with_loss_log_guard,
        tolerance=Formula(
            roundings=_log_guard_roundings,
            forward_magnitude=_log_guard_magnitude,
            backward_magnitudes=losses_catalog.SOFTMAX_WITH_LOSS_MODEL.backward_magnitudes,
        ),
        not_applicable={
            **catalog.get("softmax_with_loss").not_applicable,
            "directional_fd": "the book's backward (y − t)/N is the gradient of the loss WITHOUT "
            "the 1e-7: off by a relative 1e-7/y_t",
            "full_jacobian_fd": "the book's backward is not the gradient of its loss (see "
            "directional_fd)",
        },
    ),
)


# --- batch norm: the book's running statistics ----------------------------------------------------


def batch_norm_running_stats_variant(
    x: FloatArray,
    running_mean: FloatArray,
    running_var: FloatArray,
    momentum: float = 0.1,
    *,
    decay: bool,
    biased: bool,
) -> tuple[FloatArray, FloatArray]:
    """The running statistics after one training step, with the book's choices as switches::

        running ← m·running + (1 − m)·batch    decay: m weighs the OLD value (the book's
                                               momentum 0.9; torch's 0.1 weighs the batch)
        running ← (1 − m)·running + m·batch    otherwise (torch)
        batch variance Σ(x − μ)²/n             biased: what the book normalises with, keeps
        batch variance Σ(x − μ)²/(n − 1)       otherwise (torch keeps the unbiased one)

    Returns new arrays; validation and messages are refcnn's batch_norm_running_stats'.
    """
    x = _check_input(x, 2, "(N, C, *)")
    for name, value in (("running_mean", running_mean), ("running_var", running_var)):
        if value is None:
            raise ValueError(f"{name} must be an array of shape (C,), got None")
        _check_channel_vector(value, name, x)
    momentum = _check_momentum(momentum)
    axes = (0, *range(2, x.ndim))
    n = x.size // x.shape[1]
    if n == 1:
        raise ValueError(
            "Expected more than 1 value per channel when training (as torch), got "
            f"x.shape={x.shape}"
        )
    mean = x.mean(axis=axes)  # μ per channel
    centred = x - mean.reshape((1, x.shape[1]) + (1,) * (x.ndim - 2))
    variance = (centred * centred).sum(axis=axes) / (n if biased else n - 1)
    keep, new = (momentum, 1.0 - momentum) if decay else (1.0 - momentum, momentum)
    return keep * running_mean + new * mean, keep * running_var + new * variance


def _running_stats(decay: bool, biased: bool) -> Callable[..., Any]:
    def forward(x: Any, running_mean: Any, running_var: Any, momentum: float = 0.1) -> Any:
        """The new (running_mean, running_var) stacked as (2, C), like the catalog's entry."""
        return np.stack(
            batch_norm_running_stats_variant(
                x, running_mean, running_var, momentum, decay=decay, biased=biased
            )
        )

    return forward


def _running_stats_magnitude(decay: bool, biased: bool) -> Callable[..., Any]:
    """The catalog's model with the two weights swapped (decay) and E for the variance instead
    of E·n/(n − 1) (biased). The counts are the catalog's: swapping which weight is computed as
    1 − m moves the double rounding and the cast to the other term (2 + 1 + 1 either way), and
    Σd²/n rounds like Σd²/(n − 1)."""

    def magnitude(x: Array, running_mean: Array, running_var: Array, momentum: float) -> Array:
        axes, n = norm_catalog._channel_axes(x), norm_catalog._per_channel_count(x)
        mean_abs = np.abs(x).mean(axis=axes)
        variance_error = norm_catalog._variance_error(x, axes)[1].reshape(-1)
        if not biased:
            variance_error = variance_error * n / (n - 1)
        keep, new = (momentum, 1.0 - momentum) if decay else (1.0 - momentum, momentum)
        return np.stack(
            [
                keep * np.abs(running_mean) + new * mean_abs,
                keep * np.abs(running_var) + new * variance_error,
            ]
        )

    return magnitude


def _running_stats_variant(summary: str, decay: bool, biased: bool) -> dict[str, Any]:
    return _alternative(
        summary,
        forward=_running_stats(decay, biased),
        tolerance=Formula(
            roundings=norm_catalog._running_stats_roundings,
            forward_magnitude=_running_stats_magnitude(decay, biased),
        ),
    )


MOMENTUM_IS_DECAY = Convention(
    "batch norm momentum is the decay of the running value",
    "batch_norm_running_stats",
    "running = m·running + (1 − m)·batch: momentum weighs the old value (the book's and "
    "Keras' momentum 0.9/0.99, torch's 0.1 weighs the batch)",
    _running_stats_variant(
        "running statistics with m·running + (1 − m)·batch (unbiased variance)",
        decay=True,
        biased=False,
    ),
)

BIASED_RUNNING_VARIANCE = Convention(
    "batch norm running variance is biased",
    "batch_norm_running_stats",
    "the running variance tracks the biased batch variance Σ(x − μ)²/n, the one the output is "
    "normalised with (the book; torch tracks Σ(x − μ)²/(n − 1))",
    _running_stats_variant(
        "running statistics with the biased batch variance (torch's momentum)",
        decay=False,
        biased=True,
    ),
)

# What the book's BatchNormalization does: both at once (a candidate declaring both is judged
# against this one, see spec_for).
BOOK_RUNNING_STATISTICS = Convention(
    "batch norm momentum is the decay, running variance is biased (the book's running stats)",
    "batch_norm_running_stats",
    "running = m·running + (1 − m)·batch with the biased batch variance: the book's "
    "BatchNormalization, both conventions at once",
    _running_stats_variant(
        "the book's running statistics: m·running + (1 − m)·batch, biased variance",
        decay=True,
        biased=True,
    ),
)


# --- batch norm: per activation on 4-D input (the book) -------------------------------------------

BATCH_AXIS = (0,)  # per activation: every (c, h, w) has its own statistics over the batch


def batch_norm_per_activation(
    x: FloatArray,
    running_mean: FloatArray | None,
    running_var: FloatArray | None,
    weight: FloatArray | None = None,
    bias: FloatArray | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> FloatArray:
    """Training batch norm with statistics over the batch axis ONLY: every activation (c, h, w)
    is standardised with the mean and variance of its own N values. The book's
    BatchNormalization reshapes a 4-D input to (N, C·H·W) and normalises each column; torch's
    BatchNorm2d pools N·H·W values per channel. weight and bias stay per channel (C,). On 2-D
    (N, C) input the two agree. Evaluation is torch's (the running statistics are per channel).
    """
    _, shape, eps = _batch_norm_axes(
        x, running_mean, running_var, weight, bias, training, momentum, eps
    )
    if not training:
        return batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    x_hat, _ = _standardize(x, BATCH_AXIS, eps)  # x̂ = (x − μ_n)/√(σ²_n + eps), over n only
    return _affine(x_hat, weight, bias, shape)


def batch_norm_per_activation_backward(
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
    """The same backward as the catalog's, with means over the batch axis only::

        ∂L/∂x = r·(ĝ − mean_n(ĝ) − x̂·mean_n(ĝ·x̂)),   ĝ = g·weight
        ∂L/∂weight = Σ_{n,h,w} g·x̂,   ∂L/∂bias = Σ_{n,h,w} g

    weight and bias stay per channel, so their gradients sum over N, H and W as torch's.
    """
    axes, shape, eps = _batch_norm_axes(
        x, running_mean, running_var, weight, bias, training, momentum, eps
    )
    if not training:
        return batch_norm_backward(
            grad_out, x, running_mean, running_var, weight, bias, training, momentum, eps
        )
    grad_out = check_grad_out(grad_out, x, "the output")
    x_hat, inv_std = _standardize(x, BATCH_AXIS, eps)
    grad_x_hat, grad_weight, grad_bias = _affine_backward(
        grad_out, x_hat, weight, bias, shape, axes
    )
    return _standardize_backward(grad_x_hat, x_hat, inv_std, BATCH_AXIS), grad_weight, grad_bias


# The catalog's model (catalog/normalization.py) holds for statistics over any group of n
# values: here n = N (the batch) per activation, while weight and bias still sum over
# n_γ = N·H·W values. So c_out = N + 7, c_grad_x = N + 5, c_grad_weight = max(n_γ, N + 5),
# c_grad_bias = n_γ, and the magnitudes are the catalog's with the statistics over axis 0.


def _per_activation_roundings(
    inputs: Mapping[str, Any], kwargs: Mapping[str, Any]
) -> dict[str, int]:
    x = inputs["x"]
    if not kwargs["training"]:
        return dict(norm_catalog._batch_norm_roundings(inputs, kwargs))
    n, n_gamma = x.shape[0], norm_catalog._per_channel_count(x)
    return {"out": n + 7, "grad_x": n + 5, "grad_weight": max(n_gamma, n + 5), "grad_bias": n_gamma}


def _per_activation_out(
    x: Array,
    running_mean: Array | None,
    running_var: Array | None,
    weight: Array | None,
    bias: Array | None,
    training: bool,
    eps: float,
) -> Array:
    """|γ|·X + |β| with X over the batch axis."""
    if not training:
        return norm_catalog._batch_norm_out_magnitude(
            x, running_mean, running_var, weight, bias, training, eps
        )
    shape = norm_catalog._channel_shape(x)
    gamma = norm_catalog._abs_or(None if weight is None else weight.reshape(shape), 1.0)
    beta = norm_catalog._abs_or(None if bias is None else bias.reshape(shape), 0.0)
    error = norm_catalog._error_terms(x, BATCH_AXIS, eps).x_hat_error
    return np.asarray(gamma * error + beta)


def _per_activation_grads(
    grad_out: Array,
    x: Array,
    running_mean: Array | None,
    running_var: Array | None,
    weight: Array | None,
    bias: Array | None,
    training: bool,
    eps: float,
) -> dict[str, Array]:
    if not training:
        return norm_catalog._batch_norm_grad_magnitudes(
            grad_out, x, running_mean, running_var, weight, bias, training, eps
        )
    shape = norm_catalog._channel_shape(x)
    gamma = norm_catalog._abs_or(None if weight is None else weight.reshape(shape), 1.0)
    terms = norm_catalog._error_terms(x, BATCH_AXIS, eps)
    grad_x = norm_catalog._grad_x_magnitude(terms, np.abs(grad_out) * gamma, BATCH_AXIS)
    affine = norm_catalog._affine_magnitudes(
        grad_out, terms.x_hat, terms.x_hat_error, norm_catalog._channel_axes(x), (x.shape[1],)
    )
    return {"x": grad_x, **affine}


def _per_activation_x(
    rng: np.random.Generator, shape: tuple[int, ...], params: Params
) -> NDArray[np.float64]:
    """The catalog's z·scale + offset with one offset, scale and standardised noise per
    ACTIVATION (the group its statistics run over): zero spread, the singular point, stays away
    from every group, as the catalog's per-channel fill does for torch's groups."""
    activation = (1, *shape[1:])
    return norm_catalog._shifted_normal(rng, shape, params, activation, activation)


PER_ACTIVATION = Convention(
    "batch norm per activation on 4-D input",
    "batch_norm_train",
    "training statistics over N only, per (c, h, w), not over N·H·W per channel: the book's "
    "BatchNormalization reshapes x to (N, C·H·W)",
    _alternative(
        "batch norm with statistics per activation (over the batch axis only), the book's",
        forward=batch_norm_per_activation,
        backward=batch_norm_per_activation_backward,
        tolerance=Formula(
            roundings=_per_activation_roundings,
            forward_magnitude=_per_activation_out,
            backward_magnitudes=_per_activation_grads,
            degree=1,
        ),
        fill={**catalog.get("batch_norm_train").fill, "x": _per_activation_x},
    ),
)


# --- optimizers -----------------------------------------------------------------------------------


def trajectory_variant(
    optimizer_class: type[optim.Optimizer],
    buffers: Callable[[Mapping[str, Any]], tuple[str, ...]],
    error: Callable[..., Array],
) -> dict[str, Any]:
    """The fields of an optimizer variant: its trajectory (``optimizer_class``'s step function
    run like the catalog runs refcnn.optim) and its running error bound ``error``."""
    return {
        "forward": optim_catalog._trajectory(optimizer_class, buffers),
        "tolerance": Formula(
            roundings=optim_catalog._counts_in_the_magnitude,
            forward_magnitude=optim_catalog._with_defaults(optimizer_class, error),
        ),
    }


# The running error bound's rules and helpers are the catalog's (catalog/optimizers.py).
_exact = optim_catalog._exact
_sum = optim_catalog._sum
_scaled = optim_catalog._scaled
_quotient = optim_catalog._quotient
_square = optim_catalog._square
_sqrt = optim_catalog._sqrt
_plus_eps = optim_catalog._plus_eps
_ema = optim_catalog._ema
_difference = optim_catalog._difference
_maximum = optim_catalog._maximum
_grad_with_decay = optim_catalog._grad_with_decay
_decoupled_decay = optim_catalog._decoupled_decay
_bias_correction = optim_catalog._bias_correction
_stacked = optim_catalog._stacked


# RMSprop ------------------------------------------------------------------------------------------


def rmsprop_eps_inside_step(
    param: FloatArray,
    grad: FloatArray,
    state: optim.State | None = None,
    *,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
) -> tuple[FloatArray, optim.State]:
    """torch.optim.RMSprop's step with eps INSIDE the root (TensorFlow's ApplyRMSProp and
    tf.compat.v1.train.RMSPropOptimizer)::

        v ← α·v + (1 − α)·g²;  a = √(v + eps)   (centered: √(v − ḡ² + eps))
        b ← μ·b + g/a and θ ← θ − lr·b (μ > 0), else θ ← θ − lr·g/a
    """
    buffers = ("square_avg",) + (("momentum_buffer",) if momentum > 0 else ())
    buffers += ("grad_avg",) if centered else ()
    fresh: optim.State = {"step": 0, **{b: np.zeros_like(param) for b in buffers}}
    old = dict(state) if state else fresh
    grad = _effective_grad(param, grad, weight_decay, maximize)
    alpha = float(alpha)
    new: optim.State = {"step": int(old["step"]) + 1}
    square_avg = alpha * old["square_avg"] + (1.0 - alpha) * (grad * grad)  # v
    new["square_avg"] = square_avg
    spread = square_avg
    if centered:
        grad_avg = alpha * old["grad_avg"] + (1.0 - alpha) * grad  # ḡ
        spread = square_avg - grad_avg * grad_avg  # v − ḡ²
    avg = np.sqrt(spread + float(eps))  # a = √(v + eps): eps inside
    if momentum > 0:
        new["momentum_buffer"] = float(momentum) * old["momentum_buffer"] + grad / avg
        new_param = param - float(lr) * new["momentum_buffer"]
    else:
        new_param = param - float(lr) * (grad / avg)
    if centered:
        new["grad_avg"] = grad_avg
    return new_param, new


class _RMSpropEpsInside(optim.RMSprop):
    step_function = staticmethod(rmsprop_eps_inside_step)


def _rmsprop_eps_inside_error(
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
    """The catalog's RMSprop bound with a = √(x + eps) (x = v or v − ḡ²): + eps, then √."""
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
        avg = _sqrt(_plus_eps(spread, eps))
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


RMSPROP_EPS_INSIDE = Convention(
    "RMSprop eps inside the square root",
    "rmsprop",
    "θ ← θ − lr·g/√(v + eps) instead of g/(√v + eps): TensorFlow's ApplyRMSProp "
    "(tf.compat.v1.train.RMSPropOptimizer)",
    _alternative(
        "torch.optim.RMSprop with eps inside the root: g/√(v + eps)",
        **trajectory_variant(
            _RMSpropEpsInside, optim_catalog._rmsprop_buffers, _rmsprop_eps_inside_error
        ),
    ),
)


# Adagrad ------------------------------------------------------------------------------------------


def adagrad_eps_inside_step(
    param: FloatArray,
    grad: FloatArray,
    state: optim.State | None = None,
    *,
    lr: float = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> tuple[FloatArray, optim.State]:
    """torch.optim.Adagrad's step with eps INSIDE the root (TensorFlow Federated's
    build_adagrad: w ← w − lr·g/√(s + eps))::

        s ← s + g²;  θ ← θ − lr/(1 + (t − 1)·lr_decay) · g/√(s + eps)
    """
    old = dict(state) if state else optim.adagrad_init(param, initial_accumulator_value)
    step = int(old["step"]) + 1
    grad = _effective_grad(param, grad, weight_decay, maximize)
    clr = float(lr) / (1.0 + (step - 1) * float(lr_decay))
    accumulated = old["sum"] + grad * grad  # s ← s + g²
    std = np.sqrt(accumulated + float(eps))  # √(s + eps): eps inside
    return param - clr * (grad / std), {"step": step, "sum": accumulated}


class _AdagradEpsInside(optim.Adagrad):
    step_function = staticmethod(adagrad_eps_inside_step)


def _adagrad_eps_inside_error(
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
    """The catalog's Adagrad bound with √(s + eps): + eps, then √."""
    theta, rows = _exact(params), []
    total = (
        np.full_like(params, initial_accumulator_value),
        np.full_like(params, abs(initial_accumulator_value)),
    )
    for step, grad in enumerate(grads, start=1):
        effective = _grad_with_decay(theta, grad, weight_decay, maximize)
        clr = lr / (1.0 + (step - 1) * lr_decay)
        total = _sum(total, _square(effective))
        std = _sqrt(_plus_eps(total, eps))
        theta = _sum(theta, _scaled(_quotient(effective, std), -clr, 4.0))
        rows.append([theta[1], total[1]])
    return _stacked(rows)


ADAGRAD_EPS_INSIDE = Convention(
    "Adagrad eps inside the square root",
    "adagrad",
    "θ ← θ − clr·g/√(s + eps) instead of g/(√s + eps): TensorFlow Federated's build_adagrad",
    _alternative(
        "torch.optim.Adagrad with eps inside the root: g/√(s + eps)",
        **trajectory_variant(_AdagradEpsInside, lambda kwargs: ("sum",), _adagrad_eps_inside_error),
    ),
)


# Adam ---------------------------------------------------------------------------------------------


def adam_step_with_step_size(
    param: FloatArray,
    grad: FloatArray,
    state: optim.State | None,
    step_size: Callable[[int], float],
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> tuple[FloatArray, optim.State]:
    """torch.optim.Adam's state update (m, v, v_max, t, weight decay), then
    ``θ ← θ − s_t·m/(√v + eps)`` with ``s_t = step_size(t)`` and eps on the UNcorrected √v."""
    _, new = optim.adam_step(
        param,
        grad,
        state,
        lr=lr,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
        amsgrad=amsgrad,
        maximize=maximize,
        decoupled_weight_decay=decoupled_weight_decay,
    )  # torch's moments, maximum and step count; only the final update differs
    if decoupled_weight_decay and weight_decay != 0:
        param = param * (1.0 - float(lr) * float(weight_decay))  # θ·(1 − lr·λ), as torch
    second = new["max_exp_avg_sq"] if amsgrad else new["exp_avg_sq"]
    update = new["exp_avg"] / (np.sqrt(second) + float(eps))  # m/(√v + eps)
    return param - step_size(int(new["step"])) * update, new


def adam_folded_step(
    param: FloatArray,
    grad: FloatArray,
    state: optim.State | None = None,
    **hyperparameters: Any,
) -> tuple[FloatArray, optim.State]:
    """Adam with both bias corrections folded into the step size (the book's Adam, the Adam
    paper's "more efficient" ordering, TensorFlow 1's AdamOptimizer)::

        m, v (v_max) and t as torch.optim.Adam
        lr_t = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ);   θ ← θ − lr_t·m/(√v + eps)

    In exact arithmetic this is torch's rule with the step-dependent eps/√(1 − β₂ᵗ): eps is
    added to the UNcorrected √v.
    """
    lr = float(hyperparameters.get("lr", 1e-3))
    beta1, beta2 = (float(beta) for beta in hyperparameters.get("betas", (0.9, 0.999)))

    def step_size(step: int) -> float:
        return float(lr * (1.0 - beta2**step) ** 0.5 / (1.0 - beta1**step))  # lr_t, in double

    return adam_step_with_step_size(param, grad, state, step_size, **hyperparameters)


class _AdamFolded(optim.Adam):
    step_function = staticmethod(adam_folded_step)


def adam_error(
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
    step_size: Callable[[float, int], tuple[float, float]],
) -> Array:
    """The catalog's Adam bound for an update θ ← θ − s_t·m/(√v + eps) (eps on the UNcorrected
    √v), where ``step_size(lr, t)`` gives s_t and its relative rounding count."""
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
        denom = _plus_eps(_sqrt(second), eps)
        size, size_roundings = step_size(lr, step)
        theta = _sum(theta, _scaled(_quotient(exp_avg, denom), -size, size_roundings))
        row = [theta[1], exp_avg[1], exp_avg_sq[1]]
        rows.append(row + ([max_sq[1]] if amsgrad else []))
    return _stacked(rows)


def _folded_error(params: Array, grads: Array, **hyperparameters: Any) -> Array:
    """lr_t = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) in double: 1 − β₂ᵗ (r₂), ** 0.5 (r₂/2 + L), ·lr (1),
    1 − β₁ᵗ (r₁) and ÷ (1), the cast (1): r₁ + r₂/2 + L + 3."""
    beta1, beta2 = hyperparameters["betas"]

    def step_size(lr: float, step: int) -> tuple[float, float]:
        correction1, r1 = _bias_correction(beta1, step)
        correction2, r2 = _bias_correction(beta2, step)
        return lr * correction2**0.5 / correction1, r1 + r2 / 2.0 + L + 3.0

    return adam_error(params, grads, step_size=step_size, **hyperparameters)


ADAM_FOLDED = Convention(
    "Adam bias correction folded into the step size",
    "adam",
    "lr_t = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ), θ ← θ − lr_t·m/(√v + eps): eps on the uncorrected √v "
    "(the book's Adam, the Adam paper's efficient form, TensorFlow 1)",
    _alternative(
        "Adam with the bias corrections folded into lr_t = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)",
        **trajectory_variant(_AdamFolded, optim_catalog._adam_buffers, _folded_error),
    ),
)


# --- MSE: ½·Σ(y − t)²/N ---------------------------------------------------------------------------


def _batch_size(prediction: FloatArray) -> int:
    """N, the length of the first axis of a batch (ndim ≥ 2); a vector or a scalar is ONE
    sample, as the copies' ``y.reshape(1, y.size)`` makes it."""
    return int(prediction.shape[0]) if prediction.ndim >= 2 else 1


def mse_loss_half_over_batch(
    prediction: FloatArray, target: FloatArray, reduction: str = "mean"
) -> FloatArray:
    """The book's mean squared error with a batch: ℓ = ½·(y − t)² per element and 'mean'
    divided by the BATCH size N (the first axis; 1 for a vector), not by the element count::

        'mean': ½·Σ(y − t)²/N      'sum': ½·Σ(y − t)²      'none': ½·(y − t)²

    The book's mean_squared_error is ½·Σ(y − t)² for one sample; its batched copies
    (``0.5 * np.sum((y - t) ** 2) / batch_size`` after ``y.reshape(1, y.size)`` for a vector)
    divide by the batch size, like the book's cross_entropy_error.
    """
    prediction, target, reduction = _check_regression(prediction, target, reduction)
    difference = prediction - target
    return _reduce(0.5 * (difference * difference), reduction, _batch_size(prediction))


def mse_loss_half_over_batch_backward(
    grad_out: FloatArray, prediction: FloatArray, target: FloatArray, reduction: str = "mean"
) -> FloatArray:
    """``∂L/∂y = a·(y − t)``, a = g/N for 'mean', g otherwise (the ½ cancels the 2)."""
    prediction, target, reduction = _check_regression(prediction, target, reduction)
    upstream = _check_upstream(grad_out, prediction, "prediction", prediction.shape, reduction)
    scale = upstream / _batch_size(prediction) if reduction == "mean" else upstream
    return scale * (prediction - target)


# The catalog's MSE model, halved and reduced over N: d = y − t (1), ½·d·d (1; ½ is exact),
# y's rounding moves ℓ by |d|·u|y|: c_e = 3, M_e = ½·(d² + 2|d|·|y|). 'mean' sums n elements
# (n − 1) and divides by N (1; torch-style ·(1/N): 2), the catalog's n + 4 covers it; the
# magnitude is Σ M_e/N. Backward a·d: d (1), g/N (1 or 2), the product (1): the catalog's 2 (+2
# for 'mean') covers it, M = |a|·|d|.


def _half_over_batch_out(prediction: Array, target: Array, reduction: str = "mean") -> Array:
    per_element = 0.5 * losses_catalog._mse_element(prediction, target)
    return losses_catalog._reduced(per_element, reduction, _batch_size(prediction))


def _half_over_batch_grad(
    upstream: Array, prediction: Array, target: Array, reduction: str = "mean"
) -> dict[str, Array]:
    scale = losses_catalog._scale(upstream, reduction, _batch_size(prediction))
    return {"prediction": scale * np.abs(prediction - target)}


MSE_HALF_OVER_BATCH = Convention(
    "MSE is 0.5·Σ(y−t)²/N",
    "mse_loss",
    "½·(y − t)² per element, 'mean' over the batch size N (the first axis), not the element "
    "count: the book's mean_squared_error as its batched copies write it",
    _alternative(
        "the book's MSE: ½·Σ(y − t)²/N, N the batch size",
        forward=mse_loss_half_over_batch,
        backward=mse_loss_half_over_batch_backward,
        tolerance=Formula(
            roundings=losses_catalog.MSE_MODEL.roundings,
            forward_magnitude=_half_over_batch_out,
            backward_magnitudes=_half_over_batch_grad,
        ),
    ),
)


# --- im2col: the transposed layout ----------------------------------------------------------------


def im2col_transposed(
    x: FloatArray,
    kernel_size: object,
    stride: object = 1,
    padding: object = 0,
    dilation: object = 1,
) -> FloatArray:
    """im2col with one window per COLUMN: (C·KH·KW, N·OH·OW), the transpose of the book's
    (N·OH·OW, C·KH·KW). Caffe's im2col and torch's unfold lay each image out this way (rows
    (c, i, j), one column per window); here the images sit side by side, columns (n, oh, ow).
    """
    return np.ascontiguousarray(im2col(x, kernel_size, stride, padding, dilation).T)


def im2col_transposed_backward(grad_out: FloatArray, x: FloatArray, **geometry: Any) -> FloatArray:
    """col2im of the transposed gradient: every copy of a pixel sends its gradient home. The
    upstream is checked in ITS layout here (col2im would name the transposed shape)."""
    col, x = check_float_tensor(grad_out, "col"), check_float_tensor(x, "x")
    check_same_dtype("x", x, col=col)
    expected = im2col_transposed(x, **geometry).shape  # the forward's shape (small samples)
    if col.ndim == 2 and col.shape != expected:  # (col2im rejects the other ranks)
        raise ValueError(f"col.shape={col.shape}, but im2col's output has shape {expected}")
    return col2im(np.ascontiguousarray(col.T), x.shape, **geometry)


# The catalog's Multilinear model evaluates its magnitudes through this forward and backward:
# the same copies (0 roundings) and the same KH·KW-term sums, transposed.
IM2COL_TRANSPOSED = Convention(
    "im2col returns the transposed layout",
    "im2col",
    "(C·KH·KW, N·OH·OW), one window per column: Caffe's and torch unfold's per-image layout, "
    "images side by side",
    _alternative(
        "im2col with one window per column: (C·KH·KW, N·OH·OW)",
        forward=im2col_transposed,
        backward=im2col_transposed_backward,
    ),
)


# --- max pooling over zero padding ----------------------------------------------------------------


def _zero_padded_choice(x: FloatArray, geometry: Any) -> tuple[FloatArray, NDArray[np.intp]]:
    """Each window's values with everything outside x read as 0 (N, OH, OW, C, K), and the
    position np.argmax picks: the first largest in row-major window order, padding included
    (the first NaN when there is one)."""
    values = _windows(x, geometry)  # im2col of the zero-padded image
    return values, np.argmax(values, axis=-1)


def max_pool2d_zero_padded(
    x: FloatArray,
    kernel_size: object,
    stride: object = None,
    padding: object = 0,
    dilation: object = 1,
    ceil_mode: bool = False,
) -> FloatArray:
    """Max pooling over the ZERO-padded image: the book's Pooling (im2col with pad, then
    np.max per row). Where torch never picks padding (it acts as −inf), here a window whose
    pixels are all negative and that reaches into the padding gives 0. Everything outside x
    reads 0, the ceil_mode overhang too (as an im2col over a larger pad would)."""
    batch = _as_batch(x)
    geometry = pooling_geometry(batch.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    values, chosen = _zero_padded_choice(batch, geometry)
    out = np.take_along_axis(values, chosen[..., np.newaxis], axis=-1)[..., 0]
    return _like_input(out.transpose(0, 3, 1, 2), x)


def max_pool2d_zero_padded_backward(
    grad_out: FloatArray,
    x: FloatArray,
    kernel_size: object,
    stride: object = None,
    padding: object = 0,
    dilation: object = 1,
    ceil_mode: bool = False,
) -> FloatArray:
    """Each window's gradient to the position it chose (the book's ``dmax[…, arg_max] = dout``
    then col2im): a window that chose padding sends its gradient nowhere."""
    batch = _as_batch(x)
    geometry = pooling_geometry(batch.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    upstream = _upstream_batch(grad_out, x, (*batch.shape[:2], *geometry.output_size))
    values, chosen = _zero_padded_choice(batch, geometry)
    grad_rows = np.zeros_like(values)
    np.put_along_axis(
        grad_rows, chosen[..., np.newaxis], upstream.transpose(0, 2, 3, 1)[..., np.newaxis], -1
    )
    return _like_input(_scatter_windows(grad_rows, batch.shape, geometry), x)


# Rounding: as the catalog's, a selection (c = 0, finite differences add one rounding of the
# chosen pixel) and sums of the upstream values of the windows that chose a pixel (at most the
# windows containing it, minus one); the magnitudes through THIS choice: |out| and the backward
# with |G|.


def _zero_padded_out(x: Array, **kwargs: Any) -> Array:
    return np.abs(max_pool2d_zero_padded(x, **kwargs))


def _zero_padded_grad(upstream: Array, x: Array, **kwargs: Any) -> dict[str, FloatArray]:
    return {"x": max_pool2d_zero_padded_backward(np.abs(upstream), x, **kwargs)}


def _distinct_values_off_zero(
    rng: np.random.Generator, shape: tuple[int, ...], params: Params
) -> NDArray[np.float64]:
    """The catalog's distinct grid on [−2, 2] moved by a quarter step: 0 is a kink here (a
    pixel ties with the padding), and no value lies within a quarter step (≥ 2e-3) of it."""
    plane = shape[-2] * shape[-1]
    step = 4.0 / (plane - 1) if plane > 1 else 1.0
    values: NDArray[np.float64] = catalog.get("max_pool2d").fill["x"](rng, shape, params)
    return values + step / 4


ZERO_PADDED_MAX_POOL = Convention(
    "max pooling pads with zeros",
    "max_pool2d",
    "windows read 0 outside the input, so an all-negative window in the padding gives 0 (torch "
    "pads with −inf): the book's Pooling, im2col then np.max",
    _alternative(
        "max pooling over the zero-padded image (the book's Pooling)",
        forward=max_pool2d_zero_padded,
        backward=max_pool2d_zero_padded_backward,
        tolerance=Formula(
            roundings=_max_pool_roundings,
            forward_magnitude=_zero_padded_out,
            backward_magnitudes=_zero_padded_grad,
            degree=1,
        ),
        fill={"x": _distinct_values_off_zero},
    ),
)


# --- the registry ---------------------------------------------------------------------------------

CONVENTIONS: tuple[Convention, ...] = (
    DROPOUT_NOT_INVERTED,
    LOG_GUARD,
    MOMENTUM_IS_DECAY,
    BIASED_RUNNING_VARIANCE,
    BOOK_RUNNING_STATISTICS,
    PER_ACTIVATION,
    RMSPROP_EPS_INSIDE,
    ADAGRAD_EPS_INSIDE,
    ADAM_FOLDED,
    MSE_HALF_OVER_BATCH,
    IM2COL_TRANSPOSED,
    ZERO_PADDED_MAX_POOL,
)

# Conventions declared together that one variant implements at once (the book's batch norm
# keeps both of its running-statistics conventions).
COMBINED: dict[frozenset[str], str] = {
    frozenset((MOMENTUM_IS_DECAY.name, BIASED_RUNNING_VARIANCE.name)): BOOK_RUNNING_STATISTICS.name,
}


def get(name: str) -> Convention:
    for convention in CONVENTIONS:
        if convention.name == name:
            return convention
    raise KeyError(f"no convention {name!r}; known: {[c.name for c in CONVENTIONS]}")


def for_op(op: str) -> tuple[Convention, ...]:
    """The conventions of catalog op ``op``."""
    return tuple(convention for convention in CONVENTIONS if convention.op == op)


def spec_for(op: str, declared: Iterable[str]) -> OpSpec:
    """The spec a candidate declaring the conventions ``declared`` is judged against for ``op``:
    the catalog's when it declares none of ``op``'s, the convention's when one, the variant that
    combines them when several (:data:`COMBINED`); ValueError for an unknown name or for
    conventions of one op that no variant combines."""
    names = set(declared)
    for name in names:
        get(name)  # KeyError for a name that is not a convention
    mine = frozenset(name for name in names if get(name).op == op)
    if not mine:
        return catalog.get(op)
    if len(mine) == 1:
        return get(next(iter(mine))).spec()
    if mine in COMBINED:
        return get(COMBINED[mine]).spec()
    raise ValueError(f"conventions {sorted(mine)} of {op} are not combined by any variant")
