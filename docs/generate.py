"""Regenerate the generated parts of docs/tutorial.md and docs/tolerances.md from real runs.

A generated part sits between two markers, on lines of their own::

    <!-- generated: NAME -->
    ... written by this script, never by hand ...
    <!-- end generated -->

    python docs/generate.py          rewrite every generated part in place
    python docs/generate.py --check  write nothing; exit 1 when a page is stale

What each part holds, and what "stale" means for it:

* tutorial.md: the terminal output of ``python -m refcnn check`` on the tutorial's modules, run
  in a subprocess from the repository root, with its exit status; an excerpt of the check.md it
  writes; the diff between the broken and the fixed module. Stale: the page differs from a
  fresh run once durations (a number followed by `` s``) are masked on both sides. Everything
  else repeats run to run: the ``ci`` profile is derandomized.
* tolerances.md: tables of observed/bound computed from the committed baseline report
  (reports/baseline/refcnn-vs-torch.json). Stale: any difference at all.

The prose around a part relies on some of its content (the diagnosis it names, the shape of
the smallest case): each part lists those strings as ``claims``, and a fresh output that lacks
one is an error in both modes, since the prose then needs rewriting by hand.

The check runs write their report to refcnn-check/ (the default, as on the page); a check.md or
check.json already there is put back afterwards, and one that was not is removed.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import fcntl
import functools
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "reports/baseline/refcnn-vs-torch.json"
REPORT_DIR = "refcnn-check"  # the default --report directory of `python -m refcnn check`

BEGIN = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.MULTILINE)
END = "<!-- end generated -->"

# --- the tutorial: real runs of the oracle ------------------------------------------------------

BROKEN = "docs/tutorial/my_layers.py"
FIXED = "docs/tutorial/my_layers_fixed.py"
OPTIONS = ("--ops", "conv2d,im2col", "--profile", "ci")
DURATION = re.compile(r" *\b\d+(?:\.\d+)? s\b")  # "   1.3 s", "(2.8 s)": wall-clock times


@dataclass(frozen=True)
class CheckRun:
    command: str  # as a reader types it
    output: str  # stdout and stderr, as the terminal shows them
    returncode: int
    check_md: str  # the refcnn-check/check.md this run wrote


@functools.cache
def check_run(target: str) -> CheckRun:
    """``python -m refcnn check TARGET --ops conv2d,im2col --profile ci`` from the repository
    root, in a fresh interpreter (the one running this script)."""
    arguments = ["-m", "refcnn", "check", target, *OPTIONS]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}  # stderr and stdout in terminal order
    report = ROOT / REPORT_DIR
    written = (report / "check.md", report / "check.json")
    # one run at a time in this folder, across processes (pytest's workers each render)
    report.mkdir(exist_ok=True)
    with open(report / ".generate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _locked_check_run(arguments, environment, report, written)


def _locked_check_run(
    arguments: list[str], environment: dict[str, str], report: Path, written: tuple[Path, Path]
) -> CheckRun:
    saved = {path: path.read_bytes() for path in written if path.is_file()}
    try:
        done = subprocess.run(
            [sys.executable, *arguments],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
            check=False,
        )
        check_md = (report / "check.md").read_text(encoding="utf-8")
    finally:  # the reader's own report as it was: put back, or not there
        for path in written:
            if path in saved:
                path.write_bytes(saved[path])
            else:
                path.unlink(missing_ok=True)
    if done.returncode not in (0, 1):  # 2: usage or import error, anything else: a crash
        raise RuntimeError(f"python {' '.join(arguments)} exited {done.returncode}:\n{done.stdout}")
    return CheckRun("python " + " ".join(arguments), done.stdout, done.returncode, check_md)


def transcript(target: str) -> str:
    run = check_run(target)
    return (
        f"```console\n$ {run.command}\n{run.output.rstrip()}\n```\n\n"
        f"(exit status {run.returncode})\n"
    )


def check_md_section(target: str, op: str) -> str:
    """The check.md section of one op's findings ("### op: FAIL" up to the next op)."""
    text = check_run(target).check_md
    start = text.index(f"\n### {op}: ") + 1
    following = text.find("\n### ", start)
    section = text[start:] if following < 0 else text[start : following + 1]
    return "````markdown\n" + section.rstrip() + "\n````\n"


def source(path: str, name: str) -> str:
    """The source of function or class ``name`` in ``path``, as a listing."""
    text = (ROOT / path).read_text(encoding="utf-8")
    node = next(
        node
        for node in ast.parse(text).body
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name
    )
    lines = text.splitlines()[node.lineno - 1 : node.end_lineno]
    return "```python\n" + "\n".join(lines) + "\n```\n"


