"""Golden test vectors (refcnn.testing.vectors, docs/vectors.md): the export is deterministic
and covers every op; refcnn and torch pass on it; a corrupted file and a broken candidate are
caught."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from refcnn.__main__ import main
from refcnn.testing import bugzoo, catalog, vectors
from refcnn.testing.adapters import Reference, from_specs

# Ops whose cases exercise arguments of every JSON kind: tuples (nested too), strings, None,
# 0-d arrays, a known deviation, no backward, many inputs.
SUBSET = ("conv2d", "max_pool2d", "hardsigmoid", "cross_entropy", "adam", "simple_conv_net")

# Mutants whose outputs are right: only the Python suite's identity checks see them.
VALUE_BLIND = {
    "flatten returns a view of its input": "a view has the right values; np.shares_memory "
    "(checks.no_mutation) is what finds it",
}


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def every_op(tmp_path_factory: pytest.TempPathFactory) -> vectors.VectorSet:
    """Every catalog op: all its edge cases and 3 drawn ones (the full set: 24 of 150 draws)."""
    root = tmp_path_factory.mktemp("vectors") / "every-op"
    vectors.export(root, drawn_cases=3, draws=20)
    return vectors.load(root)


def test_export_is_byte_identical(tmp_path: Path) -> None:
    """Twice in this process and once from the command line in a fresh one: the same bytes."""
    vectors.export(tmp_path / "first", ops=SUBSET)
    vectors.export(tmp_path / "second", ops=SUBSET)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "refcnn",
            "vectors",
            str(tmp_path / "cli"),
            "--ops",
            ",".join(SUBSET),
        ],
        check=True,
        capture_output=True,
    )
    first = _tree(tmp_path / "first")
    assert len(first) > 1000
    assert _tree(tmp_path / "second") == first
    assert _tree(tmp_path / "cli") == first


def test_every_op_is_exported_with_its_edge_cases(every_op: vectors.VectorSet) -> None:
    assert list(every_op.manifests) == [spec.name for spec in catalog.OPS]
    for spec in catalog.OPS:
        cases = every_op.manifests[spec.name]["cases"]
        edge = [case["edge_case"] for case in cases if case["source"] == "edge case"]
        assert edge == [case.id for case in spec.edge_cases if case.applies_to("matches_torch")]
        assert len(cases) == len(edge) + 3, spec.name


def test_refcnn_reproduces_the_vectors_exactly(every_op: vectors.VectorSet) -> None:
    """Read back (arguments decoded from JSON, arrays from .npy), refcnn computes the stored
    float64 values bit for bit, and its float32 results are within the float32 bounds."""
    results = vectors.check(every_op, Reference())
    assert [(r.op, r.status, r.failures) for r in results if r.status != "pass"] == []
    assert all(r.worst_ratio["float64"] == 0.0 for r in results)


def test_torch_passes_the_vectors(every_op: vectors.VectorSet) -> None:
    torch_adapter = pytest.importorskip("refcnn.testing.adapters.torch_adapter")
    results = vectors.check(every_op, torch_adapter.Torch("cpu"))
    assert [(r.op, r.status, r.failures) for r in results if r.status != "pass"] == []


def test_known_deviation_applies_by_candidate_name(every_op: vectors.VectorSet) -> None:
    """torch's float64 hardsigmoid backward passes only with the allowance the manifest declares
    for candidates named torch…: the same torch under another name fails."""
    torch_adapter = pytest.importorskip("refcnn.testing.adapters.torch_adapter")
    renamed = torch_adapter.Torch("cpu")
    renamed.name = "pytorch under another name"
    (result,) = vectors.check(every_op, renamed, ["hardsigmoid"], dtypes=("float64",))
    assert result.status == "FAIL"
    assert all("grad_x [float64]" in line for line in result.failures if line.startswith("case"))


@pytest.fixture(scope="module")
def zoo_ops(tmp_path_factory: pytest.TempPathFactory) -> vectors.VectorSet:
    """The full default cases of every op the bug zoo breaks, and of linear."""
    root = tmp_path_factory.mktemp("vectors") / "zoo-ops"
    vectors.export(root, ops=[s.name for s in catalog.OPS if s.name in ZOO_OPS])
    return vectors.load(root)


ZOO_OPS = {mutant.op for mutant in bugzoo.MUTANTS} | {"linear", "conv2d"}


@pytest.mark.parametrize("mutant", bugzoo.MUTANTS, ids=lambda m: m.name)
def test_a_bug_zoo_mutant_fails_on_its_op(mutant: Any, zoo_ops: vectors.VectorSet) -> None:
    """A candidate made of the mutant and a correct neighbour: its op fails, the other passes,
    the rest of the set is "not provided"."""
    neighbour = "linear" if mutant.op != "linear" else "conv2d"
    candidate = from_specs(
        f"zoo:{mutant.name}", {mutant.op: mutant.spec(), neighbour: catalog.get(neighbour)}
    )
    statuses = {r.op: r.status for r in vectors.check(zoo_ops, candidate)}
    expected = "pass" if mutant.name in VALUE_BLIND else "FAIL"
    assert statuses.pop(mutant.op) == expected
    assert statuses.pop(neighbour) == "pass"
    assert set(statuses.values()) <= {"not provided"}


def test_command_line_exit_codes(
    every_op: vectors.VectorSet, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = str(every_op.directory)
    assert main(["check-vectors", directory, "--impl", "refcnn", "--ops", "relu,pooling"]) == 0
    output = capsys.readouterr().out
    assert "max_pool2d" in output and "relu" in output and "5 ops passed, 0 failed" in output
    assert main(["check-vectors", directory, "--impl", "no_such_module_here"]) == 2
    assert main(["check-vectors", directory, "--impl", "refcnn", "--ops", "no_such_op"]) == 2
    assert main(["check-vectors", str(every_op.directory.parent), "--impl", "refcnn"]) == 2
    assert "no vector set" in capsys.readouterr().err


def test_zoo_candidate_fails_from_the_command_line(every_op: vectors.VectorSet) -> None:
    """Needs the oracle's loader (`zoo:<mutant>` targets)."""
    pytest.importorskip("refcnn.testing.oracle")
    target = "zoo:col2im assigns instead of accumulating"
    assert (
        main(["check-vectors", str(every_op.directory), "--impl", target, "--ops", "im2col"]) == 1
    )


