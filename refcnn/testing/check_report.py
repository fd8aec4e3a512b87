"""The report of a ``refcnn check`` run: what the terminal shows, check.md and check.json.

The Markdown names the candidate (path, version, style), the settings and every REFCNN_*
variable, then one row per op (status, samples run, worst observed/bound of the comparisons
that passed) and, per failing op, each finding: the check, the quantities, the smallest case,
the diagnosis, the discrepancy as measured, and a snippet that reproduces it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from refcnn.testing.oracle import OpResult, Run

SCHEMA_VERSION = 1
MARK = {
    "pass": "pass",
    "fail": "FAIL",
    "convention": "pass (convention)",
    "known": "known difference",
    "not provided": "not provided",
    "timeout": "TIMEOUT",
    "crash": "CRASH",
}


def counts(run: Run) -> dict[str, int]:
    tally: dict[str, int] = {}
    for result in run.results:
        tally[result.status] = tally.get(result.status, 0) + 1
    return tally


def _examples(result: OpResult) -> str:
    if not result.examples:
        return "-"
    return str(sum(result.examples.values()))


def verdict(run: Run) -> str:
    tally = counts(run)
    parts = [f"{tally[s]} {MARK[s]}" for s in MARK if tally.get(s)]
    conforming = "conforms" if run.exit_code() == 0 else "does NOT conform"
    return f"{run.candidate['name']} {conforming}: " + ", ".join(parts)


def judged_under(result: OpResult) -> str:
    """What an op was judged against when not the catalog's entry: "convention 'X'",
    "forward only", or both."""
    names = result.reference.removesuffix(" (forward only)")
    parts = [] if names == "refcnn" else [f"convention '{names}'"]
    return ", ".join(parts + (["forward only"] if result.reference != names else []))


def terminal_lines(result: OpResult) -> list[str]:
    """The progress line of one op, and one indented block per finding."""
    if result.status == "not provided":
        return []  # listed once at the end (see not_provided_line)
    status = MARK[result.status]
    line = f"{result.op:<34} {status:<18} {_examples(result):>6} samples  {result.seconds:6.1f} s"
    if result.reference != "refcnn":
        line += f"  [{judged_under(result)}]"
    lines = [line]
    if result.note:
        lines.append(f"    {result.note}")
    for finding in result.findings:
        head = f"    {finding.check} [{finding.dtype}]"
        if finding.quantities:
            head += " " + ", ".join(finding.quantities)
        lines.append(head + (f"  (known: {finding.known})" if finding.known else ""))
        lines.append(f"      smallest case: {finding.shapes}")
        for name in finding.diagnosis:
            lines.append(f"      diagnosis: {name}")
        first = finding.message.splitlines()[0] if finding.message else ""
        lines.append(f"      {first[:300]}")
    return lines


def not_provided_line(run: Run) -> str:
    missing = [r.op for r in run.results if r.status == "not provided"]
    return f"not provided ({len(missing)}): {', '.join(missing)}" if missing else ""


def markdown(run: Run) -> str:
    candidate = run.candidate
    out = [f"# refcnn check: {candidate['name']}", "", f"**{verdict(run)}**", ""]
    out += ["| | |", "|---|---|"]
    out += [f"| candidate {key} | `{value}` |" for key, value in candidate.items() if value]
    out += [
        f"| target | `{run.target}` |",
        f"| style | {run.style} |",
        f"| profile | {run.settings.profile} (dtypes {', '.join(run.settings.dtypes)}) |",
        f"| declared conventions | {', '.join(run.settings.conventions) or '-'} |",
        f"| time | {run.seconds:.1f} s |",
    ]
    out += [f"| {key} | `{value}` |" for key, value in run.environment.items()]
    out += ["", "## Per op", "", "| op | status | samples | worst observed/bound | time | note |"]
    out += ["|---|---|---:|---:|---:|---|"]
    for r in run.results:
        note = r.note or (judged_under(r) if r.reference != "refcnn" else "")
        ratio = f"{r.worst_ratio:.3g}" if r.examples else "-"
        time_taken = f"{r.seconds:.1f} s" if r.examples or r.seconds else "-"
        out.append(
            f"| {r.op} | {MARK[r.status]} | {_examples(r)} | {ratio} | {time_taken} | {note} |"
        )
    failing = [r for r in run.results if r.findings]
    if failing:
        out += ["", "## Findings"]
    for result in failing:
        out += ["", f"### {result.op}: {MARK[result.status]}"]
        for finding in result.findings:
            quantities = ", ".join(finding.quantities) or "-"
            out += [
                "",
                f"**{finding.check}** [{finding.dtype}], quantities: {quantities}"
                + (f" — accepted as known: {finding.known}" if finding.known else ""),
                "",
                f"- smallest case: `{finding.shapes}`",
            ]
            out += [f"- diagnosis: {name}" for name in finding.diagnosis]
            if not finding.diagnosis:
                out.append("- diagnosis: no convention or known bug of this op matches")
            out += ["", "```text", finding.message, "```", "", "Reproduce:", "", "```python"]
            out += [finding.repro, "```"]
    if run.known:
        out += ["", "## Known differences file", ""]
        stale = {k.line for k in run.stale}
        for entry in run.known:
            mark = " **(stale: matched nothing)**" if entry.line in stale else ""
            out.append(f"- line {entry.line}: `{entry.pattern}` — {entry.reason}{mark}")
    return "\n".join(out) + "\n"


def to_json(run: Run) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "candidate": run.candidate,
        "target": run.target,
        "style": run.style,
        "settings": dataclasses.asdict(run.settings),
        "environment": run.environment,
        "seconds": run.seconds,
        "conforms": run.exit_code() == 0,
        "counts": counts(run),
        "results": [dataclasses.asdict(r) for r in run.results],
        "known": [dataclasses.asdict(k) for k in run.known],
        "stale": [k.line for k in run.stale],
    }


def write(run: Run, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    md, js = directory / "check.md", directory / "check.json"
    md.write_text(markdown(run), encoding="utf-8")
    js.write_text(json.dumps(to_json(run), indent=1) + "\n", encoding="utf-8")
    return [md, js]
