"""Catalog entries of the linear family."""

from __future__ import annotations

from refcnn.testing.opspec import OpSpec

OPS: tuple[OpSpec, ...] = ()
