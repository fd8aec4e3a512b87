"""What the benchmark measures: refcnn and torch CPU on the same arrays, forward + backward.

Every case builds its inputs once and returns two callables, refcnn's forward followed by its
explicit backward and torch's forward followed by ``torch.autograd.grad`` (every gradient the
refcnn backward returns, nothing accumulated into ``.grad``), plus refcnn's outputs so that the
caller can check that they have the input's dtype. Upstream gradients are random, never ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import refcnn.functional as R
from refcnn.im2col import col2im, im2col

Pair = tuple[Callable[[], Any], Callable[[], Any], list[Any]]


@dataclass(frozen=True)
class Case:
    op: str  # what the target is about: conv2d, max_pool2d, ...
    shape: str  # short description of the arguments
    make: Callable[[str, np.random.Generator], Pair]
    target: float | None = None  # ratio target in float64, if the issue sets one


def _t(array: np.ndarray, grad: bool = True) -> torch.Tensor:
    return torch.tensor(array, requires_grad=grad)


def _normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


# --- convolution --------------------------------------------------------------------------------


def conv2d_case(
    n: int,
    c: int,
    size: int,
    m: int,
    k: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
) -> Callable[[str, np.random.Generator], Pair]:
    def make(dtype: str, rng: np.random.Generator) -> Pair:
        x = _normal(rng, (n, c, size, size), dtype)
        w = _normal(rng, (m, c // groups, k, k), dtype)
        b = _normal(rng, (m,), dtype)
        kwargs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
        out = R.conv2d(x, w, b, **kwargs)
        g = _normal(rng, out.shape, dtype)
        tx, tw, tb, tg = _t(x), _t(w), _t(b), _t(g, False)

        def ref() -> Any:
            R.conv2d(x, w, b, **kwargs)
            return R.conv2d_backward(g, x, w, b, **kwargs)

        def tor() -> Any:
            return torch.autograd.grad(F.conv2d(tx, tw, tb, **kwargs), (tx, tw, tb), tg)

        return ref, tor, [out, *R.conv2d_backward(g, x, w, b, **kwargs)]

    return make


def book_conv2d(x: Any, w: Any, b: Any, padding: int) -> Any:
    """The book's layout on the whole batch: Out = im2col(x) · Wᵀ + b (the previous conv2d)."""
    n, m, k = x.shape[0], w.shape[0], w.shape[2]
    col = im2col(x, k, 1, padding)
    oh = ow = x.shape[2] + 2 * padding - k + 1
    return (col @ w.reshape(m, -1).T + b).reshape(n, oh, ow, m).transpose(0, 3, 1, 2)


def book_conv2d_backward(g: Any, x: Any, w: Any, padding: int) -> Any:
    m, k = w.shape[0], w.shape[2]
    col = im2col(x, k, 1, padding)
    upstream = g.transpose(0, 2, 3, 1).reshape(-1, m)
    grad_w = (upstream.T @ col).reshape(w.shape)
    grad_x = col2im(upstream @ w.reshape(m, -1), x.shape, k, 1, padding)
    return grad_x, grad_w, g.sum(axis=(0, 2, 3))


def book_conv2d_case(
    n: int, c: int, size: int, m: int, k: int, padding: int
) -> Callable[[str, np.random.Generator], Pair]:
    def make(dtype: str, rng: np.random.Generator) -> Pair:
        x = _normal(rng, (n, c, size, size), dtype)
        w = _normal(rng, (m, c, k, k), dtype)
        b = _normal(rng, (m,), dtype)
        out = book_conv2d(x, w, b, padding)
        g = _normal(rng, out.shape, dtype)
        tx, tw, tb, tg = _t(x), _t(w), _t(b), _t(g, False)

        def ref() -> Any:
            book_conv2d(x, w, b, padding)
            return book_conv2d_backward(g, x, w, padding)

        def tor() -> Any:
            return torch.autograd.grad(F.conv2d(tx, tw, tb, padding=padding), (tx, tw, tb), tg)

        return ref, tor, [out, *book_conv2d_backward(g, x, w, padding)]

    return make


# --- pooling ------------------------------------------------------------------------------------


def pool_case(
    kind: str, n: int, c: int, size: int, k: int, stride: int, padding: int = 0
) -> Callable[[str, np.random.Generator], Pair]:
    forward, backward, torch_forward = {
        "max": (R.max_pool2d, R.max_pool2d_backward, F.max_pool2d),
        "avg": (R.avg_pool2d, R.avg_pool2d_backward, F.avg_pool2d),
    }[kind]

    def make(dtype: str, rng: np.random.Generator) -> Pair:
        x = _normal(rng, (n, c, size, size), dtype)
        out = forward(x, k, stride, padding)
        g = _normal(rng, out.shape, dtype)
        tx, tg = _t(x), _t(g, False)

        def ref() -> Any:
            forward(x, k, stride, padding)
            return backward(g, x, k, stride, padding)

        def tor() -> Any:
            return torch.autograd.grad(torch_forward(tx, k, stride, padding), (tx,), tg)

        return ref, tor, [out, backward(g, x, k, stride, padding)]

    return make


