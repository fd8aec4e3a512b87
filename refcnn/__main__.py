"""Command line: ``python -m refcnn ops [--json]`` and ``python -m refcnn report``."""

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
    from pathlib import Path

    from refcnn.testing import records, report

    source = Path(arguments.records)
    if not source.is_dir():
        print(f"refcnn report: no records directory {source}", file=sys.stderr)
        return 2
    from refcnn.testing.profiles import selected_profile

    profile = arguments.profile or selected_profile()
    data = report.write(records.read_all(source), Path(arguments.out), profile)
    summary = data["summary"]
    print(
        f"refcnn report: {summary['rows']} rows, {summary['failing_rows']} failing -> "
        f"{arguments.out}/conformance.md, {arguments.out}/conformance.json"
    )
    for dtype, entry in sorted(summary["per_dtype"].items()):
        print(
            f"  {dtype}: {entry['examples']} comparisons, worst observed/bound "
            f"{entry['worst_ratio']:.3g}"
        )
    return 1 if summary["failing_rows"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m refcnn")
    commands = parser.add_subparsers(dest="command", required=True)
    ops = commands.add_parser("ops", help="list the op catalog")
    ops.add_argument("--json", action="store_true", help="machine-readable output")
    ops.set_defaults(run=_ops)
    rep = commands.add_parser("report", help="render reports from discrepancy records")
    rep.add_argument("--records", default="reports/records", help="directory of *.jsonl records")
    rep.add_argument("--out", default="reports", help="where conformance.{md,json} go")
    rep.add_argument(
        "--profile",
        default=None,
        help="hypothesis profile the records came from (default: as the tests chose "
        "it, from REFCNN_PROFILE and CI)",
    )
    rep.set_defaults(run=_report)
    arguments = parser.parse_args(argv)
    return int(arguments.run(arguments))


if __name__ == "__main__":
    sys.exit(main())
