"""Adapters: the only way a check calls an implementation of a catalog op.

An adapter answers two questions for an op, given the sample's arrays and keyword arguments
(the catalog's names and layouts: ``spec.inputs``, ``sample.kwargs``):

- ``forward(spec, inputs, kwargs) -> array``
- ``backward(spec, inputs, kwargs, upstream) -> {differentiable input name: gradient}``

and may answer four more, each optional (the oracle asks with ``getattr`` and uses the default
in brackets when a method is missing):

- ``provides(spec) -> bool`` [True]: whether the candidate implements the op at all; an op it
  does not provide is reported as "not provided", not as a failure.
- ``params(spec, budget) -> hypothesis strategy | None`` [None: the catalog's own]: a narrower
  geometry for a candidate whose API cannot express every sample (the book's Convolution has
  one int stride and one int pad, no dilation, no groups).
- ``prepare(spec, sample) -> Sample | None`` [the sample as is]: None when the sample lies
  outside the candidate's API (it is skipped and counted); or the sample with inputs the
  candidate decides itself put in (a dropout mask the candidate draws).
- ``conventions`` [()]: names of :mod:`refcnn.testing.conventions` the candidate declares
  (the book's non-inverted dropout): an op with a declared convention is judged against that
  variant instead of the catalog's default.
- ``describe() -> dict[str, str]`` [{"name": adapter.name}]: what the report header shows
  (name, path, version).

:class:`Functions` is the small protocol for your own code: map catalog names to callables with
refcnn's signatures (see docs/oracle.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from refcnn.testing.opspec import OpSpec


class Unsupported(Exception):
    """Raised by an adapter for a sample its candidate's API cannot express (the oracle skips the
    sample and counts it), e.g. an edge case with dilation for the book's Convolution."""


class Adapter(Protocol):
    name: str

    def forward(self, spec: OpSpec, inputs: dict[str, Any], kwargs: dict[str, Any]) -> Any: ...

    def backward(
        self, spec: OpSpec, inputs: dict[str, Any], kwargs: dict[str, Any], upstream: Any
    ) -> dict[str, Any]: ...


def provides(adapter: Any, spec: OpSpec) -> bool:
    """Whether ``adapter`` implements ``spec`` (True unless it says otherwise)."""
    method = getattr(adapter, "provides", None)
    return True if method is None else bool(method(spec))


class Reference:
    """refcnn itself: the catalog's forward and backward."""

    name = "refcnn"

    def forward(self, spec: OpSpec, inputs: dict[str, Any], kwargs: dict[str, Any]) -> Any:
        return spec.forward(**inputs, **kwargs)

    def backward(
        self, spec: OpSpec, inputs: dict[str, Any], kwargs: dict[str, Any], upstream: Any
    ) -> dict[str, Any]:
        return spec.backward_dict(upstream, inputs, kwargs)

    def describe(self) -> dict[str, str]:
        import refcnn

        return {"name": self.name, "version": refcnn.__version__, "path": refcnn.__path__[0]}


class Functions:
    """A candidate given as plain callables with refcnn's signatures, keyed by catalog name.

    ``ops[name] = (forward, backward)``: ``forward(**inputs, **kwargs) -> array`` and
    ``backward(grad_out, **inputs, **kwargs) -> gradient | tuple of gradients`` aligned with the
    catalog entry's ``differentiable`` (None for an absent optional input), exactly like
    :attr:`OpSpec.forward` and :attr:`OpSpec.backward`. ``backward`` may be None for an op that
    has none (optimizers). Ops not in ``ops`` are "not provided".
    """

    def __init__(
        self,
        name: str,
        ops: Mapping[str, tuple[Callable[..., Any], Callable[..., Any] | None]],
        conventions: tuple[str, ...] = (),
        version: str = "",
        path: str = "",
    ) -> None:
        self.name = name
        self.ops = dict(ops)
        self.conventions = conventions
        self.version = version
        self.path = path

    def provides(self, spec: OpSpec) -> bool:
        return spec.name in self.ops

    def forward(self, spec: OpSpec, inputs: dict[str, Any], kwargs: dict[str, Any]) -> Any:
        forward, _ = self.ops[spec.name]
        return forward(**inputs, **kwargs)

    def backward(
        self, spec: OpSpec, inputs: dict[str, Any], kwargs: dict[str, Any], upstream: Any
    ) -> dict[str, Any]:
        _, backward = self.ops[spec.name]
        if backward is None:
            raise TypeError(f"{self.name} gives no backward for {spec.name}")
        grads = backward(upstream, **inputs, **kwargs)
        if not isinstance(grads, tuple):  # one differentiable input: its gradient itself
            grads = (grads,)
        if len(grads) != len(spec.differentiable):
            raise TypeError(
                f"{spec.name} backward returned {len(grads)} gradients, expected one per "
                f"differentiable input {spec.differentiable}"
            )
        return {
            name: grad
            for name, grad in zip(spec.differentiable, grads, strict=True)
            if inputs.get(name) is not None
        }

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "path": self.path}


def from_specs(
    name: str, specs: Mapping[str, OpSpec], conventions: tuple[str, ...] = ()
) -> Functions:
    """A candidate made of catalog entries (or mutated copies of them: the bug zoo's variants)."""
    return Functions(
        name, {op: (spec.forward, spec.backward) for op, spec in specs.items()}, conventions
    )
