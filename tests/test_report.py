"""The reports rendered from synthetic records: every status, an empty run, a crashed candidate,
huge counts. The HTML is parsed (rows, well-formed SVG, nothing fetched from outside), the JSON
validated against its schema, and the baseline diff must flag injected regressions."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from refcnn import __main__ as cli
from refcnn.testing import catalog, records, report

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {"conv2d": "convolution", "max_pool2d": "pooling", "hardsigmoid": "activation"}
ENV = {
    "python": "3.11.7",
    "numpy": "2.4.6",
    "torch": "2.13.0+cpu",
    "hypothesis": "6.170.15",
    "refcnn": "0.1.0",
    "refcnn_revision": "1af8928",
    "blas": "scipy-openblas 0.3.31 (SkylakeX kernels)",
    "torch_backend": "MKL, AVX512, 2 threads",
    "platform": "Linux x86_64, 2 CPUs",
    "hypothesis_profile": "ci",
    "hypothesis_seed": "derandomized",
}


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
        "worst_index": [0, 1],
        "passed": True,
        "message": "",
        "repro": "snippet",
        "deviation": "",
        "time": 1_700_000_000.0,
    }
    return {**base, **overrides}


def _every_status() -> list[dict[str, Any]]:
    """A pass, an exact pass, a known deviation, a numeric failure (a first example and the
    shrunk one), a shape mismatch (inf) and a crashed candidate (a message, no numbers)."""
    return [
        _record(time=1_700_000_000.0),
        _record(worst_ratio=0.0, max_abs_error=0.0, max_rel_error=0.0),
        _record(quantity="grad_x", dtype="float64", worst_ratio=1.0),
        _record(
            op="hardsigmoid",
            quantity="grad_x",
            dtype="float64",
            worst_ratio=0.5,
            deviation="torch multiplies by float32's 1/6",
        ),
        _record(op="max_pool2d", passed=False, worst_ratio=9.0, message="first", repro="a"),
        _record(
            op="max_pool2d",
            passed=False,
            worst_ratio=3.0,
            message="grad_x: 1 / 6 elements exceed <the bound> & more",
            repro="spec = catalog.get('max_pool2d')\nchecks.matches_torch(spec, sample)",
        ),
        _record(
            op="max_pool2d",
            quantity="out",
            dtype="float64",
            passed=False,
            worst_ratio=math.inf,
            max_abs_error=math.inf,
            max_rel_error=math.inf,
            worst_index=[],
            elements=0,
            message="out.shape=(1, 2), but should be (2, 1)",
        ),
        _record(
            op="conv2d",
            check="matches_cuda",
            quantity="grad_weight",
            passed=False,
            worst_ratio=None,
            max_abs_error=None,
            max_rel_error=float("nan"),
            worst_index=[],
            elements=0,
            message="RuntimeError: the candidate crashed",
            time=1_700_000_095.5,
        ),
    ]


def _write(records_: list[dict[str, Any]], out: Path, **options: Any) -> dict[str, Any]:
    options.setdefault("env", ENV)
    options.setdefault("families", FAMILIES)
    return report.write(records_, out, **options)


# --- HTML parsing ---------------------------------------------------------------------------


class _Page(HTMLParser):
    """Collects report rows, status badges, URLs in attributes and the raw <svg> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: dict[str, str] = {}  # row id -> its class (the status)
        self.urls: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        attributes = dict(attrs)
        if tag == "tr" and (attributes.get("id") or "").startswith("row-"):
            self.rows[attributes["id"] or ""] = attributes.get("class") or ""
        for name in ("href", "src", "xlink:href", "action", "data"):
            if attributes.get(name):
                self.urls.append(attributes[name] or "")


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


def _svgs(text: str) -> Iterator[ElementTree.Element]:
    """Every inline <svg>, parsed as XML: it must be well formed on its own."""
    for match in re.finditer(r"<svg\b.*?</svg>", text, flags=re.S):
        yield ElementTree.fromstring(match.group(0))


def _assert_self_contained(text: str, page: _Page) -> None:
    assert not {"script", "link", "img", "iframe", "object"} & page.tags
    assert all(url.startswith("#") for url in page.urls), page.urls
    assert not re.search(r"(https?:)?//[\w.-]+\.\w", text), "no URL may be fetched"
    assert "url(" not in text and "@import" not in text