def fix_diff() -> str:
    before = (ROOT / BROKEN).read_text(encoding="utf-8").splitlines(keepends=True)
    after = (ROOT / FIXED).read_text(encoding="utf-8").splitlines(keepends=True)
    lines = difflib.unified_diff(before, after, BROKEN, FIXED, n=2)
    return "```diff\n" + "".join(lines).rstrip() + "\n```\n"


# --- the tolerances page: the committed baseline ------------------------------------------------

# Checks whose bound is 0 by construction (refcnn.testing.checks.repeatable and no_mutation):
# the same call twice, an input before and after. Their ratios are 0 or infinite.
EXACT_CHECKS = ("repeatable", "no_mutation")
EDGES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)  # right-closed decades, as the report's histogram
COLUMNS = (
    "exact 0",
    "(0, 10⁻⁴]",
    "(10⁻⁴, 10⁻³]",
    "(10⁻³, 10⁻²]",
    "(10⁻², 10⁻¹]",
    "(10⁻¹, 1]",
    "> 1",
)


@functools.cache
def baseline() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / BASELINE).read_text(encoding="utf-8"))
    return data


def ratio(row: dict[str, Any]) -> float | None:
    value = row["worst_ratio"]
    return None if value is None else float(value)  # float("inf") reads the "inf" string


def column(value: float | None) -> str:
    if value is None:
        return "unmeasured"
    if value == 0:
        return COLUMNS[0]
    for edge, name in zip(EDGES, COLUMNS[1:], strict=False):
        if value <= edge:
            return name
    return COLUMNS[-1]


def _worst(rows: Iterable[dict[str, Any]]) -> str:
    values = [v for v in (ratio(r) for r in rows) if v is not None]
    return f"{max(values):.3g}" if values else "-"


def _table(head: list[str], body: list[list[str]], align: str) -> str:
    """A Markdown table; ``align`` has one letter per column: l (text) or r (numbers)."""
    rule = ["---:" if a == "r" else "---" for a in align]
    return "".join("| " + " | ".join(line) + " |\n" for line in [head, rule, *body])


def _decade_cells(rows: list[dict[str, Any]]) -> list[str]:
    tally = Counter(column(ratio(r)) for r in rows)
    return [str(tally.get(name, 0)) for name in COLUMNS]


def _count(n: int) -> str:
    return f"{n:,}"


def baseline_source() -> str:
    data = baseline()
    env, run, rows = data["environment"], data["run"], data["rows"]
    comparisons = sum(r["examples"] for r in rows)
    statuses = Counter(r["status"] for r in rows)
    status_text = ", ".join(f"{_count(n)} {status}" for status, n in sorted(statuses.items()))
    items = [
        ("file", f"[`{BASELINE}`](../{BASELINE})"),
        ("run", f"{run['title']}, refcnn revision `{env.get('refcnn_revision', '?')}`"),
        ("rendered", data["generated"]),
        ("profile", f"`{env.get('hypothesis_profile')}` ({env.get('hypothesis_seed')})"),
        ("platform", env.get("platform", "?")),
        ("NumPy, BLAS", f"{env.get('numpy')}, {env.get('blas')}"),
        ("torch", f"{env.get('torch')}, {env.get('torch_backend')}"),
        ("rows", f"{_count(len(rows))}: {status_text}"),
        ("comparisons", _count(comparisons)),
    ]
    return _table(["", ""], [[key, value] for key, value in items], "ll")


def baseline_per_dtype() -> str:
    rows = baseline()["rows"]
    body = []
    for dtype in sorted({r["dtype"] for r in rows}, reverse=True):  # float64 first
        bounded = [r for r in rows if r["dtype"] == dtype and r["check"] not in EXACT_CHECKS]
        examples = _count(sum(r["examples"] for r in bounded))
        body.append([dtype, str(len(bounded)), examples, *_decade_cells(bounded), _worst(bounded)])
    exact = [r for r in rows if r["check"] in EXACT_CHECKS]
    names = " and ".join(EXACT_CHECKS)
    dtypes = ", ".join(sorted({r["dtype"] for r in exact}, reverse=True))
    exact_text = (
        f"The {len(exact)} rows of {names} (bound 0 by construction; {dtypes}) are left out: "
        f"{_count(sum(r['examples'] for r in exact))} comparisons, "
        f"worst observed/bound {_worst(exact)}.\n"
    )
    head = ["dtype", "rows", "comparisons", *COLUMNS, "worst"]
    return _table(head, body, "l" + "r" * (len(head) - 1)) + "\n" + exact_text


