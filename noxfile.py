"""nox sessions. Every session installs with constraints.txt (torch pinned exactly to 2.13.0).

conformance  the main job: properties + torch conformance under xdist, then the report
tests        the project's whole test suite (what CI runs)
lint         ruff format --check, ruff check, mypy on refcnn/

Hypothesis profile: REFCNN_PROFILE=dev|ci|thorough (default: ci when CI is set, else dev).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nox
from nox.command import CommandFailed

nox.options.default_venv_backend = "virtualenv"  # uv does not see the local torch wheel
nox.options.sessions = ["tests"]

CONSTRAINTS = ("-c", "constraints.txt")
RECORDS = Path("reports/records")


def install(session: nox.Session, extras: str) -> None:
    session.install(*CONSTRAINTS, "-e", f".[{extras}]")


@nox.session
def conformance(session: nox.Session) -> None:
    """Properties and torch conformance; always writes reports/conformance.{md,json}."""
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
    session.run(
        "python",
        "-m",
        "refcnn",
        "report",
        "--records",
        str(RECORDS),
        "--out",
        "reports",
        success_codes=[0, 1],
    )
    if failed:
        session.error("conformance failures: see reports/conformance.md")


@nox.session
def tests(session: nox.Session) -> None:
    """Everything: properties, conformance and the meta-tests of the machinery."""
    install(session, "testing,torch")
    session.run("pytest", "-n", "auto", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    install(session, "testing,lint")
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")
    session.run("mypy")
