"""Two complete networks of "Deep Learning from Scratch" (ch. 7 and 8), built from refcnn.layers.

``SimpleConvNet``::

    x ─ Conv1 ─ Relu1 ─ Pool1 ─ Affine1 ─ Relu2 ─ Affine2 ─ softmax cross-entropy ─ L
        W1,b1          2×2/2    W2,b2             W3,b3       (mean over the batch)

``DeepConvNet`` (every conv 3×3; the fourth pads 2, the others 1; every pool 2×2, stride 2)::

    x ─ Conv1 ─ Relu1 ─ Conv2 ─ Relu2 ─ Pool1 ─ Conv3 ─ Relu3 ─ Conv4 ─ Relu4 ─ Pool2
      ─ Conv5 ─ Relu5 ─ Conv6 ─ Relu6 ─ Pool3 ─ Affine1 ─ Relu7 ─ Dropout1 ─ Affine2 ─ Dropout2
      ─ softmax cross-entropy ─ L

The loss, with logits z (N, classes) and class indices t (N,)::

    L = −(1/N) · Σ_n log softmax(z_n)[t_n]           log softmax computed stably (refcnn.functional)
    ∂L/∂z = (softmax(z) − onehot(t)) / N · dout      the book's (y − t) / batch_size, times dout

Backward is the chain rule run through the same layers in reverse: each layer's ``backward``
takes ∂L/∂(its output) and returns ∂L/∂(its input), and a parameter layer keeps ∂L/∂W and ∂L/∂b
(``dW``, ``db``). ``gradient(x, t)`` returns them as the book's dict ``{"W1": …, "b1": …}``; the
gradient of the input x is kept as ``net.dx``. See docs/networks.md for the derivation.

Differences from the book (refcnn follows torch, see refcnn.layers): Affine keeps the book's
W (in, out); dropout is inverted (train x·mask/(1 − p)); the masks can be GIVEN (``dropout_masks``)
so that another implementation can be fed the same ones; ``dout`` may differ from 1 (the book's
SoftmaxWithLoss ignores it); the pool output size rounds down (torch's floor mode) for any input
size, square or not; the loss adds no 1e-7 inside the log (log softmax is exact where the book's
log(y + 1e-7) is not).

The pure functions ``simple_conv_net_loss`` / ``deep_conv_net_loss`` and their ``_backward`` take
every array as an argument (the catalog's entries, refcnn.testing.catalog.networks).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import DTypeLike, NDArray

from refcnn.functional.softmax import log_softmax, softmax
from refcnn.geometry import FloatArray, check_float_array, check_same_dtype
from refcnn.layers import Affine, Convolution, Dropout, MaxPooling, Relu

Array = NDArray[np.floating[Any]]
Labels = NDArray[np.integer[Any]]

# --- the loss -----------------------------------------------------------------------------------


def _check_labels(labels: object, logits: FloatArray) -> Labels:
    """Class indices: an integer array (N,) with values in 0 .. classes − 1."""
    n, classes = logits.shape
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"t must be a numpy.ndarray of class indices, got {type(labels).__name__}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"t must have an integer dtype (class indices), got t.dtype={labels.dtype}")
    if labels.shape != (n,):
        raise ValueError(f"t.shape={labels.shape}, but the logits {logits.shape} need t of ({n},)")
    outside = (labels < 0) | (labels >= classes)
    if np.any(outside):
        raise ValueError(
            f"t holds class {labels[outside][0]}, but the logits have {classes} classes "
            f"(0 .. {classes - 1})"
        )
    return labels


def _check_upstream(dout: object, like: FloatArray) -> FloatArray:
    """The upstream gradient of the scalar loss: a Python number or a 0-d array of like's dtype."""
    if isinstance(dout, numbers.Real) and not isinstance(dout, bool):
        return np.asarray(dout, dtype=like.dtype)  # 1.0 and small integers are exact
    upstream = check_float_array(dout, "dout", 0, "(the loss is a scalar)")
    check_same_dtype("x", like, dout=upstream)
    return upstream


