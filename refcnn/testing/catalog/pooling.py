"""Catalog entries of the pooling family."""

from __future__ import annotations

from refcnn.testing.opspec import OpSpec

OPS: tuple[OpSpec, ...] = ()