def baseline_per_check() -> str:
    rows = baseline()["rows"]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["check"], row["dtype"]), []).append(row)
    body = [
        [f"`{check}`", dtype, str(len(group)), *_decade_cells(group), _worst(group)]
        for (check, dtype), group in sorted(groups.items())
    ]
    head = ["check", "dtype", "rows", *COLUMNS, "worst"]
    return _table(head, body, "ll" + "r" * (len(head) - 2))


def baseline_worst(count: int = 10) -> str:
    rows = [r for r in baseline()["rows"] if ratio(r) is not None]
    rows.sort(key=lambda r: (-(ratio(r) or 0.0), r["op"], r["check"], r["quantity"], r["dtype"]))
    body = [
        [r["op"], f"`{r['check']}`", r["quantity"], r["dtype"], str(r["examples"]),
         f"{ratio(r):.4f}", r["status"]]
        for r in rows[:count]
    ]  # fmt: skip
    head = ["op", "check", "output", "dtype", "examples", "worst observed/bound", "status"]
    return _table(head, body, "llllrrl")


def baseline_deviations() -> str:
    from refcnn.testing import catalog

    rows = [r for r in baseline()["rows"] if r["status"] != "pass"]
    if not rows:
        return "Every row of the baseline passes without an allowance.\n"
    lines = []
    for r in rows:
        reasons = [
            f"{d.reason} (allowance {d.relative:.3g}·|expected|)"
            for d in catalog.get(r["op"]).known_deviations
            if d.dtype == r["dtype"] and d.quantity == r["quantity"]
        ]
        lines.append(
            f"- {r['op']} · `{r['check']}` · {r['quantity']} · {r['dtype']}: **{r['status']}**, "
            f"{r['examples']} examples, worst observed/bound {ratio(r):.4f} with the allowance. "
            f"Declared in the catalog: {'; '.join(reasons) or '(no declaration found)'}\n"
        )
    return "".join(lines)


# --- the parts, page by page --------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    page: str
    name: str
    render: Callable[[], str]
    masked: bool = False  # compare with durations masked (else exactly)
    claims: tuple[str, ...] = ()  # strings the page's prose relies on


PARTS = (
    Part("docs/tutorial.md", "col2im-source", lambda: source(BROKEN, "col2im")),
    Part(
        "docs/tutorial.md",
        "check-broken",
        lambda: transcript(BROKEN),
        masked=True,
        claims=(
            "does NOT conform: 2 FAIL",
            "invariants other than no_mutation not run: the values are wrong",
            "values [float64] grad_x",
            "im2col(shapes={'x': (1, 1, 3, 1)}, {'kernel_size': (2, 1), 'stride': 1",
            "diagnosis: grad_x matches bug 'col2im assigns instead of accumulating'",
            "diagnosis: grad_x matches bug 'conv2d grad_x through a col2im that assigns'",
            "1 / 3 elements (33.3%) exceed the rounding-error bound",
            "(exit status 1)",
        ),
    ),
    Part(
        "docs/tutorial.md",
        "check-md-im2col",
        lambda: check_md_section(BROKEN, "im2col"),
        masked=True,
        claims=(
            "greatest observed/bound: 2.25e+15 at index (0, 0, 1, 0) (|diff| 0.673, bound 2.99e-16",
            "oracle.rerun(candidate, 'im2col', 'values', params={'input_size': (3, 1), "
            "'kernel_size': (2, 1), 'stride': 1, 'padding': 0, 'dilation': 1, 'batch': 1, "
            "'channels': 1}, seed=0, dtype='float64')",
        ),
    ),
    Part("docs/tutorial.md", "fix-diff", fix_diff),
    Part(
        "docs/tutorial.md",
        "check-fixed",
        lambda: transcript(FIXED),
        masked=True,
        claims=("conforms: 2 pass", "(exit status 0)"),
    ),
    Part("docs/tolerances.md", "baseline-source", baseline_source),
    Part("docs/tolerances.md", "baseline-per-dtype", baseline_per_dtype),
    Part("docs/tolerances.md", "baseline-per-check", baseline_per_check),
    Part("docs/tolerances.md", "baseline-worst", baseline_worst),
    Part(
        "docs/tolerances.md",
        "baseline-deviations",
        baseline_deviations,
        claims=("hardsigmoid", "known deviation"),
    ),
)