def _assert_svg_geometry(svg: ElementTree.Element) -> None:
    """Numbers are finite and inside the viewBox (a few pixels of slack for text)."""
    _, _, width, height = (float(v) for v in svg.attrib["viewBox"].split())
    for element in svg.iter():
        for name in ("x", "x1", "x2", "cx", "width"):
            if name in element.attrib:
                assert -5 <= float(element.attrib[name]) <= width + 5, (name, element.attrib)
        for name in ("y", "y1", "y2", "cy", "height"):
            if name in element.attrib:
                assert -5 <= float(element.attrib[name]) <= height + 5, (name, element.attrib)
        for pair in element.attrib.get("points", "").split():
            x, y = (float(v) for v in pair.split(","))
            assert -5 <= x <= width + 5 and -5 <= y <= height + 5


def _schema_validator() -> Any:
    import jsonschema  # the testing extra pins it

    schema = json.loads(report.SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _validate(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))  # strict: no Infinity
    errors = [f"{list(e.path)}: {e.message}" for e in _schema_validator().iter_errors(data)]
    assert not errors, errors[:5]
    return data


# --- the renderer ---------------------------------------------------------------------------


OUTCOMES = {
    "collected": 9,
    "passed": 5,
    "failed": 4,
    "skipped": 0,
    "failures": [
        {
            "nodeid": "properties/test_catalog.py::test_property[directional_fd-deep_net]",
            "family": "network",
            "when": "call",
            "message": "ValueError: deep_net raised before comparing anything",
        }
    ],
}


def test_every_status_renders_in_all_three_files(tmp_path: Path) -> None:
    data = _write(_every_status(), tmp_path, outcomes=OUTCOMES)
    statuses = {(r["op"], r["check"], r["quantity"], r["dtype"]): r["status"] for r in data["rows"]}
    assert statuses == {
        ("conv2d", "matches_torch", "out", "float32"): "pass",
        ("conv2d", "matches_torch", "grad_x", "float64"): "pass",
        ("hardsigmoid", "matches_torch", "grad_x", "float64"): "known deviation",
        ("max_pool2d", "matches_torch", "out", "float32"): "fail",
        ("max_pool2d", "matches_torch", "out", "float64"): "fail",
        ("conv2d", "matches_cuda", "grad_weight", "float32"): "fail",
    }
    assert [r["status"] for r in data["rows"]][:3] == ["fail"] * 3  # failures first
    assert data["run"]["wall_time_s"] == 95.5
    assert data["run"]["candidates"] == ["cuda", "torch"]

    page_text = (tmp_path / "conformance.html").read_text(encoding="utf-8")
    page = _parse(page_text)
    assert len(page.rows) == len(data["rows"])  # one <tr> per op × check × output × dtype
    assert sorted(page.rows.values()) == sorted(_anchor_status(r) for r in data["rows"])
    shrunk = "grad_x: 1 / 6 elements exceed &lt;the bound&gt; &amp; more"
    assert shrunk in page_text and "first" not in page_text  # the LAST (shrunk) failure
    assert "spec = catalog.get(&#x27;max_pool2d&#x27;)" in page_text  # its repro
    assert "RuntimeError: the candidate crashed" in page_text
    assert "torch multiplies by float32&#x27;s 1/6" in page_text
    assert "3 of 6 rows FAIL; 4 tests failed" in page_text  # pytest's count, crashes included
    assert "deep_net raised before comparing anything" in page_text
    _assert_self_contained(page_text, page)
    svgs = list(_svgs(page_text))
    assert len(svgs) == 3  # a ratio histogram per op; no FD curves were computed
    for svg in svgs:
        _assert_svg_geometry(svg)

    markdown = (tmp_path / "conformance.md").read_text(encoding="utf-8")
    assert "6 rows: 2 pass, 1 known deviation, 3 fail; 4 tests failed" in markdown
    assert "| pooling | 1 | 2 | 2 | 0 |" in markdown
    assert "## Failed tests (1)" in markdown and "deep_net raised" in markdown
    assert "| conv2d | matches_torch | out | float32 |" not in markdown  # passing rows: HTML only
    assert "```python\nspec = catalog.get('max_pool2d')" in markdown
    assert "[conformance.html](conformance.html)" in markdown
    _validate(tmp_path / "conformance.json")


