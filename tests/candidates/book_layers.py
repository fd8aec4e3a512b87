"""A book-style module: layers, functions and optimizers in the API of "Deep Learning from
Scratch" (O'Reilly Japan), written from the API description in SEMANTICS.md, with the book's
conventions where they differ from torch:

* dropout is not inverted (train ``x·mask``, test ``x·(1 − ratio)``);
* the cross-entropy adds 1e-7 inside the log; SoftmaxWithLoss.backward returns (y − t)/N;
* BatchNormalization: momentum 0.9 is the decay of the running value, the running variance is
  the biased batch variance and starts at 0, eps is 1e-6, and 4-D input is normalised per
  activation (reshaped to (N, C·H·W));
* AdaGrad and RMSprop add eps = 1e-7 outside the root; Adam folds both bias corrections into
  its step size and adds 1e-7 to the uncorrected √v;
* Pooling pads with zeros (im2col's padding), so a window can pick the padding.

Every layer keeps float32 float32. It imports NumPy only: it is a candidate, checked with
``python -m refcnn check tests/candidates/book_layers.py --style book``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Array = Any


# --- im2col and col2im -----------------------------------------------------------------------


def _output_size(size: int, filter_size: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - filter_size) // stride + 1


def im2col(input_data: Array, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0) -> Array:
    """Every filter window of the zero-padded images as one row: (N·OH·OW, C·FH·FW).

    Row (n, i, j) holds window (i, j) of image n, columns ordered (c, di, dj).
    """
    n, c, h, w = input_data.shape
    out_h = _output_size(h, filter_h, stride, pad)
    out_w = _output_size(w, filter_w, stride, pad)
    padded = np.pad(input_data, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = np.empty((n, c, filter_h, filter_w, out_h, out_w), dtype=input_data.dtype)
    for di in range(filter_h):  # the pixel at offset (di, dj) of every window at once
        rows = slice(di, di + stride * (out_h - 1) + 1, stride)
        for dj in range(filter_w):
            cols = slice(dj, dj + stride * (out_w - 1) + 1, stride)
            windows[:, :, di, dj] = padded[:, :, rows, cols]
    return windows.transpose(0, 4, 5, 1, 2, 3).reshape(n * out_h * out_w, -1)


def col2im(
    col: Array,
    input_shape: tuple[int, int, int, int],
    filter_h: int,
    filter_w: int,
    stride: int = 1,
    pad: int = 0,
) -> Array:
    """The adjoint of im2col: every window entry is ADDED back to the pixel it came from."""
    n, c, h, w = input_shape
    out_h = _output_size(h, filter_h, stride, pad)
    out_w = _output_size(w, filter_w, stride, pad)
    windows = col.reshape(n, out_h, out_w, c, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=col.dtype)
    for di in range(filter_h):
        rows = slice(di, di + stride * (out_h - 1) + 1, stride)
        for dj in range(filter_w):
            cols = slice(dj, dj + stride * (out_w - 1) + 1, stride)
            padded[:, :, rows, cols] += windows[:, :, di, dj]  # overlapping windows add up
    return padded[:, :, pad : pad + h, pad : pad + w].copy()


# --- layers ----------------------------------------------------------------------------------


class Convolution:
    """out[n, f] = Σ_{c, di, dj} W[f, c, di, dj]·x_pad[n, c, s·i + di, s·j + dj] + b[f]."""

    def __init__(self, W: Array, b: Array, stride: int = 1, pad: int = 0) -> None:
        self.W, self.b, self.stride, self.pad = W, b, stride, pad
        self.x: Array = None
        self.col: Array = None
        self.dW: Array = None
        self.db: Array = None

    def forward(self, x: Array) -> Array:
        filters, _, fh, fw = self.W.shape
        n, _, h, w = x.shape
        out_h = _output_size(h, fh, self.stride, self.pad)
        out_w = _output_size(w, fw, self.stride, self.pad)
        self.x = x
        self.col = im2col(x, fh, fw, self.stride, self.pad)  # (N·OH·OW, C·FH·FW)
        out = self.col @ self.W.reshape(filters, -1).T + self.b  # (N·OH·OW, FN)
        return out.reshape(n, out_h, out_w, filters).transpose(0, 3, 1, 2)

    def backward(self, dout: Array) -> Array:
        filters, c, fh, fw = self.W.shape
        rows = dout.transpose(0, 2, 3, 1).reshape(-1, filters)  # (N·OH·OW, FN)
        self.db = rows.sum(axis=0)  # every window of every image
        self.dW = (rows.T @ self.col).reshape(filters, c, fh, fw)
        dcol = rows @ self.W.reshape(filters, -1)
        return col2im(dcol, self.x.shape, fh, fw, self.stride, self.pad)


class Pooling:
    """Max over pool_h × pool_w windows of the zero-padded image (first maximum on ties)."""

    def __init__(self, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0) -> None:
        self.pool_h, self.pool_w, self.stride, self.pad = pool_h, pool_w, stride, pad
        self.x: Array = None
        self.arg_max: Array = None

    def forward(self, x: Array) -> Array:
        n, c, h, w = x.shape
        out_h = _output_size(h, self.pool_h, self.stride, self.pad)
        out_w = _output_size(w, self.pool_w, self.stride, self.pad)
        col = im2col(x, self.pool_h, self.pool_w, self.stride, self.pad)
        windows = col.reshape(-1, self.pool_h * self.pool_w)  # one row per (n, i, j, c)
        self.x = x
        self.arg_max = np.argmax(windows, axis=1)
        out = windows[np.arange(windows.shape[0]), self.arg_max]
        return out.reshape(n, out_h, out_w, c).transpose(0, 3, 1, 2)

    def backward(self, dout: Array) -> Array:
        size = self.pool_h * self.pool_w
        flat = dout.transpose(0, 2, 3, 1).reshape(-1)  # (n, i, j, c) order, as the rows
        dwindows = np.zeros((flat.size, size), dtype=dout.dtype)
        dwindows[np.arange(flat.size), self.arg_max] = flat  # to the chosen pixel only
        dcol = dwindows.reshape(-1, self.x.shape[1] * size)
        return col2im(dcol, self.x.shape, self.pool_h, self.pool_w, self.stride, self.pad)


class Affine:
    """out = x·W + b with W (in, out); x is flattened to (N, in) first."""

    def __init__(self, W: Array, b: Array) -> None:
        self.W, self.b = W, b
        self.x: Array = None
        self.x_shape: tuple[int, ...] = ()
        self.dW: Array = None
        self.db: Array = None

    def forward(self, x: Array) -> Array:
        self.x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return self.x @ self.W + self.b

    def backward(self, dout: Array) -> Array:
        self.dW = self.x.T @ dout  # (in, out), like W
        self.db = dout.sum(axis=0)
        return (dout @ self.W.T).reshape(self.x_shape)


class Relu:
    def __init__(self) -> None:
        self.mask: Array = None

    def forward(self, x: Array) -> Array:
        self.mask = x <= 0  # the gradient at 0 is 0
        return np.where(self.mask, 0, x)

    def backward(self, dout: Array) -> Array:
        return np.where(self.mask, 0, dout)


class Sigmoid:
    def __init__(self) -> None:
        self.out: Array = None

    def forward(self, x: Array) -> Array:
        e = np.exp(-np.abs(x))  # never overflows: 1/(1 + e^−x) or e^x/(1 + e^x)
        self.out = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self.out

    def backward(self, dout: Array) -> Array:
        return dout * (1 - self.out) * self.out


def softmax(x: Array) -> Array:
    """Over the last axis of a matrix (one row per sample), or over a whole vector."""
    shifted = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=-1, keepdims=True)


def cross_entropy_error(y: Array, t: Array) -> Array:
    """−(1/N)·Σ t·log(y + 1e-7) for one-hot t (shaped like y), or class indices t (N,)."""
    if y.ndim == 1:
        y, t = y.reshape(1, -1), np.reshape(t, (1, -1) if np.ndim(t) == 1 else (1,))
    batch = y.shape[0]
    if np.ndim(t) == y.ndim:  # one-hot rows
        return -np.sum(t * np.log(y + 1e-7)) / batch
    return -np.sum(np.log(y[np.arange(batch), t] + 1e-7)) / batch


class SoftmaxWithLoss:
    def __init__(self) -> None:
        self.y: Array = None
        self.t: Array = None
        self.loss: Array = None

    def forward(self, x: Array, t: Array) -> Array:
        self.t = t
        self.y = softmax(x)
        self.loss = cross_entropy_error(self.y, t)
        return self.loss

    def backward(self, dout: Array = 1) -> Array:
        batch = self.y.shape[0]
        if np.ndim(self.t) == self.y.ndim:
            dx = self.y - self.t
        else:
            dx = self.y.copy()
            dx[np.arange(batch), self.t] -= 1
        return dx * dout / batch


class Dropout:
    """Not inverted: train x·mask (mask from np.random), test x·(1 − dropout_ratio)."""

    def __init__(self, dropout_ratio: float = 0.5) -> None:
        self.dropout_ratio = dropout_ratio
        self.mask: Array = None

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        if train_flg:
            self.mask = np.random.rand(*x.shape) > self.dropout_ratio  # noqa: NPY002 (the book's)
            return x * self.mask
        self.mask = None
        return x * (1.0 - self.dropout_ratio)

    def backward(self, dout: Array) -> Array:
        if self.mask is None:  # after a test-time forward: the gradient of x·(1 − ratio)
            return dout * (1.0 - self.dropout_ratio)
        return dout * self.mask


class BatchNormalization:
    """Per-feature batch normalisation; 4-D input is viewed as (N, C·H·W), so each activation
    has its own statistics (gamma and beta then have C·H·W entries). momentum is the decay of
    the running statistics; the running variance is the biased one, starting at 0."""

    eps = 1e-6

    def __init__(
        self,
        gamma: Array,
        beta: Array,
        momentum: float = 0.9,
        running_mean: Array = None,
        running_var: Array = None,
    ) -> None:
        self.gamma, self.beta, self.momentum = gamma, beta, momentum
        self.running_mean, self.running_var = running_mean, running_var
        self.input_shape: tuple[int, ...] = ()
        self.xn: Array = None
        self.std: Array = None
        self.dgamma: Array = None
        self.dbeta: Array = None

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        self.input_shape = x.shape
        features = x.reshape(x.shape[0], -1)
        if self.running_mean is None:
            self.running_mean = np.zeros(features.shape[1], dtype=x.dtype)
            self.running_var = np.zeros(features.shape[1], dtype=x.dtype)
        if train_flg:
            mean = features.mean(axis=0)
            centred = features - mean
            var = (centred**2).mean(axis=0)  # biased: what the output is normalised with
            self.std = np.sqrt(var + self.eps)
            self.xn = centred / self.std
            keep = self.momentum
            self.running_mean = keep * self.running_mean + (1 - keep) * mean
            self.running_var = keep * self.running_var + (1 - keep) * var
        else:
            self.std = np.sqrt(self.running_var + self.eps)
            self.xn = (features - self.running_mean) / self.std
        self.training = train_flg
        return (self.gamma * self.xn + self.beta).reshape(self.input_shape)

    def backward(self, dout: Array) -> Array:
        rows = dout.reshape(dout.shape[0], -1)
        self.dbeta = rows.sum(axis=0)
        self.dgamma = (rows * self.xn).sum(axis=0)
        g = rows * self.gamma  # ∂L/∂xn
        if self.training:  # xn depends on x through the batch mean and variance too
            dx = (g - g.mean(axis=0) - self.xn * (g * self.xn).mean(axis=0)) / self.std
        else:
            dx = g / self.std
        return dx.reshape(self.input_shape)


# --- optimizers: update(params, grads) in place, state created at the first update ----------


class SGD:
    def __init__(self, lr: float = 0.01) -> None:
        self.lr = lr

    def update(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        for key in params:
            params[key] -= self.lr * grads[key]


class Momentum:
    """v ← momentum·v − lr·g;  θ ← θ + v."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        self.lr, self.momentum = lr, momentum
        self.v: dict[str, Array] | None = None

    def update(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        if self.v is None:
            self.v = {key: np.zeros_like(value) for key, value in params.items()}
        for key in params:
            self.v[key] = self.momentum * self.v[key] - self.lr * grads[key]
            params[key] += self.v[key]


class AdaGrad:
    """h ← h + g²;  θ ← θ − lr·g/(√h + 1e-7)."""

    def __init__(self, lr: float = 0.01) -> None:
        self.lr = lr
        self.h: dict[str, Array] | None = None

    def update(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        if self.h is None:
            self.h = {key: np.zeros_like(value) for key, value in params.items()}
        for key in params:
            self.h[key] += grads[key] * grads[key]
            params[key] -= self.lr * grads[key] / (np.sqrt(self.h[key]) + 1e-7)


class RMSprop:
    """h ← decay·h + (1 − decay)·g²;  θ ← θ − lr·g/(√h + 1e-7)."""

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99) -> None:
        self.lr, self.decay_rate = lr, decay_rate
        self.h: dict[str, Array] | None = None

    def update(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        if self.h is None:
            self.h = {key: np.zeros_like(value) for key, value in params.items()}
        for key in params:
            self.h[key] = self.decay_rate * self.h[key] + (1 - self.decay_rate) * grads[key] ** 2
            params[key] -= self.lr * grads[key] / (np.sqrt(self.h[key]) + 1e-7)


class Adam:
    """m, v moving averages of g and g²; θ ← θ − lr_t·m/(√v + 1e-7) with the bias corrections
    in the step size: lr_t = lr·√(1 − beta2ᵗ)/(1 − beta1ᵗ)."""

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999) -> None:
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter = 0
        self.m: dict[str, Array] | None = None
        self.v: dict[str, Array] | None = None

    def update(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        if self.m is None or self.v is None:
            self.m = {key: np.zeros_like(value) for key, value in params.items()}
            self.v = {key: np.zeros_like(value) for key, value in params.items()}
        self.iter += 1
        lr_t = self.lr * math.sqrt(1 - self.beta2**self.iter) / (1 - self.beta1**self.iter)
        for key in params:
            # β·old + (1 − β)·new: old + (1 − β)·(new − old) would lose a tiny new value next
            # to a large old one entirely when β = 0 (v = 0, then a step of g/1e-7)
            self.m[key] = self.beta1 * self.m[key] + (1 - self.beta1) * grads[key]
            self.v[key] = self.beta2 * self.v[key] + (1 - self.beta2) * grads[key] ** 2
            params[key] -= lr_t * self.m[key] / (np.sqrt(self.v[key]) + 1e-7)
