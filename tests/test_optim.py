"""The optimizers' behaviour that the catalog's trajectories cannot express: in-place updates of
the arrays a network holds (class API and the book's dict API), state created lazily, skipped and
zero-gradient steps, maximize, validation, and two places where torch 2.13 departs from the
exact rule (the catalog entries in refcnn/testing/catalog/optimizers.py compare the rest)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from refcnn import layers, optim, optim_book
from refcnn.testing import catalog
from refcnn.testing.catalog import optimizers as optimizer_catalog
from refcnn.testing.tolerance import PAIRWISE_FACTOR, observed_over_bound

RNG = np.random.default_rng(0)

# class, hyperparameters that switch on every buffer, the state keys torch creates (in order)
CLASSES: dict[str, tuple[type[optim.Optimizer], dict[str, Any], tuple[str, ...]]] = {
    "SGD": (optim.SGD, {"lr": 0.1, "momentum": 0.9}, ("momentum_buffer",)),
    "Adagrad": (optim.Adagrad, {"lr": 0.1}, ("step", "sum")),
    "RMSprop": (
        optim.RMSprop,
        {"momentum": 0.5, "centered": True},
        ("step", "square_avg", "momentum_buffer", "grad_avg"),
    ),
    "Adadelta": (optim.Adadelta, {}, ("step", "square_avg", "acc_delta")),
    "Adam": (optim.Adam, {"amsgrad": True}, ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")),
    "AdamW": (optim.AdamW, {}, ("step", "exp_avg", "exp_avg_sq")),
    "Adamax": (optim.Adamax, {}, ("step", "exp_avg", "exp_inf")),
    "NAdam": (optim.NAdam, {}, ("step", "mu_product", "exp_avg", "exp_avg_sq")),
    "RAdam": (optim.RAdam, {}, ("step", "exp_avg", "exp_avg_sq")),
}
PARAMETRIZED = pytest.mark.parametrize("name", CLASSES)


def _arrays(*shapes: tuple[int, ...]) -> list[Any]:
    return [RNG.standard_normal(shape) for shape in shapes]


# --- the class API ------------------------------------------------------------------------------


def test_step_updates_the_arrays_a_layer_holds_in_place() -> None:
    """Adam over an Affine layer's W and b: the layer's own arrays change, with the pure rule."""
    weight, bias = _arrays((4, 3), (3,))
    layer = layers.Affine(weight, bias)
    before = [weight.copy(), bias.copy()]
    x = RNG.standard_normal((5, 4))
    layer.forward(x)
    layer.backward(RNG.standard_normal((5, 3)))
    assert layer.dW is not None and layer.db is not None
    optimizer = optim.Adam([layer.W, layer.b], lr=0.1)
    optimizer.step([layer.dW, layer.db])
    assert layer.W is weight and layer.b is bias  # the same objects ...
    for array, old, grad in zip((weight, bias), before, (layer.dW, layer.db), strict=True):
        expected, _ = optim.adam_step(old, grad, None, lr=0.1)
        np.testing.assert_array_equal(array, expected)  # ... holding the new values


@PARAMETRIZED
def test_state_is_created_at_the_first_step_with_torchs_keys(name: str) -> None:
    """torch creates state lazily, at a parameter's first step (Adagrad: in the constructor)."""
    cls, hyperparameters, keys = CLASSES[name]
    params = _arrays((2, 3), (4,))
    optimizer = cls(params, **hyperparameters)
    if name == "Adagrad":
        assert all(
            list(state) == ["step", "sum"] and state["step"] == 0 for state in optimizer.state
        )
    else:
        assert optimizer.state == [{}, {}]
    optimizer.step([RNG.standard_normal((2, 3)), None])
    assert tuple(optimizer.state[0]) == keys
    for key in keys:
        value = optimizer.state[0][key]
        if isinstance(value, np.ndarray):
            assert value.shape == (2, 3) and value.dtype == params[0].dtype


