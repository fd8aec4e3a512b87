"""The book-style adapter: a module written in the API of "Deep Learning from Scratch" (O'Reilly
Japan), checked as it is.

Such a module has stateful layer classes (``forward``, then ``backward(dout)``; parameters given
to the constructor by reference; parameter gradients left in attributes ``dW``, ``db``,
``dgamma``, ``dbeta``), a few functions (``im2col``, ``col2im``, ``softmax``) and optimizers
with ``update(params, grads)`` on dicts. :class:`BookStyle` finds them by name (any case,
underscores ignored, the common aliases) and maps each catalog op it can express:

========================  ===================================  ====================================
catalog op                module                               how the catalog's sample is passed
========================  ===================================  ====================================
im2col                    im2col(x, FH, FW, stride, pad);      one int stride, one int pad, no
                          backward col2im(dcol, x.shape, ...)  dilation (restricted strategy)
conv2d                    Convolution(W, b, stride, pad)       as im2col, groups 1; no bias: b = 0
                                                               (exact); dW, db read after backward
max_pool2d                Pooling / MaxPooling(pool_h,         4-D x, one int stride, one int pad
                          pool_w, stride, pad)                 ≤ min(kernel) // 2, no dilation, no
                                                               ceil_mode; declared: zero padding
avg_pool2d                AvgPooling / AvePooling (same)       as max_pool2d, count_include_pad
linear                    Affine(W, b), W (in, out)            x (N, in); W = weightᵀ, dW
                                                               transposed back; no bias: b = 0
relu, sigmoid, tanh       Relu / ReLU, Sigmoid, Tanh           as is
leaky_relu                LeakyReLU / LeakyRelu(slope)         the slope by keyword or position;
                                                               a fixed slope is measured and drawn
softmax                   function softmax(x)                  1-D x, or 2-D x with dim 1: forward
                                                               only (see :meth:`forward_only`);
                          or a class Softmax                   a layer class has a backward
softmax_with_loss         SoftmaxWithLoss: forward(x, t),      index t as int64; the layer is the
                          backward(dout=1)                     last one: backward() with its own
                                                               dout = 1, times the scalar upstream
dropout                   Dropout(ratio): forward(x,           the layer draws its mask from
                          train_flg)                           np.random: seeded, recovered,
                                                               put into the sample (``prepare``)
batch_norm_train          BatchNormalization(gamma, beta,      2-D or 4-D x; no weight/bias: ones/
                          momentum, running_mean,              zeros (exact); 4-D per activation:
                          running_var): forward(x, True)       γ, β repeated over H·W, dγ, dβ
                                                               summed back; eps the module's own
batch_norm_running_stats  the same layer, its running_mean,    2-D x (per activation, 4-D stats
                          running_var after forward(x, True)   are (C·H·W,), not (C,))
sgd                       SGD(lr), Momentum(lr, momentum),     lr always given; the momentum buffer
                          Nesterov(lr, momentum)               is −v/lr (the book's v = −lr·buf)
adagrad                   AdaGrad(lr)                          eps the module's (the book: 1e-7)
rmsprop                   RMSprop(lr, decay_rate)              alpha = decay_rate, eps as AdaGrad
adam                      Adam(lr, beta1, beta2)               eps as AdaGrad; declared: bias
                                                               correction folded into the step
========================  ===================================  ====================================

Optimizers run T steps of ``update`` on dicts of the sample's split tensors; the trajectory's
state buffers are read from the optimizer's per-key dicts: torch-named ``state[key][name]``
if it has them, else the book's attributes (``v`` for Momentum and Nesterov, whose
v = −lr·momentum_buffer exactly; ``h`` for AdaGrad and RMSprop, equal to torch's sum and
square_avg; ``m``, ``v`` for Adam, equal to exp_avg, exp_avg_sq); one found under no known name
is an error that lists the names looked for. −v/lr is exact only in exact arithmetic: the
adapter's :meth:`BookStyle.allowance` declares what the conversion may add.

The book's conventions that differ from torch (``BOOK_CONVENTIONS``, names of
:mod:`refcnn.testing.conventions`) are declared by default; ``BookStyle(module,
conventions=())`` checks a module that follows torch (refcnn.layers does).

Every candidate call runs with NumPy's floating-point warnings off: an overflow in ``exp`` is
judged by the value it produces, not by the warning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import math
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st

from refcnn.geometry import int_pair, normalize_padding
from refcnn.testing import strategies
from refcnn.testing.adapters import Unsupported
from refcnn.testing.opspec import OpSpec, Sample

BOOK_CONVENTIONS: tuple[str, ...] = (
    "dropout not inverted",
    "cross-entropy adds 1e-7 inside the log",
    "batch norm momentum is the decay of the running value",
    "batch norm running variance is biased",
    "batch norm per activation on 4-D input",
    "Adam bias correction folded into the step size",
    "max pooling pads with zeros",
)
PER_ACTIVATION = "batch norm per activation on 4-D input"
BOOK_OPTIMIZER_EPS = 1e-7  # the book's AdaGrad, RMSprop and Adam add 1e-7 (no eps argument)
OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adam")
# torch's defaults, which a catalog sample that leaves a hyperparameter out means
TORCH_LR = {"sgd": 1e-3, "adagrad": 1e-2, "rmsprop": 1e-2, "adam": 1e-3}
TORCH_EPS = {"adagrad": 1e-10, "rmsprop": 1e-8, "adam": 1e-8}

# Names a module may give each piece (compared lower-case, underscores removed), first found wins.
CLASSES: dict[str, tuple[str, ...]] = {
    "convolution": ("Convolution", "Conv", "Conv2D", "Convolution2D", "ConvLayer"),
    "max_pooling": ("Pooling", "MaxPooling", "MaxPool", "MaxPool2D", "MaxPooling2D"),
    "avg_pooling": ("AvgPooling", "AvePooling", "AveragePooling", "AvgPool", "AvePool"),
    "affine": ("Affine", "Dense", "FullyConnected", "Linear", "FC"),
    "relu": ("Relu", "ReLU"),
    "sigmoid": ("Sigmoid",),
    "tanh": ("Tanh",),
    "leaky_relu": ("LeakyReLU", "LeakyRelu"),
    "softmax": ("Softmax",),
    "softmax_with_loss": ("SoftmaxWithLoss", "SoftmaxCrossEntropy", "SoftmaxWithCrossEntropy"),
    "dropout": ("Dropout",),
    "batch_norm": ("BatchNormalization", "BatchNorm", "BatchNormalisation"),
    "sgd": ("SGD",),
    "momentum": ("Momentum", "MomentumSGD"),
    "nesterov": ("Nesterov", "NesterovSGD", "NAG"),
    "adagrad": ("AdaGrad",),
    "rmsprop": ("RMSprop",),
    "adam": ("Adam",),
}
FUNCTIONS: dict[str, tuple[str, ...]] = {
    "im2col": ("im2col",),
    "col2im": ("col2im",),
    "softmax": ("softmax",),
}

# Argument names, by role, for binding a call by keyword where the names match (else in order).
X = ("x", "input_data", "input", "inputs", "img", "images", "data")
FILTER_H = ("filter_h", "fh", "kernel_h", "kh", "pool_h", "ph")
FILTER_W = ("filter_w", "fw", "kernel_w", "kw", "pool_w", "pw")
STRIDE = ("stride", "strides", "s")
PAD = ("pad", "padding", "p")
COL = ("col", "cols", "dcol", "column")
INPUT_SHAPE = ("input_shape", "x_shape", "shape", "img_shape")
WEIGHT = ("w", "weight", "weights", "filter", "filters", "kernel")
BIAS = ("b", "bias", "biases")
SLOPE = ("alpha", "negative_slope", "slope", "leak", "a", "leakiness")
RATIO = ("dropout_ratio", "ratio", "p", "rate", "drop_rate", "dropout_rate", "drop_ratio")
KEEP = ("keep_prob", "keep_ratio", "keep_rate", "keep")
TRAIN = ("train_flg", "train_flag", "train", "training", "is_training", "train_mode")
GAMMA = ("gamma", "g", "scale", "weight")
BETA = ("beta", "shift", "bias")
MOMENTUM = ("momentum", "decay", "mu")
RUNNING_MEAN = ("running_mean", "moving_mean", "mean")
RUNNING_VAR = ("running_var", "moving_var", "var")
EPS = ("eps", "epsilon")
LR = ("lr", "learning_rate", "eta")
DECAY_RATE = ("decay_rate", "decay", "rho", "alpha", "beta")
BETA1 = ("beta1", "b1")
BETA2 = ("beta2", "b2")

# Where a layer leaves a gradient, and where an optimizer keeps a state buffer.
GRAD_ATTRIBUTES = {
    "weight": ("dW", "dweight", "grad_W", "gW", "dweights"),
    "bias": ("db", "dbias", "grad_b", "gb"),
    "gamma": ("dgamma", "dg", "grad_gamma"),
    "beta": ("dbeta", "grad_beta"),
}
BUFFER_ATTRIBUTES = {  # torch's name -> where a book optimizer keeps it (a dict per key)
    "momentum_buffer": ("v", "velocity", "u"),
    "sum": ("h", "cache", "accumulator", "sum", "g2"),
    "square_avg": ("h", "cache", "square_avg", "s", "sq"),
    "exp_avg": ("m", "mt", "m_t", "exp_avg", "first_moment"),
    "exp_avg_sq": ("v", "vt", "v_t", "exp_avg_sq", "second_moment"),
}

Call = Callable[..., Any]


def _normal(name: str) -> str:
    return name.lower().replace("_", "")


# --- finding things in the module ---------------------------------------------------------------


def _attributes(module: Any) -> dict[str, list[Any]]:
    """The module's public attributes by normalised name (a class Softmax and a function
    softmax share one)."""
    found: dict[str, list[Any]] = {}
    for name in dir(module):
        if not name.startswith("_"):
            found.setdefault(_normal(name), []).append(getattr(module, name))
    return found


def _lookup(attributes: dict[str, list[Any]], aliases: Sequence[str], want_class: bool) -> Any:
    """The first class (or function) under one of ``aliases``, or None."""
    for alias in aliases:
        for value in attributes.get(_normal(alias), []):
            if want_class and inspect.isclass(value):
                return value
            if not want_class and callable(value) and not inspect.isclass(value):
                return value
    return None


def _parameters(function: Any) -> list[inspect.Parameter] | None:
    """The named parameters of ``function`` (a class: of its constructor), or None if unknown."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p for p in signature.parameters.values() if p.kind in kinds or p.kind == p.KEYWORD_ONLY]


