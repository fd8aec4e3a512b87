"""Turn discrepancy records into reports/conformance.md and reports/conformance.json.

One row per (op, check, output, dtype): how many examples ran, how many failed, the worst
observed/bound ratio (≤ 1 passes; the closer to 1, the tighter the bound), the worst absolute
and relative errors. A failing row carries the message and repro of its LAST failing record:
hypothesis replays the shrunk (smallest) counterexample last, so that is the one shown.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


@dataclass
class Row:
    op: str
    check: str
    quantity: str
    dtype: str
    examples: int = 0
    failures: int = 0
    worst_ratio: float = 0.0
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    worst_params: str = ""
    worst_seed: int = 0
    failure: dict[str, Any] = field(default_factory=dict)
    deviation: str = ""

    @property
    def status(self) -> str:
        if self.failures:
            return "fail"
        return "known deviation" if self.deviation else "pass"

    def add(self, record: dict[str, Any]) -> None:
        self.examples += 1
        if record["worst_ratio"] >= self.worst_ratio:
            self.worst_ratio = record["worst_ratio"]
            self.worst_params, self.worst_seed = record["params"], record["seed"]
        self.max_abs_error = max(self.max_abs_error, record["max_abs_error"])
        self.max_rel_error = max(self.max_rel_error, record["max_rel_error"])
        if record.get("deviation"):
            self.deviation = record["deviation"]
        if not record["passed"]:
            self.failures += 1
            self.failure = {key: record[key] for key in ("params", "seed", "message", "repro")}


def summarize(records: Iterable[dict[str, Any]]) -> list[Row]:
    """Aggregate records into rows, failures first, then by op, check, output and dtype."""
    rows: dict[tuple[str, str, str, str], Row] = {}
    for record in records:
        key = (record["op"], record["check"], record["quantity"], record["dtype"])
        rows.setdefault(key, Row(*key)).add(record)
    order = {"fail": 0, "known deviation": 1, "pass": 2}
    return sorted(
        rows.values(), key=lambda r: (order[r.status], r.op, r.check, r.quantity, r.dtype)
    )


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment(profile: str | None) -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "torch": _version("torch"),
        "hypothesis": _version("hypothesis"),
        "refcnn": _version("refcnn"),
        "hypothesis_profile": profile or "unknown",
    }


def _per_dtype(rows: list[Row]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = summary.setdefault(
            row.dtype, {"rows": 0, "examples": 0, "failing_rows": 0, "worst_ratio": 0.0}
        )
        entry["rows"] += 1
        entry["examples"] += row.examples
        entry["failing_rows"] += row.status == "fail"
        entry["worst_ratio"] = max(entry["worst_ratio"], row.worst_ratio)
    return summary


def to_json(rows: list[Row], profile: str | None = None) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": environment(profile),
        "summary": {
            "rows": len(rows),
            "failing_rows": sum(r.status == "fail" for r in rows),
            "per_dtype": _per_dtype(rows),
        },
        "rows": [{**asdict(row), "status": row.status} for row in rows],
    }


def _number(value: float) -> str:
    if math.isinf(value):
        return "inf"
    return "0" if value == 0 else f"{value:.3g}"


def to_markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    summary = report["summary"]
    verdict = (
        "all within their rounding-error bounds"
        if summary["failing_rows"] == 0
        else f"{summary['failing_rows']} of {summary['rows']} rows FAIL"
    )
    lines = [
        "# refcnn conformance report",
        "",
        f"{report['generated']} · Python {env['python']} · NumPy {env['numpy']} · "
        f"torch {env['torch']} · hypothesis {env['hypothesis']} "
        f"(profile `{env['hypothesis_profile']}`)",
        "",
        f"**{summary['rows']} rows, {verdict}.** A row passes when every example's "
        "observed error / computed bound ≤ 1 (bounds: γ_k model, see "
        "refcnn/testing/tolerance.py).",
        "",
        "| dtype | rows | examples | failing rows | worst observed/bound |",
        "|---|---:|---:|---:|---:|",
    ]
    for dtype, entry in sorted(summary["per_dtype"].items()):
        lines.append(
            f"| {dtype} | {entry['rows']} | {entry['examples']} | "
            f"{entry['failing_rows']} | {_number(entry['worst_ratio'])} |"
        )
    lines += [
        "",
        "| op | check | output | dtype | examples | worst observed/bound | max abs error "
        "| max rel error | status |",
        "|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    for row in report["rows"]:
        status = {"fail": "**FAIL**", "known deviation": "known deviation¹"}.get(
            row["status"], row["status"]
        )
        lines.append(
            f"| {row['op']} | {row['check']} | {row['quantity']} | {row['dtype']} | "
            f"{row['examples']} | {_number(row['worst_ratio'])} | "
            f"{_number(row['max_abs_error'])} | {_number(row['max_rel_error'])} | {status} |"
        )
    deviations = sorted({row["deviation"] for row in report["rows"] if row["deviation"]})
    if deviations:
        lines += ["", "¹ Known deviations, allowed for in the bound (declared in the catalog):"]
        lines += [f"- {reason}" for reason in deviations]
    failing = [row for row in report["rows"] if row["status"] == "fail"]
    if failing:
        lines += ["", "## Failures (smallest counterexample found)"]
    for row in failing:
        lines += [
            "",
            f"### {row['op']} · {row['check']} · {row['quantity']} · {row['dtype']}",
            "",
            "```",
            row["failure"]["message"],
            "```",
            "",
            "Reproduce:",
            "",
            "```python",
            row["failure"]["repro"],
            "```",
        ]
    return "\n".join(lines) + "\n"


def write(
    records: Iterable[dict[str, Any]], out_dir: Path, profile: str | None = None
) -> dict[str, Any]:
    """Write conformance.json and conformance.md under ``out_dir``; return the JSON data."""
    report = to_json(summarize(records), profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "conformance.json").write_text(
        json.dumps(report, indent=1, allow_nan=True) + "\n", encoding="utf-8"
    )
    (out_dir / "conformance.md").write_text(to_markdown(report), encoding="utf-8")
    return report
