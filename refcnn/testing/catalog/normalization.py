"""Catalog entries of the normalization family."""

from __future__ import annotations

from refcnn.testing.opspec import OpSpec

OPS: tuple[OpSpec, ...] = ()
