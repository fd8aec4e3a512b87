"""checks.check_gradient: the learner's finite-difference check on arrays of their choosing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from refcnn.testing import catalog
from refcnn.testing.checks import check_gradient

RNG = np.random.default_rng(20261124)


def test_a_right_gradient_passes_with_keyword_arguments_and_defaults() -> None:
    x = RNG.standard_normal((1, 2, 5, 5))
    weight = RNG.standard_normal((3, 2, 3, 3))
    bias = RNG.standard_normal(3)
    check_gradient("conv2d", x=x, weight=weight, bias=bias, stride=2, padding=1)
    check_gradient(
        "cross_entropy", logits=RNG.standard_normal((4, 3)), target=np.array([0, 2, 1, 1])
    )


def test_a_gradient_off_by_one_part_in_ten_thousand_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = catalog.get("linear")

    def scaled_backward(*args: object, **kwargs: object) -> tuple[object, ...]:
        grads = spec.backward(*args, **kwargs)  # type: ignore[misc]
        return tuple(None if g is None else g * (1 + 1e-4) for g in grads)

    monkeypatch.setitem(
        catalog._BY_NAME, "linear", dataclasses.replace(spec, backward=scaled_backward)
    )
    with pytest.raises(AssertionError, match=r"linear grad_x .* exceed the rounding-error bound"):
        check_gradient("linear", x=RNG.standard_normal((2, 3)), weight=RNG.standard_normal((4, 3)))


@pytest.mark.parametrize(
    ("op", "arguments", "error", "message"),
    [
        (
            "linear",
            {},
            TypeError,
            r"needs at least one of its differentiable inputs \['x', 'weight'",
        ),
        ("sgd", {"params": [np.zeros(2)]}, ValueError, "op='sgd' has no explicit backward"),
        (
            "linear",
            {"x": np.zeros((2, 3), np.float32), "weight": np.zeros((4, 3))},
            TypeError,
            r"must share one floating dtype, got \['float32', 'float64'\]",
        ),
        ("no_such_op", {}, KeyError, "no op 'no_such_op' in the catalog"),
    ],
)
def test_bad_calls_name_the_problem(
    op: str, arguments: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        check_gradient(op, **arguments)