def _first_names(function: Any, count: int) -> list[str] | None:
    parameters = _parameters(function)
    if parameters is None:
        return None
    return [_normal(p.name) for p in parameters[:count]]


def _takes(function: Any, aliases: Sequence[str]) -> bool:
    parameters = _parameters(function)
    return parameters is not None and any(
        _normal(p.name) in {_normal(a) for a in aliases} for p in parameters
    )


def _shaped_like_book(role: str, found: Any) -> bool:
    """Reject a same-named class with another API (a torch-like ``Linear(in, out)``)."""
    names = _first_names(found, 2)
    if names is None:
        return True
    if role in ("convolution", "affine"):
        return bool(names) and names[0] in {_normal(a) for a in WEIGHT}
    if role in ("max_pooling", "avg_pooling"):
        return len(names) == 2 and names[0].endswith("h") and names[1].endswith("w")
    if role == "batch_norm":
        return bool(names) and names[0] in {_normal(a) for a in GAMMA}
    return True


def _call(function: Call, *arguments: tuple[Sequence[str], Any]) -> Any:
    """``function`` called with each value bound to the parameter one of its names matches, the
    others given in order to the remaining parameters (the book's order)."""
    parameters = _parameters(function)
    if parameters is None:
        return function(*(value for _, value in arguments))
    free = list(parameters)
    by_name: dict[str, Any] = {}
    unmatched = []
    for names, value in arguments:
        wanted = {_normal(n) for n in names}
        match = next((p for p in free if _normal(p.name) in wanted), None)
        if match is None:
            unmatched.append(value)
        else:
            free.remove(match)
            by_name[match.name] = value
    positional = [p for p in free if p.kind != inspect.Parameter.KEYWORD_ONLY]
    if len(unmatched) > len(positional):
        raise TypeError(
            f"{getattr(function, '__qualname__', function)} takes no parameter for "
            f"{len(unmatched) - len(positional)} of the book's arguments"
        )
    for parameter, value in zip(positional, unmatched, strict=False):
        by_name[parameter.name] = value
    return function(**by_name)


