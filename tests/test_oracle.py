"""The oracle (``python -m refcnn check``): it passes what conforms, fails what does not, names
the bug-zoo mutant or the convention a candidate matches, survives candidates that raise, return
garbage, hang or die, and always writes its report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from refcnn.__main__ import main
from refcnn.testing import bugzoo, catalog, check_report, conventions, oracle
from refcnn.testing.adapters import Functions, from_specs

CANDIDATES = Path(__file__).parent / "candidates"
DEV = oracle.Settings(profile="dev", derandomize=True)  # reproducible: no flaky test


def _statuses(run: oracle.Run) -> dict[str, str]:
    return {result.op: result.status for result in run.results}


def _diagnoses(run: oracle.Run) -> list[str]:
    return [name for r in run.results for f in r.findings for name in f.diagnosis]


@pytest.mark.parametrize("target", ["refcnn", "torch"])
def test_reference_implementations_conform_on_every_op(target: str) -> None:
    run = oracle.run(target, config=DEV, isolate=False)
    assert len(run.results) == len(catalog.OPS)
    failing = {r.op: [f.message for f in r.findings] for r in run.results if r.status != "pass"}
    assert failing == {}
    assert run.exit_code() == 0
    assert all(sum(r.examples.values()) > 0 for r in run.results)


@pytest.mark.parametrize("mutant", bugzoo.MUTANTS, ids=lambda m: m.name)
def test_every_zoo_mutant_fails_on_its_op_and_is_named(mutant: Any) -> None:
    run = oracle.run(f"zoo:{mutant.name}", ops=[mutant.op], config=DEV, isolate=False)
    (result,) = run.results
    assert result.status == "fail", f"{mutant.name}: the oracle found nothing wrong"
    named = _diagnoses(run)
    assert any(f"'{mutant.name}'" in name for name in named), named
    others = [m.name for m in bugzoo.MUTANTS if m.name != mutant.name and m.op == mutant.op]
    assert not [n for n in named for other in others if f"'{other}'" in n], named


@pytest.mark.parametrize("convention", conventions.CONVENTIONS, ids=lambda c: c.name)
def test_an_undeclared_convention_is_recognised_not_failed(convention: Any) -> None:
    candidate = from_specs(f"follows {convention.name}", {convention.op: convention.spec()})
    run = oracle.run(lambda: candidate, ops=[convention.op], config=DEV, isolate=False)
    (result,) = run.results
    assert result.status == "convention", [f.message for f in result.findings]
    assert any(f"'{convention.name}'" in name for name in _diagnoses(run))
    assert run.exit_code() == 0


def test_a_declared_convention_is_what_the_op_is_judged_against(tmp_path: Path) -> None:
    convention = conventions.get("dropout not inverted")
    known = tmp_path / "known.txt"
    known.write_text(f"convention: {convention.name}  # we follow the book\n")
    candidate = from_specs("book dropout", {"dropout": convention.spec()})
    run = oracle.run(
        lambda: candidate,
        ops=["dropout"],
        config=DEV,
        isolate=False,
        known=oracle.read_known(known),
    )
    assert _statuses(run) == {"dropout": "pass"}
    assert run.results[0].reference == convention.name
    assert run.stale == []


def test_book_style_module_conforms_under_its_declared_conventions() -> None:
    run = oracle.run(str(CANDIDATES / "book_layers.py"), style="book", config=DEV, isolate=False)
    statuses = {op: s for op, s in _statuses(run).items() if s != "not provided"}
    assert set(statuses) >= {"im2col", "conv2d", "max_pool2d", "linear", "relu", "dropout"}
    assert set(statuses.values()) == {"pass"}, statuses
    judged = {r.op: r.reference for r in run.results}
    assert judged["dropout"] == "dropout not inverted"


def test_broken_book_style_module_fails_on_the_right_ops() -> None:
    run = oracle.run(str(CANDIDATES / "book_layers_broken.py"), config=DEV, isolate=False)
    failing = {r.op for r in run.results if r.status == "fail"}
    assert {"im2col", "conv2d", "linear"} <= failing
    assert "relu" not in failing and "sigmoid" not in failing
    im2col = next(r for r in run.results if r.op == "im2col")
    assert any(
        "col2im assigns instead of accumulating" in d for f in im2col.findings for d in f.diagnosis
    )


def test_misbehaving_candidate_yields_findings_and_a_complete_report(tmp_path: Path) -> None:
    """Raises, a list instead of an array, NaN, a mutated input, a hang, a dead process: each a
    finding, and the run still reaches the correct op after them."""
    run = oracle.run(
        str(CANDIDATES / "misbehaving.py"),
        ops=["relu", "sigmoid", "tanh", "softplus", "softsign", "flatten", "hardtanh"],
        config=DEV,
        timeout=5,
    )
    results = {r.op: r for r in run.results}
    assert {op: r.status for op, r in results.items()} == {
        "relu": "fail",
        "sigmoid": "fail",
        "tanh": "timeout",
        "softplus": "crash",
        "softsign": "fail",
        "flatten": "fail",
        "hardtanh": "pass",
    }
    assert "raised RuntimeError: kernel launch failed (at misbehaving.py" in (
        results["relu"].findings[0].message
    )
    assert "forward returned list" in results["sigmoid"].findings[0].message
    assert "non-finite" in results["softsign"].findings[0].message
    assert results["flatten"].findings[0].check == "no_mutation"
    assert "exit code 3" in results["softplus"].note
    paths = check_report.write(run, tmp_path)
    text = paths[0].read_text()
    for op in results:
        assert f"| {op} |" in text
    data = json.loads(paths[1].read_text())
    assert data["conforms"] is False and len(data["results"]) == 7


def test_the_repro_snippet_reproduces_the_finding() -> None:
    name = "conv2d grad_bias not summed over the batch"
    run = oracle.run(f"zoo:{name}", ops=["conv2d"], config=DEV, isolate=False)
    finding = run.results[0].findings[0]
    assert "oracle.rerun(" in finding.repro
    with pytest.raises(AssertionError, match="grad_bias"):
        exec(finding.repro, {})


def test_known_differences_accept_findings_and_report_stale_entries(tmp_path: Path) -> None:
    known = tmp_path / "known.txt"
    known.write_text(
        "# accepted differences\n"
        "conv2d/*/values/grad_bias  # tracked upstream\n"
        "relu/float32/*  # stale: relu is fine\n"
    )
    entries = oracle.read_known(known)
    name = "conv2d grad_bias not summed over the batch"
    run = oracle.run(
        f"zoo:{name}", ops=["conv2d", "relu"], config=DEV, isolate=False, known=entries
    )
    conv = run.results[0]
    values = [f for f in conv.findings if f.check == "values"]
    assert values and all(f.known == "tracked upstream" for f in values)
    assert [entry.line for entry in run.stale] == [3]


def test_known_differences_file_errors(tmp_path: Path) -> None:
    no_reason = tmp_path / "no_reason.txt"
    no_reason.write_text("conv2d/*\n")
    with pytest.raises(oracle.UsageError, match="needs a reason"):
        oracle.read_known(no_reason)
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("convention: no such thing  # why\n")
    with pytest.raises(oracle.UsageError, match="no convention 'no such thing'"):
        oracle.read_known(unknown)


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = str(tmp_path / "report")
    assert main(["check", "refcnn", "--ops", "relu,linear", "--report", report]) == 0
    assert (tmp_path / "report" / "check.md").exists()
    zoo = "zoo:linear grad_bias not summed over the batch"
    assert main(["check", zoo, "--ops", "linear", "--report", report]) == 1
    output = capsys.readouterr().out
    assert "does NOT conform" in output and "matches bug" in output
    assert main(["check", "no_such_module_anywhere", "--report", report]) == 2
    assert "cannot import no_such_module_anywhere" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "missing.py"), "--report", report]) == 2
    assert main(["check", "refcnn", "--ops", "no_such_op", "--report", report]) == 2
    assert main(["check", "torch:tpu", "--report", report]) == 2


def test_custom_style_needs_an_adapter(tmp_path: Path) -> None:
    module = tmp_path / "plain.py"
    module.write_text("x = 1\n")
    with pytest.raises(oracle.UsageError, match="gives no adapter"):
        oracle.load_candidate(str(module), style="custom")
    with pytest.raises(oracle.UsageError, match="--style must be one of"):
        oracle.load_candidate(str(module), style="fancy")


def test_refcnn_style_module_maps_public_functions() -> None:
    candidate = oracle.load_candidate("refcnn.functional", style="refcnn")
    provided = {spec.name for spec in catalog.OPS if candidate.provides(spec)}
    assert {"conv2d", "max_pool2d", "relu", "softmax", "batch_norm_eval"} <= provided
    run = oracle.run(
        "refcnn.functional", style="refcnn", ops=["conv2d", "relu"], config=DEV, isolate=False
    )
    assert _statuses(run) == {"conv2d": "pass", "relu": "pass"}


def test_functions_protocol_checks_backward_arity() -> None:
    spec = catalog.get("conv2d")
    broken = Functions("one gradient", {"conv2d": (spec.forward, lambda g, **kw: g)})
    sample = spec.sample(dict(catalog.get("conv2d").edge_cases[0].params), 0)
    with pytest.raises(TypeError, match="returned 1 gradients"):
        broken.backward(spec, sample.inputs, sample.kwargs, sample.inputs["x"])
