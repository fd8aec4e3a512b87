"""The book-style network API (refcnn.networks) and what the catalog's generic checks of the two
network entries cost. The gradients themselves are checked by the catalog entries
simple_conv_net and deep_conv_net (torch autograd, finite differences, float32)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from refcnn import layers
from refcnn.networks import DeepConvNet, SimpleConvNet
from refcnn.testing import catalog, checks

RNG = np.random.default_rng(7)


def _catalog_gradients(name: str, inputs: dict[str, Any], kwargs: dict[str, Any]) -> Any:
    """The catalog entry's backward for an upstream of 1, as {input: gradient}; t is carried as
    floats, as every sample array is."""
    inputs = {**inputs, "t": inputs["t"].astype(inputs["x"].dtype)}
    upstream = np.asarray(1.0, dtype=inputs["x"].dtype)
    return catalog.get(name).backward_dict(upstream, inputs, kwargs)


def test_simple_conv_net_book_api_gradient_equals_the_catalog_backward() -> None:
    net = SimpleConvNet(
        input_dim=(1, 10, 10),
        conv_param={"filter_num": 3, "filter_size": 5, "pad": 0, "stride": 1},
        hidden_size=10,
        output_size=3,
        weight_init_std=0.3,
        rng=np.random.default_rng(0),
    )
    x, t = RNG.standard_normal((4, 1, 10, 10)), np.array([0, 2, 1, 2])
    loss = net.loss(x, t)
    assert loss.shape == () and loss.dtype == np.float64
    grads = net.gradient(x, t)
    assert list(grads) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    for key, grad in grads.items():
        assert grad.shape == net.params[key].shape, key
    expected = _catalog_gradients(
        "simple_conv_net", {"x": x, "t": t, **net.params}, {"stride": 1, "pad": 0}
    )
    for key in grads:
        np.testing.assert_array_equal(grads[key], expected[key], err_msg=key)
    np.testing.assert_array_equal(net.dx, expected["x"])


def test_deep_conv_net_book_api_gradient_equals_the_catalog_backward() -> None:
    net = DeepConvNet(
        input_dim=(2, 7, 8), hidden_size=6, output_size=4, rng=np.random.default_rng(1)
    )
    x, t = RNG.standard_normal((3, 2, 7, 8)), np.array([3, 0, 1])
    masks = ((RNG.random((3, 6)) >= 0.5) * 1.0, (RNG.random((3, 4)) >= 0.5) * 1.0)
    grads = net.gradient(x, t, dropout_masks=masks)
    assert list(grads) == [f"{kind}{i}" for i in range(1, 9) for kind in "Wb"]
    inputs = {"x": x, "t": t, **net.params, "mask1": masks[0], "mask2": masks[1]}
    expected = _catalog_gradients("deep_conv_net", inputs, {"dropout_ratio": 0.5})
    for key in grads:
        np.testing.assert_array_equal(grads[key], expected[key], err_msg=key)
    np.testing.assert_array_equal(net.dx, expected["x"])


def test_a_training_step_on_the_book_dicts_lowers_the_loss_in_place() -> None:
    """The book's loop: grads = net.gradient(x, t); params[key] -= lr·grads[key]. The layers
    hold the parameters by reference, so the in-place step changes the network."""
    net = SimpleConvNet(weight_init_std=0.3, rng=np.random.default_rng(3))
    x, t = RNG.standard_normal((5, 1, 10, 10)), np.array([0, 1, 2, 1, 0])
    before = float(net.loss(x, t))
    grads = net.gradient(x, t)
    for key in net.params:
        net.params[key] -= 1e-3 * grads[key]
    assert float(net.loss(x, t)) < before


def test_float32_network_stays_float32() -> None:
    net = DeepConvNet(dtype=np.float32, rng=np.random.default_rng(4))
    x = RNG.standard_normal((2, 1, 8, 8)).astype(np.float32)
    grads = net.gradient(x, np.array([0, 1]))
    assert net.loss(x, np.array([0, 1])).dtype == np.float32
    assert {grad.dtype for grad in grads.values()} == {np.dtype(np.float32)}
    assert net.dx is not None and net.dx.dtype == np.float32


def test_dropout_masks_drawn_by_the_network_are_reproducible_and_eval_uses_none() -> None:
    x, t = RNG.standard_normal((2, 1, 8, 8)), np.array([1, 2])
    first = DeepConvNet(rng=np.random.default_rng(5)).gradient(x, t)
    second = DeepConvNet(rng=np.random.default_rng(5)).gradient(x, t)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    net = DeepConvNet(rng=np.random.default_rng(5))
    dropped = (np.zeros((2, 8)), np.zeros((2, 3)))
    assert np.all(net.predict(x, train_flg=True, dropout_masks=dropped) == 0)
    assert np.any(net.predict(x, train_flg=False, dropout_masks=dropped) != 0)  # eval: identity


def test_dropout_layer_uses_a_given_mask() -> None:
    layer = layers.Dropout(0.25, rng=np.random.default_rng(0))
    x, mask = RNG.standard_normal((3, 4)), (RNG.random((3, 4)) >= 0.25) * 1.0
    np.testing.assert_array_equal(layer.forward(x, True, mask=mask), x * (mask / 0.75))
    upstream = RNG.standard_normal((3, 4))
    np.testing.assert_array_equal(layer.backward(upstream), upstream * (mask / 0.75))
    np.testing.assert_array_equal(layer.forward(x, False, mask=mask), x)  # eval ignores it


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: SimpleConvNet(input_dim=(1, 5, 5)), r"leaves no 2×2 window to pool"),
        (lambda: DeepConvNet(input_dim=(1, 3, 8)), r"input_dim=\(1, 3, 8\) is too small"),
    ],
)
def test_sizes_without_a_valid_network_raise(make: Callable[[], Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_wrong_parameters_and_masks_raise() -> None:
    net = SimpleConvNet(rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"W2.shape=\(26, 10\), but this SimpleConvNet expects"):
        net.set_params({**net.params, "W2": np.zeros((26, 10))})
    with pytest.raises(ValueError, match=r"missing \['b3'\]"):
        net.set_params({k: v for k, v in net.params.items() if k != "b3"})
    deep = DeepConvNet(rng=np.random.default_rng(0))
    x = RNG.standard_normal((2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"dropout_masks holds 1 masks, but the network has 2"):
        deep.loss(x, np.array([0, 1]), dropout_masks=(np.ones((2, 8)),))
    with pytest.raises(TypeError, match=r"t must have an integer dtype"):
        deep.loss(x, np.array([0.0, 1.0]))


# --- what the generic checks cost per example --------------------------------------------------

# A typical sample of each budget (the checks' "small" and the full Jacobian's "tiny").
SAMPLES = {
    "simple_conv_net": {
        "small": {
            "batch": 2,
            "channels": 2,
            "filters": 3,
            "filter_size": 5,
            "pad": 0,
            "stride": 1,
            "input_size": (8, 9),
            "hidden": 6,
            "classes": 4,
            "values_seed": 1,
        },
        "tiny": {
            "batch": 1,
            "channels": 1,
            "filters": 1,
            "filter_size": 5,
            "pad": 0,
            "stride": 1,
            "input_size": (6, 6),
            "hidden": 2,
            "classes": 3,
            "values_seed": 1,
        },
    },
    "deep_conv_net": {
        "small": {
            "batch": 2,
            "channels": 2,
            "filters": (2, 2, 2),
            "input_size": (8, 7),
            "hidden": 6,
            "classes": 4,
            "p": 0.5,
            "values_seed": 1,
        },
        "tiny": {
            "batch": 1,
            "channels": 1,
            "filters": (1, 1, 1),
            "input_size": (4, 4),
            "hidden": 2,
            "classes": 3,
            "p": 0.5,
            "values_seed": 1,
        },
    },
}
CHECKS = {
    "directional_fd": "small",
    "full_jacobian_fd": "tiny",
    "float32_tracks_float64": "small",
    "upstream_linearity": "small",
    "matches_torch": "small",
}
SECONDS_PER_EXAMPLE = 20.0  # generous: ~1.5 s is the slowest (DeepConvNet's full Jacobian)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_network_checks_take_seconds_per_example_not_minutes(name: str) -> None:
    """Time each generic check on one typical example and print the table (pytest -s shows it);
    fail only if one takes longer than SECONDS_PER_EXAMPLE, a sign that the error model or a
    strategy became far more expensive."""
    pytest.importorskip("torch")
    spec = catalog.get(name)
    times = {}
    for check, budget in CHECKS.items():
        sample = spec.sample(SAMPLES[name][budget], seed=0)
        start = time.perf_counter()
        getattr(checks, check)(spec, sample)
        times[check] = time.perf_counter() - start
    table = "\n".join(f"  {check:24} {seconds:7.3f} s" for check, seconds in times.items())
    print(f"\n{name}, one example per check:\n{table}")
    slow = {check: seconds for check, seconds in times.items() if seconds > SECONDS_PER_EXAMPLE}
    assert not slow, f"{name}: checks slower than {SECONDS_PER_EXAMPLE} s per example:\n{table}"