def _grad(layer: Any, role: str) -> Any:
    """A parameter gradient the layer left in an attribute (dW, db, dgamma, dbeta)."""
    wanted = {_normal(n) for n in GRAD_ATTRIBUTES[role]}
    for name in vars(layer) if hasattr(layer, "__dict__") else dir(layer):
        if _normal(name) in wanted:
            return getattr(layer, name)
    raise AttributeError(
        f"{type(layer).__name__} left no {role} gradient after backward (looked for "
        f"{', '.join(GRAD_ATTRIBUTES[role])})"
    )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """NumPy's floating-point warnings off: the values are judged, not the warnings."""
    with np.errstate(all="ignore"):
        yield


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """np.random's global generator seeded, and restored afterwards."""
    saved = np.random.get_state()  # noqa: NPY002 (the book's layers draw from it)
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(saved)  # noqa: NPY002


# --- the catalog's geometry in the book's terms -------------------------------------------------


def _one_int(value: Any, name: str) -> int:
    """An int, or a pair of equal ints, as one int; anything else is outside the book's API."""
    if value is None:
        raise Unsupported(f"{name}=None")
    pair = int_pair(value, name, minimum=1)
    if pair[0] != pair[1]:
        raise Unsupported(f"the book takes one int {name}, got {name}={value!r}")
    return pair[0]


def _one_pad(padding: Any, kernel: tuple[int, int], dilation: Any, stride: Any) -> int:
    sides = normalize_padding(
        padding,
        kernel,
        int_pair(dilation, "dilation", minimum=1),
        int_pair(stride, "stride", minimum=1),
    )
    if len(set(sides)) != 1:
        raise Unsupported(f"the book pads all four sides alike, got padding={padding!r}")
    return sides[0]


def _no_dilation(dilation: Any) -> None:
    if int_pair(dilation, "dilation", minimum=1) != (1, 1):
        raise Unsupported(f"the book has no dilation, got dilation={dilation!r}")


def _window(kwargs: Mapping[str, Any], kernel: tuple[int, int]) -> tuple[int, int]:
    """(stride, pad) of a conv or im2col sample, or Unsupported."""
    dilation = kwargs.get("dilation", 1)
    _no_dilation(dilation)
    stride = _one_int(kwargs.get("stride", 1), "stride")
    return stride, _one_pad(kwargs.get("padding", 0), kernel, dilation, stride)


def _pool_window(kwargs: Mapping[str, Any], x: Any) -> tuple[tuple[int, int], int, int]:
    """(kernel, stride, pad) of a pooling sample, or Unsupported."""
    if np.ndim(x) != 4:
        raise Unsupported(f"the book pools 4-D (N, C, H, W) input, got x.shape={np.shape(x)}")
    if kwargs.get("ceil_mode", False):
        raise Unsupported("the book has no ceil_mode")
    _no_dilation(kwargs.get("dilation", 1))
    kernel = int_pair(kwargs["kernel_size"], "kernel_size", minimum=1)
    stride_given = kwargs.get("stride")
    stride = _one_int(kernel if stride_given is None else stride_given, "stride")
    return kernel, stride, _one_pad(kwargs.get("padding", 0), kernel, 1, stride)


# --- strategies: the catalog's samples narrowed to the book's API, constructively ---------------