def softmax_cross_entropy(logits: FloatArray, labels: Labels) -> FloatArray:
    """The mean softmax cross-entropy of logits (N, classes) against class indices t (N,).

    L = −(1/N)·Σ_n log softmax(logits_n)[t_n]     (torch's ``cross_entropy``, 'mean'), a 0-d array

    See docs/networks.md.
    """
    z = check_float_array(logits, "logits", 2, "(N, classes)")
    t = _check_labels(labels, z)
    picked = log_softmax(z, 1)[np.arange(z.shape[0]), t]  # log softmax(z_n)[t_n]
    loss: FloatArray = np.asarray(-np.mean(picked), dtype=z.dtype)
    return loss


def softmax_cross_entropy_backward(
    grad_out: FloatArray | float, logits: FloatArray, labels: Labels
) -> FloatArray:
    """∂L/∂logits of :func:`softmax_cross_entropy`, times the upstream ``grad_out``.

    dlogits = (softmax(logits) − onehot(t)) / N · grad_out     (the book's (y − t) / batch_size)

    See docs/networks.md.
    """
    z = check_float_array(logits, "logits", 2, "(N, classes)")
    t = _check_labels(labels, z)
    upstream = _check_upstream(grad_out, z)
    onehot = np.zeros_like(z)
    onehot[np.arange(z.shape[0]), t] = 1
    grad: FloatArray = (softmax(z, 1) - onehot) * upstream / z.shape[0]  # ((s − y)·dout) / N
    return grad


class SoftmaxWithLoss:
    """The book's last layer: ``forward(x, t)`` → the loss, ``backward(dout=1)`` → ∂L/∂x.

    L = −(1/N)·Σ_n log softmax(x_n)[t_n];   ∂L/∂x = (softmax(x) − onehot(t)) / N · dout

    See docs/networks.md.
    """

    def __init__(self) -> None:
        self.x: Array | None = None
        self.t: Labels | None = None

    def forward(self, x: Array, t: Labels) -> Array:
        """L = softmax_cross_entropy(x, t), a 0-d array; remembers x and t for backward.

        See docs/networks.md.
        """
        self.x, self.t = x, t
        return softmax_cross_entropy(x, t)

    def backward(self, dout: Array | float = 1.0) -> Array:
        """∂(dout·L)/∂x for the loss of the last ``forward``.

        dx = (softmax(x) − onehot(t)) / N · dout     (dout = 1: the loss is the last node)

        See docs/networks.md.
        """
        if self.x is None or self.t is None:
            raise RuntimeError("SoftmaxWithLoss.backward called before forward")
        return softmax_cross_entropy_backward(dout, self.x, self.t)


# --- shared by both networks --------------------------------------------------------------------

Layer = Convolution | Relu | MaxPooling | Affine | Dropout


def _conv_output(length: int, filter_size: int, pad: int, stride: int) -> int:
    return (length + 2 * pad - filter_size) // stride + 1


def _check_params(
    name: str, params: Mapping[str, Array], expected: Mapping[str, tuple[int, ...]], dtype: Any
) -> None:
    """Every array present, shaped and typed as this network's sizes say."""
    missing = [key for key in expected if key not in params]
    if missing:
        raise ValueError(f"{name} needs parameters {list(expected)}, missing {missing}")
    for key, shape in expected.items():
        value = check_float_array(params[key], key, len(shape), str(shape))
        if value.shape != shape:
            raise ValueError(f"{key}.shape={value.shape}, but this {name} expects {shape}")
        if value.dtype != dtype:
            raise TypeError(f"{key}.dtype={value.dtype} differs from the network's dtype {dtype}")