@PARAMETRIZED
def test_a_parameter_without_gradient_is_skipped(name: str) -> None:
    """grad None: the parameter and its state are left alone (torch: ``p.grad is None``), and
    the parameters after it still step."""
    cls, hyperparameters, _ = CLASSES[name]
    params = _arrays((3,), (2, 2), (2,))
    frozen, moving = params[1].copy(), params[2].copy()
    optimizer = cls(params, **hyperparameters, weight_decay=0.1)
    state_before = optimizer.state[1]
    for _ in range(3):
        optimizer.step([RNG.standard_normal(3), None, RNG.standard_normal(2)])
    np.testing.assert_array_equal(params[1], frozen)
    assert optimizer.state[1] is state_before
    assert not np.array_equal(params[2], moving)


def test_zero_gradient_steps_count_as_steps() -> None:
    """A zero gradient is a step: Adam leaves θ as it is (m = v = 0, 0/eps), but the step count
    moves on, so the next gradient is bias-corrected for t = 3, not t = 1."""
    (theta,) = _arrays((5,))
    start = theta.copy()
    optimizer = optim.Adam([theta], lr=0.1)
    optimizer.step([np.zeros(5)])
    optimizer.step([np.zeros(5)])
    np.testing.assert_array_equal(theta, start)
    assert optimizer.state[0]["step"] == 2
    grad = RNG.standard_normal(5)
    optimizer.step([grad])
    m, v = 0.1 * grad, 0.001 * grad * grad
    expected = start - 0.1 / (1 - 0.9**3) * m / (np.sqrt(v) / np.sqrt(1 - 0.999**3) + 1e-8)
    np.testing.assert_allclose(theta, expected, rtol=1e-13, atol=1e-15)


def test_zero_gradients_with_momentum_keep_moving() -> None:
    """SGD with momentum coasts on zero gradients: b ← μ·b, θ ← θ − lr·b."""
    (theta,) = _arrays((4,))
    grad = RNG.standard_normal(4)
    optimizer = optim.SGD([theta], lr=0.5, momentum=0.5, dampening=0.5)
    optimizer.step([grad])  # b = g (undamped at the first step)
    after_first = theta.copy()
    optimizer.step([np.zeros(4)])  # b = 0.5·g
    np.testing.assert_allclose(theta, after_first - 0.5 * 0.5 * grad, rtol=1e-13, atol=1e-15)


@PARAMETRIZED
def test_maximize_is_descent_on_the_negated_gradient(name: str) -> None:
    """maximize negates g before anything else (weight decay included): bit for bit."""
    cls, hyperparameters, _ = CLASSES[name]
    start = _arrays((3, 2))
    grads = [RNG.standard_normal((3, 2)) for _ in range(4)]
    ascending = [start[0].copy()]
    descending = [start[0].copy()]
    up = cls(ascending, **hyperparameters, weight_decay=0.1, maximize=True)
    down = cls(descending, **hyperparameters, weight_decay=0.1)
    for grad in grads:
        up.step([grad])
        down.step([-grad])
    np.testing.assert_array_equal(ascending[0], descending[0])


@PARAMETRIZED
def test_the_step_count_in_the_state_is_torchs(name: str) -> None:
    """``state["step"]`` counts the steps taken, as torch's does (the trajectories the catalog
    compares leave the scalar out; Adadelta and Adamax keep it without using it)."""
    import torch

    cls, hyperparameters, keys = CLASSES[name]
    (theta,) = _arrays((3,))
    mirror = torch.tensor(theta.copy(), requires_grad=True)
    ours, theirs = (
        cls([theta], **hyperparameters),
        getattr(torch.optim, name)([mirror], **hyperparameters),
    )
    for _ in range(3):
        grad = RNG.standard_normal(3)
        ours.step([grad])
        mirror.grad = torch.tensor(grad)
        theirs.step()
    if "step" in keys:
        assert ours.state[0]["step"] == int(theirs.state[mirror]["step"]) == 3
    else:
        assert "step" not in ours.state[0] and "step" not in theirs.state[mirror]


# hyperparameters given alone, the others left to their defaults: weight decay makes Adam's
# decoupled_weight_decay matter; Adagrad's state starts from initial_accumulator_value
ALONE: dict[str, dict[str, Any]] = {"Adagrad": {"initial_accumulator_value": 0.5}}