def _anchor_status(row: dict[str, Any]) -> str:
    return row["status"].replace(" ", "-")


def test_crashed_candidate_has_no_numbers_but_its_message(tmp_path: Path) -> None:
    crash = _every_status()[-1]
    data = _write([crash], tmp_path)
    (row,) = data["rows"]
    assert row["status"] == "fail" and row["unmeasured"] == 1
    assert row["worst_ratio"] is None and row["max_abs_error"] is None
    assert row["failure"]["message"] == "RuntimeError: the candidate crashed"
    stored = _validate(tmp_path / "conformance.json")
    assert stored["rows"][0]["worst_ratio"] is None  # null, not NaN
    assert "| — | **FAIL** |" in (tmp_path / "conformance.md").read_text(encoding="utf-8")


def test_infinite_ratios_are_strict_json_strings(tmp_path: Path) -> None:
    _write(_every_status(), tmp_path)
    text = (tmp_path / "conformance.json").read_text(encoding="utf-8")
    assert "Infinity" not in text and "NaN" not in text
    data = json.loads(text)
    mismatch = next(r for r in data["rows"] if r["quantity"] == "out" and r["dtype"] == "float64")
    assert mismatch["worst_ratio"] == "inf" and mismatch["histogram"][-1] == 1


def test_empty_run_renders_and_says_so(tmp_path: Path) -> None:
    data = _write([], tmp_path)
    assert data["summary"]["rows"] == 0 and data["run"]["wall_time_s"] is None
    page_text = (tmp_path / "conformance.html").read_text(encoding="utf-8")
    assert "No records" in page_text and not _parse(page_text).rows
    assert "No records" in (tmp_path / "conformance.md").read_text(encoding="utf-8")
    _validate(tmp_path / "conformance.json")


