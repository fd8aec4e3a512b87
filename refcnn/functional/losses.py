"""Loss functions, ``torch.nn.functional`` names: forward and explicit backward per loss.

A loss compares a prediction with a target, position by position, then reduces::

    reduction='none'   the per-position losses ℓ (shaped like the target, class axis removed)
    reduction='sum'    Σ ℓ                                 (a 0-d array)
    reduction='mean'   Σ ℓ / D                             (a 0-d array)

D is the number of positions, except for cross_entropy/nll_loss with class-index targets, where
it is the total weight Σ weight[target] of the targets not ignored (torch's rule).

Every ``<loss>_backward(grad_out, <the loss's inputs>, <its keyword arguments>)`` returns the
gradient with respect to the FIRST input only (logits, log-probabilities, predictions,
probabilities): targets, class weights and pos_weight are data. ``grad_out`` is the upstream
gradient: a 0-d array for 'mean' and 'sum', shaped like the per-position loss for 'none'. The
gradient scales with it: a loss is usually the last node of a graph (upstream 1), but not always
(a weighted sum of losses).

Class axis: logits of shape (N, C, d1, …) (or (C,) for one unbatched sample), class-index
targets (N, d1, …) (or ()), probability targets shaped like the logits. refcnn decides by dtype:
integer targets are class indices, floating targets are probabilities (and must then have the
logits' shape and dtype). torch decides by shape: a target shaped like the logits is
probabilities (and must be floating), any other shape class indices (int64 or uint8). A target
that both accept is read the same way by both; the rules differ only in which calls raise, and
with which error.

Stable forms (no overflow, no log 0)::

    log softmax:        z − log Σ exp(z),  z = x − max x          (refcnn.functional.softmax)
    BCE with logits:    max(x, 0) − x·t + log1p(exp(−|x|))        = −t·log σ(x) − (1−t)·log σ(−x)
    BCE:                log p and log1p(−p) clamped at −100        (torch's choice: log 0 = −inf)

The derivations, step by step and doctested: docs/losses.md.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from numpy.typing import NDArray

from refcnn.functional.activations import sigmoid
from refcnn.functional.softmax import log_softmax
from refcnn.geometry import FloatArray, check_float_tensor, check_same_dtype

IntArray = NDArray[np.integer[Any]]
REDUCTIONS = ("none", "mean", "sum")
# torch clamps the logarithms of binary_cross_entropy at −100 (log 0 would give inf·0 = NaN) and
# floors the p·(1 − p) of its gradient at EPSILON, a C++ float: 1e-12 rounded to float32.
BCE_LOG_FLOOR = -100.0
BCE_EPSILON = float(np.float32(1e-12))


# --- validation ---------------------------------------------------------------------------------


def _check_reduction(reduction: object) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got reduction={reduction!r}")
    return str(reduction)


def _real(value: object, name: str, low: float, high: float = math.inf) -> float:
    """A hyperparameter as a Python float in [low, high] (never np.float64: that would upcast)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, got {name}={value!r}")
    result = float(value)
    if not low <= result <= high:  # NaN fails too
        raise ValueError(f"{name} must be in [{low}, {high}], got {name}={value!r}")
    return result


def _check_same_shape(name: str, reference: FloatArray, target: FloatArray) -> None:
    """Regression and binary losses compare position by position: no broadcasting."""
    if target.shape != reference.shape:
        raise ValueError(
            f"target.shape={target.shape} differs from {name}.shape={reference.shape}; "
            "refcnn does not broadcast a target (torch warns, then broadcasts)"
        )


def _check_broadcast(value: object, name: str, like: FloatArray, like_name: str) -> Any:
    """An optional per-element weight that must broadcast to ``like``'s shape (not enlarge it)."""
    if value is None:
        return None
    array = check_float_tensor(value, name)
    check_same_dtype(like_name, like, **{name: array})
    try:
        shape: tuple[int, ...] | None = np.broadcast_shapes(array.shape, like.shape)
    except ValueError:
        shape = None
    if shape != like.shape:
        raise ValueError(
            f"{name}.shape={array.shape} does not broadcast to {like_name}.shape={like.shape}"
        )
    return array