@pytest.mark.parametrize("given", ["nothing", "weight_decay", "own"])
@PARAMETRIZED
def test_a_step_function_without_hyperparameters_is_its_class_without_them(
    name: str, given: str
) -> None:
    """The pure ``<name>_step``'s keyword defaults are its constructor's, bit for bit over eight
    steps (RAdam rectifies from step 6 with its default β₂, and only then reads eps), with no
    hyperparameter given and with one given alone (the catalog compares the constructors with
    torch; the classes pass every hyperparameter to the step function, so its own defaults need
    this test)."""
    cls = CLASSES[name][0]
    kwargs = {"nothing": {}, "weight_decay": {"weight_decay": 0.1}, "own": ALONE.get(name, {})}
    (theta,) = _arrays((2, 3))
    param, state = theta.copy(), None
    optimizer = cls([theta], **kwargs[given])
    for _ in range(8):
        grad = RNG.standard_normal((2, 3))
        optimizer.step([grad])
        param, state = cls.step_function(param, grad, state, **kwargs[given])
    np.testing.assert_array_equal(param, theta)
    assert state is not None and state.keys() == optimizer.state[0].keys()
    for key, value in state.items():
        np.testing.assert_array_equal(value, optimizer.state[0][key])


@PARAMETRIZED
def test_constructor_defaults_are_torchs(name: str) -> None:
    """Every defaulted hyperparameter of a constructor has torch.optim's default, exactly (the
    catalog's trajectories leave hyperparameters out only one strategy draw at a time)."""
    import inspect

    import torch

    ours = inspect.signature(CLASSES[name][0]).parameters.values()
    theirs = inspect.signature(getattr(torch.optim, name)).parameters
    defaulted = [p for p in ours if p.default is not inspect.Parameter.empty]
    assert defaulted
    for parameter in defaulted:
        assert parameter.default == theirs[parameter.name].default, parameter.name


def test_adagrad_init_defaults_to_torchs_initial_accumulator() -> None:
    (theta,) = _arrays((3,))
    state = optim.adagrad_init(theta)
    np.testing.assert_array_equal(state["sum"], optim.Adagrad([theta]).state[0]["sum"])
    np.testing.assert_array_equal(state["sum"], np.zeros(3))


@PARAMETRIZED
def test_weight_decay_one_decays(name: str) -> None:
    """weight_decay = 1 is an ordinary value (a shortcut for 0 must not catch it): with a zero
    gradient, the first step equals the step on the gradient θ (coupled decay: g + 1·θ) or
    shrinks θ by lr (decoupled: θ·(1 − lr·1))."""
    cls, hyperparameters, _ = CLASSES[name]
    (theta,) = _arrays((4,))
    start = theta.copy()
    cls([theta], **hyperparameters, weight_decay=1.0).step([np.zeros(4)])
    if name == "AdamW":
        expected = start.copy()
        optim.AdamW([expected], **hyperparameters, weight_decay=0.0).step([np.zeros(4)])
        expected = expected * (1 - 1e-3)
    else:
        expected = start.copy()
        cls([expected], **hyperparameters).step([start.copy()])
    np.testing.assert_allclose(theta, expected, rtol=1e-14, atol=0)


STEP_FUNCTIONS: list[Callable[..., Any]] = [
    optim.sgd_step,
    optim.adagrad_step,
    optim.rmsprop_step,
    optim.adadelta_step,
    optim.adam_step,
    optim.adamw_step,
    optim.adamax_step,
    optim.nadam_step,
    optim.radam_step,
]


@pytest.mark.parametrize("step", STEP_FUNCTIONS, ids=lambda f: f.__name__)
def test_step_functions_leave_their_arguments_alone(step: Callable[..., Any]) -> None:
    param, grad = _arrays((3,), (3,))
    kwargs = {"momentum": 0.9} if step is optim.sgd_step else {}
    _, state = step(param, grad, None, **kwargs)
    copies = (param.copy(), grad.copy(), {k: np.copy(v) for k, v in state.items()})
    new_param, new_state = step(param, grad, state, **kwargs)
    np.testing.assert_array_equal(param, copies[0])
    np.testing.assert_array_equal(grad, copies[1])
    for key, value in state.items():
        np.testing.assert_array_equal(value, copies[2][key])
        if isinstance(value, np.ndarray):
            assert not np.shares_memory(value, new_state[key])
    assert not np.shares_memory(new_param, param)