class _Network:
    """What both networks share: the book's predict / loss / accuracy / gradient."""

    params: dict[str, Array]
    layers: dict[str, Layer]
    last_layer: SoftmaxWithLoss
    dx: Array | None
    # parameter name -> (layer name, attribute of the layer's gradient)
    GRADIENTS: ClassVar[dict[str, tuple[str, str]]] = {}

    shapes: dict[str, tuple[int, ...]]
    dtype: np.dtype[Any]

    def _build_layers(self) -> None:
        raise NotImplementedError

    def set_params(self, params: Mapping[str, Array]) -> None:
        """Use these arrays (by reference) as the parameters W1, b1, …; each shaped and typed as
        this network's (``self.shapes``, ``self.dtype``)."""
        _check_params(type(self).__name__, params, self.shapes, self.dtype)
        self.params = {key: params[key] for key in self.shapes}
        self._build_layers()

    def _forward(self, x: Array, train_flg: bool, dropout_masks: Sequence[Array] | None) -> Array:
        dropouts = [name for name, layer in self.layers.items() if isinstance(layer, Dropout)]
        if dropout_masks is not None and len(dropout_masks) != len(dropouts):
            raise ValueError(
                f"dropout_masks holds {len(dropout_masks)} masks, but the network has "
                f"{len(dropouts)} dropout layers"
            )
        masks = dict(zip(dropouts, dropout_masks, strict=True)) if dropout_masks else {}
        for name, layer in self.layers.items():
            if isinstance(layer, Dropout):
                x = layer.forward(x, train_flg, mask=masks.get(name))
            else:
                x = layer.forward(x)
        return x

    def _loss_of_logits(self, z: Array, t: Labels) -> Array:
        return self.last_layer.forward(z, t)

    def input_gradient(self) -> Array:
        """∂L/∂x of the last backward pass."""
        if self.dx is None:
            raise RuntimeError("input_gradient() needs a backward pass first")
        return self.dx

    def backward(self, dout: Array | float = 1.0) -> Array:
        """∂L/∂x after ``loss``; every parameter layer keeps its dW and db.

        grad = last_layer.backward(dout), then grad = layer.backward(grad) for each layer in
        reverse order: ∂L/∂x = J₁ᵀ·J₂ᵀ ⋯ J_kᵀ·∂L/∂z (the chain rule, one Jacobian per layer)

        See docs/networks.md.
        """
        grad = self.last_layer.backward(dout)
        for layer in reversed(self.layers.values()):
            grad = layer.backward(grad)
        self.dx = grad
        return grad

    def collect_gradients(self) -> dict[str, Array]:
        """The book's dict of parameter gradients, after ``backward``."""
        grads: dict[str, Array] = {}
        for key, (layer_name, attribute) in self.GRADIENTS.items():
            value = getattr(self.layers[layer_name], attribute)
            if value is None:
                raise RuntimeError("gradient() needs a backward pass first")
            grads[key] = value
        return grads

    def accuracy(self, x: Array, t: Labels) -> float:
        """The fraction of samples whose largest logit is their class (evaluation mode)."""
        logits = self._forward(x, False, None)
        return float(np.mean(np.argmax(logits, axis=1) == t))


def _initial(rng: np.random.Generator, scale: float, shape: tuple[int, ...], dtype: Any) -> Array:
    return (scale * rng.standard_normal(shape)).astype(dtype)


# --- SimpleConvNet ------------------------------------------------------------------------------

SIMPLE_CONV_PARAM = {"filter_num": 3, "filter_size": 5, "pad": 0, "stride": 1}


