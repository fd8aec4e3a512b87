"""Book-style layers: stateful classes over :mod:`refcnn.functional`.

The shape of "Deep Learning from Scratch" (O'Reilly Japan): a layer has ``forward`` and
``backward``; ``forward`` remembers what ``backward`` needs; ``backward(dout)`` returns the
gradient for the layer below and stores the parameter gradients as attributes (``dW``, ``db``;
``dgamma``, ``dbeta``). Parameters are held BY REFERENCE: an optimizer that updates ``layer.W``
in place updates the layer. Every formula lives in refcnn.functional; these classes only hold
state.

Where the book and torch disagree, these layers follow torch (what refcnn is checked against),
and the docstring says so:

* ``MaxPooling``/``AvgPooling`` keep the book's signature ``(pool_h, pool_w, stride=1, pad=0)``.
* ``Affine`` keeps the book's weight layout ``W (in, out)``; ``refcnn.functional.linear`` uses
  torch's ``(out, in)``.
* ``Dropout`` is inverted (train: ``x·mask/(1 − p)``, test: ``x``); the book's is not
  (train: ``x·mask``, test: ``x·(1 − p)``).
* ``BatchNormalization`` uses torch's momentum (0.1 = weight of the NEW statistics; the book's
  0.9 is the weight of the old ones), an unbiased running variance initialised to ones, and
  per-channel statistics on 4-D input (the book normalises each of the C·H·W activations).

Each class's docstring states its formula and links the page that derives its gradient
(docs/conv2d.md, docs/pooling.md, docs/linear.md, ...).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from refcnn.functional import activations
from refcnn.functional.conv import conv2d, conv2d_backward
from refcnn.functional.dropout import dropout, dropout_backward
from refcnn.functional.linear import linear, linear_backward
from refcnn.functional.normalization import (
    batch_norm,
    batch_norm_backward,
    batch_norm_running_stats,
)
from refcnn.functional.pooling import (
    avg_pool2d,
    avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
)

Array = NDArray[np.floating[Any]]


def _remembered(value: Array | None, layer: object) -> Array:
    if value is None:
        raise RuntimeError(f"{type(layer).__name__}.backward called before forward")
    return value


class Convolution:
    """conv2d with weight ``W`` (FN, C, FH, FW) and bias ``b`` (FN,).

    out[n, f, p, q] = b[f] + Σ_{c, i, j} W[f, c, i, j]·x_pad[n, c, p·stride + i, q·stride + j]
    (groups = 1, dilation 1; see :func:`refcnn.functional.conv2d` for the general case)

    See docs/conv2d.md.
    """

    def __init__(
        self,
        W: Array,
        b: Array | None,
        stride: Any = 1,
        pad: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
    ) -> None:
        self.W, self.b = W, b
        self.stride, self.pad, self.dilation, self.groups = stride, pad, dilation, groups
        self.x: Array | None = None
        self.dW: Array | None = None
        self.db: Array | None = None

    def forward(self, x: Array) -> Array:
        """out = conv2d(x, W, b, stride, pad, dilation, groups); remembers x for backward.

        See docs/conv2d.md.
        """
        self.x = x
        return conv2d(x, self.W, self.b, self.stride, self.pad, self.dilation, self.groups)

    def backward(self, dout: Array) -> Array:
        """dx (returned), dW and db (kept) of the convolution for the upstream gradient ``dout``.

        With col = im2col(x) (N·OH·OW, C·FH·FW), D = dout as (N·OH·OW, FN), W as (FN, C·FH·FW):
        dW = Dᵀ·col,   db = Σ_rows D,   dx = col2im(D·W)   (col2im ADDS overlapping windows)

        See docs/conv2d.md.
        """
        x = _remembered(self.x, self)
        dx, self.dW, self.db = conv2d_backward(
            dout, x, self.W, self.b, self.stride, self.pad, self.dilation, self.groups
        )
        return dx


class MaxPooling:
    """max_pool2d over ``pool_h × pool_w`` windows (the book's signature: stride defaults to 1).

    out[n, c, p, q] = max of x[n, c] over window (p, q)

    See docs/pooling.md.
    """

    def __init__(self, pool_h: int, pool_w: int, stride: Any = 1, pad: Any = 0) -> None:
        self.kernel_size, self.stride, self.pad = (pool_h, pool_w), stride, pad
        self.x: Array | None = None

    def forward(self, x: Array) -> Array:
        """out = max_pool2d(x, (pool_h, pool_w), stride, pad); remembers x for backward.

        See docs/pooling.md.
        """
        self.x = x
        return max_pool2d(x, self.kernel_size, self.stride, self.pad)

    def backward(self, dout: Array) -> Array:
        """dx of max pooling for the upstream gradient ``dout``.

        dx[n, c, a] = Σ of dout[n, c, p, q] over the windows (p, q) whose maximum is pixel a

        See docs/pooling.md.
        """
        x = _remembered(self.x, self)
        return max_pool2d_backward(dout, x, self.kernel_size, self.stride, self.pad)


class AvgPooling:
    """avg_pool2d over ``pool_h × pool_w`` windows (torch's divisor rules, count_include_pad).

    out[n, c, p, q] = Σ of x[n, c] over window (p, q) / D(p, q)

    See docs/pooling.md.
    """

    def __init__(self, pool_h: int, pool_w: int, stride: Any = 1, pad: Any = 0) -> None:
        self.kernel_size, self.stride, self.pad = (pool_h, pool_w), stride, pad
        self.x: Array | None = None

    def forward(self, x: Array) -> Array:
        """out = avg_pool2d(x, (pool_h, pool_w), stride, pad); remembers x for backward.

        See docs/pooling.md.
        """
        self.x = x
        return avg_pool2d(x, self.kernel_size, self.stride, self.pad)

    def backward(self, dout: Array) -> Array:
        """dx of average pooling for the upstream gradient ``dout``.

        dx[n, c, a] = Σ of dout[n, c, p, q] / D(p, q) over the windows (p, q) that contain pixel a

        See docs/pooling.md.
        """
        x = _remembered(self.x, self)
        return avg_pool2d_backward(dout, x, self.kernel_size, self.stride, self.pad)


class Affine:
    """The book's fully connected layer: W (in, out); x is flattened to (N, in) first.

    out = x·W + b   (= linear(x, Wᵀ, b) in torch's layout)

    See docs/linear.md.
    """

    def __init__(self, W: Array, b: Array | None) -> None:
        self.W, self.b = W, b
        self.x: Array | None = None
        self.dW: Array | None = None
        self.db: Array | None = None

    def forward(self, x: Array) -> Array:
        """out = x.reshape(N, -1)·W + b; remembers x for backward.

        See docs/linear.md.
        """
        self.x = x
        return linear(x.reshape(x.shape[0], -1), self.W.T, self.b)  # torch layout: W.T (out, in)

    def backward(self, dout: Array) -> Array:
        """dx (returned, in x's shape), dW and db (kept) for the upstream gradient ``dout``.

        dx = dout·Wᵀ,   dW = xᵀ·dout,   db = Σ_n dout[n]     (x flattened to (N, in))

        See docs/linear.md.
        """
        x = _remembered(self.x, self)
        dx, dW_torch, self.db = linear_backward(dout, x.reshape(x.shape[0], -1), self.W.T, self.b)
        self.dW = dW_torch.T  # back to the book's (in, out)
        return dx.reshape(x.shape)


class Activation:
    """Any activation of :mod:`refcnn.functional.activations` by name, with its parameters.

    out = f(x) elementwise;  dx = dout · f'(x)

    ``Activation("leaky_relu", negative_slope=0.2)``; the named subclasses below are shortcuts.

    See docs/activations.md.
    """

    function = ""

    def __init__(self, function: str | None = None, **params: Any) -> None:
        name = function or self.function
        if not hasattr(activations, name) or not hasattr(activations, f"{name}_backward"):
            raise ValueError(f"no activation {name!r} in refcnn.functional.activations")
        self.name, self.params = name, params
        self.x: Array | None = None

    def forward(self, x: Array) -> Array:
        """out = f(x), the named activation with its parameters; remembers x for backward.

        See docs/activations.md.
        """
        self.x = x
        result: Array = getattr(activations, self.name)(x, **self.params)
        return result

    def backward(self, dout: Array) -> Array:
        """dx of the activation for the upstream gradient ``dout``.

        dx = dout · f'(x), elementwise (``<name>_backward(dout, x, **params)``)

        See docs/activations.md.
        """
        x = _remembered(self.x, self)
        grad: Array = getattr(activations, f"{self.name}_backward")(dout, x, **self.params)
        return grad


class Relu(Activation):
    """The book's Relu layer: ``Activation("relu")``.

    out = max(x, 0);  dx = dout where x > 0, else 0

    See docs/activations.md.
    """

    function = "relu"


class Sigmoid(Activation):
    """The book's Sigmoid layer: ``Activation("sigmoid")``.

    out = σ(x) = 1 / (1 + exp(−x));  dx = dout·σ(x)·(1 − σ(x))

    See docs/activations.md.
    """

    function = "sigmoid"


class Tanh(Activation):
    """A tanh layer: ``Activation("tanh")``.

    out = tanh(x);  dx = dout·(1 − tanh²(x))

    See docs/activations.md.
    """

    function = "tanh"


class LeakyRelu(Activation):
    """A leaky ReLU layer: ``Activation("leaky_relu", negative_slope=...)``.

    out = x for x > 0, negative_slope·x otherwise;  dx = dout·(1 or negative_slope)

    See docs/activations.md.
    """

    function = "leaky_relu"


class BatchNormalization:
    """batch_norm with ``gamma``/``beta``; per channel on 4-D input (torch's BatchNorm2d).

    out = gamma·(x − μ)/√(σ² + eps) + beta, μ and σ² per channel (over N, H, W)

    ``forward(x, train_flg=True)`` normalises with the batch statistics and updates the running
    statistics IN PLACE (torch's momentum convention); ``train_flg=False`` uses them.

    See docs/normalization.md.
    """

    def __init__(
        self,
        gamma: Array,
        beta: Array,
        momentum: float = 0.1,
        running_mean: Array | None = None,
        running_var: Array | None = None,
        eps: float = 1e-5,
    ) -> None:
        self.gamma, self.beta, self.momentum, self.eps = gamma, beta, momentum, eps
        self.running_mean = np.zeros_like(gamma) if running_mean is None else running_mean
        self.running_var = np.ones_like(gamma) if running_var is None else running_var
        self.x: Array | None = None
        self.training = True
        self.dgamma: Array | None = None
        self.dbeta: Array | None = None

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        """out = batch_norm(x, ...): batch statistics when ``train_flg``, else the running ones.

        In training, also running ← (1 − momentum)·running + momentum·(batch mean, unbiased var),
        in place.

        See docs/normalization.md.
        """
        self.x, self.training = x, train_flg
        out = batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.gamma,
            self.beta,
            training=train_flg,
            eps=self.eps,
        )
        if train_flg:
            mean, var = batch_norm_running_stats(
                x, self.running_mean, self.running_var, self.momentum
            )
            self.running_mean[...] = mean  # in place: whoever holds the array sees the update
            self.running_var[...] = var
        return out

    def backward(self, dout: Array) -> Array:
        """dx (returned), dgamma and dbeta (kept) for the upstream gradient ``dout``.

        dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) in training (ĝ = dout·gamma), ĝ·r in evaluation;
        dgamma = Σ dout·x̂,  dbeta = Σ dout

        See docs/normalization.md.
        """
        x = _remembered(self.x, self)
        dx, self.dgamma, self.dbeta = batch_norm_backward(
            dout,
            x,
            self.running_mean,
            self.running_var,
            self.gamma,
            self.beta,
            training=self.training,
            eps=self.eps,
        )
        return dx


class Dropout:
    """Inverted dropout (torch): train ``x·mask/(1 − p)`` with a fresh mask, test ``x``.

    train: out = x ⊙ mask / (1 − p), mask ~ Bernoulli(1 − p);   test: out = x

    ``forward(x, train_flg, mask=...)`` uses the given 0/1 mask instead of drawing one (a
    network checked against torch feeds both the same masks).

    See docs/dropout.md.
    """

    def __init__(self, dropout_ratio: float = 0.5, rng: np.random.Generator | None = None) -> None:
        self.p = dropout_ratio
        self.rng = np.random.default_rng() if rng is None else rng
        self.mask: Array | None = None
        self.x: Array | None = None
        self.training = True

    def forward(self, x: Array, train_flg: bool = True, mask: Array | None = None) -> Array:
        """out = dropout(x, mask, p, train_flg); the mask is given, drawn (training) or ones (test).

        See docs/dropout.md.
        """
        self.x, self.training = x, train_flg
        if not train_flg:
            self.mask = np.ones_like(x)  # eval draws nothing (and ignores a given mask)
        elif mask is not None:
            self.mask = mask  # given: dropout() checks it is a 0/1 array shaped like x
        else:  # keep each element with probability 1 − p
            self.mask = (self.rng.random(x.shape) >= self.p).astype(x.dtype)
        return dropout(x, self.mask, self.p, training=train_flg)

    def backward(self, dout: Array) -> Array:
        """dx of dropout for the upstream gradient ``dout``.

        dx = dout ⊙ mask / (1 − p) in training, dout in test

        See docs/dropout.md.
        """
        x, mask = _remembered(self.x, self), _remembered(self.mask, self)
        return dropout_backward(dout, x, mask, self.p, training=self.training)
