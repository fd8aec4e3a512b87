"""The op record (OpSpec) and the samples it produces.

An op is declared once, as data; every generic test iterates over these records. A sample is a
pure function of ``(params, seed, dtype)``: hypothesis draws ``params`` (the geometry, built
constructively by a strategy) and ``seed``; the arrays come from NumPy's generator. That keeps
shrinking on what matters (shapes, strides, pads) and makes every failure reproducible from the
three values a record stores.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from refcnn.testing.tolerance import ToleranceModel

Array = NDArray[np.floating[Any]]
Params = Mapping[str, Any]
Layout = tuple[dict[str, tuple[int, ...] | None], dict[str, Any]]


@dataclass(frozen=True)
class ArraySpec:
    """Placeholder for an array argument of an error case: random values of this shape/dtype."""

    shape: tuple[int, ...]
    dtype: str = "float64"

    def materialize(self) -> Any:
        values = np.random.default_rng(0).standard_normal(self.shape)
        if np.issubdtype(np.dtype(self.dtype), np.floating):
            return values.astype(self.dtype)
        return np.round(values).astype(self.dtype)


@dataclass(frozen=True)
class ErrorCase:
    """A bad call and the error it must raise: ``error`` whose message matches ``match``."""

    id: str
    arguments: Mapping[str, Any]  # ArraySpec for arrays, plain values otherwise
    error: type[Exception]
    match: str

    def materialize(self) -> dict[str, Any]:
        return {
            k: v.materialize() if isinstance(v, ArraySpec) else v for k, v in self.arguments.items()
        }


def in_backward_too(
    cases: tuple[ErrorCase, ...], upstream: Callable[[Mapping[str, Any]], Any]
) -> tuple[ErrorCase, ...]:
    """The forward error cases, and each again through the backward with the upstream
    ``upstream(arguments)`` (None: that case cannot be posed to the backward). A backward
    validates its inputs itself and must raise, and name them, as the forward does."""
    backward = []
    for case in cases:
        if "grad_out" in case.arguments:
            continue  # a backward case already
        grad_out = upstream(case.arguments)
        if grad_out is not None:
            arguments = {**case.arguments, "grad_out": grad_out}
            backward.append(
                dataclasses.replace(case, id=f"{case.id} (backward)", arguments=arguments)
            )
    return cases + tuple(backward)


@dataclass(frozen=True)
class KnownDeviation:
    """A documented way a candidate departs from the exact function, as data (not a branch).

    Comparisons of ``quantity`` in ``dtype`` against a candidate whose name starts with
    ``candidate`` get ``relative · |expected|`` added to their bound, and their records and report
    rows say so with ``reason``. Example: torch 2.13's float64 hardsigmoid backward multiplies by
    float32's 1/6, a relative error of 3e-8 that no float64 rounding model allows.
    """

    candidate: str
    dtype: str
    quantity: str
    relative: float
    reason: str

    def applies(self, candidate: str, dtype: str, quantity: str) -> bool:
        return (
            candidate.startswith(self.candidate)
            and dtype == self.dtype
            and quantity == self.quantity
        )


@dataclass(frozen=True)
class EdgeCase:
    """A hand-picked case that random drawing may miss.

    Arrays come from ``seed`` as usual, except those given in ``arrays`` (exact values: a tie in a
    pooling window, an input sitting on a kink). ``checks`` limits which checks run on it (names
    of functions in refcnn.testing.checks); None means all that apply. A point on a kink is not
    differentiable, so such a case names only the torch comparison.
    """

    id: str
    params: Mapping[str, Any]
    seed: int = 0
    arrays: Mapping[str, Any] | None = None
    checks: tuple[str, ...] | None = None

    def applies_to(self, check: str) -> bool:
        return self.checks is None or check in self.checks


@dataclass(frozen=True)
class OpSpec:
    """One op, declared once. Capabilities are derived from which fields are set.

    forward(**inputs, **kwargs) -> output array
    backward(grad_out, **inputs, **kwargs) -> tuple of gradients aligned with ``differentiable``
        (None where an optional input is None), or the gradient itself for an op with one
    layout(params) -> (shapes of the array inputs, None for an absent optional one; kwargs)
    params(budget) -> hypothesis strategy of params dicts; budget "small" or "tiny" (full
        Jacobians)
    definition: an independent forward written from the definition (small shapes only)
    upstream_name: what the backward's error messages call the upstream gradient (im2col's
        backward is col2im, whose argument is ``col``)
    linear_in: inputs in which the op is linear (affine: bias terms cancel in the adjoint check)
    polynomial_degree: total degree in all inputs together; central differences are exact
        (no truncation error) when it is at most 2
    known_deviations: candidates' documented departures (see :class:`KnownDeviation`)
    per_sample(sample) -> the inputs whose axis 0 indexes independent samples, the output's
        axis 0 too (empty when this sample's arguments couple them: softmax over dim 0, batch
        norm in training); None for ops that never treat samples independently
    channel_axes(sample) -> {input: axis} of the input channels that the op sums over (conv2d:
        x's axis 1 and weight's axis 1), or None when this sample's arguments tie channels to
        positions (groups > 1)
    not_applicable: why a generic check does not apply to this op, by check name (e.g.
        {"adjoint": "nonlinear in x"}); tests/test_catalog_coverage.py requires a reason for
        every check an op lacks the capability for
    translation_step(sample) -> ((sh, sw), kwargs): the stride of a sliding-window op over x's
        last two axes and the keyword arguments to check translation with (the sample's, without
        its padding), or None when the kernel does not fit x without padding
    fill: how to draw an input's values, ``fill[name](rng, shape, params) -> float64 array``;
        standard normal by default. Piecewise ops use it to keep inputs away from kinks and ties
        by more than the finite-difference step (distinct values for max pooling, |x| ≥ 0.1 for
        relu); non-differentiable inputs use it for their domain (a dropout mask of 0/1)
    torch_forward(**torch_inputs, **kwargs) -> torch output; torch is imported inside it, so the
        catalog never imports torch
    costly_checks: property checks that cost this op seconds per example and run with a share
        of the profile's examples (profiles.costly_examples): the networks' full Jacobians, whose
        layers each get the full count on their own
    """

    name: str
    family: str
    kind: str
    summary: str
    inputs: tuple[str, ...]
    forward: Callable[..., Array]
    layout: Callable[[Params], Layout]
    params: Callable[[str], Any]
    tolerance: ToleranceModel
    backward: Callable[..., Any] | None = None
    differentiable: tuple[str, ...] = ()
    upstream_name: str = "grad_out"
    linear_in: tuple[str, ...] = ()
    polynomial_degree: int | None = None
    definition: Callable[..., Array] | None = None
    edge_cases: tuple[EdgeCase, ...] = ()
    error_cases: tuple[ErrorCase, ...] = ()
    torch_name: str | None = None
    torch_forward: Callable[..., Any] | None = None
    fill: Mapping[str, Fill] = field(default_factory=dict)
    known_deviations: tuple[KnownDeviation, ...] = ()
    per_sample: Callable[[Sample], tuple[str, ...]] | None = None
    not_applicable: Mapping[str, str] = field(default_factory=dict)
    channel_axes: Callable[[Sample], dict[str, int] | None] | None = None
    translation_step: Callable[[Sample], tuple[tuple[int, int], dict[str, Any]] | None] | None = (
        None
    )
    costly_checks: frozenset[str] = frozenset()
    docs: str | None = None

    @property
    def capabilities(self) -> tuple[str, ...]:
        flags = {
            "backward": self.backward is not None,
            "linear": bool(self.linear_in),
            "definition": self.definition is not None,
            "torch": self.torch_forward is not None,
            "edge_cases": bool(self.edge_cases),
            "per_sample": self.per_sample is not None,
            "translation": self.translation_step is not None,
            "channel_permutation": self.channel_axes is not None,
            "error_cases": bool(self.error_cases),
        }
        return tuple(name for name, present in flags.items() if present)

    def backward_dict(
        self, grad_out: Array, inputs: Mapping[str, Any], kwargs: Mapping[str, Any]
    ) -> dict[str, Array]:
        """Call ``backward`` and name its results; inputs that are None are left out."""
        if self.backward is None:
            raise TypeError(f"{self.name} has no backward")
        grads = self.backward(grad_out, **inputs, **kwargs)
        if not isinstance(grads, tuple):  # one differentiable input: its gradient itself
            grads = (grads,)
        if len(grads) != len(self.differentiable):
            raise TypeError(
                f"{self.name}.backward returned {len(grads)} gradients, expected one per "
                f"differentiable input {self.differentiable}"
            )
        named: dict[str, Array] = {}
        for name, grad in zip(self.differentiable, grads, strict=True):
            if inputs.get(name) is None:  # an absent optional input (bias=None) ...
                if grad is not None:  # ... has no gradient, as in torch
                    raise TypeError(
                        f"{self.name}.backward returned a gradient for {name}, which is None "
                        f"(an absent input's gradient is None)"
                    )
                continue
            if grad is None:
                raise TypeError(f"{self.name}.backward returned None for grad_{name}")
            named[name] = grad
        return named

    def regenerate(self, sample: Sample, dtype: str) -> Sample:
        """``sample`` drawn afresh in ``dtype`` (rounded once from float64, like every sample)."""
        if sample.dtype == dtype:
            return sample
        if sample.edge_case is not None:
            return self.edge_sample(sample.edge_case, dtype)
        return self.sample(sample.params, sample.seed, dtype)

    def edge_sample(self, case_id: str, dtype: str = "float64") -> Sample:
        """The sample of the edge case called ``case_id`` (a repro snippet calls this)."""
        for case in self.edge_cases:
            if case.id == case_id:
                sample = self.sample(case.params, case.seed, dtype, case.arrays)
                return dataclasses.replace(sample, edge_case=case.id)
        raise KeyError(f"{self.name} has no edge case {case_id!r}")

    def sample(
        self,
        params: Params,
        seed: int,
        dtype: str = "float64",
        arrays: Mapping[str, Any] | None = None,
    ) -> Sample:
        """The sample for ``(params, seed, dtype)``; this is what a repro snippet calls.

        ``arrays`` replaces drawn inputs by given values (an edge case's exact ties or kinks).
        """
        shapes, kwargs = self.layout(params)
        rng = stream(seed, "inputs")
        inputs: dict[str, Any] = {}
        for name, shape in shapes.items():
            if shape is None:
                inputs[name] = None
                continue
            fill = self.fill.get(name, standard_normal)
            values = fill(rng, shape, params)  # drawn even when replaced: streams stay aligned
            if arrays is not None and name in arrays:
                values = np.asarray(arrays[name], dtype=np.float64).reshape(shape)
            inputs[name] = np.asarray(values).astype(dtype)  # a 0-d draw stays an array
        return Sample(
            op=self.name, params=dict(params), seed=seed, dtype=dtype, inputs=inputs, kwargs=kwargs
        )


Fill = Callable[[np.random.Generator, tuple[int, ...], Params], NDArray[np.float64]]


def standard_normal(
    rng: np.random.Generator, shape: tuple[int, ...], params: Params
) -> NDArray[np.float64]:
    """The default fill: independent N(0, 1) values."""
    return rng.standard_normal(shape)


def stream(seed: int, name: str) -> np.random.Generator:
    """An independent generator per (seed, purpose), so that drawing one never shifts another."""
    salt = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
    return np.random.default_rng([seed, salt])


@dataclass(frozen=True)
class Sample:
    """Concrete arguments for one call of an op, reproducible from (op, params, seed, dtype)."""

    op: str
    params: dict[str, Any]
    seed: int
    dtype: str
    inputs: dict[str, Any]
    kwargs: dict[str, Any]
    edge_case: str | None = None  # set when the sample is one of the op's edge cases

    def random(self, shape: tuple[int, ...], purpose: str) -> Array:
        """Standard-normal values of ``shape`` in the sample's dtype, e.g. an upstream gradient.

        Never all ones: an all-ones upstream hides transposed and mis-summed gradients.
        """
        return stream(self.seed, purpose).standard_normal(shape).astype(self.dtype)

    def with_dtype(self, dtype: str) -> Sample:
        """The same values in another dtype (exact when widening float32 -> float64)."""
        inputs = {k: None if v is None else v.astype(dtype) for k, v in self.inputs.items()}
        return dataclasses.replace(self, dtype=dtype, inputs=inputs)

    def describe(self) -> str:
        shapes = {k: None if v is None else tuple(v.shape) for k, v in self.inputs.items()}
        return f"{self.op}(shapes={shapes}, {self.kwargs}) [{self.dtype}, seed={self.seed}]"

    def repro(self, check: str) -> str:
        """A paste-able snippet that re-runs ``check`` on exactly this sample."""
        if self.edge_case is not None:
            make = f"spec.edge_sample({self.edge_case!r}, dtype={self.dtype!r})"
        else:
            make = f"spec.sample({self.params!r}, seed={self.seed}, dtype={self.dtype!r})"
        return (
            "from refcnn.testing import catalog, checks\n"
            f"spec = catalog.get({self.op!r})\n"
            f"sample = {make}\n"
            f"checks.{check}(spec, sample)"
        )
