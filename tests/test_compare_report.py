"""Comparison messages, records, and the report rendered from synthetic records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from refcnn.testing import catalog, records, report
from refcnn.testing.compare import Context, assert_within_bound


def _context(quantity: str = "grad_weight") -> Context:
    spec = catalog.get("conv2d")
    sample = spec.sample(spec.edge_cases[0].params, seed=7)
    return Context(sample, "matches_torch", quantity, "candidate vs refcnn")


def test_failure_message_names_the_worst_element_and_the_repro(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(records.RECORDS_DIR_VARIABLE, str(tmp_path))
    expected = np.arange(6.0).reshape(2, 3)
    actual = expected.copy()
    actual[1, 2] += 1e-3
    with pytest.raises(AssertionError) as info:
        assert_within_bound(actual, expected, np.full((2, 3), 1e-6), _context())
    message = str(info.value)
    assert "1 / 6 elements (16.7%) exceed the rounding-error bound" in message
    assert "greatest observed/bound: 1e+03 at index (1, 2)" in message
    assert "checks.matches_torch(spec, sample)" in "".join(info.value.__notes__)
    (record,) = records.read_all(tmp_path)
    assert record["passed"] is False and record["worst_index"] == [1, 2]


def test_shape_and_dtype_mismatches_fail_with_a_readable_message() -> None:
    with pytest.raises(AssertionError, match=r"grad_weight.shape=\(3, 2\), but should be \(2, 3\)"):
        assert_within_bound(np.zeros((3, 2)), np.zeros((2, 3)), 1.0, _context())
    with pytest.raises(AssertionError, match=r"out.dtype=float64, but should be float32"):
        assert_within_bound(np.zeros(3), np.zeros(3), 1.0, _context("out"), np.float32)


def test_exact_zero_bound_requires_exact_equality() -> None:
    record = assert_within_bound(np.ones(4), np.ones(4), 0.0, _context())
    assert record.passed and record.worst_ratio == 0.0
    with pytest.raises(AssertionError):
        assert_within_bound(np.ones(4) + 1e-300, np.ones(4) + 2**-52, 0.0, _context())


def _record(**overrides: Any) -> dict[str, Any]:
    base = {
        "op": "conv2d",
        "check": "matches_torch",
        "quantity": "out",
        "dtype": "float32",
        "params": "{'batch': 1}",
        "seed": 3,
        "elements": 4,
        "max_abs_error": 1e-7,
        "max_rel_error": 1e-6,
        "worst_ratio": 0.25,
        "worst_index": [0],
        "passed": True,
        "message": "",
        "repro": "snippet",
    }
    return {**base, **overrides}


def test_report_rows_put_failures_first_with_their_last_counterexample(tmp_path: Path) -> None:
    rows = [
        _record(),
        _record(worst_ratio=0.5),
        _record(op="im2col", passed=False, worst_ratio=9.0, message="first", repro="a"),
        _record(op="im2col", passed=False, worst_ratio=3.0, message="shrunk", repro="b"),
    ]
    data = report.write(rows, tmp_path, "ci")
    assert [r["op"] for r in data["rows"]] == ["im2col", "conv2d"]
    failing, passing = data["rows"]
    assert failing["failure"]["message"] == "shrunk" and failing["worst_ratio"] == 9.0
    assert passing["examples"] == 2 and passing["worst_ratio"] == 0.5
    assert data["summary"]["per_dtype"]["float32"]["failing_rows"] == 1
    markdown = (tmp_path / "conformance.md").read_text()
    assert "2 rows: 1 pass, 1 fail" in markdown and "```python\nb\n```" in markdown
    stored = json.loads((tmp_path / "conformance.json").read_text())
    assert stored["schema_version"] == report.SCHEMA_VERSION == 2
    assert (tmp_path / "conformance.html").is_file()


def test_report_of_no_records_still_renders(tmp_path: Path) -> None:
    data = report.write([], tmp_path)
    assert data["summary"]["rows"] == 0
    assert "No records" in (tmp_path / "conformance.md").read_text()


def test_equal_infinities_and_nans_where_due_are_exact() -> None:
    values = np.array([-np.inf, np.inf, np.nan, 1.0])
    record = assert_within_bound(values, values.copy(), 0.0, _context("out"))
    assert record.passed and record.worst_ratio == 0.0
    with pytest.raises(AssertionError, match="1 / 4 elements"):
        assert_within_bound(values, np.array([np.inf, np.inf, np.nan, 1.0]), 0.0, _context())
