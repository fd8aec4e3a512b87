"""How the project is wired: README commands, CI, pins, import hygiene, the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    """The lines of the README's ```console blocks that follow a "$ " prompt."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```console\n(.*?)```", text, flags=re.S)
    return [line[2:] for block in blocks for line in block.splitlines() if line.startswith("$ ")]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    commands = _readme_commands()
    test_command = next(c for c in commands if c.endswith("nox -s tests"))
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines
    assert any(c.endswith("nox -s conformance") for c in commands)


def test_torch_is_pinned_exactly_once_and_every_session_uses_the_constraints() -> None:
    pins = [
        line
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line.startswith("torch")
    ]
    assert pins == ["torch==2.13.0"]
    noxfile = (ROOT / "noxfile.py").read_text()
    assert noxfile.count("session.install(") == noxfile.count("session.install(*CONSTRAINTS")


def test_refcnn_core_imports_neither_torch_nor_hypothesis() -> None:
    code = (
        "import sys, refcnn, refcnn.functional, refcnn.gradcheck, refcnn.geometry; "
        "print(sorted(m for m in ('torch', 'hypothesis') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ops_command_lists_the_catalog_as_json() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "refcnn", "ops", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    entries = {e["name"]: e for e in json.loads(out.stdout)}
    assert entries["conv2d"]["torch"] == "torch.nn.functional.conv2d"
    assert {"backward", "linear", "definition", "torch"} <= set(entries["conv2d"]["capabilities"])
    assert entries["im2col"]["kind"] == "transform"
