"""The op catalog: one OpSpec per op, gathered from one module per family.

Adding an op = its reference code in refcnn/ + one entry in a family module here. Every generic
test picks it up, filtered by capability.
"""

from __future__ import annotations

from refcnn.testing.catalog import (
    activations,
    convolution,
    linear,
    losses,
    networks,
    normalization,
    optimizers,
    pooling,
    softmax,
)
from refcnn.testing.opspec import OpSpec

__all__ = ["OPS", "OpSpec", "get", "with_capability"]

OPS: tuple[OpSpec, ...] = (
    *convolution.OPS,
    *pooling.OPS,
    *linear.OPS,
    *activations.OPS,
    *softmax.OPS,
    *normalization.OPS,
    *losses.OPS,
    *optimizers.OPS,
    *networks.OPS,
)

_BY_NAME = {spec.name: spec for spec in OPS}
if len(_BY_NAME) != len(OPS):
    raise RuntimeError("two catalog entries share a name")


def get(name: str) -> OpSpec:
    """The catalog entry called ``name``."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no op {name!r} in the catalog; known: {sorted(_BY_NAME)}") from None


def with_capability(capability: str) -> list[OpSpec]:
    """Entries that have ``capability`` (see :attr:`OpSpec.capabilities`)."""
    return [spec for spec in OPS if capability in spec.capabilities]
