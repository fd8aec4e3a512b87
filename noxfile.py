"""nox sessions. Every session installs with constraints.txt (torch pinned exactly to 2.13.0).

conformance  the main job: properties + torch conformance under xdist, then the report
             (reports/conformance.{html,md,json}), compared with the committed baseline
report       the report again from reports/records; `nox -s report -- --baseline FILE`
tests        the project's whole test suite (what CI runs)
lint         ruff format --check, ruff check, mypy on refcnn/
bench        refcnn vs torch CPU, side by side: reports/bench.{md,json} (docs/performance.md)
docs         the docs as a site in build/site (mkdocs-material, strict: a broken link fails)
mutation     mutmut over the numerical core, killed by the project's own tests:
             reports/mutation.{md,json} (docs/mutation.md); not in CI (1¼–1¾ h from scratch)

Hypothesis profile: REFCNN_PROFILE=dev|ci|thorough (default: ci when CI is set, else dev).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import nox
from nox.command import CommandFailed

nox.options.default_venv_backend = "virtualenv"  # uv does not see the local torch wheel
nox.options.sessions = ["tests"]

CONSTRAINTS = ("-c", "constraints.txt")
RECORDS = Path("reports/records")
BASELINE = Path("reports/baseline/refcnn-vs-torch.json")


def install(session: nox.Session, extras: str) -> None:
    session.install(*CONSTRAINTS, "-e", f".[{extras}]")


@nox.session
def conformance(session: nox.Session) -> None:
    """Properties and torch conformance; always writes the report. A full run (no pytest
    arguments) is compared with the committed baseline and fails on precision regressions."""
    install(session, "testing,torch")
    shutil.rmtree(RECORDS, ignore_errors=True)
    failed = False
    try:
        session.run(
            "pytest",
            "properties",
            "conformance",
            "-n",
            "auto",
            "-p",
            "no:cacheprovider",
            "--junitxml=reports/junit-conformance.xml",
            *session.posargs,
            env={"REFCNN_RECORDS_DIR": str(RECORDS)},
        )
    except CommandFailed:
        failed = True  # write the report first: it says what failed and how to reproduce it
    compare = ["--baseline", str(BASELINE)]
    if session.posargs:
        compare = []
        session.log("pytest arguments given: a partial run is not compared with the baseline")
    elif not BASELINE.is_file():
        compare = []
        session.log(f"no baseline at {BASELINE}: not compared")
    try:
        session.run(
            "python",
            "-m",
            "refcnn",
            "report",
            "--records",
            str(RECORDS),
            "--out",
            "reports",
            *compare,
        )
    except CommandFailed:
        if not failed:
            session.error(
                f"the report found regressions against {BASELINE} (listed above and in "
                "reports/conformance.md). If deliberate, refresh the baseline: REFCNN_PROFILE=ci "
                f"nox -s conformance, then nox -s report -- --save-baseline {BASELINE}"
            )
    if failed:
        session.error("conformance failures: see reports/conformance.md (or .html)")


@nox.session
def report(session: nox.Session) -> None:
    """The report again from reports/records (left by `nox -s conformance`); arguments go to
    `python -m refcnn report`: `-- --baseline FILE`, `-- --save-baseline FILE`."""
    install(session, "testing")
    session.run(
        "python",
        "-m",
        "refcnn",
        "report",
        "--records",
        str(RECORDS),
        "--out",
        "reports",
        *session.posargs,
    )


@nox.session
def tests(session: nox.Session) -> None:
    """Everything: properties, conformance and the meta-tests of the machinery."""
    install(session, "testing,torch")
    session.run("pytest", "-n", "auto", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    install(session, "testing,torch,lint")  # mypy sees the types torch has
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")
    session.run("mypy")


@nox.session
def vectors(session: nox.Session) -> None:
    """Golden test vectors (docs/vectors.md) into build/vectors, or the directory given after
    `--`, then re-checked through refcnn: `nox -s vectors -- OUT_DIR`."""
    install(session, "testing")
    out = session.posargs[0] if session.posargs else "build/vectors"
    session.run("python", "-m", "refcnn", "vectors", out)
    session.run("python", "-m", "refcnn", "check-vectors", out, "--impl", "refcnn")


@nox.session
def bench(session: nox.Session) -> None:
    """refcnn vs torch CPU side by side (ratios, gradient-check costs, peak memory) into
    reports/bench.json and reports/bench.md; arguments go to bench/run.py: `-- --quick`,
    `-- --threads 1`, `-- --suite` (also time a test subset per hypothesis profile)."""
    install(session, "testing,torch")
    session.run("python", "bench/run.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The docs as a site in build/site: mkdocs strict mode, so a broken link, an anchor that
    does not exist or a page missing from the nav fails the build. Fetches nothing. The pages'
    examples run in `nox -s tests`."""
    install(session, "docs")
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def mutation(session: nox.Session) -> None:
    """mutmut over im2col, functional/, optim and gradcheck ([tool.mutmut] in pyproject.toml),
    each mutant against only the tests that reach the mutated function, under the derandomized
    `mutation` hypothesis profile; then reports/mutation.{md,json}. Reruns are incremental:
    mutants of unchanged functions keep their result (delete mutants/ to start over). Arguments
    go to mutmut run: `nox -s mutation -- "refcnn.im2col*"` runs only those mutants."""
    install(session, "testing,torch,mutation")
    started = time.monotonic()
    session.run(
        "mutmut",
        "run",
        "--max-children",
        "2",
        *session.posargs,
        env={"REFCNN_PROFILE": "mutation"},
    )
    session.run(
        "python",
        "mutation/report.py",
        "--wall-time",
        f"{time.monotonic() - started:.0f}",
        "--require",
        "0.95",
    )
