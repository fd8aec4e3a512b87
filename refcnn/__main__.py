"""Command line: ``python -m refcnn ops [--json]``, ``python -m refcnn report [options]`` and
``python -m refcnn check TARGET [options]``."""

from __future__ import annotations

import argparse
import json
import os
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


def _check(arguments: argparse.Namespace) -> int:
    """Check a candidate; exit 0 when it conforms, 1 on discrepancies, 2 on usage errors."""
    import os
    from pathlib import Path

    from refcnn.testing import catalog, check_report, oracle

    try:
        ops = _selected_ops(arguments.ops, catalog)
        known = oracle.read_known(Path(arguments.known)) if arguments.known else []
        profile = arguments.profile or os.environ.get("REFCNN_PROFILE") or "dev"
        if profile not in oracle.PROFILES:
            raise oracle.UsageError(f"--profile must be one of {sorted(oracle.PROFILES)}")
        settings = oracle.Settings(
            profile=profile,
            dtypes=tuple(arguments.dtype or oracle.DTYPES),
            invariants=not arguments.no_invariants,
        )
        print(f"refcnn check {arguments.target} (style {arguments.style}, profile {profile})")
        run = oracle.run(
            arguments.target,
            style=arguments.style,
            ops=ops,
            config=settings,
            timeout=arguments.timeout,
            known=known,
            progress=lambda result: _print_lines(check_report.terminal_lines(result)),
        )
    except (oracle.UsageError, OSError) as error:
        print(f"refcnn check: {error}", file=sys.stderr)
        return 2
    for entry in run.stale:
        print(
            f"warning: known difference on line {entry.line} matched nothing (stale): "
            f"{entry.pattern}"
        )
    if check_report.not_provided_line(run):
        print(check_report.not_provided_line(run))
    paths = check_report.write(run, Path(arguments.report))
    print(f"{check_report.verdict(run)} ({run.seconds:.1f} s) -> {paths[0]}, {paths[1].name}")
    return run.exit_code()


def _print_lines(lines: list[str]) -> None:
    if lines:
        print("\n".join(lines), flush=True)


def _selected_ops(names: str | None, catalog: Any) -> list[str] | None:
    from refcnn.testing import oracle

    if not names:
        return None
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    known = {spec.name for spec in catalog.OPS}
    families = {spec.family for spec in catalog.OPS}
    ops: list[str] = []
    for name in chosen:
        if name in known:
            ops.append(name)
        elif name in families:
            ops += [spec.name for spec in catalog.OPS if spec.family == name]
        else:
            raise oracle.UsageError(f"--ops: no op or family {name!r}; see python -m refcnn ops")
    return ops


def _vectors(arguments: argparse.Namespace) -> int:
    """Export the golden test vectors; exit 2 when OUT_DIR cannot be written."""
    from refcnn.testing import vectors

    try:
        ops = vectors.select_ops(arguments.ops)
        print(f"refcnn vectors -> {arguments.out_dir}")
        summary = vectors.export(arguments.out_dir, ops=ops, log=print)
    except KeyError as error:
        print(f"refcnn vectors: {error.args[0]}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"refcnn vectors: {error}", file=sys.stderr)
        return 2
    print(
        f"{sum(summary.cases.values())} cases of {len(summary.cases)} ops, {summary.files} files, "
        f"{summary.bytes / 1e6:.1f} MB in {summary.seconds:.1f} s -> {summary.directory}"
    )
    return 0


def _check_vectors(arguments: argparse.Namespace) -> int:
    """Run a candidate on a vector set: exit 0 when every op it provides passes, 1 on a failure
    (or nothing judged), 2 on a corrupted set or a candidate that cannot be loaded."""
    from refcnn.testing import vectors

    try:
        ops = vectors.select_ops(arguments.ops)
        loaded = vectors.load(arguments.directory, ops)
    except vectors.CorruptVectors as error:
        print(f"refcnn check-vectors: corrupted vector set: {error}", file=sys.stderr)
        return 2
    except KeyError as error:
        print(f"refcnn check-vectors: {error.args[0]}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"refcnn check-vectors: {error}", file=sys.stderr)
        return 2
    try:
        candidate = vectors.load_candidate(arguments.impl, arguments.style)
    except Exception as error:  # the oracle's UsageError, or the candidate's own import error
        print(f"refcnn check-vectors: {error}", file=sys.stderr)
        return 2
    print(
        f"refcnn check-vectors {arguments.impl} against {arguments.directory} "
        f"(refcnn {loaded.index['refcnn_version']} vectors)"
    )
    results = vectors.check(loaded, candidate, ops, tuple(arguments.dtype or vectors.DTYPES))
    vectors.format_results(results)
    failed = any(result.status == "FAIL" for result in results)
    return 1 if failed or not any(result.status == "pass" for result in results) else 0


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
    check = commands.add_parser(
        "check",
        help="check another implementation against refcnn, op by op",
        description="Exit 0: conforms; 1: discrepancies found; 2: usage or import error.",
    )
    check.add_argument(
        "target",
        help="a .py file or dotted module (optionally :attribute), refcnn, torch, torch:cuda "
        "(TF32 off; torch:cuda:tf32 leaves it on), or zoo:<bug-zoo mutant name>",
    )
    check.add_argument("--style", default="auto", choices=["auto", "book", "refcnn", "custom"])
    check.add_argument("--ops", help="comma-separated op names or families (default: all)")
    check.add_argument(
        "--profile", help="dev (15 samples per search), ci (100, derandomized), thorough (1000)"
    )
    check.add_argument("--dtype", action="append", choices=["float64", "float32"])
    check.add_argument("--report", default="refcnn-check", help="directory for check.md/.json")
    check.add_argument("--known", metavar="FILE", help="known-differences file (docs/oracle.md)")
    check.add_argument(
        "--timeout", type=float, default=300.0, help="seconds per op before it is stopped"
    )
    check.add_argument("--no-invariants", action="store_true", help="compare values only (faster)")
    check.set_defaults(run=_check)
    vec = commands.add_parser(
        "vectors",
        help="export golden test vectors (.npy + JSON manifests) for any language",
        description="Layout and manifest schema: docs/vectors.md.",
    )
    vec.add_argument("out_dir", metavar="OUT_DIR", help="new directory (or an earlier vector set)")
    vec.add_argument("--ops", help="comma-separated op names or families (default: all)")
    vec.set_defaults(run=_vectors)
    chv = commands.add_parser(
        "check-vectors",
        help="run a Python candidate against a vector set",
        description="Exit 0: every op provided passes; 1: a failure; 2: corrupted set or bad "
        "candidate.",
    )
    chv.add_argument("directory", metavar="DIR", help="a vector set written by `vectors`")
    chv.add_argument(
        "--impl", required=True, metavar="TARGET", help="refcnn, torch, or as `check` takes it"
    )
    chv.add_argument("--style", default="auto", choices=["auto", "book", "refcnn", "custom"])
    chv.add_argument("--ops", help="comma-separated op names or families (default: all)")
    chv.add_argument("--dtype", action="append", choices=["float64", "float32"])
    chv.set_defaults(run=_check_vectors)
    arguments = parser.parse_args(argv)
    try:
        return int(arguments.run(arguments))
    except BrokenPipeError:  # `python -m refcnn ops | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