class SimpleConvNet(_Network):
    """conv – relu – pool – affine – relu – affine – softmax loss (the book's ch. 7 network).

    L = softmax_cross_entropy(z, t),  z = Affine2(Relu(Affine1(Pool(Relu(Conv1(x))))))

    ``input_dim`` (C, H, W); ``conv_param`` {"filter_num", "filter_size", "pad", "stride"}
    (defaults: 3 filters of 5×5, pad 0, stride 1); parameters, held by reference in
    ``self.params``: W1 (FN, C, FS, FS), b1 (FN,), W2 (FN·PH·PW, hidden), b2 (hidden,),
    W3 (hidden, classes), b3 (classes,), with PH, PW the pooled size (floor of half the conv's).
    The defaults are small, for tests; the book's are input (1, 28, 28), 30 filters, hidden 100
    and 10 classes.

    See docs/networks.md.
    """

    GRADIENTS: ClassVar[dict[str, tuple[str, str]]] = {
        "W1": ("Conv1", "dW"),
        "b1": ("Conv1", "db"),
        "W2": ("Affine1", "dW"),
        "b2": ("Affine1", "db"),
        "W3": ("Affine2", "dW"),
        "b3": ("Affine2", "db"),
    }

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 10, 10),
        conv_param: Mapping[str, int] | None = None,
        hidden_size: int = 10,
        output_size: int = 3,
        weight_init_std: float = 0.01,
        rng: np.random.Generator | None = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        conv = {**SIMPLE_CONV_PARAM, **(conv_param or {})}
        self.conv_param = conv
        channels, height, width = input_dim
        size, pad, stride = conv["filter_size"], conv["pad"], conv["stride"]
        pooled = [_conv_output(length, size, pad, stride) // 2 for length in (height, width)]
        if min(pooled) < 1:
            raise ValueError(
                f"input_dim={tuple(input_dim)} with conv_param={conv} leaves no 2×2 window to pool"
            )
        self.shapes: dict[str, tuple[int, ...]] = {
            "W1": (conv["filter_num"], channels, size, size),
            "b1": (conv["filter_num"],),
            "W2": (conv["filter_num"] * pooled[0] * pooled[1], hidden_size),
            "b2": (hidden_size,),
            "W3": (hidden_size, output_size),
            "b3": (output_size,),
        }
        rng = np.random.default_rng() if rng is None else rng
        self.dtype = np.dtype(dtype)
        self.params = {
            key: _initial(rng, weight_init_std if key.startswith("W") else 0.0, shape, self.dtype)
            for key, shape in self.shapes.items()
        }
        self.dx = None
        self._build_layers()

    def _build_layers(self) -> None:
        p, conv = self.params, self.conv_param
        self.layers = {
            "Conv1": Convolution(p["W1"], p["b1"], conv["stride"], conv["pad"]),
            "Relu1": Relu(),
            "Pool1": MaxPooling(2, 2, stride=2),
            "Affine1": Affine(p["W2"], p["b2"]),
            "Relu2": Relu(),
            "Affine2": Affine(p["W3"], p["b3"]),
        }
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x: Array) -> Array:
        """The logits (N, classes)."""
        return self._forward(x, True, None)

    def loss(self, x: Array, t: Labels) -> Array:
        """The mean softmax cross-entropy of the logits against class indices t (N,)."""
        return self._loss_of_logits(self.predict(x), t)

    def gradient(self, x: Array, t: Labels, dout: Array | float = 1.0) -> dict[str, Array]:
        """∂(dout·L)/∂θ for every parameter, keyed W1 … b3 (∂L/∂x is kept as ``self.dx``)."""
        self.loss(x, t)
        self.backward(dout)
        return self.collect_gradients()


# --- DeepConvNet --------------------------------------------------------------------------------

DEEP_CONV_PARAMS = (  # the book's pads; filter numbers 16, 16, 32, 32, 64, 64 there
    {"filter_num": 2, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 2, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 3, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 3, "filter_size": 3, "pad": 2, "stride": 1},
    {"filter_num": 4, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 4, "filter_size": 3, "pad": 1, "stride": 1},
)
POOL_AFTER = (2, 4, 6)  # a 2×2 max pool follows the second, fourth and sixth conv