def test_float32_stays_float32() -> None:
    """Python-float hyperparameters and double-precision scalars never upcast float32 state."""
    param, grad = (a.astype(np.float32) for a in _arrays((3,), (3,)))
    for step in STEP_FUNCTIONS:
        new_param, state = step(param, grad, None)
        new_param, state = step(new_param, grad, state)
        assert new_param.dtype == np.float32, step.__name__
        assert all(v.dtype == np.float32 for v in state.values() if isinstance(v, np.ndarray))


def test_step_functions_validate_like_the_constructors() -> None:
    with pytest.raises(ValueError, match=r"^Invalid beta parameter at index 1: 1.0$"):
        optim.adam_step(np.zeros(2), np.zeros(2), betas=(0.9, 1.0))
    with pytest.raises(ValueError, match=r"^Invalid rho value: -0.1$"):
        optim.adadelta_step(np.zeros(2), np.zeros(2), rho=-0.1)
    with pytest.raises(ValueError, match=r"grad.shape=\(3,\) must equal param.shape=\(2,\)"):
        optim.sgd_step(np.zeros(2), np.zeros(3))
    with pytest.raises(TypeError, match=r"grad.dtype=float32 differs from param.dtype=float64"):
        optim.sgd_step(np.zeros(2), np.zeros(2, np.float32))
    with pytest.raises(ValueError, match=r"^Nesterov momentum requires a momentum"):
        optim.sgd_step(np.zeros(2), np.zeros(2), nesterov=True)
    with pytest.raises(ValueError, match=r"^Invalid momentum_decay value: -0.1$"):
        optim.nadam_step(np.zeros(2), np.zeros(2), momentum_decay=-0.1)
    with pytest.raises(ValueError, match=r"^betas must be a pair"):
        optim.adam_step(np.zeros(2), np.zeros(2), betas=(0.9, 0.99, 0.999))


@pytest.mark.parametrize("step", STEP_FUNCTIONS, ids=lambda f: f.__name__)
def test_step_functions_name_what_they_refuse(step: Callable[..., Any]) -> None:
    """param and grad given as lists, and a state buffer of the wrong dtype or shape, are refused
    by name (the catalog's trajectories only reach the classes with valid arrays)."""
    param, grad = _arrays((3,), (3,))
    with pytest.raises(TypeError, match=r"^param must be a numpy.ndarray, got list"):
        step(param.tolist(), grad)
    with pytest.raises(TypeError, match=r"^grad must be a numpy.ndarray, got list"):
        step(param, grad.tolist())
    kwargs = {"momentum": 0.9} if step is optim.sgd_step else {}
    _, state = step(param, grad, None, **kwargs)
    name = next(key for key, value in state.items() if isinstance(value, np.ndarray))
    wrong_dtype = {**state, name: state[name].astype(np.float32)}
    with pytest.raises(
        TypeError, match=rf"^state\['{name}'\].dtype=float32 differs from param.dtype=float64"
    ):
        step(param, grad, wrong_dtype, **kwargs)
    with pytest.raises(ValueError, match=rf"state\['{name}'\]"):
        step(param, grad, {**state, name: np.zeros(4)}, **kwargs)
    with pytest.raises(ValueError, match=rf"state\['{name}'\]"):
        step(param, grad, {**state, name: [0.0, 0.0, 0.0]}, **kwargs)


def test_constructors_validate_before_any_step() -> None:
    (theta,) = _arrays((2,))
    with pytest.raises(ValueError, match=r"^Nesterov momentum requires a momentum"):
        optim.SGD([theta], lr=0.1, nesterov=True)


def test_sgd_accepts_lr_nan_as_torch_does() -> None:
    """torch's SGD checks ``lr < 0.0``, which NaN passes (Adam's ``not 0.0 <= lr`` does not)."""
    optim.SGD(_arrays((2,)), lr=float("nan"))
    with pytest.raises(ValueError, match=r"^Invalid learning rate: nan$"):
        optim.Adam(_arrays((2,)), lr=float("nan"))