# --- batch_norm, linear, cross-entropy ----------------------------------------------------------


def batch_norm_case(n: int, c: int, size: int) -> Callable[[str, np.random.Generator], Pair]:
    def make(dtype: str, rng: np.random.Generator) -> Pair:
        x = _normal(rng, (n, c, size, size), dtype)
        w, b = _normal(rng, (c,), dtype), _normal(rng, (c,), dtype)
        out = R.batch_norm(x, None, None, w, b, training=True)
        g = _normal(rng, out.shape, dtype)
        tx, tw, tb, tg = _t(x), _t(w), _t(b), _t(g, False)

        def ref() -> Any:
            R.batch_norm(x, None, None, w, b, training=True)
            return R.batch_norm_backward(g, x, None, None, w, b, training=True)

        def tor() -> Any:
            out = F.batch_norm(tx, None, None, tw, tb, training=True)
            return torch.autograd.grad(out, (tx, tw, tb), tg)

        return ref, tor, [out, *R.batch_norm_backward(g, x, None, None, w, b, training=True)]

    return make


def linear_case(n: int, features_in: int, features_out: int) -> Callable[..., Pair]:
    def make(dtype: str, rng: np.random.Generator) -> Pair:
        x = _normal(rng, (n, features_in), dtype)
        w = _normal(rng, (features_out, features_in), dtype)
        b = _normal(rng, (features_out,), dtype)
        g = _normal(rng, (n, features_out), dtype)
        tx, tw, tb, tg = _t(x), _t(w), _t(b), _t(g, False)

        def ref() -> Any:
            R.linear(x, w, b)
            return R.linear_backward(g, x, w, b)

        def tor() -> Any:
            return torch.autograd.grad(F.linear(tx, tw, tb), (tx, tw, tb), tg)

        return ref, tor, [R.linear(x, w, b), *R.linear_backward(g, x, w, b)]

    return make


def cross_entropy_case(n: int, classes: int) -> Callable[..., Pair]:
    def make(dtype: str, rng: np.random.Generator) -> Pair:
        logits = _normal(rng, (n, classes), dtype)
        target = rng.integers(0, classes, n)
        g = np.asarray(rng.standard_normal(), dtype=dtype)  # 0-d: reduction 'mean'
        tl, tt, tg = _t(logits), torch.tensor(target), _t(g, False)

        def ref() -> Any:
            R.cross_entropy(logits, target)
            return R.cross_entropy_backward(g, logits, target)

        def tor() -> Any:
            return torch.autograd.grad(F.cross_entropy(tl, tt), (tl,), tg)

        return (
            ref,
            tor,
            [R.cross_entropy(logits, target), R.cross_entropy_backward(g, logits, target)],
        )

    return make


CONV_TARGET = POOL_TARGET = 1.2

CASES = (
    Case(
        "conv2d", "N32 C16 32×32 M32 k3 p1", conv2d_case(32, 16, 32, 32, 3, padding=1), CONV_TARGET
    ),
    Case(
        "conv2d",
        "N8 C16 32×32 M32 k3 s2 p2 d2",
        conv2d_case(8, 16, 32, 32, 3, stride=2, padding=2, dilation=2),
        CONV_TARGET,
    ),
    Case("conv2d", "N32 C3 32×32 M16 k5 p2", conv2d_case(32, 3, 32, 16, 5, padding=2), CONV_TARGET),
    Case(
        "conv2d", "N32 C64 16×16 M64 k3 p1", conv2d_case(32, 64, 16, 64, 3, padding=1), CONV_TARGET
    ),
    Case(
        "conv2d",
        "N32 C32 16×16 M32 k3 p1 groups 32",
        conv2d_case(32, 32, 16, 32, 3, padding=1, groups=32),
        CONV_TARGET,
    ),
    Case("max_pool2d", "N32 C16 32×32 k2 s2", pool_case("max", 32, 16, 32, 2, 2), POOL_TARGET),
    Case(
        "max_pool2d", "N32 C16 32×32 k3 s2 p1", pool_case("max", 32, 16, 32, 3, 2, 1), POOL_TARGET
    ),
    Case("avg_pool2d", "N32 C16 32×32 k2 s2", pool_case("avg", 32, 16, 32, 2, 2), POOL_TARGET),
    Case(
        "avg_pool2d", "N32 C16 32×32 k3 s2 p1", pool_case("avg", 32, 16, 32, 3, 2, 1), POOL_TARGET
    ),
    Case("batch_norm", "training, N32 C16 32×32", batch_norm_case(32, 16, 32)),
    Case("linear", "N256 1024→512", linear_case(256, 1024, 512)),
    Case("cross_entropy", "N256, 1000 classes, mean", cross_entropy_case(256, 1000)),
    Case(
        "conv2d, book layout (before)",
        "N32 C16 32×32 M32 k3 p1",
        book_conv2d_case(32, 16, 32, 32, 3, 1),
    ),
)