def test_huge_counts_keep_the_page_readable(tmp_path: Path) -> None:
    rows = report.summarize(_every_status()[:3], FAMILIES)
    huge = 3_000_000_000
    for row in rows:
        row.examples = huge
        row.exact = huge
        row.histogram = [huge // 7] * report.HISTOGRAM_BINS
    data = report.to_json(rows, env=ENV, times=[0.0, 86_400.0 * 3])
    page_text = report.to_html(data)
    assert "3,000,000,000" in page_text and "72 h 0 min" in page_text
    for svg in _svgs(page_text):
        _assert_svg_geometry(svg)
    (tmp_path / "conformance.json").write_text(report.dumps(data), encoding="utf-8")
    _validate(tmp_path / "conformance.json")


def test_ratios_land_in_right_closed_log_bins() -> None:
    one = report.histogram_bin(1.0)
    assert report.bin_edges(one) == (10.0**-0.25, 1.0)  # exactly 1 passes: left of the bound
    assert report.histogram_bin(1.0000001) == one + 1
    assert report.histogram_bin(1e-300) == 0
    assert report.histogram_bin(math.inf) == report.HISTOGRAM_BINS - 1
    assert report.histogram_bin(1e6) == report.HISTOGRAM_BINS - 1


# --- finite-difference curves -------------------------------------------------------------


def test_fd_curves_reuse_the_check_and_find_its_step_sound() -> None:
    curves = report.fd_curves([catalog.get("conv2d"), catalog.get("tanh")])
    conv, tanh = curves["conv2d"]["float64"], curves["tanh"]["float64"]
    assert not conv["extrapolated"] and tanh["extrapolated"]
    for curve in (conv, tanh, curves["tanh"]["float32"]):
        assert len(curve["errors"]) == len(report.FD_STEPS)
        # at the step nearest the checks' own, D(h) is within its bound, as the check requires
        nearest = min(report.FD_STEPS, key=lambda h: abs(math.log(h / curve["check_step"])))
        at = report.FD_STEPS.index(nearest)
        assert curve["errors"][at] <= curve["bounds"][at]
    # rounding grows as h shrinks: the smallest step is far worse than the checks' step
    assert tanh["errors"][-1] > 100 * tanh["errors"][report.FD_STEPS.index(1e-5)]
    page = report.fd_svg("tanh", curves["tanh"])
    _assert_svg_geometry(ElementTree.fromstring(page))


# --- baseline -------------------------------------------------------------------------------


def _runs() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A baseline run of five passing rows, and the same run with regressions injected."""
    before = [
        _record(quantity="out", worst_ratio=0.2),
        _record(quantity="grad_x", worst_ratio=0.2),
        _record(quantity="grad_weight", worst_ratio=0.2),
        _record(quantity="grad_bias", worst_ratio=0.001),
        _record(op="max_pool2d", worst_ratio=0.3),
    ]
    after = [
        _record(quantity="out", worst_ratio=0.2 * 1.9),  # within the factor
        _record(quantity="grad_x", worst_ratio=0.2 * 2.5),  # a ratio regression
        _record(quantity="grad_weight", worst_ratio=1.5, passed=False, message="m"),  # status
        _record(quantity="grad_bias", worst_ratio=0.015),  # ×15, but under the floor's factor
        # max_pool2d disappeared; hardsigmoid is new
        _record(op="hardsigmoid", worst_ratio=0.4),
    ]
    return before, after


def test_baseline_diff_flags_injected_regressions(tmp_path: Path) -> None:
    before, after = _runs()
    baseline_file = tmp_path / "baseline.json"
    baseline_file.write_text(report.baseline_text(_write(before, tmp_path / "a")))
    baseline = report.load(baseline_file)
    assert baseline["kind"] == "baseline" and len(baseline["rows"]) == 5
    _validate(baseline_file)

    data = _write(after, tmp_path / "b", baseline=baseline, baseline_source=str(baseline_file))
    comparison = data["baseline"]
    found = {(c["row"], c["kind"]) for c in comparison["regressions"]}
    assert found == {
        ("conv2d · matches_torch · grad_x · float32", "ratio"),
        ("conv2d · matches_torch · grad_weight · float32", "status"),
        ("max_pool2d · matches_torch · out · float32", "disappeared"),
    }
    assert comparison["new"] == ["hardsigmoid · matches_torch · out · float32"]
    lines = [report.describe_change(c) for c in comparison["regressions"]]
    assert "conv2d · matches_torch · grad_weight · float32: pass → fail" in lines
    assert "conv2d · matches_torch · grad_x · float32: worst observed/bound 0.2 → 0.5 (×2.5)" in (
        lines
    )
    markdown = (tmp_path / "b" / "conformance.md").read_text(encoding="utf-8")
    assert "## Baseline: 3 regressions" in markdown and "refresh the baseline" in markdown
    assert "Baseline: 3 regressions" in (tmp_path / "b" / "conformance.html").read_text()
    _validate(tmp_path / "b" / "conformance.json")

    unchanged = report.compare(_write(before, tmp_path / "c"), baseline)
    assert unchanged["regressions"] == [] and unchanged["new"] == []


def test_baseline_of_another_profile_compares_statuses_only(tmp_path: Path) -> None:
    before, after = _runs()
    baseline = report.to_baseline(_write(before, tmp_path / "a"))
    dev = {**ENV, "hypothesis_profile": "dev", "hypothesis_seed": "random"}
    comparison = report.compare(_write(after, tmp_path / "b", env=dev), baseline)
    assert not comparison["rows_compared"] and not comparison["ratios_compared"]
    assert "hypothesis_profile ci → dev" in comparison["note"]
    assert [c["kind"] for c in comparison["regressions"]] == ["status"]
    assert sorted(c["kind"] for c in comparison["not_compared"]) == ["disappeared", "ratio"]


def test_baseline_of_another_platform_compares_no_ratios(tmp_path: Path) -> None:
    """Another BLAS kernel set sums in another order: a row's worst ratio moved from 0 to 0.49
    between two kernel selections of this machine, so ratios compare on one platform only."""
    before, after = _runs()
    baseline = report.to_baseline(_write(before, tmp_path / "a"))
    haswell = {**ENV, "blas": "scipy-openblas 0.3.31 (Haswell kernels)"}
    comparison = report.compare(_write(after, tmp_path / "b", env=haswell), baseline)
    assert comparison["rows_compared"] and not comparison["ratios_compared"]
    assert comparison["note"] == (
        "blas scipy-openblas 0.3.31 (SkylakeX kernels) → scipy-openblas 0.3.31 (Haswell kernels)"
    )
    assert sorted(c["kind"] for c in comparison["regressions"]) == ["disappeared", "status"]
    assert [c["kind"] for c in comparison["not_compared"]] == ["ratio"]


def test_ratios_of_other_examples_are_not_compared(tmp_path: Path) -> None:
    """Two sets of examples have different worst cases (up to ×4.4 between halves of a row),
    so a ratio is compared only when the row ran the same examples as in the baseline."""
    before, after = _runs()
    baseline = report.to_baseline(_write(before, tmp_path / "a"))
    redrawn = [{**record, "seed": record["seed"] + 1} for record in after]
    comparison = report.compare(_write(redrawn, tmp_path / "b"), baseline)
    assert comparison["ratios_compared"]  # same profile and platform: the rows' examples differ
    assert sorted(c["kind"] for c in comparison["regressions"]) == ["disappeared", "status"]
    (grown,) = comparison["not_compared"]
    assert grown["why"] == "other examples drawn"
    assert report.describe_change(grown).endswith("(not compared: other examples drawn)")


def test_report_command_exits_1_on_regressions_and_writes_the_job_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, after = _runs()
    for name, run in (("before", before), ("after", after)):
        for record in run:
            monkeypatch.setenv(records.RECORDS_DIR_VARIABLE, str(tmp_path / name))
            records.append(records.Record(**{**record, "time": 1.0}))
        records.write_environment(tmp_path / name, ENV)
    monkeypatch.delenv(records.RECORDS_DIR_VARIABLE)
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    baseline = tmp_path / "baseline" / "refcnn-vs-torch.json"

    def run(name: str, *options: str) -> int:
        common = ["--records", str(tmp_path / name), "--out", str(tmp_path / f"out-{name}")]
        return cli.main(["report", *common, "--no-fd-curves", *options])

    assert run("before", "--save-baseline", str(baseline)) == 0
    assert run("before", "--baseline", str(baseline)) == 0
    assert run("after", "--baseline", str(baseline)) == 1
    assert "## Baseline: 3 regressions" in summary.read_text(encoding="utf-8")
    assert run("after", "--baseline", str(tmp_path / "missing.json")) == 2
    partial = {**ENV, "pytest_args": "properties -k conv2d"}
    records.write_environment(tmp_path / "before", partial)
    assert run("before", "--save-baseline", str(baseline)) == 2  # not from a partial run


# --- the committed baseline and the docs ----------------------------------------------------


def test_committed_baseline_is_valid_and_comes_from_the_ci_profile() -> None:
    path = ROOT / "reports" / "baseline" / "refcnn-vs-torch.json"
    baseline = _validate(path)
    assert baseline["kind"] == "baseline"
    assert baseline["environment"]["hypothesis_profile"] == "ci"
    assert baseline["environment"]["hypothesis_seed"] == "derandomized"
    assert baseline["run"]["candidates"] == ["torch"]


def test_docs_describe_every_field_of_a_row() -> None:
    schema = json.loads(report.SCHEMA_FILE.read_text(encoding="utf-8"))
    docs = (ROOT / "docs" / "reports.md").read_text(encoding="utf-8")
    for field in schema["$defs"]["row"]["properties"]:
        assert f"`{field}`" in docs, field
    assert f"schema_version {report.SCHEMA_VERSION}" in docs
    assert f"{report.RATIO_FACTOR:g}×" in docs


# --- progress ------------------------------------------------------------------------------


def test_progress_lines_per_family_under_xdist(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
        "properties",
        "-k",
        "repeatable and (relu6 or flatten) and not edge",
    ]
    environment = {**_clean_environment(), records.RECORDS_DIR_VARIABLE: str(tmp_path)}
    out = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, env=environment, timeout=300
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"^\[refcnn\] activation: 1 tests done, 0 failed \(\d+ s\)$", out.stdout, re.M)
    assert re.search(r"^\[refcnn\] linear: 1 tests done, 0 failed", out.stdout, re.M)
    stored = records.read_environment(tmp_path)
    assert stored is not None and stored["hypothesis_profile"] == "dev"
    assert "-k" in stored["pytest_args"]
    assert all(r["time"] > 0 for r in records.read_all(tmp_path))
    outcomes = records.read_outcomes(tmp_path)
    assert outcomes == {"collected": 2, "passed": 2, "failed": 0, "skipped": 0, "failures": []}


def _clean_environment() -> dict[str, str]:
    import os

    keep = {k: v for k, v in os.environ.items() if k not in {"CI", "REFCNN_PROFILE"}}
    return {**keep, "REFCNN_PROFILE": "dev"}
