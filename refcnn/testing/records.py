"""Discrepancy records: one JSON line per comparison, one file per process, merged afterwards.

Set ``REFCNN_RECORDS_DIR`` (the nox sessions do) and every comparison made through
:func:`refcnn.testing.compare.assert_within_bound` appends a record to
``$REFCNN_RECORDS_DIR/records-<worker>.jsonl``; ``<worker>`` is the pytest-xdist worker id
(``gw0``, ``gw1``, ...) or ``main``, so parallel workers never write to the same file. Without the
variable, records are not kept.

Each record carries its creation ``time`` (seconds since the epoch), so the report can say when the
run started and how long it took. The run's environment (versions, BLAS, hypothesis profile) is
written once, by the pytest controller, to ``$REFCNN_RECORDS_DIR/environment.json``; at the end
of the session it writes ``pytest-outcomes.json`` (tests passed, failed, and why each failed).
"""

from __future__ import annotations

import json
import os
import time as clock
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RECORDS_DIR_VARIABLE = "REFCNN_RECORDS_DIR"
ENVIRONMENT_FILE = "environment.json"
OUTCOMES_FILE = "pytest-outcomes.json"


@dataclass(frozen=True)
class Record:
    """The outcome of one comparison of one output (or gradient) on one sample."""

    op: str
    check: str  # e.g. "matches_torch", "directional_fd", "adjoint"
    quantity: str  # "out", "grad_x", "grad_weight", ... or "<x, grad>" for scalar identities
    dtype: str
    params: str  # repr of the drawn params: paste-able Python
    seed: int
    elements: int
    max_abs_error: float
    max_rel_error: float
    worst_ratio: float  # max over elements of observed / bound; <= 1 passes
    worst_index: list[int]
    passed: bool
    message: str
    repro: str
    deviation: str = ""  # the reason of a KnownDeviation whose allowance the bound includes
    time: float = field(default_factory=clock.time)  # when the comparison was made (epoch s)

    def to_json(self) -> str:
        return json.dumps(asdict(self), allow_nan=True, sort_keys=True)


def records_dir() -> Path | None:
    value = os.environ.get(RECORDS_DIR_VARIABLE)
    return Path(value) if value else None


LISTENERS: list[Callable[[Record], None]] = []  # in-process observers (the oracle's tally)


def append(record: Record) -> None:
    """Append ``record`` to this process's JSON-lines file, if records are being kept, and hand
    it to every listener."""
    for listener in LISTENERS:
        listener(record)
    directory = records_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(directory / f"records-{worker}.jsonl", "a", encoding="utf-8") as stream:
        stream.write(record.to_json() + "\n")


def read_all(directory: Path) -> Iterator[dict[str, Any]]:
    """Every record from every worker file under ``directory``, in file then line order."""
    for path in sorted(directory.glob("records-*.jsonl")):
        with open(path, encoding="utf-8") as stream:
            for line in stream:
                if line.strip():
                    yield json.loads(line)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def write_environment(directory: Path, environment: dict[str, Any]) -> None:
    """Store the run's environment next to its records (the pytest controller calls this)."""
    _write_json(directory / ENVIRONMENT_FILE, environment)


def read_environment(directory: Path) -> dict[str, Any] | None:
    """The environment stored by :func:`write_environment`, or None if the run stored none."""
    return _read_json(directory / ENVIRONMENT_FILE)


def write_outcomes(directory: Path, outcomes: dict[str, Any]) -> None:
    """Store pytest's counts and failures (the controller calls this at the end)."""
    _write_json(directory / OUTCOMES_FILE, outcomes)


def read_outcomes(directory: Path) -> dict[str, Any] | None:
    """What :func:`write_outcomes` stored, or None (an interrupted run stores nothing)."""
    return _read_json(directory / OUTCOMES_FILE)