def _check_upstream(
    grad_out: object, like: FloatArray, like_name: str, loss_shape: tuple[int, ...], reduction: str
) -> FloatArray:
    """grad_out: 0-d for 'mean'/'sum', the per-position loss's shape for 'none'; like's dtype."""
    upstream = check_float_tensor(grad_out, "grad_out")
    check_same_dtype(like_name, like, grad_out=upstream)
    expected = loss_shape if reduction == "none" else ()
    if upstream.shape != expected:
        raise ValueError(
            f"grad_out.shape={upstream.shape}, but the loss (reduction={reduction!r}) has shape "
            f"{expected}"
        )
    return upstream


def _in_unit_interval(values: FloatArray, name: str, torch_name: str) -> None:
    """Every value in [0, 1] (NaN is not); torch raises the same for BCE's input and target."""
    outside = ~((values >= 0) & (values <= 1))
    if np.any(outside):
        index = tuple(int(i) for i in np.argwhere(outside)[0])
        raise ValueError(
            f"{name} must lie in [0, 1] (torch: all elements of {torch_name} should be between "
            f"0 and 1), got {name}[{index}]={float(values[index])!r}"
        )


# --- reductions ---------------------------------------------------------------------------------


def _reduce(losses: FloatArray, reduction: str, denominator: Any) -> FloatArray:
    """'none': ℓ itself; 'sum': Σ ℓ; 'mean': Σ ℓ / denominator (0/0 = NaN, as torch)."""
    if reduction == "none":
        return losses
    total = np.sum(losses)
    if reduction == "sum":
        return np.asarray(total)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(total / denominator)


def _per_position(upstream: FloatArray, reduction: str, denominator: Any) -> FloatArray:
    """∂L/∂ℓ for every position: g ('none', 'sum': every ℓ counts once) or g / D ('mean')."""
    if reduction == "mean":
        scaled: FloatArray = upstream / denominator
        return scaled
    return upstream


# --- classification: cross_entropy, nll_loss ----------------------------------------------------


def _classes_last(values: FloatArray) -> FloatArray:
    """(N, C, d1, …) -> (N, d1, …, C): one row of C class scores per position; (C,) stays."""
    return np.moveaxis(values, 1, -1) if values.ndim >= 2 else values


def _classes_back(values: FloatArray) -> FloatArray:
    """The inverse of :func:`_classes_last`."""
    return np.moveaxis(values, -1, 1) if values.ndim >= 2 else values


def _check_scores(scores: object, name: str) -> FloatArray:
    """Logits or log-probabilities: (C,) or (N, C, d1, …), floating."""
    scores = check_float_tensor(scores, name)
    if scores.ndim == 0:
        raise ValueError(f"{name} must have a class axis, (C,) or (N, C, d1, ...), got a 0-d array")
    return scores


def _check_class_weight(weight: object, scores: FloatArray, name: str) -> FloatArray:
    """weight: (C,) in the scores' dtype; all ones when None."""
    classes = scores.shape[1] if scores.ndim >= 2 else scores.shape[0]
    if weight is None:
        return np.ones(classes, dtype=scores.dtype)
    weight = check_float_tensor(weight, "weight")
    check_same_dtype(name, scores, weight=weight)
    if weight.shape != (classes,):
        raise ValueError(
            f"weight.shape={weight.shape}, but {name}.shape={scores.shape} has C={classes} "
            "classes: weight must be (C,)"
        )
    return weight


def _check_class_indices(
    target: object, scores: FloatArray, name: str, ignore_index: object
) -> tuple[IntArray, NDArray[np.bool_]]:
    """Class-index target: shape (N, d1, …) for scores (N, C, d1, …), () for (C,); every index
    in [0, C) or equal to ignore_index (None: none is ignored). Returns (target, mask of the
    positions not ignored)."""
    if not isinstance(target, np.ndarray):
        raise TypeError(f"target must be a numpy.ndarray, got {type(target).__name__}")
    if not np.issubdtype(target.dtype, np.integer):
        raise TypeError(
            f"target must hold class indices (an integer dtype), got target.dtype={target.dtype}"
        )
    if ignore_index is not None and (
        not isinstance(ignore_index, numbers.Integral) or isinstance(ignore_index, bool)
    ):
        raise TypeError(f"ignore_index must be an int, got ignore_index={ignore_index!r}")
    expected = (scores.shape[0], *scores.shape[2:]) if scores.ndim >= 2 else ()
    if target.shape != expected:
        raise ValueError(
            f"target.shape={target.shape}, but {name}.shape={scores.shape} needs class indices "
            f"of shape {expected}"
        )
    classes = scores.shape[1] if scores.ndim >= 2 else scores.shape[0]
    kept = target != ignore_index if ignore_index is not None else np.ones(target.shape, bool)
    outside = kept & ((target < 0) | (target >= classes))
    if np.any(outside):
        index = tuple(int(i) for i in np.argwhere(outside)[0])
        ignored = "" if ignore_index is None else f" and not ignore_index={ignore_index}"
        raise ValueError(
            f"target holds the class index {int(target[index])} at {index}, outside [0, "
            f"{classes}) for C={classes} classes{ignored}"
        )
    return target, kept