@pytest.mark.parametrize("damaged", ["relu/000/expected.out.npy", "relu/manifest.json"])
def test_a_flipped_byte_is_refused(
    damaged: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "vectors"
    vectors.export(root, ops=["relu"], drawn_cases=1, draws=5)
    path = root / damaged
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # one bit of the last value (or of the manifest's closing lines)
    path.write_bytes(bytes(data))
    with pytest.raises(vectors.CorruptVectors) as error:
        vectors.load(root)
    assert error.value.path == path and "checksum" in error.value.reason
    assert main(["check-vectors", str(root), "--impl", "refcnn"]) == 2
    assert str(path) in capsys.readouterr().err


def test_export_refuses_to_overwrite_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        vectors.export(tmp_path, ops=["relu"], drawn_cases=0)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_drawn_cases_cover_the_edge_geometry() -> None:
    """The drawn conv2d and max_pool2d cases reach what geometry code gets wrong."""
    wanted = {
        "conv2d": {
            "x: non-square",
            "weight: non-square",  # a rectangular kernel
            "stride > kernel (h)",
            "stride > kernel (w)",
            "padding: 4 values",  # per side
            "padding='same'",
            "padding='valid'",
            "dilation[]=2",
            "groups>2",
            "bias absent",
        },
        "max_pool2d": {"ceil_mode=True", "stride > kernel (h)", "dilation[]=2", "padding[]=1"},
    }
    for op, features in wanted.items():
        spec = catalog.get(op)
        drawn = [s for s in vectors.case_sources(spec) if s.source == "hypothesis"]
        assert len(drawn) == vectors.DEFAULT_DRAWN_CASES
        covered = set().union(*(vectors.case_features(spec, s.params) for s in drawn))
        assert features <= covered, features - covered


def test_arguments_round_trip_through_json() -> None:
    kwargs = {"stride": (2, 1), "padding": "same", "split": ((2, 3), (4,)), "p": 0.5, "d": None}
    encoded = vectors.encode_arguments(kwargs)
    assert encoded["split"] == [[2, 3], [4]]
    assert vectors.decode_arguments(encoded) == kwargs
    for bad in ([1, 2], np.int64(2), float("inf")):
        with pytest.raises(TypeError):
            vectors.encode_arguments({"x": bad})
