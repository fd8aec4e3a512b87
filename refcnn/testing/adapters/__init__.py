"""Adapters: the only way a test calls an implementation of a catalog op.

An adapter answers two questions for an op, given the sample's arrays and keyword arguments:
``forward(spec, inputs, kwargs) -> array`` and
``backward(spec, inputs, kwargs, upstream) -> {input name: gradient}``.
"""

from __future__ import annotations

from typing import Any, Protocol

from refcnn.testing.opspec import OpSpec


class Adapter(Protocol):
    name: str

    def forward(self, spec: OpSpec, inputs: dict[str, Any], kwargs: dict[str, Any]) -> Any: ...

    def backward(
        self, spec: OpSpec, inputs: dict[str, Any], kwargs: dict[str, Any], upstream: Any
    ) -> dict[str, Any]: ...


class Reference:
    """refcnn itself: the catalog's forward and backward."""

    name = "refcnn"

    def forward(self, spec: OpSpec, inputs: dict[str, Any], kwargs: dict[str, Any]) -> Any:
        return spec.forward(**inputs, **kwargs)

    def backward(
        self, spec: OpSpec, inputs: dict[str, Any], kwargs: dict[str, Any], upstream: Any
    ) -> dict[str, Any]:
        return spec.backward_dict(upstream, inputs, kwargs)
