"""The test order under mutmut (refcnn/testing/mutation_order.py): relevant ops first, each
group cheapest first, and never a test more or less."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refcnn.testing import mutation_order

NODEIDS = [
    "properties/test_catalog.py::test_property[full_jacobian_fd-deep_conv_net]",
    "properties/test_catalog.py::test_property[adjoint-conv2d]",
    "properties/test_catalog.py::test_property[full_jacobian_fd-conv2d]",
    "tests/test_networks.py::test_float32_network_stays_float32",
    "conformance/test_torch.py::test_matches_torch[conv2d-float64]",
]
DURATIONS = {NODEIDS[0]: 65.0, NODEIDS[1]: 0.2, NODEIDS[2]: 0.7, NODEIDS[3]: 0.01, NODEIDS[4]: 1.7}


def test_a_conv_mutant_meets_conv2d_tests_cheapest_first_then_the_rest() -> None:
    key = mutation_order.sort_key_for_mutant(
        "refcnn.functional.conv.x_conv2d_backward__mutmut_7", DURATIONS
    )
    assert sorted(NODEIDS, key=key) == [NODEIDS[1], NODEIDS[2], NODEIDS[4], NODEIDS[3], NODEIDS[0]]


def test_without_durations_the_order_is_relevance_then_id() -> None:
    key = mutation_order.sort_key_for_mutant("refcnn.functional.conv.x_conv2d__mutmut_1", {})
    assert sorted(reversed(NODEIDS), key=key) == sorted(NODEIDS[1:3] + NODEIDS[4:]) + sorted(
        [NODEIDS[0], NODEIDS[3]]
    )


@pytest.mark.parametrize(
    ("mutant", "module", "some_ops"),
    [
        ("refcnn.functional.conv.x_conv2d__mutmut_3", "refcnn.functional.conv", {"conv2d"}),
        (
            "refcnn.functional.losses.x_cross_entropy__mutmut_1",
            "refcnn.functional.losses",
            {"cross_entropy", "mse_loss"},
        ),
        ("refcnn.optim.xǁAdamWǁstep__mutmut_12", "refcnn.optim", {"adamw", "sgd"}),
        ("refcnn.im2col.x_im2col__mutmut_2", "refcnn.im2col", {"im2col"}),
        ("refcnn.gradcheck.x_numerical_jacobian__mutmut_4", "refcnn.gradcheck", set()),
    ],
)
def test_the_mutated_module_and_the_ops_that_live_there(
    mutant: str, module: str, some_ops: set[str]
) -> None:
    assert mutation_order.mutated_module(mutant) == module
    relevant = mutation_order.relevant_ops(module)
    assert some_ops <= relevant
    assert "deep_conv_net" not in relevant


@pytest.mark.parametrize("name", ["conv2d", "refcnn.functional.conv.conv2d", "refcnn.x_f__mutmut_"])
def test_a_name_that_is_not_a_mutant_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="mutant="):
        mutation_order.mutated_module(name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        ("stats", None),
        ("fail", None),
        ("mutant_generation", None),
        ("m.x_f__mutmut_1", "m.x_f__mutmut_1"),
    ],
)
def test_only_a_mutant_name_in_the_environment_counts(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str | None
) -> None:
    monkeypatch.setenv(mutation_order.MUTANT_VARIABLE, value)
    assert mutation_order.mutant_under_test() == expected


def test_durations_come_from_mutmuts_stats_file_or_are_empty(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mutmut-stats.json"
    assert mutation_order.measured_durations(path) == {}
    path.write_text(
        json.dumps({"duration_by_test": DURATIONS, "tests_by_mangled_function_name": {}})
    )
    assert mutation_order.measured_durations(path) == DURATIONS
    path.write_text("not json")
    assert mutation_order.measured_durations(path) == {}
