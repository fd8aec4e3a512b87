"""Command line: ``python -m refcnn ops [--json]`` and ``python -m refcnn report [options]``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any


def _ops(arguments: argparse.Namespace) -> int:
    from refcnn.testing import catalog

    entries: list[dict[str, Any]] = [
        {
            "name": spec.name,
            "family": spec.family,
            "kind": spec.kind,
            "torch": spec.torch_name,
            "capabilities": list(spec.capabilities),
            "summary": spec.summary,
            "docs": spec.docs,
        }
        for spec in catalog.OPS
    ]
    if arguments.json:
        print(json.dumps(entries, indent=1))
        return 0
    width = max(len(e["name"]) for e in entries)
    kind_width = max(len(e["kind"]) for e in entries)
    for entry in entries:
        print(f"{entry['name']:<{width}}  {entry['kind']:<{kind_width}}  {entry['torch'] or '-'}")
        print(f"{'':<{width}}  {', '.join(entry['capabilities'])}")
    return 0


def _report(arguments: argparse.Namespace) -> int:
    """Render the reports; exit 1 on failing rows or baseline regressions, 2 on bad input."""
    import os
    from pathlib import Path

    from refcnn.testing import records, report

    source, out = Path(arguments.records), Path(arguments.out)
    if not source.is_dir():
        print(f"refcnn report: no records directory {source}", file=sys.stderr)
        return 2
    baseline = None
    if arguments.baseline:
        try:
            baseline = report.load(Path(arguments.baseline))
        except (OSError, ValueError) as error:
            print(f"refcnn report: cannot read the baseline: {error}", file=sys.stderr)
            return 2
    env = records.read_environment(source)
    if env is None or arguments.profile:
        from refcnn.testing.profiles import selected_profile

        profile = arguments.profile or selected_profile()
        env = {**(env or report.environment(profile)), "hypothesis_profile": profile}
        env["hypothesis_seed"] = report.seed_policy(profile)
    curves = None if arguments.no_fd_curves else report.fd_curves()
    outcomes = records.read_outcomes(source)
    data = report.write(
        records.read_all(source),
        out,
        env=env,
        curves=curves,
        baseline=baseline,
        baseline_source=arguments.baseline or "baseline",
        outcomes=outcomes,
    )
    summary = data["summary"]
    print(
        f"refcnn report: {summary['rows']} rows, {summary['failing_rows']} failing, "
        f"{summary['known_deviation_rows']} known deviation "
        f"(wall time {report._duration(data['run']['wall_time_s'])}) -> "
        f"{out}/conformance.html, .md, .json"
    )
    for dtype, entry in sorted(summary["per_dtype"].items()):
        print(
            f"  {dtype}: {entry['examples']} comparisons, worst observed/bound "
            f"{report._number(entry['worst_ratio'])}"
        )
    failed_tests = summary["failed_tests"] or 0
    if failed_tests:
        noun = "test" if failed_tests == 1 else "tests"
        print(f"  pytest: {failed_tests} {noun} failed (listed in the report)")
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        with open(summary_file, "a", encoding="utf-8") as stream:
            stream.write(report.to_markdown(data))
    regressions = _print_baseline(data.get("baseline"))
    if arguments.save_baseline:
        saved = _save_baseline(data, Path(arguments.save_baseline))
        if saved:
            return saved
    return 1 if summary["failing_rows"] or failed_tests or regressions else 0


def _print_baseline(comparison: dict[str, Any] | None) -> int:
    """Print the baseline diff; return the number of regressions."""
    from refcnn.testing import report

    if comparison is None:
        return 0
    regressions = comparison["regressions"]
    print(
        f"baseline {comparison['source']} (refcnn {comparison['revision']}): "
        f"{len(regressions)} regressions, {len(comparison['improved'])} improved, "
        f"{len(comparison['new'])} new rows"
    )
    if not comparison["ratios_compared"]:
        what = "ratios" if comparison["rows_compared"] else "ratios and missing rows"
        print(f"  {what} not compared: {comparison['note']}")
    for change in regressions:
        print(f"  REGRESSION {report.describe_change(change)}")
    if regressions:
        print(report.REFRESH_HINT)
    return len(regressions)


def _save_baseline(data: dict[str, Any], path: Any) -> int:
    """Write the baseline of this run; refuse one that a later run could not reproduce."""
    from refcnn.testing import report

    if data["environment"].get("hypothesis_seed") != "derandomized":
        print(
            "refcnn report: not saving a baseline from a randomized hypothesis profile "
            f"({data['environment'].get('hypothesis_profile')}); run with REFCNN_PROFILE=ci",
            file=sys.stderr,
        )
        return 2
    arguments = data["environment"].get("pytest_args", "").split()
    narrowing = {"-k", "-m", "--deselect", "--lf", "--last-failed", "-x", "--exitfirst"}
    if narrowing & set(arguments) or any("::" in argument for argument in arguments):
        print(
            "refcnn report: not saving a baseline from a partial run (pytest "
            f"{' '.join(arguments)}); run the whole suite: REFCNN_PROFILE=ci nox -s conformance",
            file=sys.stderr,
        )
        return 2
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.baseline_text(data), encoding="utf-8")
    print(f"baseline written: {path} ({len(data['rows'])} rows)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m refcnn")
    commands = parser.add_subparsers(dest="command", required=True)
    ops = commands.add_parser("ops", help="list the op catalog")
    ops.add_argument("--json", action="store_true", help="machine-readable output")
    ops.set_defaults(run=_ops)
    rep = commands.add_parser("report", help="render reports from discrepancy records")
    rep.add_argument("--records", default="reports/records", help="directory of *.jsonl records")
    rep.add_argument("--out", default="reports", help="where conformance.{html,md,json} go")
    rep.add_argument(
        "--profile",
        default=None,
        help="hypothesis profile the records came from (default: as the run stored it in "
        "environment.json, else from REFCNN_PROFILE and CI)",
    )
    rep.add_argument(
        "--baseline",
        metavar="FILE",
        help="compare with a stored baseline (or an earlier conformance.json); exit 1 on "
        "regressions (e.g. reports/baseline/refcnn-vs-torch.json)",
    )
    rep.add_argument(
        "--save-baseline",
        metavar="FILE",
        help="write this run's baseline to FILE (derandomized profiles only)",
    )
    rep.add_argument(
        "--no-fd-curves",
        action="store_true",
        help="skip the finite-difference-against-step plots (they re-run a few ops)",
    )
    rep.set_defaults(run=_report)
    arguments = parser.parse_args(argv)
    return int(arguments.run(arguments))


if __name__ == "__main__":
    sys.exit(main())