@st.composite
def _pool_params(draw: Any, budget: str, average: bool) -> dict[str, Any]:
    """Kernel (KH, KW), one stride, one pad ≤ min(KH, KW) // 2 (torch's rule on both axes),
    the output length per axis, then the input length L = (OL − 1)·s + k + r − 2·pad."""
    limit = strategies.LIMITS[budget]
    kernel = tuple(draw(st.integers(1, limit["kernel"]), label=f"k{axis}") for axis in "hw")
    pad = draw(st.integers(0, min(kernel) // 2), label="pad")
    stride = draw(st.integers(1, limit["stride"]), label="stride")
    size = []
    for axis, k in zip("hw", kernel, strict=True):
        remainder = draw(st.integers(0, stride - 1), label=f"remainder_{axis}")
        shortfall = max(0, 1 - (k + remainder - 2 * pad))  # L ≥ 1
        least = 1 + -(-shortfall // stride)
        out = draw(st.integers(least, least + limit["extra_outputs"]), label=f"o{axis}")
        size.append((out - 1) * stride + k + remainder - 2 * pad)
    params: dict[str, Any] = {
        "batch": draw(st.integers(1, limit["batch"]), label="batch"),
        "channels": draw(st.integers(1, limit["channels"]), label="channels"),
        "batched": True,
        "input_size": tuple(size),
        "kernel_size": kernel,
        "stride": stride,
        "padding": pad,
        "ceil_mode": False,
    }
    if average:
        params.update(count_include_pad=True, divisor_override=None)
    else:
        params["dilation"] = 1
    return params


@st.composite
def _softmax_params(draw: Any, budget: str) -> dict[str, Any]:
    """The book's softmax: a vector (dim 0) or rows of a matrix (dim 1), as -1 half the time."""
    largest = 4 if budget == "small" else 3
    rank = draw(st.integers(1, 2), label="rank")
    shape = tuple(draw(st.integers(1, largest), label=f"size {i}") for i in range(rank))
    dim = draw(st.sampled_from((rank - 1, -1)), label="dim")
    return {"shape": shape, "dim": dim, "scale": draw(st.sampled_from((1.0, 10.0)), label="scale")}


def _problem_with(spec: OpSpec, budget: str, hyperparameters: Any) -> Any:
    """The catalog's optimizer problem (tensors, steps) with the book's hyperparameters instead
    of the catalog's: drawn side by side, the catalog's hyperparameters dropped."""

    def merge(drawn: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
        problem, chosen = drawn
        return {"split": problem["split"], "steps": problem["steps"], **chosen}

    return st.tuples(spec.params(budget), hyperparameters).map(merge)


def _floats(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_subnormal=False)


# --- the adapter --------------------------------------------------------------------------------


class BookStyle:
    """A "Deep Learning from Scratch"-style module as a candidate for the oracle (see the module
    docstring for the mapping). ``eps`` overrides the fixed epsilons the adapter assumes for
    classes that take none: ``{"adagrad": 1e-8, "batch_norm": 1e-5, ...}`` (batch norm's is
    otherwise measured, the optimizers' is the book's 1e-7)."""

    def __init__(
        self,
        module: Any,
        *,
        conventions: Sequence[str] | None = None,
        eps: Mapping[str, float] | None = None,
        name: str | None = None,
    ) -> None:
        self.module = module
        self.name = name or f"book:{getattr(module, '__name__', type(module).__name__)}"
        self.conventions = BOOK_CONVENTIONS if conventions is None else tuple(conventions)
        attributes = _attributes(module)
        self.classes: dict[str, Any] = {}
        for role, aliases in CLASSES.items():
            found = _lookup(attributes, aliases, want_class=True)
            if found is not None and _shaped_like_book(role, found):
                self.classes[role] = found
        self.functions: dict[str, Any] = {
            role: found
            for role, aliases in FUNCTIONS.items()
            if (found := _lookup(attributes, aliases, want_class=False)) is not None
        }
        self.eps = dict(eps or {})
        self._velocity_converted = False  # the last sgd run read the book's v (see allowance)
        self._slope: float | None = None  # a LeakyReLU without a slope argument: its own
        self._bn_eps: float | None = None
        if "leaky_relu" in self.classes and not _takes(self.classes["leaky_relu"], SLOPE):
            self._slope = self._measure_slope()
        if "batch_norm" in self.classes and not _takes(self.classes["batch_norm"], EPS):
            self._bn_eps = self.eps.get("batch_norm", self._measure_batch_norm_eps())
        self._ops: dict[str, tuple[Call, Call | None]] = {
            "im2col": (self._im2col, self._im2col_backward),
            "conv2d": (self._conv2d, self._conv2d_backward),
            "max_pool2d": (self._max_pool2d, self._max_pool2d_backward),
            "avg_pool2d": (self._avg_pool2d, self._avg_pool2d_backward),
            "linear": (self._linear, self._linear_backward),
            "relu": (self._activation("relu"), self._activation_backward("relu")),
            "sigmoid": (self._activation("sigmoid"), self._activation_backward("sigmoid")),
            "tanh": (self._activation("tanh"), self._activation_backward("tanh")),
            "leaky_relu": (self._leaky_relu, self._leaky_relu_backward),
            "softmax": (self._softmax, self._softmax_backward),
            "softmax_with_loss": (self._softmax_with_loss, self._softmax_with_loss_backward),
            "dropout": (self._dropout, self._dropout_backward),
            "batch_norm_train": (self._batch_norm, self._batch_norm_backward),
            "batch_norm_running_stats": (self._running_stats, None),
            **{op: (functools.partial(self._optimizer, op), None) for op in OPTIMIZERS},
        }

    # --- the optional protocol ------------------------------------------------------------------

    def provides(self, spec: OpSpec) -> bool:
        return spec.name in self._ops and self._has(spec.name)

    def _has(self, op: str) -> bool:
        classes, functions = self.classes, self.functions
        needs: dict[str, bool] = {
            "im2col": "im2col" in functions and "col2im" in functions,
            "conv2d": "convolution" in classes,
            "max_pool2d": "max_pooling" in classes,
            "avg_pool2d": "avg_pooling" in classes,
            "linear": "affine" in classes,
            "softmax": "softmax" in functions or "softmax" in classes,
            "batch_norm_train": "batch_norm" in classes,
            "batch_norm_running_stats": "batch_norm" in classes,
            "sgd": any(r in classes for r in ("sgd", "momentum", "nesterov")),
        }
        return needs.get(op, op in classes)

    def forward_only(self, spec: OpSpec) -> bool:
        """True where the module computes the op but has no backward for it: the book's
        ``softmax`` is a function (SoftmaxWithLoss carries its gradient). The oracle then
        judges the forward only."""
        return spec.name == "softmax" and "softmax" not in self.classes

    def params(self, spec: OpSpec, budget: str) -> Any:
        """The catalog's samples narrowed to what the module's API can express (None: all)."""
        window = {"square_stride": True, "int_padding": True, "dilation": False}
        if spec.name == "im2col":
            return strategies.im2col_params(budget, **window)
        if spec.name == "conv2d":
            return strategies.conv2d_params(budget, **window, groups=False)
        if spec.name in ("max_pool2d", "avg_pool2d"):
            return _pool_params(budget, average=spec.name == "avg_pool2d")
        if spec.name == "linear":  # the book's Affine flattens x to (N, -1): 2-D x only
            return spec.params(budget).map(lambda p: {**p, "leading": p["leading"][:1] or (1,)})
        if spec.name == "softmax":
            return _softmax_params(budget)
        if spec.name == "leaky_relu" and self._slope is not None:
            slope = self._slope
            return spec.params(budget).map(lambda p: {**p, "negative_slope": slope})
        if spec.name == "batch_norm_train":
            return self._batch_norm_params(spec, budget)
        if spec.name == "batch_norm_running_stats" and PER_ACTIVATION in self.conventions:
            return spec.params(budget).map(lambda p: {**p, "spatial": ()})  # 2-D x
        if spec.name in OPTIMIZERS:
            return _problem_with(spec, budget, self._hyperparameters(spec.name))
        return None

    def _batch_norm_params(self, spec: OpSpec, budget: str) -> Any:
        per_activation = PER_ACTIVATION in self.conventions
        fixed_eps = self._bn_eps

        def narrow(p: dict[str, Any]) -> dict[str, Any]:
            spatial = p["spatial"]
            if per_activation and len(spatial) == 1:
                spatial = ()  # the book reshapes 4-D input only: (N, C) or (N, C, H, W)
            return {**p, "spatial": spatial, **({} if fixed_eps is None else {"eps": fixed_eps})}

        return spec.params(budget).map(narrow)

    def _hyperparameters(self, op: str) -> Any:
        from refcnn.testing.catalog.optimizers import BETAS, DECAY, LR
        from refcnn.testing.catalog.optimizers import EPS as CATALOG_EPS

        eps = CATALOG_EPS if _takes(self.classes.get(op), EPS) else st.just(self._optimizer_eps(op))
        if op == "sgd":
            choices = []
            if "sgd" in self.classes:
                choices.append(st.fixed_dictionaries({"lr": LR}))
            if "momentum" in self.classes:
                choices.append(st.fixed_dictionaries({"lr": LR, "momentum": _floats(0.125, 0.99)}))
            if "nesterov" in self.classes:
                nesterov = {"lr": LR, "momentum": _floats(0.125, 0.99), "nesterov": st.just(True)}
                choices.append(st.fixed_dictionaries(nesterov))
            return st.one_of(*choices)
        if op == "adagrad":
            return st.fixed_dictionaries({"lr": LR, "eps": eps})
        if op == "rmsprop":
            return st.fixed_dictionaries({"lr": LR, "alpha": DECAY, "eps": eps})
        return st.fixed_dictionaries({"lr": LR, "betas": BETAS, "eps": eps})

    def _optimizer_eps(self, op: str) -> float:
        return float(self.eps.get(op, BOOK_OPTIMIZER_EPS))

    def prepare(self, spec: OpSpec, sample: Sample) -> Sample | None:
        """None for a sample the module's API cannot express; a dropout sample gets the mask the
        module's Dropout draws."""
        try:
            self._expressible(spec.name, sample.inputs, sample.kwargs)
            if spec.name == "dropout" and sample.kwargs["training"] and not self._dropout_mask_arg:
                x, p = sample.inputs["x"], sample.kwargs["p"]
                drawn, _ = self._dropout_run(x, p, training=True)
                inputs = {**sample.inputs, "mask": drawn.astype(sample.dtype)}
                return dataclasses.replace(sample, inputs=inputs)
        except Unsupported:
            return None
        return sample

    def _expressible(self, op: str, inputs: Mapping[str, Any], kwargs: Mapping[str, Any]) -> None:
        """Raise Unsupported where the sample lies outside the book's API."""
        x: Any = inputs.get("x")
        if op == "im2col":
            _window(kwargs, int_pair(kwargs["kernel_size"], "kernel_size", minimum=1))
        elif op == "conv2d":
            if kwargs.get("groups", 1) != 1:
                raise Unsupported("the book's Convolution has no groups")
            weight = inputs["weight"]
            _window(kwargs, (weight.shape[2], weight.shape[3]))
        elif op in ("max_pool2d", "avg_pool2d"):
            _pool_window(kwargs, x)
            if op == "avg_pool2d" and (
                kwargs.get("divisor_override") is not None
                or (not kwargs.get("count_include_pad", True) and kwargs.get("padding", 0) != 0)
            ):
                raise Unsupported("the book averages over the zero-padded window")
        elif op == "linear" and np.ndim(x) != 2:
            raise Unsupported(f"the book's Affine takes (N, in), got x.shape={np.shape(x)}")
        elif op == "softmax" and not (
            np.ndim(x) in (1, 2) and kwargs["dim"] in (np.ndim(x) - 1, -1)
        ):
            raise Unsupported("the book's softmax runs over a vector or the rows of a matrix")
        elif op == "leaky_relu" and self._slope is not None:
            if kwargs.get("negative_slope", 0.01) != self._slope:
                raise Unsupported(f"the module's LeakyReLU has slope {self._slope:g} built in")
        elif op in ("batch_norm_train", "batch_norm_running_stats"):
            self._batch_norm_expressible(op, x, kwargs)
        elif op in OPTIMIZERS:
            self._optimizer_class(op, kwargs)

    def _batch_norm_expressible(self, op: str, x: Any, kwargs: Mapping[str, Any]) -> None:
        per_activation = PER_ACTIVATION in self.conventions
        if per_activation and np.ndim(x) not in ((2,) if op.endswith("stats") else (2, 4)):
            raise Unsupported(
                f"{op}: the book normalises (N, D) input, 4-D per activation; x.shape={np.shape(x)}"
            )
        if op == "batch_norm_train" and not kwargs.get("training", True):
            raise Unsupported("evaluation mode is another op")
        if (
            op == "batch_norm_train"
            and self._bn_eps is not None
            and not math.isclose(kwargs["eps"], self._bn_eps, rel_tol=1e-12)
        ):
            raise Unsupported(f"the module's BatchNormalization has eps {self._bn_eps:g} fixed")

    @property
    def _dropout_mask_arg(self) -> bool:
        """Whether the module's Dropout.forward takes a mask (refcnn.layers' does)."""
        layer = self.classes.get("dropout")
        return layer is not None and _takes(layer.forward, ("mask",))

    def allowance(
        self, spec: OpSpec, sample: Sample, quantity: str, expected: Any
    ) -> tuple[Any, str] | None:
        """What the adapter's own conversion of ``quantity`` may add to the comparison's bound:
        (elementwise absolute allowance broadcastable to ``expected``, reason), or None.

        Only the momentum buffer read from the book's velocity has one: b̃ = −v/lr, which is
        torch's b in exact arithmetic. In floating point (u the sample's unit roundoff, errors
        in units of u·|b|): the lr·g inside the module uses lr cast to the dtype, a relative
        error v carries throughout (1); the division by lr (1); and the first step's product
        lr·g, which the catalog's bound does not have (torch's b₁ = g₁ exactly: bound 0). The
        book's later steps round no more than the catalog's model allows (2μ|b| + |g| + |b_new|
        against its 2μ|b| + 3|g| + |b_new|), so that first error, carried as μ^(t−1)·|b₁|, stays
        within the model's spare 2·Σ μ^(t−s)·|g_s| plus |b_t| (b_t = μ^(t−1)·b₁ + Σ μ^(t−s)·g_s).
        Total: 3·u·|b| on that buffer's rows.
        """
        if spec.name != "sgd" or quantity != "out":
            return None
        self.forward(spec, sample.inputs, sample.kwargs)
        if not self._velocity_converted:
            return None
        u = float(np.finfo(np.dtype(sample.dtype)).eps) / 2
        extra = np.zeros(np.shape(expected))
        extra[:, 1] = 3 * u * np.abs(np.asarray(expected, dtype=np.float64)[:, 1])
        return extra, "momentum buffer as −v/lr from the book's velocity v (3 roundings)"

    def describe(self) -> dict[str, str]:
        found = sorted({*self.classes.values(), *self.functions.values()}, key=str)
        return {
            "name": self.name,
            "path": str(getattr(self.module, "__file__", "") or ""),
            "version": str(getattr(self.module, "__version__", "") or ""),
            "style": "book",
            "found": ", ".join(getattr(f, "__name__", str(f)) for f in found),
            "conventions": "; ".join(self.conventions),
        }

    # --- forward and backward, dispatched by op -------------------------------------------------

    def forward(self, spec: OpSpec, inputs: dict[str, Any], kwargs: dict[str, Any]) -> Any:
        forward, _ = self._ops[spec.name]
        self._expressible(spec.name, inputs, kwargs)
        with _quiet():
            return forward(**inputs, **kwargs)

    def backward(
        self, spec: OpSpec, inputs: dict[str, Any], kwargs: dict[str, Any], upstream: Any
    ) -> dict[str, Any]:
        _, backward = self._ops[spec.name]
        if backward is None:
            raise TypeError(f"{self.name} has no backward for {spec.name}")
        self._expressible(spec.name, inputs, kwargs)
        with _quiet():
            grads: dict[str, Any] = backward(upstream, **inputs, **kwargs)
        return {name: grad for name, grad in grads.items() if inputs.get(name) is not None}

    # --- im2col, convolution, pooling, affine ---------------------------------------------------

    def _im2col(self, x: Any, kernel_size: Any, **kwargs: Any) -> Any:
        kh, kw = int_pair(kernel_size, "kernel_size", minimum=1)
        stride, pad = _window(kwargs, (kh, kw))
        return _call(
            self.functions["im2col"],
            (X, x),
            (FILTER_H, kh),
            (FILTER_W, kw),
            (STRIDE, stride),
            (PAD, pad),
        )

    def _im2col_backward(self, upstream: Any, x: Any, kernel_size: Any, **kwargs: Any) -> Any:
        kh, kw = int_pair(kernel_size, "kernel_size", minimum=1)
        stride, pad = _window(kwargs, (kh, kw))
        dx = _call(
            self.functions["col2im"],
            (COL, upstream),
            (INPUT_SHAPE, tuple(x.shape)),
            (FILTER_H, kh),
            (FILTER_W, kw),
            (STRIDE, stride),
            (PAD, pad),
        )
        return {"x": dx}

    def _convolution(self, weight: Any, bias: Any, kwargs: Mapping[str, Any]) -> Any:
        stride, pad = _window(kwargs, (weight.shape[2], weight.shape[3]))
        b = np.zeros(weight.shape[0], dtype=weight.dtype) if bias is None else bias  # +0: exact
        return _call(
            self.classes["convolution"], (WEIGHT, weight), (BIAS, b), (STRIDE, stride), (PAD, pad)
        )

    def _conv2d(self, x: Any, weight: Any, bias: Any = None, **kwargs: Any) -> Any:
        return _call(self._convolution(weight, bias, kwargs).forward, (X, x))

    def _conv2d_backward(
        self, upstream: Any, x: Any, weight: Any, bias: Any = None, **kwargs: Any
    ) -> dict[str, Any]:
        layer = self._convolution(weight, bias, kwargs)
        _call(layer.forward, (X, x))
        grads = {"x": layer.backward(upstream), "weight": _grad(layer, "weight")}
        return grads if bias is None else {**grads, "bias": _grad(layer, "bias")}

    def _pooling(self, role: str, x: Any, kwargs: Mapping[str, Any]) -> Any:
        (kh, kw), stride, pad = _pool_window(kwargs, x)
        return _call(
            self.classes[role], (FILTER_H, kh), (FILTER_W, kw), (STRIDE, stride), (PAD, pad)
        )

    def _max_pool2d(self, x: Any, **kwargs: Any) -> Any:
        return _call(self._pooling("max_pooling", x, kwargs).forward, (X, x))

    def _max_pool2d_backward(self, upstream: Any, x: Any, **kwargs: Any) -> dict[str, Any]:
        layer = self._pooling("max_pooling", x, kwargs)
        _call(layer.forward, (X, x))
        return {"x": layer.backward(upstream)}

    def _avg_pool2d(self, x: Any, **kwargs: Any) -> Any:
        return _call(self._pooling("avg_pooling", x, kwargs).forward, (X, x))

    def _avg_pool2d_backward(self, upstream: Any, x: Any, **kwargs: Any) -> dict[str, Any]:
        layer = self._pooling("avg_pooling", x, kwargs)
        _call(layer.forward, (X, x))
        return {"x": layer.backward(upstream)}

    def _affine(self, weight: Any, bias: Any) -> Any:
        """The book's W is (in, out): the catalog's (out, in) weight transposed (a view)."""
        b = np.zeros(weight.shape[0], dtype=weight.dtype) if bias is None else bias
        return _call(self.classes["affine"], (WEIGHT, weight.T), (BIAS, b))

    def _linear(self, x: Any, weight: Any, bias: Any = None) -> Any:
        return _call(self._affine(weight, bias).forward, (X, x))

    def _linear_backward(
        self, upstream: Any, x: Any, weight: Any, bias: Any = None
    ) -> dict[str, Any]:
        layer = self._affine(weight, bias)
        _call(layer.forward, (X, x))
        grads = {"x": layer.backward(upstream), "weight": np.asarray(_grad(layer, "weight")).T}
        return grads if bias is None else {**grads, "bias": _grad(layer, "bias")}

    # --- activations and softmax ----------------------------------------------------------------

    def _activation(self, role: str) -> Call:
        def forward(x: Any) -> Any:
            return _call(self.classes[role]().forward, (X, x))

        return forward

    def _activation_backward(self, role: str) -> Call:
        def backward(upstream: Any, x: Any) -> dict[str, Any]:
            layer = self.classes[role]()
            _call(layer.forward, (X, x))
            return {"x": layer.backward(upstream)}

        return backward

    def _leaky_layer(self, negative_slope: float) -> Any:
        layer_class = self.classes["leaky_relu"]
        if self._slope is not None:  # its own (checked by _expressible)
            return layer_class()
        return _call(layer_class, (SLOPE, negative_slope))

    def _leaky_relu(self, x: Any, negative_slope: float = 0.01) -> Any:
        return _call(self._leaky_layer(negative_slope).forward, (X, x))

    def _leaky_relu_backward(
        self, upstream: Any, x: Any, negative_slope: float = 0.01
    ) -> dict[str, Any]:
        layer = self._leaky_layer(negative_slope)
        _call(layer.forward, (X, x))
        return {"x": layer.backward(upstream)}

    def _measure_slope(self) -> float | None:
        """The slope of a LeakyReLU that takes none: minus its output at x = −1."""
        try:
            with _quiet():
                out = self.classes["leaky_relu"]().forward(np.array([-1.0, 1.0]))
            return float(f"{-float(out[0]):.12g}")
        except Exception:
            return None

    def _softmax(self, x: Any, dim: int) -> Any:
        if "softmax" in self.classes:
            return _call(self.classes["softmax"]().forward, (X, x))
        return _call(self.functions["softmax"], (X, x))

    def _softmax_backward(self, upstream: Any, x: Any, dim: int) -> dict[str, Any]:
        if "softmax" not in self.classes:
            raise Unsupported("the book's softmax is a function without a backward")
        layer = self.classes["softmax"]()
        _call(layer.forward, (X, x))
        return {"x": layer.backward(upstream)}

    def _softmax_with_loss(self, x: Any, t: Any) -> Any:
        layer = self.classes["softmax_with_loss"]()
        return np.asarray(layer.forward(x, _book_t(t)))

    def _softmax_with_loss_backward(self, upstream: Any, x: Any, t: Any) -> dict[str, Any]:
        """The loss layer is the last one: its backward(dout=1) is ∂L/∂x; the catalog's scalar
        upstream multiplies it (the chain rule, exact for a scalar up to one rounding)."""
        layer = self.classes["softmax_with_loss"]()
        layer.forward(x, _book_t(t))
        parameters = _parameters(layer.backward)
        needs_dout = parameters is not None and any(
            p.default is inspect.Parameter.empty for p in parameters
        )
        dx = layer.backward(1) if needs_dout else layer.backward()
        return {"x": np.asarray(upstream) * dx}

    # --- dropout --------------------------------------------------------------------------------

    def _dropout_layer(self, p: float) -> Any:
        layer_class = self.classes["dropout"]
        if _takes(layer_class, KEEP) and not _takes(layer_class, RATIO):
            return _call(layer_class, (KEEP, 1.0 - p))
        return _call(layer_class, (RATIO, p))

    def _dropout_run(
        self, x: Any, p: float, training: bool, mask: Any = None, upstream: Any = None
    ) -> tuple[Any, Any]:
        """(mask drawn, out or dx): a fresh layer, np.random seeded by x's shape, forward (and
        backward if ``upstream`` is given). A Dropout.forward that takes a mask gets ``mask``."""
        layer = self._dropout_layer(p)
        seed = zlib.crc32(repr(tuple(np.shape(x))).encode())
        with _seeded(seed):
            if self._dropout_mask_arg and training:
                out = _call(layer.forward, (X, x), (TRAIN, training), (("mask",), mask))
            else:
                out = _call(layer.forward, (X, x), (TRAIN, training))
        drawn = _drawn_mask(layer, x, out)
        if upstream is None:
            return drawn, out
        if training:
            return drawn, layer.backward(upstream)
        try:  # the book's backward reads the mask of a training forward: after a test one,
            return drawn, layer.backward(upstream)  # it has none (dout * None)
        except Exception as error:
            raise Unsupported(
                "the module's Dropout has no backward after a test forward"
            ) from error

    def _dropout_checked(
        self, x: Any, mask: Any, p: float, training: bool, upstream: Any = None
    ) -> Any:
        drawn, result = self._dropout_run(x, p, training, mask, upstream)
        if training and not self._dropout_mask_arg and not np.array_equal(drawn, mask != 0):
            again, _ = self._dropout_run(x, p, training)
            if not np.array_equal(again, drawn):
                raise RuntimeError(
                    "the module's Dropout does not draw its mask from np.random's global "
                    "generator (two draws seeded alike differ): the adapter cannot reproduce it"
                )
            raise Unsupported("the book's Dropout draws its own mask; this call gives another")
        return result

    def _dropout(self, x: Any, mask: Any, p: float, training: bool = True) -> Any:
        return self._dropout_checked(x, mask, p, training)

    def _dropout_backward(
        self, upstream: Any, x: Any, mask: Any, p: float, training: bool = True
    ) -> dict[str, Any]:
        return {"x": self._dropout_checked(x, mask, p, training, upstream)}

    # --- batch normalisation ----------------------------------------------------------------------

    def _batch_norm_layer(
        self,
        gamma: Any,
        beta: Any,
        eps: float | None,
        momentum: float | None = None,
        running: tuple[Any, Any] | None = None,
    ) -> Any:
        arguments: list[tuple[Sequence[str], Any]] = [(GAMMA, gamma), (BETA, beta)]
        if momentum is not None:
            arguments.append((MOMENTUM, momentum))
        if running is not None:
            arguments += [(RUNNING_MEAN, running[0]), (RUNNING_VAR, running[1])]
        layer_class = self.classes["batch_norm"]
        if eps is not None and _takes(layer_class, EPS):
            arguments.append((EPS, eps))
        return _call(layer_class, *arguments)

    def _per_activation(self, x: Any) -> int:
        """How many activations share a channel's γ: H·W for 4-D input per activation, else 1."""
        if PER_ACTIVATION in self.conventions and np.ndim(x) == 4:
            return int(x.shape[2] * x.shape[3])
        return 1

    def _affine_parameters(self, x: Any, weight: Any, bias: Any) -> tuple[Any, Any]:
        """γ and β as the module takes them: ones/zeros when absent (exact), repeated over H·W
        per activation (feature c·H·W + h·W + w of the (N, C·H·W) view has channel c)."""
        channels = x.shape[1]
        gamma = np.ones(channels, dtype=x.dtype) if weight is None else weight
        beta = np.zeros(channels, dtype=x.dtype) if bias is None else bias
        repeat = self._per_activation(x)
        if repeat > 1:
            gamma, beta = np.repeat(gamma, repeat), np.repeat(beta, repeat)
        return gamma, beta

    def _batch_norm(self, x: Any, running_mean: Any, running_var: Any, **kwargs: Any) -> Any:
        return self._trained_layer(x, kwargs)[1]

    def _trained_layer(self, x: Any, kwargs: Mapping[str, Any]) -> tuple[Any, Any]:
        gamma, beta = self._affine_parameters(x, kwargs.get("weight"), kwargs.get("bias"))
        layer = self._batch_norm_layer(gamma, beta, kwargs["eps"])
        out = _call(layer.forward, (X, x), (TRAIN, True))
        return layer, out

    def _batch_norm_backward(
        self, upstream: Any, x: Any, running_mean: Any, running_var: Any, **kwargs: Any
    ) -> dict[str, Any]:
        layer, _ = self._trained_layer(x, kwargs)
        dx = layer.backward(upstream)
        dgamma, dbeta = np.asarray(_grad(layer, "gamma")), np.asarray(_grad(layer, "beta"))
        repeat = self._per_activation(x)
        if repeat > 1:  # a channel's γ acts on its H·W activations: their gradients add up
            dgamma = dgamma.reshape(x.shape[1], repeat).sum(axis=1)
            dbeta = dbeta.reshape(x.shape[1], repeat).sum(axis=1)
        return {"x": dx, "weight": dgamma, "bias": dbeta}

    def _running_stats(self, x: Any, running_mean: Any, running_var: Any, momentum: float) -> Any:
        """The running buffers after one training forward, stacked (2, C). The layer gets copies
        (the book rebinds them, torch-like layers update them in place)."""
        gamma, beta = self._affine_parameters(x, None, None)
        layer = self._batch_norm_layer(
            gamma, beta, self._bn_eps, momentum, (running_mean.copy(), running_var.copy())
        )
        _call(layer.forward, (X, x), (TRAIN, True))
        mean = _attribute(layer, RUNNING_MEAN, "running mean")
        var = _attribute(layer, RUNNING_VAR, "running variance")
        return np.stack([np.asarray(mean), np.asarray(var)])

    def _measure_batch_norm_eps(self) -> float | None:
        """The eps of a BatchNormalization that takes none, from one forward: x = (−a, a) has
        variance a², so the output a/√(a² + eps) gives eps = a²·(1/out² − 1); a = 1e-4 resolves
        eps from 1e-12 up, to 6 significant digits."""
        a = 1e-4
        try:
            layer = self._batch_norm_layer(np.ones(1), np.zeros(1), None)
            with _quiet():
                out = _call(layer.forward, (X, np.array([[-a], [a]])), (TRAIN, True))
            eps = a * a * (1.0 / float(np.asarray(out)[1, 0]) ** 2 - 1.0)
        except Exception:
            return None
        return float(f"{eps:.6g}") if eps > 0 else None

    # --- optimizers -----------------------------------------------------------------------------

    def _optimizer_class(self, op: str, kwargs: Mapping[str, Any]) -> tuple[str, Any]:
        """(role, class) for the sample; Unsupported for hyperparameters the book has not."""
        neutral = {
            "weight_decay": 0.0,
            "maximize": False,
            "dampening": 0.0,
            "lr_decay": 0.0,
            "initial_accumulator_value": 0.0,
            "centered": False,
            "amsgrad": False,
            "decoupled_weight_decay": False,
        }
        if op == "rmsprop":
            neutral["momentum"] = 0.0
        for key, value in neutral.items():
            if kwargs.get(key, value) != value:
                raise Unsupported(f"the book's {op} has no {key} (got {key}={kwargs[key]!r})")
        role = op
        if op == "sgd":
            role = "sgd"
            if kwargs.get("nesterov", False):
                role = "nesterov"
            elif kwargs.get("momentum", 0.0) != 0:
                role = "momentum"
        if role not in self.classes:
            raise Unsupported(f"the module has no {role} optimizer")
        optimizer_class = self.classes[role]
        fixed_eps = op != "sgd" and not _takes(optimizer_class, EPS)
        if fixed_eps and kwargs.get("eps", TORCH_EPS[op]) != self._optimizer_eps(op):
            raise Unsupported(f"the module's {op} adds eps {self._optimizer_eps(op):g}")
        return role, optimizer_class

    def _optimizer(self, op: str, params: Any, grads: Any, *, split: Any, **kwargs: Any) -> Any:
        """T steps of ``update(params, grads)`` on dicts of the split tensors; (T, K, P)."""
        role, optimizer_class = self._optimizer_class(op, kwargs)
        lr = kwargs.get("lr", TORCH_LR[op])
        self._velocity_converted = False
        arguments: list[tuple[Sequence[str], Any]] = [(LR, lr)]
        if role in ("momentum", "nesterov"):
            arguments.append((MOMENTUM, kwargs["momentum"]))
        if op == "rmsprop":
            arguments.append((DECAY_RATE, kwargs.get("alpha", 0.99)))
        if op == "adam":
            beta1, beta2 = kwargs.get("betas", (0.9, 0.999))
            arguments += [(BETA1, beta1), (BETA2, beta2)]
        if op != "sgd" and _takes(optimizer_class, EPS):
            arguments.append((EPS, kwargs.get("eps", TORCH_EPS[op])))
        optimizer = _call(optimizer_class, *arguments)
        pieces: list[tuple[str, int, int, tuple[int, ...]]] = []
        start = 0
        for shape in split:
            stop = start + math.prod(shape)
            pieces.append((f"p{len(pieces)}", start, stop, tuple(shape)))
            start = stop
        tensors = {key: params[a:b].reshape(shape).copy() for key, a, b, shape in pieces}
        rows = []
        for grad in grads:
            step = {key: grad[a:b].reshape(shape).copy() for key, a, b, shape in pieces}
            optimizer.update(tensors, step)
            row = [np.concatenate([np.asarray(tensors[key]).reshape(-1) for key, *_ in pieces])]
            for buffer in _buffers(op, kwargs):
                found = [_buffer(optimizer, buffer, key, lr) for key, *_ in pieces]
                row.append(np.concatenate([values for values, _ in found]))
                self._velocity_converted = any(converted for _, converted in found)
            rows.append(np.stack(row))
        return np.stack(rows)


def _buffers(op: str, kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    """torch's state buffers in the catalog's trajectory, in torch's order."""
    if op == "sgd":
        return ("momentum_buffer",) if kwargs.get("momentum", 0.0) != 0 else ()
    return {"adagrad": ("sum",), "rmsprop": ("square_avg",), "adam": ("exp_avg", "exp_avg_sq")}[op]


def _buffer(optimizer: Any, buffer: str, key: str, lr: float) -> tuple[Any, bool]:
    """(torch's ``buffer`` for ``key`` flattened, whether it was converted from the book's
    velocity), from the optimizer's state.

    torch-named ``state[key][buffer]`` first; else the book's attribute: the momentum buffer is
    −v/lr (the book's v = μ·v − lr·g is −lr times torch's b = μ·b + g, b₁ = g₁); the others are
    the same quantity under the book's name.
    """
    state = getattr(optimizer, "state", None)
    if isinstance(state, Mapping) and buffer in (state.get(key) or {}):
        return np.asarray(state[key][buffer]).reshape(-1), False
    for name in BUFFER_ATTRIBUTES[buffer]:
        values = _attribute(optimizer, (name,), buffer, missing=None)
        if isinstance(values, Mapping) and key in values:
            value = np.asarray(values[key])
            if buffer == "momentum_buffer":
                return np.asarray(-value / lr).reshape(-1), True
            return value.reshape(-1), False
    raise AttributeError(
        f"{type(optimizer).__name__} keeps its {buffer} under none of the names "
        f"{', '.join(BUFFER_ATTRIBUTES[buffer])} (per-key dicts), nor in state[key][{buffer!r}]"
    )


def _attribute(owner: Any, names: Sequence[str], what: str, missing: Any = AttributeError) -> Any:
    """``owner``'s attribute under one of ``names`` (case and underscores ignored)."""
    wanted = [_normal(n) for n in names]
    available = {_normal(n): n for n in (vars(owner) if hasattr(owner, "__dict__") else dir(owner))}
    for name in wanted:
        if name in available:
            return getattr(owner, available[name])
    if missing is AttributeError:
        raise AttributeError(
            f"{type(owner).__name__} keeps no {what} under any of {', '.join(names)}"
        )
    return missing


def _book_t(t: Any) -> Any:
    """The catalog's targets as the book takes them: a 1-D t holds class indices (int)."""
    return t.astype(np.int64) if np.ndim(t) == 1 else t


def _drawn_mask(layer: Any, x: Any, out: Any) -> Any:
    """The keep-mask a Dropout drew: its ``mask`` attribute if shaped like x, else where the
    output is non-zero (x is drawn from N(0, 1): never exactly 0)."""
    stored = getattr(layer, "mask", None)
    if stored is not None and np.shape(stored) == np.shape(x):
        return np.asarray(stored) != 0
    return np.asarray(out) != 0
