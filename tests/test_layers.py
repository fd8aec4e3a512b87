"""The book-style layer classes: thin state over refcnn.functional, parameters by reference."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from refcnn import layers
from refcnn.functional import activations
from refcnn.functional.conv import conv2d, conv2d_backward
from refcnn.functional.normalization import batch_norm_running_stats
from refcnn.functional.pooling import (
    avg_pool2d,
    avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
)

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 6, 5))
W = RNG.standard_normal((4, 3, 3, 2))
B = RNG.standard_normal(4)


# (layer, the functional forward it must equal, the functional backward of x it must equal)
DELEGATION: dict[str, tuple[Callable[[], Any], Callable[[Any], Any], Callable[[Any, Any], Any]]] = {
    "Convolution": (
        lambda: layers.Convolution(W, B, stride=(2, 1), pad=1),
        lambda x: conv2d(x, W, B, (2, 1), 1),
        lambda g, x: conv2d_backward(g, x, W, B, (2, 1), 1)[0],
    ),
    "MaxPooling": (
        lambda: layers.MaxPooling(2, 3, stride=2, pad=1),
        lambda x: max_pool2d(x, (2, 3), 2, 1),
        lambda g, x: max_pool2d_backward(g, x, (2, 3), 2, 1),
    ),
    "AvgPooling": (
        lambda: layers.AvgPooling(3, 2, stride=1),
        lambda x: avg_pool2d(x, (3, 2), 1),
        lambda g, x: avg_pool2d_backward(g, x, (3, 2), 1),
    ),
    "Relu": (layers.Relu, activations.relu, activations.relu_backward),
    "Activation(gelu, tanh)": (
        lambda: layers.Activation("gelu", approximate="tanh"),
        lambda x: activations.gelu(x, approximate="tanh"),
        lambda g, x: activations.gelu_backward(g, x, approximate="tanh"),
    ),
}


@pytest.mark.parametrize("name", DELEGATION)
def test_layer_equals_its_functional_op(name: str) -> None:
    make, forward, backward = DELEGATION[name]
    layer = make()
    out = layer.forward(X)
    np.testing.assert_array_equal(out, forward(X))
    upstream = RNG.standard_normal(out.shape)
    np.testing.assert_array_equal(layer.backward(upstream), backward(upstream, X))


def test_convolution_stores_parameter_gradients_and_sees_in_place_updates() -> None:
    weight, bias = W.copy(), B.copy()
    layer = layers.Convolution(weight, bias)
    upstream = RNG.standard_normal(layer.forward(X).shape)
    layer.backward(upstream)
    _, grad_weight, grad_bias = conv2d_backward(upstream, X, weight, bias)
    np.testing.assert_array_equal(layer.dW, grad_weight)
    np.testing.assert_array_equal(layer.db, grad_bias)
    weight -= 0.1 * layer.dW  # an optimizer's in-place step
    np.testing.assert_array_equal(layer.forward(X), conv2d(X, weight, bias))


def test_affine_keeps_the_book_layout() -> None:
    weight, bias = RNG.standard_normal((3 * 6 * 5, 7)), RNG.standard_normal(7)  # W (in, out)
    layer = layers.Affine(weight, bias)
    out = layer.forward(X)
    flat = X.reshape(2, -1)
    np.testing.assert_allclose(out, flat @ weight + bias, rtol=1e-13)
    upstream = RNG.standard_normal(out.shape)
    dx = layer.backward(upstream)
    assert dx.shape == X.shape and layer.dW.shape == weight.shape
    np.testing.assert_allclose(layer.dW, flat.T @ upstream, rtol=1e-12)
    np.testing.assert_allclose(dx.reshape(2, -1), upstream @ weight.T, rtol=1e-12)
    np.testing.assert_allclose(layer.db, upstream.sum(axis=0), rtol=1e-12)


def test_batch_normalization_updates_running_statistics_in_place() -> None:
    gamma, beta = RNG.standard_normal(3), RNG.standard_normal(3)
    running_mean, running_var = np.zeros(3), np.ones(3)
    layer = layers.BatchNormalization(
        gamma, beta, momentum=0.2, running_mean=running_mean, running_var=running_var
    )
    expected_mean, expected_var = batch_norm_running_stats(X, np.zeros(3), np.ones(3), 0.2)
    out = layer.forward(X, train_flg=True)
    np.testing.assert_array_equal(running_mean, expected_mean)  # the caller's arrays changed
    np.testing.assert_array_equal(running_var, expected_var)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), beta, atol=1e-12)  # per channel
    layer.backward(RNG.standard_normal(out.shape))
    assert layer.dgamma is not None and layer.dgamma.shape == (3,)
    evaluated = layer.forward(X, train_flg=False)
    scale = gamma / np.sqrt(running_var + 1e-5)
    expected = (X - running_mean[:, None, None]) * scale[:, None, None] + beta[:, None, None]
    np.testing.assert_allclose(evaluated, expected, rtol=1e-12, atol=1e-12)


def test_dropout_reuses_its_mask_in_backward_and_is_identity_in_eval() -> None:
    layer = layers.Dropout(0.4, rng=np.random.default_rng(1))
    out = layer.forward(X)
    kept = layer.mask
    assert kept is not None and set(np.unique(kept)) <= {0.0, 1.0}
    np.testing.assert_allclose(out, X * kept / 0.6, rtol=1e-15)
    upstream = RNG.standard_normal(X.shape)
    np.testing.assert_allclose(layer.backward(upstream), upstream * kept / 0.6, rtol=1e-15)
    np.testing.assert_array_equal(layer.forward(X, train_flg=False), X)


def test_backward_before_forward_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match=r"Relu.backward called before forward"):
        layers.Relu().backward(X)
    with pytest.raises(ValueError, match=r"no activation 'relu7'"):
        layers.Activation("relu7")


def _train_step(layer: Any, x: Any, upstream: Any) -> Any:
    layer.forward(x, train_flg=True)
    return layer.backward(upstream)


@pytest.mark.parametrize("name", ["BatchNormalization", "Dropout"])
def test_an_eval_pass_leaves_no_stale_state_for_training(name: str) -> None:
    """eval forward, then train forward + backward == train forward + backward alone."""

    def make() -> Any:
        if name == "Dropout":
            return layers.Dropout(0.3, rng=np.random.default_rng(5))
        return layers.BatchNormalization(np.linspace(0.5, 1.5, 3), np.linspace(-1, 1, 3))

    upstream = RNG.standard_normal(X.shape)
    alone = make()
    expected = _train_step(alone, X, upstream)
    after_eval = make()
    after_eval.forward(X[:1] * 3.0, train_flg=False)  # another batch; draws no random mask
    np.testing.assert_array_equal(_train_step(after_eval, X, upstream), expected)


def test_eval_mode_uses_the_current_parameters() -> None:
    gamma, beta = np.ones(3), np.zeros(3)
    layer = layers.BatchNormalization(
        gamma, beta, running_mean=np.full(3, 0.5), running_var=np.full(3, 4.0)
    )
    before = layer.forward(X, train_flg=False)
    gamma *= 2.0  # an optimizer step in place
    beta += 1.0
    np.testing.assert_allclose(layer.forward(X, train_flg=False), 2.0 * before + 1.0, rtol=1e-14)