def _take_class(rows: FloatArray, classes: IntArray) -> FloatArray:
    """rows[..., classes]: the entry of each row at its class (rows classes-last)."""
    picked: FloatArray = np.take_along_axis(rows, classes[..., np.newaxis], axis=-1)[..., 0]
    return picked


def _smoothing(label_smoothing: object) -> float:
    return _real(label_smoothing, "label_smoothing", 0.0, 1.0)


def cross_entropy(
    logits: FloatArray,
    target: NDArray[Any],
    weight: FloatArray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> FloatArray:
    """``F.cross_entropy``: −log softmax(logits) at the target, weighted, smoothed and reduced.

    Class indices t (integer target), with w = weight (ones if None), ε = label_smoothing,
    log p = log_softmax(logits) along the class axis, per position not ignored::

        ℓ = (1 − ε)·w[t]·(−log p_t) + (ε/C)·Σ_c w_c·(−log p_c)        (0 where t = ignore_index)
        'mean' divides Σ ℓ by Σ w[t] over the positions not ignored (0/0 = NaN if none is left)

    Probabilities q (floating target, logits' shape; q' = (1 − ε)·q + ε/C)::

        ℓ = −Σ_c w_c·q'_c·log p_c          'mean' divides by the number of positions, not by Σ w

    See docs/losses.md.
    """
    logits = _check_scores(logits, "logits")
    weight = _check_class_weight(weight, logits, "logits")
    reduction, smoothing = _check_reduction(reduction), _smoothing(label_smoothing)
    class_axis = 1 if logits.ndim >= 2 else 0
    log_probs = _classes_last(log_softmax(logits, class_axis))
    classes = log_probs.shape[-1]
    if _is_probability_target(target, logits, ignore_index):
        smoothed = _smoothed_probabilities(target, smoothing, classes)
        losses = -np.sum(weight * smoothed * log_probs, axis=-1)  # −Σ_c w_c·q'_c·log p_c
        return _reduce(losses, reduction, losses.size)
    indices, kept = _check_class_indices(target, logits, "logits", ignore_index)
    safe = np.where(kept, indices, 0)  # any valid class where ignored: masked out below
    target_weight = np.where(kept, weight[safe], 0)  # w[t], 0 where ignored
    # np.where, not a product with the mask: an ignored row may hold −inf log-probabilities
    losses = np.where(kept, -weight[safe] * _take_class(log_probs, safe), 0)  # −w[t]·log p_t
    if smoothing > 0:
        uniform = np.where(kept, -np.sum(weight * log_probs, axis=-1), 0)  # −Σ_c w_c·log p_c
        losses = (1 - smoothing) * losses + (smoothing / classes) * uniform
    return _reduce(losses, reduction, np.sum(target_weight))


def cross_entropy_backward(
    grad_out: FloatArray,
    logits: FloatArray,
    target: NDArray[Any],
    weight: FloatArray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> FloatArray:
    """``∂L/∂logits`` of cross_entropy: ``a·(p·Σ_c G_c − G)`` per position.

    Every ℓ above is −Σ_c G_c·log p_c for a per-position vector G (the "target weights")::

        class indices:  G_c = (1 − ε)·w_t·[c = t] + (ε/C)·w_c          (0 where ignored)
        probabilities:  G_c = w_c·q'_c

    and ∂(−Σ_c G_c·log p_c)/∂x_j = Σ_c G_c·(p_j − [c = j]) = p_j·Σ_c G_c − G_j (log_softmax's
    Jacobian, docs/softmax.md). a = ∂L/∂ℓ: grad_out ('none', 'sum') or grad_out / D ('mean').
    Without weights and smoothing, for index targets this is the familiar (p − onehot(t))·a.

    See docs/losses.md.
    """
    logits = _check_scores(logits, "logits")
    weight = _check_class_weight(weight, logits, "logits")
    reduction, smoothing = _check_reduction(reduction), _smoothing(label_smoothing)
    class_axis = 1 if logits.ndim >= 2 else 0
    probs = np.exp(_classes_last(log_softmax(logits, class_axis)))  # softmax, 0 at a −inf logit
    classes = probs.shape[-1]
    if _is_probability_target(target, logits, ignore_index):
        target_weights = weight * _smoothed_probabilities(target, smoothing, classes)  # G
        upstream = _check_upstream(grad_out, logits, "logits", probs.shape[:-1], reduction)
        scale = _per_position(upstream, reduction, probs.size // classes)
    else:
        indices, kept = _check_class_indices(target, logits, "logits", ignore_index)
        safe = np.where(kept, indices, 0)
        one_hot = (np.arange(classes) == safe[..., np.newaxis]) & kept[..., np.newaxis]
        target_weights = np.where(one_hot, weight, 0)  # w_t·[c = t]
        if smoothing > 0:
            uniform = np.where(kept[..., np.newaxis], weight, 0)  # w_c where not ignored
            target_weights = (1 - smoothing) * target_weights + (smoothing / classes) * uniform
        upstream = _check_upstream(grad_out, logits, "logits", indices.shape, reduction)
        total_weight = np.sum(np.where(kept, weight[safe], 0))
        scale = np.where(kept, _mean_scale(upstream, reduction, total_weight), 0)
    total = np.sum(target_weights, axis=-1, keepdims=True)  # Σ_c G_c
    scale = np.asarray(scale)[..., np.newaxis]
    return _classes_back(scale * (probs * total - target_weights))  # a·(p·Σ G − G)


def _mean_scale(upstream: FloatArray, reduction: str, total_weight: Any) -> FloatArray:
    """a = g / Σ w[t] for 'mean'; 0/0 (every target ignored or weighted 0) gives NaN, like the
    loss (the caller zeroes the ignored positions: torch's gradient there is 0)."""
    if reduction == "mean" and total_weight == 0:
        return np.full_like(upstream, np.nan)
    return _per_position(upstream, reduction, total_weight)


def _is_probability_target(target: object, scores: FloatArray, ignore_index: object) -> bool:
    """True for a floating target (probabilities), after checking it; False for integers."""
    if not isinstance(target, np.ndarray):
        raise TypeError(f"target must be a numpy.ndarray, got {type(target).__name__}")
    if np.issubdtype(target.dtype, np.integer):
        return False
    if not np.issubdtype(target.dtype, np.floating):
        raise TypeError(
            f"target must hold class indices (an integer dtype) or probabilities (the logits' "
            f"floating dtype), got target.dtype={target.dtype}"
        )
    check_same_dtype("logits", scores, target=target)
    if target.shape != scores.shape:
        raise ValueError(
            f"a floating target holds class probabilities and must have logits' shape "
            f"{scores.shape}, got target.shape={target.shape} (class indices need an integer "
            "dtype)"
        )
    if ignore_index != -100:
        raise ValueError(
            f"ignore_index={ignore_index!r} is not supported for probability targets (torch: "
            "ignore_index is not supported for floating point target)"
        )
    return True


def _smoothed_probabilities(target: FloatArray, smoothing: float, classes: int) -> FloatArray:
    """q' = (1 − ε)·q + ε/C, classes last (q itself when ε = 0)."""
    q = _classes_last(target)
    return q * (1 - smoothing) + smoothing / classes if smoothing > 0 else q


def nll_loss(
    log_probs: FloatArray,
    target: IntArray,
    weight: FloatArray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> FloatArray:
    """``F.nll_loss``: the negative log-probability of each position's target class, weighted.

    ℓ = −w[t]·log_probs[t] per position (0 where t = ignore_index)

    'mean' divides Σ ℓ by Σ w[t] over the positions not ignored. ``log_probs`` are taken as
    given (cross_entropy = nll_loss of log_softmax, without smoothing).

    See docs/losses.md.
    """
    log_probs = _check_scores(log_probs, "log_probs")
    weight = _check_class_weight(weight, log_probs, "log_probs")
    reduction = _check_reduction(reduction)
    indices, kept = _check_class_indices(target, log_probs, "log_probs", ignore_index)
    safe = np.where(kept, indices, 0)
    rows = _classes_last(log_probs)
    losses = np.where(kept, -weight[safe] * _take_class(rows, safe), 0)  # −w[t]·log p_t
    return _reduce(losses, reduction, np.sum(np.where(kept, weight[safe], 0)))


def nll_loss_backward(
    grad_out: FloatArray,
    log_probs: FloatArray,
    target: IntArray,
    weight: FloatArray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> FloatArray:
    """``∂L/∂log_probs`` of :func:`nll_loss`: nll_loss is linear in log_probs.

    dlog_probs[c] = −a·w[t]·[c = t]  (0 where ignored),  a = grad_out, or grad_out / Σ w[t] ('mean')

    See docs/losses.md.
    """
    log_probs = _check_scores(log_probs, "log_probs")
    weight = _check_class_weight(weight, log_probs, "log_probs")
    reduction = _check_reduction(reduction)
    indices, kept = _check_class_indices(target, log_probs, "log_probs", ignore_index)
    upstream = _check_upstream(grad_out, log_probs, "log_probs", indices.shape, reduction)
    safe = np.where(kept, indices, 0)
    total_weight = np.sum(np.where(kept, weight[safe], 0))
    scale = np.where(kept, _mean_scale(upstream, reduction, total_weight), 0)
    classes = weight.shape[0]
    one_hot = (np.arange(classes) == safe[..., np.newaxis]) & kept[..., np.newaxis]
    grad = np.where(one_hot, -scale[..., np.newaxis] * weight, 0)  # −a·w_t·[c = t]
    return _classes_back(grad)


# --- the book's SoftmaxWithLoss -----------------------------------------------------------------


def _check_softmax_with_loss(x: object, t: object) -> tuple[FloatArray, NDArray[Any], bool]:
    """x (N, C) logits; t one-hot/probabilities (N, C) in x's dtype or class indices (N,).
    Returns (x, t, whether t holds indices)."""
    x = check_float_tensor(x, "x")
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (N, C), got x.shape={x.shape}")
    if not isinstance(t, np.ndarray):
        raise TypeError(f"t must be a numpy.ndarray, got {type(t).__name__}")
    if np.issubdtype(t.dtype, np.integer):
        if t.shape != x.shape[:1]:
            raise ValueError(f"class indices t must be (N,) = {x.shape[:1]}, got t.shape={t.shape}")
        _check_class_indices(t, x, "x", ignore_index=None)
        return x, t, True
    check_same_dtype("x", x, t=t)
    if t.shape != x.shape:
        raise ValueError(f"one-hot t must have x's shape {x.shape}, got t.shape={t.shape}")
    return x, t, False


def softmax_with_loss(x: FloatArray, t: NDArray[Any]) -> FloatArray:
    """The book's ``SoftmaxWithLoss.forward(x, t)``: softmax, then the batch-mean cross-entropy.

    ``y = softmax(x)`` per row, ``loss = −(1/N)·Σ_n Σ_c t_nc·log y_nc`` for one-hot t (N, C), or
    ``−(1/N)·Σ_n log y_{n, t_n}`` for class indices t (N,). EXACT: the book's ``+ 1e-7`` inside
    the log (a guard against log 0) is not here; log y is computed as log_softmax(x), which never
    meets log 0. Equal to ``F.cross_entropy(x, t)`` (reduction 'mean').

    See docs/losses.md.
    """
    x, t, indices = _check_softmax_with_loss(x, t)
    log_y = log_softmax(x, 1)
    batch = x.shape[0]
    if indices:
        return np.asarray(-np.sum(_take_class(log_y, t)) / batch)
    return np.asarray(-np.sum(t * log_y) / batch)


def softmax_with_loss_backward(grad_out: FloatArray, x: FloatArray, t: NDArray[Any]) -> FloatArray:
    """The book's ``SoftmaxWithLoss.backward(dout)``: ``dout·(y − t)/N``.

    Exactly ``dout·(y·Σ_c t_c − t)/N`` (cross_entropy_backward with G = t), which is
    ``dout·(y − t)/N`` whenever every row of t sums to 1 (one-hot rows, class indices).

    See docs/losses.md.
    """
    x, t, indices = _check_softmax_with_loss(x, t)
    upstream = _check_upstream(grad_out, x, "x", (), "mean")
    y = np.exp(log_softmax(x, 1))  # softmax
    scale: FloatArray = upstream / x.shape[0]  # dout / N
    if indices:
        one_hot = np.arange(x.shape[1]) == t[:, np.newaxis]
        grad: FloatArray = scale * (y - one_hot)  # (y − t)·dout/N
        return grad
    grad = scale * (y * np.sum(t, axis=1, keepdims=True) - t)
    return grad


# --- regression: mse, l1, smooth_l1, huber ------------------------------------------------------


def _check_regression(
    prediction: object, target: object, reduction: object
) -> tuple[FloatArray, FloatArray, str]:
    prediction = check_float_tensor(prediction, "prediction")
    target = check_float_tensor(target, "target")
    check_same_dtype("prediction", prediction, target=target)
    _check_same_shape("prediction", prediction, target)
    return prediction, target, _check_reduction(reduction)


def _elementwise_upstream(
    grad_out: object, like: FloatArray, name: str, reduction: str
) -> FloatArray:
    """a = ∂L/∂ℓ per element of ``like`` (an elementwise loss): grad_out, or grad_out / n for
    'mean'."""
    upstream = _check_upstream(grad_out, like, name, like.shape, reduction)
    return _per_position(upstream, reduction, like.size)


def mse_loss(prediction: FloatArray, target: FloatArray, reduction: str = "mean") -> FloatArray:
    """``F.mse_loss``: the squared difference, reduced.

    ℓ = (y − t)²,   y = prediction, t = target   (no ½; 'mean' divides Σ ℓ by the number of
    elements)

    See docs/losses.md.
    """
    prediction, target, reduction = _check_regression(prediction, target, reduction)
    difference = prediction - target
    return _reduce(difference * difference, reduction, prediction.size)


def mse_loss_backward(
    grad_out: FloatArray, prediction: FloatArray, target: FloatArray, reduction: str = "mean"
) -> FloatArray:
    """``∂L/∂prediction`` of :func:`mse_loss`.

    dy = a·2·(y − t)
    with a = grad_out ('none', 'sum') or grad_out / n ('mean', n elements)

    See docs/losses.md.
    """
    prediction, target, reduction = _check_regression(prediction, target, reduction)
    scale = _elementwise_upstream(grad_out, prediction, "prediction", reduction)
    return scale * (2 * (prediction - target))


def l1_loss(prediction: FloatArray, target: FloatArray, reduction: str = "mean") -> FloatArray:
    """``F.l1_loss``: the absolute difference, reduced.

    ℓ = |y − t|,   y = prediction, t = target

    See docs/losses.md.
    """
    prediction, target, reduction = _check_regression(prediction, target, reduction)
    return _reduce(np.abs(prediction - target), reduction, prediction.size)


def l1_loss_backward(
    grad_out: FloatArray, prediction: FloatArray, target: FloatArray, reduction: str = "mean"
) -> FloatArray:
    """``∂L/∂prediction`` of :func:`l1_loss`; at y = t torch's subgradient sign(0) = 0.

    dy = a·sign(y − t)
    with a = grad_out ('none', 'sum') or grad_out / n ('mean', n elements)

    See docs/losses.md.
    """
    prediction, target, reduction = _check_regression(prediction, target, reduction)
    scale = _elementwise_upstream(grad_out, prediction, "prediction", reduction)
    return scale * np.sign(prediction - target)


def _beta(beta: object) -> float:
    return _real(beta, "beta", 0.0)


def _delta(delta: object) -> float:
    result = _real(delta, "delta", 0.0)
    if result == 0:
        raise ValueError(
            f"delta must be positive (torch: huber_loss does not support "
            f"non-positive values for delta), got delta={delta!r}"
        )
    return result


def smooth_l1_loss(
    prediction: FloatArray, target: FloatArray, reduction: str = "mean", beta: float = 1.0
) -> FloatArray:
    """``F.smooth_l1_loss``: quadratic near 0, linear beyond β.

    ℓ = z²/(2β) if z < β, else z − β/2,   z = |y − t|, y = prediction, t = target

    β = 0 is l1_loss (as torch). smooth_l1 = huber / β.

    See docs/losses.md.
    """
    prediction, target, reduction = _check_regression(prediction, target, reduction)
    beta = _beta(beta)
    z = np.abs(prediction - target)
    losses = np.where(z < beta, 0.5 * z * z / (beta or 1.0), z - 0.5 * beta)  # β = 0: ℓ = z
    return _reduce(losses, reduction, prediction.size)


def smooth_l1_loss_backward(
    grad_out: FloatArray,
    prediction: FloatArray,
    target: FloatArray,
    reduction: str = "mean",
    beta: float = 1.0,
) -> FloatArray:
    """``∂L/∂prediction`` of :func:`smooth_l1_loss`: continuous (±1 at |d| = β).

    dy = a·(d/β if |d| < β, else sign(d)),   d = y − t
    with a = grad_out ('none', 'sum') or grad_out / n ('mean', n elements)

    β = 0 gives l1's sign(d), 0 at d = 0 (torch).

    See docs/losses.md.
    """
    prediction, target, reduction = _check_regression(prediction, target, reduction)
    beta = _beta(beta)
    scale = _elementwise_upstream(grad_out, prediction, "prediction", reduction)
    difference = prediction - target
    slope = np.where(np.abs(difference) < beta, difference / (beta or 1.0), np.sign(difference))
    return scale * slope


def huber_loss(
    prediction: FloatArray, target: FloatArray, reduction: str = "mean", delta: float = 1.0
) -> FloatArray:
    """``F.huber_loss``: quadratic near 0, linear beyond δ.

    ℓ = z²/2 if z < δ, else δ·(z − δ/2),   z = |y − t|, y = prediction, t = target

    huber(δ) = δ·smooth_l1(β = δ): equal at δ = 1, a factor δ apart otherwise.

    See docs/losses.md.
    """
    prediction, target, reduction = _check_regression(prediction, target, reduction)
    delta = _delta(delta)
    z = np.abs(prediction - target)
    losses = np.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta))
    return _reduce(losses, reduction, prediction.size)


def huber_loss_backward(
    grad_out: FloatArray,
    prediction: FloatArray,
    target: FloatArray,
    reduction: str = "mean",
    delta: float = 1.0,
) -> FloatArray:
    """``∂L/∂prediction`` of :func:`huber_loss`: continuous (±δ at |d| = δ).

    dy = a·(d if |d| < δ, else δ·sign(d)),   d = y − t
    with a = grad_out ('none', 'sum') or grad_out / n ('mean', n elements)

    See docs/losses.md.
    """
    prediction, target, reduction = _check_regression(prediction, target, reduction)
    delta = _delta(delta)
    scale = _elementwise_upstream(grad_out, prediction, "prediction", reduction)
    difference = prediction - target
    slope = np.where(np.abs(difference) < delta, difference, delta * np.sign(difference))
    return scale * slope


# --- binary: binary_cross_entropy, binary_cross_entropy_with_logits -----------------------------


def _check_binary(
    prediction: object, name: str, target: object, weight: object, reduction: object
) -> tuple[FloatArray, FloatArray, Any, str]:
    prediction = check_float_tensor(prediction, name)
    target = check_float_tensor(target, "target")
    check_same_dtype(name, prediction, target=target)
    _check_same_shape(name, prediction, target)
    weight = _check_broadcast(weight, "weight", prediction, name)
    return prediction, target, weight, _check_reduction(reduction)


def _weighted(values: FloatArray, weight: FloatArray | None) -> FloatArray:
    return values if weight is None else values * weight


def binary_cross_entropy(
    probabilities: FloatArray,
    target: FloatArray,
    weight: FloatArray | None = None,
    reduction: str = "mean",
) -> FloatArray:
    """``F.binary_cross_entropy`` of probabilities p against targets t, both in [0, 1].

    ℓ = −w·(t·log p + (1 − t)·log(1 − p))

    As torch, each log is clamped at −100 (so p = 0 or 1 gives 100, not inf) and log(1 − p) is
    computed as log1p(−p). ``weight`` broadcasts to p's shape.

    See docs/losses.md.
    """
    p, target, weight, reduction = _check_binary(
        probabilities, "probabilities", target, weight, reduction
    )
    _in_unit_interval(p, "probabilities", "input")
    _in_unit_interval(target, "target", "target")
    with np.errstate(divide="ignore"):  # log 0 = −inf, clamped just below
        log_p = np.maximum(np.log(p), BCE_LOG_FLOOR)
        log_not_p = np.maximum(np.log1p(-p), BCE_LOG_FLOOR)
    losses = (target - 1) * log_not_p - target * log_p  # torch's order of the two terms
    return _reduce(_weighted(losses, weight), reduction, p.size)


def binary_cross_entropy_backward(
    grad_out: FloatArray,
    probabilities: FloatArray,
    target: FloatArray,
    weight: FloatArray | None = None,
    reduction: str = "mean",
) -> FloatArray:
    """``∂L/∂p`` of :func:`binary_cross_entropy`.

    dp = a·w·(p − t) / max(p·(1 − p), 1e-12)
    with a = grad_out ('none', 'sum') or grad_out / n ('mean', n elements)

    −t/p + (1 − t)/(1 − p) = (p − t)/(p·(1 − p)). The floor is torch's (1e-12 as a float32):
    at p = 0 or 1 it gives ±(p − t)·10¹² (0 where p = t), which is not the derivative of the
    clamped loss but is what torch computes; refcnn matches it.

    See docs/losses.md.
    """
    p, target, weight, reduction = _check_binary(
        probabilities, "probabilities", target, weight, reduction
    )
    _in_unit_interval(p, "probabilities", "input")
    _in_unit_interval(target, "target", "target")
    scale = _elementwise_upstream(grad_out, p, "probabilities", reduction)
    slope = (p - target) / np.maximum((1 - p) * p, BCE_EPSILON)
    return scale * _weighted(slope, weight)


def binary_cross_entropy_with_logits(
    logits: FloatArray,
    target: FloatArray,
    weight: FloatArray | None = None,
    pos_weight: FloatArray | None = None,
    reduction: str = "mean",
) -> FloatArray:
    """``F.binary_cross_entropy_with_logits``: BCE of σ(x), computed from x without σ.

    ℓ = −w·(r·t·log σ(x) + (1 − t)·log σ(−x)), r = pos_weight (1 if None), in the stable form::

        ℓ/w = max(x, 0) − x·t + log1p(exp(−|x|))  +  (r − 1)·t·softplus(−x)

    softplus(−x) = −log σ(x) = max(−x, 0) + log1p(exp(−|x|)); the first part is ℓ for r = 1.
    ``weight`` and ``pos_weight`` broadcast to x's shape (pos_weight: one per class, last axis).

    See docs/losses.md.
    """
    x, target, weight, reduction = _check_binary(logits, "logits", target, weight, reduction)
    pos_weight = _check_broadcast(pos_weight, "pos_weight", x, "logits")
    tail = np.log1p(np.exp(-np.abs(x)))  # log(1 + e^−|x|) ∈ (0, log 2]: no overflow
    losses = np.maximum(x, 0) - x * target + tail
    if pos_weight is not None:
        softplus_negative = np.maximum(-x, 0) + tail  # −log σ(x)
        losses = losses + (pos_weight - 1) * target * softplus_negative
    return _reduce(_weighted(losses, weight), reduction, x.size)


def binary_cross_entropy_with_logits_backward(
    grad_out: FloatArray,
    logits: FloatArray,
    target: FloatArray,
    weight: FloatArray | None = None,
    pos_weight: FloatArray | None = None,
    reduction: str = "mean",
) -> FloatArray:
    """``∂L/∂logits`` of :func:`binary_cross_entropy_with_logits`.

    dx = a·w·(σ(x) − t − (r − 1)·t·σ(−x))     (for r = 1 the familiar a·w·(σ(x) − t))
    with a = grad_out ('none', 'sum') or grad_out / n ('mean', n elements)

    d/dx softplus(−x) = −σ(−x), and d/dx [max(x, 0) + log1p(exp(−|x|))] = σ(x).

    See docs/losses.md.
    """
    x, target, weight, reduction = _check_binary(logits, "logits", target, weight, reduction)
    pos_weight = _check_broadcast(pos_weight, "pos_weight", x, "logits")
    scale = _elementwise_upstream(grad_out, x, "logits", reduction)
    slope = sigmoid(x) - target
    if pos_weight is not None:
        slope = slope - (pos_weight - 1) * target * sigmoid(-x)
    return scale * _weighted(slope, weight)
