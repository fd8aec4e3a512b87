"""The book-style adapter (refcnn.testing.adapters.book) on modules in the API of "Deep Learning
from Scratch": tests/candidates/book_layers.py (written from the API description, the book's
conventions) conforms on every op it provides, judged against the conventions it declares;
book_layers_broken.py (three classic mistakes) fails on exactly the ops and gradients the
mistakes touch; a torch-like module (refcnn.layers, refcnn.optim_book) conforms with no
convention declared; aliases resolve; what a module lacks is "not provided".

Every comparison goes through checks.matches_candidate with the reference the oracle uses:
``conventions.spec_for(op, adapter.conventions)``.
"""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

import refcnn.layers
import refcnn.optim_book
from refcnn.testing import catalog, checks, conventions, strategies
from refcnn.testing.adapters import Unsupported, provides
from refcnn.testing.adapters.book import BOOK_CONVENTIONS, BookStyle
from refcnn.testing.opspec import KnownDeviation, OpSpec, Sample
from refcnn.testing.oracle import import_module_from
from tests.candidates import book_layers

# loaded from its path, as `refcnn check` does: it imports its sibling book_layers by name
book_layers_broken = import_module_from(
    str(Path(__file__).parent / "candidates" / "book_layers_broken.py")
)

EXAMPLES = settings(
    max_examples=20,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
SEARCH = settings(max_examples=300, derandomize=True, database=None, deadline=None)
DTYPES = ("float64", "float32")
BOOK_OPS = (
    "im2col",
    "conv2d",
    "max_pool2d",
    "linear",
    "relu",
    "sigmoid",
    "softmax",
    "softmax_with_loss",
    "dropout",
    "batch_norm_train",
    "batch_norm_running_stats",
    "sgd",
    "adagrad",
    "rmsprop",
    "adam",
)
BROKEN = {  # (op, quantity) the broken module's mistakes make fail
    ("im2col", "grad_x"),  # col2im assigns
    ("conv2d", "grad_x"),  # col2im assigns
    ("conv2d", "grad_bias"),  # db of the first image only
    ("max_pool2d", "grad_x"),  # col2im assigns: overlapping windows
    ("linear", "grad_weight"),  # dW transposed
}
TORCH_LIKE = types.SimpleNamespace(
    **{name: getattr(refcnn.layers, name) for name in dir(refcnn.layers) if name[0].isupper()},
    **{name: getattr(refcnn.optim_book, name) for name in refcnn.optim_book.__all__},
)


# --- the comparison the oracle makes ------------------------------------------------------------


def reference(adapter: BookStyle, op: str) -> OpSpec:
    """What the oracle judges ``op`` against: the declared convention's variant or the catalog's
    entry, forward only where the module has no backward (the book's softmax function)."""
    spec = conventions.spec_for(op, adapter.conventions)
    if adapter.forward_only(spec):
        spec = dataclasses.replace(spec, backward=None, differentiable=())
    return spec


def samples(adapter: BookStyle, spec: OpSpec, dtype: str) -> Any:
    params = adapter.params(spec, "small")
    params = spec.params("small") if params is None else params
    return st.builds(lambda p, seed: spec.sample(p, seed, dtype), params, strategies.seeds())


def with_allowance(adapter: BookStyle, spec: OpSpec, sample: Sample) -> OpSpec:
    """``spec`` with the adapter's conversion allowance as a KnownDeviation (relative to the
    expected value; the oracle applies it elementwise, to the converted rows only)."""
    expected = spec.forward(**sample.inputs, **sample.kwargs)
    allowance = adapter.allowance(spec, sample, "out", expected)
    if allowance is None:
        return spec
    extra, reason = allowance
    magnitude = np.abs(np.asarray(expected, dtype=np.float64))
    ratio = np.divide(extra, magnitude, out=np.zeros_like(magnitude), where=magnitude > 0)
    deviation = KnownDeviation(adapter.name, sample.dtype, "out", float(ratio.max()), reason)
    return dataclasses.replace(spec, known_deviations=(*spec.known_deviations, deviation))


def judge(adapter: BookStyle, spec: OpSpec, sample: Sample) -> bool:
    """matches_candidate on the prepared sample; False when it lies outside the module's API."""
    prepared = adapter.prepare(spec, sample)
    if prepared is None:
        return False
    try:
        checks.matches_candidate(with_allowance(adapter, spec, prepared), prepared, adapter)
    except Unsupported:
        return False
    return True


def conforms(adapter: BookStyle, op: str, dtype: str) -> int:
    """Run the op's drawn samples and its edge cases; the number of samples judged."""
    spec = reference(adapter, op)
    judged = []

    @EXAMPLES
    @given(samples(adapter, spec, dtype))
    def drawn(sample: Sample) -> None:
        judged.append(judge(adapter, spec, sample))

    drawn()
    for case in spec.edge_cases:
        if case.applies_to("matches_torch") or case.applies_to("matches_candidate"):  # as oracle
            judged.append(judge(adapter, spec, spec.edge_sample(case.id, dtype)))
    return sum(judged)


# --- the module written from the API description ------------------------------------------------


def test_the_book_module_provides_what_it_has() -> None:
    adapter = BookStyle(book_layers)
    assert [s.name for s in catalog.OPS if provides(adapter, s)] == [
        s.name for s in catalog.OPS if s.name in BOOK_OPS
    ]
    assert adapter.conventions == BOOK_CONVENTIONS
    described = adapter.describe()
    assert described["path"].endswith("book_layers.py")
    assert described["style"] == "book"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", BOOK_OPS)
def test_the_book_module_conforms(op: str, dtype: str) -> None:
    assert conforms(BookStyle(book_layers), op, dtype) >= EXAMPLES.max_examples // 2


# --- the broken module --------------------------------------------------------------------------


def counterexample(op: str, quantity: str) -> Sample:
    """The smallest sample on which the broken module's ``quantity`` of ``op`` is wrong."""
    adapter = BookStyle(book_layers_broken)
    spec = reference(adapter, op)

    def fails(sample: Sample) -> bool:
        try:
            judge(adapter, spec, sample)
        except AssertionError as error:
            return f"{op} {quantity} [" in str(error)
        return False

    return find(samples(adapter, spec, "float64"), fails, settings=SEARCH)


@pytest.mark.parametrize(("op", "quantity"), sorted(BROKEN))
def test_the_broken_module_fails_where_its_mistakes_are(op: str, quantity: str) -> None:
    sample = counterexample(op, quantity)
    assert sample.op == op
    if op in ("im2col", "conv2d", "max_pool2d") and quantity == "grad_x":
        # col2im's = loses gradient only where windows overlap: the shrunk case has overlap
        kernel = sample.params["kernel_size"]
        stride = sample.params["stride"]
        assert max(kernel) > stride, sample.params


@pytest.mark.parametrize(
    "op", [op for op in BOOK_OPS if op not in {op for op, _ in BROKEN}] + ["conv2d"]
)
def test_the_broken_module_conforms_elsewhere(op: str) -> None:
    """Every other op passes; conv2d too on samples without overlap and with batch 1, where
    neither of its mistakes shows."""
    adapter = BookStyle(book_layers_broken)
    if op != "conv2d":
        assert conforms(adapter, op, "float64") >= EXAMPLES.max_examples // 2
        return
    spec = reference(adapter, op)
    params = {
        **{"batch": 1, "in_channels": 2, "out_channels": 3, "groups": 1, "bias": True},
        **{"input_size": (6, 4), "kernel_size": (2, 2), "stride": 2, "padding": 0, "dilation": 1},
    }
    assert judge(adapter, spec, spec.sample(params, seed=3))


# --- resolution: aliases, missing classes, other APIs ----------------------------------------


class LeakyRelu:
    """A LeakyReLU as copies write it: the slope as ``alpha``."""

    def __init__(self, alpha: float = 0.01) -> None:
        self.alpha = alpha
        self.x: Any = None

    def forward(self, x: Any) -> Any:
        self.x = x
        return np.where(x > 0, x, self.alpha * x)

    def backward(self, dout: Any) -> Any:
        return np.where(self.x > 0, dout, self.alpha * dout)


class FixedLeakyReLU(LeakyRelu):
    """One with its slope built in (no constructor argument)."""

    def __init__(self) -> None:
        super().__init__(0.125)


def test_aliases_resolve_in_any_case() -> None:
    module = types.SimpleNamespace(
        ReLU=book_layers.Relu,
        MaxPooling=book_layers.Pooling,
        SOFTMAX_WITH_LOSS=book_layers.SoftmaxWithLoss,
        Im2Col=book_layers.im2col,
        COL2IM=book_layers.col2im,
        LeakyRelu=LeakyRelu,
        rmsprop=book_layers.RMSprop,
    )
    adapter = BookStyle(module)
    expected = ["im2col", "max_pool2d", "relu", "leaky_relu", "softmax_with_loss", "rmsprop"]
    assert [s.name for s in catalog.OPS if adapter.provides(s)] == expected
    for op in expected:
        spec = reference(adapter, op)
        assert judge(adapter, spec, find(samples(adapter, spec, "float64"), lambda s: True))


def test_a_built_in_slope_is_measured_and_drawn() -> None:
    adapter = BookStyle(types.SimpleNamespace(LeakyReLU=FixedLeakyReLU))
    spec = reference(adapter, "leaky_relu")
    sample = find(samples(adapter, spec, "float64"), lambda s: True)
    assert sample.kwargs["negative_slope"] == 0.125
    assert judge(adapter, spec, sample)
    assert adapter.prepare(spec, spec.sample({"shape": (3,), "negative_slope": 0.5}, 0)) is None


def test_missing_classes_are_not_provided() -> None:
    adapter = BookStyle(types.SimpleNamespace(Relu=book_layers.Relu, helper=lambda: None))
    provided = [s.name for s in catalog.OPS if provides(adapter, s)]
    assert provided == ["relu"]
    assert adapter.describe()["found"] == "Relu"
    assert BookStyle(types.SimpleNamespace()).describe()["found"] == ""


def test_same_named_classes_of_another_api_are_not_taken() -> None:
    class Linear:  # torch-like: Linear(in_features, out_features)
        def __init__(self, in_features: int, out_features: int) -> None: ...

    class MaxPool(Linear):  # MaxPool(kernel_size, stride)
        def __init__(self, kernel_size: int, stride: int) -> None: ...

    adapter = BookStyle(types.SimpleNamespace(Linear=Linear, MaxPool=MaxPool))
    assert not any(adapter.provides(s) for s in catalog.OPS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "op",
    [
        "conv2d",
        "max_pool2d",
        "avg_pool2d",
        "linear",
        "relu",
        "leaky_relu",
        "tanh",
        "dropout",
        "batch_norm_train",
        "batch_norm_running_stats",
        "sgd",
        "adagrad",
        "rmsprop",
        "adam",
    ],
)
def test_a_torch_like_book_api_conforms_with_no_convention(op: str, dtype: str) -> None:
    """refcnn.layers and refcnn.optim_book keep the book's API with torch's semantics: a Dropout
    that takes its mask, per-channel batch norm with eps, optimizers with torch-named state."""
    adapter = BookStyle(TORCH_LIKE, conventions=())
    assert adapter.provides(catalog.get(op))
    assert conforms(adapter, op, dtype) >= EXAMPLES.max_examples // 2


# --- what the adapter decides for the module ----------------------------------------------------


def test_dropout_gets_the_mask_the_layer_draws() -> None:
    adapter = BookStyle(book_layers)
    spec = reference(adapter, "dropout")
    sample = spec.sample({"shape": (3, 5), "p": 0.4, "training": True}, seed=1)
    state = np.random.get_state()[1].copy()  # noqa: NPY002 (what the book's layer draws from)
    prepared = adapter.prepare(spec, sample)
    assert prepared is not None
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002 (restored)
    out = adapter.forward(spec, prepared.inputs, prepared.kwargs)
    np.testing.assert_array_equal(out != 0, prepared.inputs["mask"] != 0)
    other = dataclasses.replace(
        prepared, inputs={**prepared.inputs, "mask": 1 - prepared.inputs["mask"]}
    )
    with pytest.raises(Unsupported, match="draws its own mask"):
        adapter.forward(spec, other.inputs, other.kwargs)


def test_a_dropout_that_ignores_np_random_is_reported() -> None:
    class Dropout(book_layers.Dropout):
        def forward(self, x: Any, train_flg: bool = True) -> Any:
            self.mask = np.random.default_rng().random(x.shape) > self.dropout_ratio
            return x * self.mask

    adapter = BookStyle(types.SimpleNamespace(Dropout=Dropout))
    spec = reference(adapter, "dropout")
    prepared = adapter.prepare(spec, spec.sample({"shape": (4, 6), "p": 0.5, "training": True}, 0))
    assert prepared is not None
    with pytest.raises(RuntimeError, match=r"np\.random's global generator"):
        adapter.forward(spec, prepared.inputs, prepared.kwargs)


def test_batch_norm_eps_is_measured_and_drawn() -> None:
    adapter = BookStyle(book_layers)
    spec = reference(adapter, "batch_norm_train")
    sample = find(samples(adapter, spec, "float64"), lambda s: True)
    assert sample.kwargs["eps"] == book_layers.BatchNormalization.eps == 1e-6
    assert BookStyle(book_layers, eps={"batch_norm": 1e-5})._bn_eps == 1e-5


@pytest.mark.parametrize(
    ("op", "params"),
    [
        ("conv2d", {"groups": 3, "in_channels": 3, "out_channels": 3}),
        ("conv2d", {"dilation": (2, 1)}),
        ("conv2d", {"stride": (1, 2)}),
        ("conv2d", {"padding": (0, 1, 0, 1)}),
        ("max_pool2d", {"ceil_mode": True}),
        ("max_pool2d", {"batched": False}),
        ("max_pool2d", {"stride": None, "kernel_size": (2, 3)}),
        ("linear", {"leading": (2, 3)}),
        ("softmax", {"shape": (2, 3), "dim": 0}),
        ("softmax", {"shape": (2, 3, 4), "dim": -1}),
        ("batch_norm_train", {"spatial": (3,)}),
        ("batch_norm_running_stats", {"spatial": (2, 3)}),
        ("adam", {"amsgrad": True}),
        ("adagrad", {"eps": 1e-10}),
        ("sgd", {"weight_decay": 0.1}),
    ],
)
def test_samples_outside_the_book_api_are_skipped(op: str, params: dict[str, Any]) -> None:
    adapter = BookStyle(book_layers)
    spec = reference(adapter, op)
    base = find(samples(adapter, spec, "float64"), lambda s: True)
    sample = spec.sample({**base.params, **params}, base.seed)
    assert adapter.prepare(spec, sample) is None
    with pytest.raises(Unsupported):
        adapter.forward(spec, sample.inputs, sample.kwargs)


def test_the_softmax_function_is_judged_forward_only() -> None:
    adapter = BookStyle(book_layers)
    spec = catalog.get("softmax")
    assert adapter.forward_only(spec)
    sample = spec.sample({"shape": (2, 3), "dim": 1, "scale": 1.0}, 0)
    with pytest.raises(Unsupported, match="without a backward"):
        adapter.backward(spec, sample.inputs, sample.kwargs, sample.random((2, 3), "upstream"))


def test_the_velocity_conversion_declares_its_allowance() -> None:
    spec = catalog.get("sgd")
    params = {"split": ((2,),), "steps": ("normal",) * 10, "lr": 0.1, "momentum": 0.9}
    sample = spec.sample(params, 0)
    expected = spec.forward(**sample.inputs, **sample.kwargs)
    book = BookStyle(book_layers).allowance(spec, sample, "out", expected)
    assert book is not None
    extra, _ = book
    assert extra.shape == expected.shape and not extra[:, 0].any() and extra[:, 1].all()
    torch_like = BookStyle(TORCH_LIKE, conventions=()).allowance(spec, sample, "out", expected)
    assert torch_like is None  # refcnn.optim_book keeps torch's momentum_buffer itself


def test_optimizer_state_under_unknown_names_is_an_error() -> None:
    class AdaGrad:
        def __init__(self, lr: float = 0.01) -> None:
            self.lr, self.squares = lr, None

        def update(self, params: dict[str, Any], grads: dict[str, Any]) -> None:
            self.squares = self.squares or {k: np.zeros_like(v) for k, v in params.items()}
            for key in params:
                self.squares[key] += grads[key] ** 2
                params[key] -= self.lr * grads[key] / (np.sqrt(self.squares[key]) + 1e-7)

    adapter = BookStyle(types.SimpleNamespace(AdaGrad=AdaGrad))
    spec = reference(adapter, "adagrad")
    sample = find(samples(adapter, spec, "float64"), lambda s: True)
    with pytest.raises(AttributeError, match="keeps its sum under none of the names h, cache"):
        adapter.forward(spec, sample.inputs, sample.kwargs)


def test_restricted_strategies_draw_only_book_geometry() -> None:
    @EXAMPLES
    @given(
        strategies.conv2d_params(
            "small", square_stride=True, int_padding=True, dilation=False, groups=False, bias=True
        )
    )
    def check(params: dict[str, Any]) -> None:
        assert isinstance(params["stride"], int) and isinstance(params["padding"], int)
        assert params["dilation"] == 1 and params["groups"] == 1 and params["bias"] is True
        spec = catalog.get("conv2d")
        sample = spec.sample(params, 0)
        spec.forward(**sample.inputs, **sample.kwargs)  # a valid geometry

    check()
