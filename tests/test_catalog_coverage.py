"""Every generic check applies to every op, or the catalog says why not."""

from __future__ import annotations

import pytest

from refcnn.testing import catalog

# check name -> the capability it needs
GATED = {
    "directional_fd": "backward",
    "adjoint": "linear",
    "batch_slices": "per_sample",
}
SPATIAL_FAMILIES = {"convolution", "pooling"}


@pytest.mark.parametrize("spec", catalog.OPS, ids=lambda spec: spec.name)
def test_each_check_applies_or_the_catalog_says_why_not(spec: catalog.OpSpec) -> None:
    gated = dict(GATED)
    if spec.family in SPATIAL_FAMILIES:
        gated["translation"] = "translation"
    missing = [
        check
        for check, capability in gated.items()
        if capability not in spec.capabilities and not spec.not_applicable.get(check)
    ]
    assert not missing, f"{spec.name}: no capability and no stated reason for {missing}"
    stale = [
        check
        for check, capability in gated.items()
        if capability in spec.capabilities and check in spec.not_applicable
    ]
    assert not stale, f"{spec.name}: states a reason for {stale}, but the check applies"