def _baseline_facts() -> list[str]:
    """What the prose of tolerances.md says about the baseline, checked against it."""
    rows = baseline()["rows"]
    ratios = [ratio(r) for r in rows]
    broken = []
    if any(value is None or value > 1 for value in ratios):
        broken.append("a row is above 1 or unmeasured ('No row is above 1')")
    if not any(value is not None and 0.1 < value <= 1 for value in ratios):
        broken.append("no row is between 0.1 and 1 ('many are between 0.1 and 1')")
    worst = sorted((r for r in rows if ratio(r) is not None), key=lambda r: -(ratio(r) or 0.0))
    if any(r["dtype"] != "float32" for r in worst[:10]):
        broken.append("the ten worst rows are not all float32 ('closest to 1 are float32')")
    others = [r for r in rows if r["status"] != "pass"]
    if [(r["op"], r["dtype"], r["quantity"], r["status"]) for r in others] != [
        ("hardsigmoid", "float64", "grad_x", "known deviation")
    ]:
        broken.append("the rows that do not pass are not the one hardsigmoid deviation")
    return [f"docs/tolerances.md: the baseline no longer supports the prose: {b}" for b in broken]


def mask(text: str) -> str:
    return DURATION.sub(" # s", text)


def split(text: str, page: str) -> dict[str, tuple[int, int]]:
    """name -> (start, end) offsets of each generated part's content in ``text``."""
    found: dict[str, tuple[int, int]] = {}
    for match in BEGIN.finditer(text):
        name = match.group(1)
        start = match.end() + 1  # after the marker's newline
        end = text.find("\n" + END, match.end())
        if end < 0:
            raise ValueError(f"{page}: '<!-- generated: {name} -->' has no '{END}'")
        if name in found:
            raise ValueError(f"{page}: two parts named {name!r}")
        found[name] = (start, end + 1)
    return found


def problems(page: str, text: str, fresh: dict[str, str]) -> list[str]:
    """What is stale on ``page``: one message per part, with a diff."""
    parts = {p.name: p for p in PARTS if p.page == page}
    spans = split(text, page)
    messages = [
        f"{page}: no part {name!r} (add its markers)" for name in parts if name not in spans
    ]
    messages += [f"{page}: unknown part {name!r}" for name in spans if name not in parts]
    for name, (start, end) in spans.items():
        if name not in parts:
            continue
        old, new = text[start:end], fresh[name]
        if parts[name].masked:
            old, new = mask(old), mask(new)
        if old != new:
            diff = difflib.unified_diff(
                old.splitlines(keepends=True), new.splitlines(keepends=True), "page", "fresh"
            )
            messages.append(f"{page}: part {name!r} is stale\n" + "".join(diff))
    return messages


def render_all() -> tuple[dict[str, dict[str, str]], list[str]]:
    """Fresh content of every part, page by page, and the claims it breaks."""
    fresh: dict[str, dict[str, str]] = {}
    broken = []
    for part in PARTS:
        content = part.render()
        fresh.setdefault(part.page, {})[part.name] = content
        if str(ROOT) in content:
            broken.append(f"{part.page}: part {part.name!r} names this machine's path {ROOT}")
        broken += [
            f"{part.page}: part {part.name!r} no longer contains {claim!r}, which the prose "
            "relies on: rewrite the prose around it"
            for claim in part.claims
            if claim not in content
        ]
    return fresh, broken + _baseline_facts()


def rewrite(text: str, page: str, fresh: dict[str, str]) -> str:
    """``text`` with every stale part replaced; a part that differs from the fresh one only in
    its timings is left as it is (no churn in the history)."""
    masked = {p.name for p in PARTS if p.page == page and p.masked}
    spans = sorted(split(text, page).items(), key=lambda item: item[1], reverse=True)
    for name, (start, end) in spans:  # from the end: earlier offsets stay valid
        if name not in fresh:
            continue
        old = text[start:end]
        if name in masked and mask(old) == mask(fresh[name]):
            continue
        text = text[:start] + fresh[name] + text[end:]
    return text


def check() -> list[str]:
    """Every problem of the pages as they are (empty: up to date). Writes nothing."""
    fresh, broken = render_all()
    messages = list(broken)
    for page, parts in fresh.items():
        messages += problems(page, (ROOT / page).read_text(encoding="utf-8"), parts)
    return messages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a page is stale")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.check:
        messages = check()
        for message in messages:
            print(message, file=sys.stderr)
        status = "stale" if messages else "up to date"
        print(f"docs/generate.py --check: {status} ({time.monotonic() - started:.1f} s)")
        return 1 if messages else 0
    fresh, broken = render_all()
    for page, parts in fresh.items():
        path = ROOT / page
        text = path.read_text(encoding="utf-8")
        missing = [name for name in parts if name not in split(text, page)]
        if missing:
            broken.append(f"{page}: no markers for {', '.join(missing)}")
        new = rewrite(text, page, parts)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"rewrote {page}")
    for message in broken:
        print(message, file=sys.stderr)
    print(f"docs/generate.py: done ({time.monotonic() - started:.1f} s)")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