def test_the_params_argument() -> None:
    with pytest.raises(TypeError, match=r"iterable of arrays, but got numpy.ndarray"):
        optim.SGD(np.zeros(3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^optimizer got an empty parameter list$"):
        optim.SGD([])
    with pytest.raises(TypeError, match=r"params\[1\] must have a floating dtype"):
        optim.SGD([np.zeros(2), np.zeros(2, np.int64)])
    read_only = np.zeros(2)
    read_only.setflags(write=False)
    with pytest.raises(ValueError, match=r"params\[0\] is read-only"):
        optim.SGD([read_only])
    with pytest.raises(ValueError, match=r"one gradient per parameter \(2\), got 1"):
        optim.SGD(_arrays((2,), (3,))).step([np.zeros(2)])


# --- the book's API -----------------------------------------------------------------------------

BOOK: dict[str, tuple[Callable[[], Any], Callable[[list[Any]], optim.Optimizer]]] = {
    "SGD": (lambda: optim_book.SGD(0.1), lambda p: optim.SGD(p, lr=0.1)),
    "Momentum": (
        lambda: optim_book.Momentum(0.1, 0.8),
        lambda p: optim.SGD(p, lr=0.1, momentum=0.8),
    ),
    "Nesterov": (
        lambda: optim_book.Nesterov(0.1, 0.8),
        lambda p: optim.SGD(p, lr=0.1, momentum=0.8, nesterov=True),
    ),
    "AdaGrad": (lambda: optim_book.AdaGrad(0.1), lambda p: optim.Adagrad(p, lr=0.1)),
    "RMSprop": (
        lambda: optim_book.RMSprop(0.1, 0.9),
        lambda p: optim.RMSprop(p, lr=0.1, alpha=0.9),
    ),
    "Adam": (
        lambda: optim_book.Adam(0.1, 0.8, 0.99),
        lambda p: optim.Adam(p, lr=0.1, betas=(0.8, 0.99)),
    ),
}


@pytest.mark.parametrize("name", BOOK)
def test_book_update_is_in_place_lazy_and_follows_torchs_rule(name: str) -> None:
    make_book, make_torch_style = BOOK[name]
    params = {"W1": RNG.standard_normal((3, 2)), "b1": RNG.standard_normal(2)}
    arrays = dict(params)  # the network's references
    twins = [params["W1"].copy(), params["b1"].copy()]
    book, reference = make_book(), make_torch_style(twins)
    assert book.state is None  # nothing before the first update
    for _ in range(4):
        grads = {"W1": RNG.standard_normal((3, 2)), "b1": RNG.standard_normal(2)}
        book.update(params, grads)
        reference.step([grads["W1"], grads["b1"]])
    assert set(book.state) == {"W1", "b1"}
    for key, twin in zip(("W1", "b1"), twins, strict=True):
        assert params[key] is arrays[key]
        np.testing.assert_array_equal(params[key], twin)


def _book_run(update: Callable[[Any, Any, Any], None], theta: Any, grads: list[Any]) -> Any:
    """The book's loop, written as printed: ``update(params, grads, state)`` on one key."""
    params, state = {"w": theta.copy()}, {}
    for grad in grads:
        update(params, {"w": grad}, state)
    return params["w"]


def test_book_formulas_and_their_torch_equivalents() -> None:
    """Momentum and the old-v Nesterov (Bengio et al.) are torch's rules; AdaGrad and RMSprop
    are the book's with eps 1e-7; the book's published new-v Nesterov is not."""
    theta = RNG.standard_normal(6)
    grads = [RNG.standard_normal(6) for _ in range(5)]
    lr, mu = 0.1, 0.8

    def momentum(params: Any, g: Any, state: Any) -> None:
        state["v"] = mu * state.get("v", 0.0) - lr * g["w"]
        params["w"] += state["v"]

    def nesterov_as_published(params: Any, g: Any, state: Any) -> None:
        state["v"] = mu * state.get("v", 0.0) - lr * g["w"]
        params["w"] += mu * mu * state["v"] - (1 + mu) * lr * g["w"]

    def nesterov_old_v(params: Any, g: Any, state: Any) -> None:
        params["w"] += mu * mu * state.get("v", 0.0) - (1 + mu) * lr * g["w"]
        state["v"] = mu * state.get("v", 0.0) - lr * g["w"]

    def adagrad(params: Any, g: Any, state: Any) -> None:
        state["h"] = state.get("h", 0.0) + g["w"] * g["w"]
        params["w"] -= lr * g["w"] / (np.sqrt(state["h"]) + 1e-7)

    def rmsprop(params: Any, g: Any, state: Any) -> None:
        state["h"] = 0.9 * state.get("h", 0.0) + (1 - 0.9) * g["w"] * g["w"]
        params["w"] -= lr * g["w"] / (np.sqrt(state["h"]) + 1e-7)

    def ours(book: Any) -> Any:
        params = {"w": theta.copy()}
        for grad in grads:
            book.update(params, {"w": grad})
        return params["w"]

    close = {"rtol": 1e-13, "atol": 1e-15}
    np.testing.assert_allclose(
        ours(optim_book.Momentum(lr, mu)), _book_run(momentum, theta, grads), **close
    )
    nesterov = ours(optim_book.Nesterov(lr, mu))
    np.testing.assert_allclose(nesterov, _book_run(nesterov_old_v, theta, grads), **close)
    assert np.max(np.abs(nesterov - _book_run(nesterov_as_published, theta, grads))) > 1e-3
    np.testing.assert_allclose(
        ours(optim_book.AdaGrad(lr, eps=1e-7)), _book_run(adagrad, theta, grads), **close
    )
    np.testing.assert_allclose(
        ours(optim_book.RMSprop(lr, 0.9, eps=1e-7)), _book_run(rmsprop, theta, grads), **close
    )


# --- where torch 2.13 departs from the exact rule -----------------------------------------------


def test_torch_nadam_float64_carries_float32_rounding_of_its_mu_product() -> None:
    """torch keeps NAdam's mu_product in torch's default dtype (float32), also for float64
    parameters. With the default left alone, its float64 trajectory leaves the float64 rounding
    bound, and stays within the allowance the catalog derives for a float32 Πₜ (no weight decay
    here: the allowance does not yet follow θ's error back through coupled weight decay)."""
    torch = pytest.importorskip("torch")
    spec = catalog.get("nadam")
    sample = spec.edge_sample("ψ = 0: μ = β₁/2 at every step", "float64")
    split, hyperparameters = sample.kwargs["split"], dict(sample.kwargs)
    del hyperparameters["split"]
    assert torch.get_default_dtype() == torch.float32
    params, grads = sample.inputs["params"], sample.inputs["grads"]
    tensors, start = [], 0
    for shape in split:
        size = int(np.prod(shape))
        tensors.append(torch.tensor(params[start : start + size].reshape(shape)))
        start += size
    optimizer = torch.optim.NAdam(tensors, **hyperparameters)
    trajectory = []
    for grad in grads:
        start = 0
        for tensor in tensors:
            tensor.grad = torch.tensor(grad[start : start + tensor.numel()].reshape(tensor.shape))
            start += tensor.numel()
        optimizer.step()
        trajectory.append(torch.cat([t.reshape(-1) for t in tensors]).numpy())
    assert optimizer.state[tensors[0]]["mu_product"].dtype == torch.float32
    ours = spec.forward(**sample.inputs, **sample.kwargs)[:, 0]
    error = np.abs(np.array(trajectory) - ours)
    bound = (
        PAIRWISE_FACTOR
        * spec.tolerance.forward_bound(spec, sample.inputs, sample.kwargs, "float64")[:, 0]
    )
    allowance = optimizer_catalog.nadam_float32_product_allowance(**sample.inputs, **sample.kwargs)
    assert observed_over_bound(error, bound).max() > 100  # far outside float64 rounding
    assert observed_over_bound(error, bound + allowance[:, 0]).max() <= 1


def test_centered_rmsprop_with_alpha_zero_is_exact_here() -> None:
    """α = 0 makes v = g² and ḡ = g, so v − ḡ² = 0 exactly and the step is lr·g/eps. refcnn
    computes fl(g²) − fl(g·g) = 0. torch 2.13 on an FMA-capable CPU computes v − ḡ·ḡ fused, which
    returns the rounding error of g² (negative half of the time: √ gives NaN); the catalog's
    strategies leave α = 0 out of centered RMSprop for that reason (an infinite condition
    number: no rounding bound applies)."""
    (theta,) = _arrays((50,))
    grad = RNG.standard_normal(50)
    expected = theta - 0.01 * grad / 1e-8
    optimizer = optim.RMSprop([theta], alpha=0.0, centered=True)
    optimizer.step([grad])
    np.testing.assert_allclose(theta, expected, rtol=1e-15)
