"""reports/mutation.{md,json} from mutmut's results (``nox -s mutation`` runs this after mutmut).

Reads the per-file result files mutmut leaves under mutants/ and the reviewed list of equivalent
mutants (mutation/equivalent.txt: ``mutant_name  # why no test can tell it apart``). The score
of a module is detected / (checked − equivalent), where detected = killed + timed out (a mutant
that makes the suite hang is caught: the suite does not pass) and checked leaves out the mutants
a stopped run did not reach, which are counted separately. Every surviving mutant is listed with
its diff.

    python mutation/report.py [--wall-time SECONDS] [--require 0.95]

Exit 1 when ``--require`` is given and the score is below it, or mutants are still unchecked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
EQUIVALENT = ROOT / "mutation" / "equivalent.txt"
DETECTED = {"killed", "timeout"}


def read_equivalent(path: Path) -> dict[str, str]:
    """``{mutant name: reason}``; a line without a reason is an error (a review says why)."""
    reasons: dict[str, str] = {}
    if not path.is_file():
        return reasons
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, reason = line.partition("#")
        if not reason.strip():
            raise SystemExit(f"{path.name}:{number}: {name.strip()!r} has no reason after '#'")
        reasons[name.strip()] = reason.strip()
    return reasons


def read_results() -> dict[str, dict[str, str]]:
    """``{source file: {mutant name: status}}`` from mutants/**/*.py.meta."""
    from mutmut.stats import status_by_exit_code  # killed, survived, timeout, no tests, ...

    results: dict[str, dict[str, str]] = {}
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        data = json.loads(meta.read_text(encoding="utf-8"))
        codes = data.get("exit_code_by_key", {})
        if not codes:
            continue
        source = meta.relative_to(MUTANTS).as_posix().removesuffix(".meta")
        results[source] = {name: status_by_exit_code[code] for name, code in codes.items()}
    return results


def diff_of(name: str, source: str) -> str:
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    cwd = Path.cwd()
    os.chdir(ROOT)  # mutmut resolves mutants/ from the working directory
    try:
        return get_diff_for_mutant(name, path=source)
    finally:
        os.chdir(cwd)


def summarise(
    results: dict[str, dict[str, str]], equivalent: dict[str, str]
) -> tuple[list[dict[str, object]], list[dict[str, str]], list[str]]:
    modules: list[dict[str, object]] = []
    survivors: list[dict[str, str]] = []
    known = {name for statuses in results.values() for name in statuses}
    stale = sorted(set(equivalent) - known)
    for source, statuses in results.items():
        counts = Counter(statuses.values())
        equivalent_here = [n for n, s in statuses.items() if n in equivalent and s not in DETECTED]
        detected = sum(counts[s] for s in DETECTED)
        judged = len(statuses) - len(equivalent_here) - counts["not checked"]
        modules.append(
            {
                "module": source,
                "mutants": len(statuses),
                "killed": counts["killed"],
                "timeout": counts["timeout"],
                "survived": counts["survived"] - len(equivalent_here),
                "equivalent": len(equivalent_here),
                "no_tests": counts["no tests"],
                "suspicious": counts["suspicious"],
                "not_checked": counts["not checked"],
                "score": detected / judged if judged else 1.0,
            }
        )
        for name, status in statuses.items():
            if status not in DETECTED and status != "not checked" and name not in equivalent:
                survivors.append({"mutant": name, "module": source, "status": status})
    return modules, survivors, stale


def write(
    modules: list[dict[str, object]],
    survivors: list[dict[str, str]],
    equivalent: dict[str, str],
    stale: list[str],
    wall_time: float | None,
) -> float:
    total = {
        key: sum(int(m[key]) for m in modules)  # type: ignore[call-overload]
        for key in ("mutants", "killed", "timeout", "survived", "equivalent", "no_tests")
    }
    total.update(
        {k: sum(int(m[k]) for m in modules) for k in ("suspicious", "not_checked")}  # type: ignore[call-overload]
    )
    judged = total["mutants"] - total["equivalent"] - total["not_checked"]
    score = (total["killed"] + total["timeout"]) / judged if judged else 1.0
    lines = [
        "# Mutation testing",
        "",
        "Written by `mutation/report.py` from the results of `nox -s mutation` (mutmut over "
        "refcnn's numerical core; the killing suite is the project's properties and "
        "conformance tests under the derandomized `mutation` hypothesis profile). "
        "docs/mutation.md says how it runs and how to read this.",
        "",
        f"**Score: {score:.1%}** of the {judged} non-equivalent mutants checked "
        f"({total['killed']} killed, {total['timeout']} timed out; {total['survived']} survived, "
        f"{total['no_tests']} reached by no test, {total['suspicious']} suspicious; "
        f"{total['equivalent']} reviewed as equivalent).",
    ]
    if total["not_checked"]:
        lines += [
            "",
            f"**Incomplete run: {total['not_checked']} of {total['mutants']} mutants not checked** "
            "(the run was stopped; `nox -s mutation` goes on where it stopped). The scores below "
            "are over the mutants checked so far.",
        ]
    if wall_time is not None:
        lines.append(f"Wall time of the run: {wall_time / 60:.1f} min.")
    lines += [
        "",
        "| module | mutants | not checked | killed | timeout | survived | no tests | equivalent "
        "| score |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in modules:
        lines.append(
            f"| `{m['module']}` | {m['mutants']} | {m['not_checked']} | {m['killed']} | "
            f"{m['timeout']} | {m['survived']} | {m['no_tests']} | {m['equivalent']} | "
            f"{float(m['score']):.1%} |"  # type: ignore[arg-type]
        )
    lines += ["", f"## Surviving mutants ({len(survivors)})", ""]
    lines += [
        "Each as of the run that last checked it: mutmut keeps a result until the function "
        "changes, so a property added later kills a listed mutant only once it is rerun "
        "(`nox -s mutation -- NAME ...`).",
        "",
    ]
    if not survivors:
        lines.append("None.")
    for s in survivors:
        lines += [f"### `{s['mutant']}` ({s['status']})", "", "```diff"]
        lines += [diff_of(s["mutant"], s["module"]), "```", ""]
    lines += ["", f"## Reviewed as equivalent ({len(equivalent)})", ""]
    lines += [f"* `{name}`: {reason}" for name, reason in sorted(equivalent.items())]
    if stale:
        lines += ["", "Listed as equivalent but no longer generated (remove them):", ""]
        lines += [f"* `{name}`" for name in stale]
    out = ROOT / "reports"
    (out / "mutation.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = {"score": score, "wall_time_s": wall_time, "totals": total, "modules": modules}
    summary["survivors"] = survivors  # type: ignore[assignment]
    (out / "mutation.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wall-time", type=float, default=None, help="seconds the run took")
    parser.add_argument("--require", type=float, default=None, help="fail below this score")
    args = parser.parse_args(argv)
    equivalent = read_equivalent(EQUIVALENT)
    results = read_results()
    if not results:
        print("no mutmut results under mutants/: run `nox -s mutation` first", file=sys.stderr)
        return 2
    modules, survivors, stale = summarise(results, equivalent)
    score = write(modules, survivors, equivalent, stale, args.wall_time)
    unchecked = sum(int(m["not_checked"]) for m in modules)  # type: ignore[call-overload]
    print(f"mutation score {score:.1%}, {len(survivors)} survivors -> reports/mutation.md")
    if args.require is not None and (score < args.require or unchecked):
        print(f"below the required {args.require:.0%} or {unchecked} unchecked", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