class DeepConvNet(_Network):
    """Six 3×3 convs with relus, three max pools, affine – relu – dropout – affine – dropout and
    the softmax loss (the book's ch. 8 network).

    L = softmax_cross_entropy(z, t),  z = Dropout2(Affine2(Dropout1(Relu7(Affine1(convs(x))))))

    ``conv_param_1`` … ``conv_param_6`` as in the book (defaults: small filter numbers, the
    book's pads 1, 1, 1, 2, 1, 1); parameters W1 … W6 (FN, C, 3, 3), W7 (FN6·PH·PW, hidden),
    W8 (hidden, classes) and biases b1 … b8, initialised as the book does (He: std
    sqrt(2 / fan_in), zero biases). The defaults are small, for tests: input (1, 8, 8), hidden
    8, 3 classes (the book: (1, 28, 28), 50, 10). The smallest input is 4×4.

    See docs/networks.md.
    """

    GRADIENTS: ClassVar[dict[str, tuple[str, str]]] = {
        **{f"{kind}{i}": (f"Conv{i}", f"d{kind}") for i in range(1, 7) for kind in "Wb"},
        "W7": ("Affine1", "dW"),
        "b7": ("Affine1", "db"),
        "W8": ("Affine2", "dW"),
        "b8": ("Affine2", "db"),
    }

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 8, 8),
        conv_param_1: Mapping[str, int] | None = None,
        conv_param_2: Mapping[str, int] | None = None,
        conv_param_3: Mapping[str, int] | None = None,
        conv_param_4: Mapping[str, int] | None = None,
        conv_param_5: Mapping[str, int] | None = None,
        conv_param_6: Mapping[str, int] | None = None,
        hidden_size: int = 8,
        output_size: int = 3,
        dropout_ratio: float = 0.5,
        rng: np.random.Generator | None = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        given = (conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5, conv_param_6)
        self.conv_params = [
            {**d, **(g or {})} for d, g in zip(DEEP_CONV_PARAMS, given, strict=True)
        ]
        self.dropout_ratio = dropout_ratio
        channels, height, width = input_dim
        size = [height, width]
        self.shapes: dict[str, tuple[int, ...]] = {}
        fan_in = []
        for index, conv in enumerate(self.conv_params, start=1):
            k = conv["filter_size"]
            self.shapes[f"W{index}"] = (conv["filter_num"], channels, k, k)
            self.shapes[f"b{index}"] = (conv["filter_num"],)
            fan_in.append(channels * k * k)
            channels = conv["filter_num"]
            size = [_conv_output(n, k, conv["pad"], conv["stride"]) for n in size]
            if index in POOL_AFTER:
                size = [n // 2 for n in size]
            if min(size) < 1:
                raise ValueError(
                    f"input_dim={tuple(input_dim)} is too small: after conv {index} "
                    f"(and its pool) nothing is left (the smallest input is 4×4 with the "
                    f"book's pads)"
                )
        flat = channels * size[0] * size[1]
        self.shapes.update(
            W7=(flat, hidden_size),
            b7=(hidden_size,),
            W8=(hidden_size, output_size),
            b8=(output_size,),
        )
        fan_in += [flat, hidden_size]
        rng = np.random.default_rng() if rng is None else rng
        self.dtype = np.dtype(dtype)
        self.params = {}
        for index in range(1, 9):  # He initialisation, as the book's DeepConvNet
            scale = math.sqrt(2.0 / fan_in[index - 1])
            self.params[f"W{index}"] = _initial(rng, scale, self.shapes[f"W{index}"], self.dtype)
            self.params[f"b{index}"] = np.zeros(self.shapes[f"b{index}"], dtype=self.dtype)
        self.rng = rng
        self.dx = None
        self._build_layers()

    def _build_layers(self) -> None:
        p = self.params
        self.layers = {}
        for index, conv in enumerate(self.conv_params, start=1):
            self.layers[f"Conv{index}"] = Convolution(
                p[f"W{index}"], p[f"b{index}"], conv["stride"], conv["pad"]
            )
            self.layers[f"Relu{index}"] = Relu()
            if index in POOL_AFTER:
                self.layers[f"Pool{POOL_AFTER.index(index) + 1}"] = MaxPooling(2, 2, stride=2)
        self.layers["Affine1"] = Affine(p["W7"], p["b7"])
        self.layers["Relu7"] = Relu()
        self.layers["Dropout1"] = Dropout(self.dropout_ratio, self.rng)
        self.layers["Affine2"] = Affine(p["W8"], p["b8"])
        self.layers["Dropout2"] = Dropout(self.dropout_ratio, self.rng)
        self.last_layer = SoftmaxWithLoss()

    def predict(
        self, x: Array, train_flg: bool = False, dropout_masks: Sequence[Array] | None = None
    ) -> Array:
        """The logits; in training, dropout uses ``dropout_masks`` (two 0/1 arrays) if given."""
        return self._forward(x, train_flg, dropout_masks)

    def loss(self, x: Array, t: Labels, dropout_masks: Sequence[Array] | None = None) -> Array:
        """The loss in training mode (dropout on), as the book's ``loss``."""
        return self._loss_of_logits(self.predict(x, True, dropout_masks), t)

    def gradient(
        self,
        x: Array,
        t: Labels,
        dout: Array | float = 1.0,
        dropout_masks: Sequence[Array] | None = None,
    ) -> dict[str, Array]:
        """∂(dout·L)/∂θ for every parameter, keyed W1 … b8 (∂L/∂x is kept as ``self.dx``)."""
        self.loss(x, t, dropout_masks)
        self.backward(dout)
        return self.collect_gradients()


# --- pure functions: every array an argument ----------------------------------------------------


def _input_dim(x: object) -> tuple[int, int, int]:
    batch = check_float_array(x, "x", 4, "(N, C, H, W)")
    _, channels, height, width = batch.shape
    return channels, height, width


def _present(params: Mapping[str, Array], keys: Sequence[str], network: str) -> None:
    missing = [key for key in keys if key not in params]
    if missing:
        raise ValueError(f"{network} needs parameters {list(keys)}, missing {missing}")


def _checked_grad_out(grad_out: object, x: Array) -> Array:
    upstream = check_float_array(grad_out, "grad_out", 0, "(the loss is a scalar)")
    check_same_dtype("x", x, grad_out=upstream)
    return upstream


SIMPLE_PARAMETERS = tuple(SimpleConvNet.GRADIENTS)  # W1, b1, W2, b2, W3, b3
DEEP_PARAMETERS = tuple(DeepConvNet.GRADIENTS)  # W1, b1, …, W8, b8


def simple_network(
    x: Array, params: Mapping[str, Array], stride: int = 1, pad: int = 0
) -> SimpleConvNet:
    """The SimpleConvNet sized for x whose parameters are these arrays (by reference).

    FN, FS from W1 (FN, C, FS, FS); hidden = W2.shape[1]; classes = W3.shape[1]; (C, H, W) from x

    See docs/networks.md.
    """
    _present(params, SIMPLE_PARAMETERS, "SimpleConvNet")
    W1 = check_float_array(params["W1"], "W1", 4, "(FN, C, FS, FS)")
    W2 = check_float_array(params["W2"], "W2", 2, "(FN·PH·PW, hidden)")
    W3 = check_float_array(params["W3"], "W3", 2, "(hidden, classes)")
    conv = {"filter_num": W1.shape[0], "filter_size": W1.shape[2], "pad": pad, "stride": stride}
    net = SimpleConvNet(
        _input_dim(x),
        conv,
        hidden_size=W2.shape[1],
        output_size=W3.shape[1],
        rng=np.random.default_rng(0),  # the drawn parameters are replaced at once
        dtype=x.dtype,
    )
    net.set_params(params)
    return net


def deep_network(x: Array, params: Mapping[str, Array], dropout_ratio: float = 0.5) -> DeepConvNet:
    """The DeepConvNet (the book's pads) sized for x whose parameters are these arrays.

    filter numbers and sizes from W1 … W6; hidden = W7.shape[1]; classes = W8.shape[1]

    See docs/networks.md.
    """
    _present(params, DEEP_PARAMETERS, "DeepConvNet")
    convs = []
    for index, default in enumerate(DEEP_CONV_PARAMS, start=1):
        weight = check_float_array(params[f"W{index}"], f"W{index}", 4, "(FN, C, FS, FS)")
        convs.append({**default, "filter_num": weight.shape[0], "filter_size": weight.shape[2]})
    W7 = check_float_array(params["W7"], "W7", 2, "(FN6·PH·PW, hidden)")
    W8 = check_float_array(params["W8"], "W8", 2, "(hidden, classes)")
    net = DeepConvNet(
        _input_dim(x),
        **{f"conv_param_{index}": conv for index, conv in enumerate(convs, start=1)},
        hidden_size=W7.shape[1],
        output_size=W8.shape[1],
        dropout_ratio=dropout_ratio,
        rng=np.random.default_rng(0),
        dtype=x.dtype,
    )
    net.set_params(params)
    return net


def simple_conv_net_loss(
    x: Array, t: Labels, params: Mapping[str, Array], stride: int = 1, pad: int = 0
) -> Array:
    """SimpleConvNet's loss L(x, t; W1 … b3), a 0-d array.

    L = −(1/N)·Σ_n log softmax(z_n)[t_n],  z = SimpleConvNet's logits of x

    See docs/networks.md.
    """
    return simple_network(x, params, stride, pad).loss(x, t)


def simple_conv_net_loss_backward(
    grad_out: Array,
    x: Array,
    t: Labels,
    params: Mapping[str, Array],
    stride: int = 1,
    pad: int = 0,
) -> tuple[Array, dict[str, Array]]:
    """``(∂L/∂x, {"W1": ∂L/∂W1, …, "b3": ∂L/∂b3})``, times the upstream ``grad_out`` (0-d).

    ∂L/∂z = (softmax(z) − onehot(t)) / N · grad_out, then back through every layer (chain rule)

    See docs/networks.md.
    """
    net = simple_network(x, params, stride, pad)
    grads = net.gradient(x, t, _checked_grad_out(grad_out, x))
    return net.input_gradient(), grads


def deep_conv_net_loss(
    x: Array,
    t: Labels,
    params: Mapping[str, Array],
    dropout_masks: Sequence[Array],
    dropout_ratio: float = 0.5,
) -> Array:
    """DeepConvNet's training loss L(x, t; W1 … b8) with the given dropout masks, a 0-d array.

    L = −(1/N)·Σ_n log softmax(z_n)[t_n],  z = DeepConvNet's logits of x (dropout on)

    See docs/networks.md.
    """
    return deep_network(x, params, dropout_ratio).loss(x, t, dropout_masks)


def deep_conv_net_loss_backward(
    grad_out: Array,
    x: Array,
    t: Labels,
    params: Mapping[str, Array],
    dropout_masks: Sequence[Array],
    dropout_ratio: float = 0.5,
) -> tuple[Array, dict[str, Array]]:
    """``(∂L/∂x, {"W1": ∂L/∂W1, …, "b8": ∂L/∂b8})``, times the upstream ``grad_out`` (0-d).

    ∂L/∂z = (softmax(z) − onehot(t)) / N · grad_out, then back through every layer (chain rule)

    See docs/networks.md.
    """
    net = deep_network(x, params, dropout_ratio)
    grads = net.gradient(x, t, _checked_grad_out(grad_out, x), dropout_masks)
    return net.input_gradient(), grads
