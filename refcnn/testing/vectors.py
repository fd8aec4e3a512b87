"""Golden test vectors: the catalog's cases as files, for implementations in any language.

``export(directory)`` writes, for every catalog op, a few dozen cases (its edge cases plus
hypothesis-drawn geometry chosen to cover the edge features, see :func:`select_params`), each
with its inputs, keyword arguments, a random upstream gradient, refcnn's float64 forward and
gradients, and the elementwise bound every expected array is to be compared within, for a
candidate computing in float64 and for one computing in float32. :func:`check` runs a Python
candidate (an :class:`~refcnn.testing.adapters.Adapter`) against such a set. The layout and the
manifest schema are documented in docs/vectors.md.

One set of values serves both dtypes: every case is drawn in float32 and widened (exactly) to
float64, so a float32 candidate receives the same inputs without rounding, and the expected
values are refcnn's float64 results on them. The bounds follow the checks:

- float64: ``PAIRWISE_FACTOR · B64``: candidate and refcnn each within the model's bound ``B64``
  of the exact value (as :func:`refcnn.testing.checks.matches_candidate`);
- float32: ``B32 + B64``: the candidate within ``B32`` of the exact value, refcnn's float64
  result within ``B64`` of it (as :func:`refcnn.testing.checks.float32_tracks_float64`).

Deterministic: hypothesis draws from a fixed seed per op with no database, the arrays' seeds
are fixed, the files are written in a fixed order with fixed formatting: the same refcnn version
with the same NumPy and hypothesis (constraints.txt) on the same machine gives byte-identical
files. NumPy's SIMD kernels (exp, log, summation order) depend on the CPU, so another machine may
differ in the last bits of expected values and bounds, always within the bounds.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import platform
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from refcnn.geometry import int_pair
from refcnn.testing import catalog
from refcnn.testing.adapters import Adapter, Unsupported, provides
from refcnn.testing.compare import Context, assert_within_bound, fail
from refcnn.testing.opspec import KnownDeviation, OpSpec, Sample
from refcnn.testing.tolerance import PAIRWISE_FACTOR

SCHEMA = "refcnn-vectors"
SCHEMA_VERSION = 1
DTYPES = ("float64", "float32")
INDEX = "index.json"
MANIFEST = "manifest.json"

# Hypothesis-drawn cases per op, by kind (whole networks are big and slow: fewer), on top of the
# op's edge cases; DRAWS geometries are drawn to choose them from.
DRAWN_CASES: dict[str, int] = {"network": 4}
DEFAULT_DRAWN_CASES = 24
DRAWS = 150


class CorruptVectors(Exception):
    """A vector set that cannot be trusted: a file missing, unreadable or not matching its
    checksum. ``path`` names the file."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


# --- JSON: arguments ---------------------------------------------------------------------------


def encode_arguments(value: Any) -> Any:
    """Keyword arguments and params as JSON: tuples become arrays (read them back as tuples with
    :func:`decode_arguments`); None, bool, int, float and str stay as they are. Anything else
    (a list, a NumPy integer, a non-finite float) is refused rather than silently changed."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not np.isfinite(value):
            raise TypeError(f"non-finite float {value!r} has no JSON form")
        return value
    if isinstance(value, tuple):
        return [encode_arguments(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): encode_arguments(item) for key, item in value.items()}
    raise TypeError(f"cannot store {type(value).__name__} {value!r} in a vector manifest")


def decode_arguments(value: Any) -> Any:
    """The inverse of :func:`encode_arguments`: every JSON array is a tuple, recursively."""
    if isinstance(value, list):
        return tuple(decode_arguments(item) for item in value)
    if isinstance(value, dict):
        return {key: decode_arguments(item) for key, item in value.items()}
    return value


def _json_bytes(document: Any) -> bytes:
    """Indented JSON, UTF-8, with arrays of scalars (shapes, tuples) kept on one line."""
    return (_json_text(document, "") + "\n").encode("utf-8")


def _json_text(value: Any, indent: str) -> str:
    def scalar(item: Any) -> str:
        return json.dumps(item, ensure_ascii=False, allow_nan=False)

    inner = indent + " "
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{scalar(str(k))}: {_json_text(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list):
        if all(not isinstance(item, dict | list) for item in value):
            return "[" + ", ".join(scalar(item) for item in value) + "]"
        return "[\n" + ",\n".join(inner + _json_text(v, inner) for v in value) + "\n" + indent + "]"
    return scalar(value)


def _npy_bytes(array: Any) -> bytes:
    """A little-endian float64 .npy file (format version 1.0), C order: the same bytes for the
    same values on every platform."""
    values = np.array(array, dtype="<f8", order="C")  # 0-d stays 0-d
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, values, version=(1, 0), allow_pickle=False)
    return buffer.getvalue()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- choosing the cases ------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseSource:
    """Where a case comes from: an edge case of the catalog, or params hypothesis drew."""

    source: str  # "edge case" or "hypothesis"
    label: str  # the edge case's id, or "drawn, seed N"
    params: Mapping[str, Any]
    seed: int
    edge_case: str | None = None
    covers: tuple[str, ...] = ()


def draw_params(spec: OpSpec, count: int = DRAWS, budget: str = "small") -> list[dict[str, Any]]:
    """``count`` params from the op's own strategy, from a fixed seed per op (the op's name) with
    no database: the same list in every run with the same hypothesis version. Duplicates are
    dropped, order kept."""
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from hypothesis import strategies as st

    drawn: list[dict[str, Any]] = []
    seen: set[str] = set()

    @settings(
        settings.get_profile("default"),  # not the profile the caller loaded
        max_examples=count,
        database=None,
        deadline=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @seed(f"refcnn vectors {spec.name}")
    @given(data=st.data())
    def collect(data: Any) -> None:
        params = dict(data.draw(spec.params(budget), label=f"{spec.name} params"))
        key = repr(sorted(params.items()))
        if key not in seen:
            seen.add(key)
            drawn.append(params)

    with _without_local_constants():
        collect()
    return drawn


@contextlib.contextmanager
def _without_local_constants() -> Iterator[None]:
    """Hypothesis mixes literal constants from the "local" modules loaded in the process (the
    project's own files, and refcnn itself when it is installed in editable mode) into what it
    draws, so the same seed draws different params in a test process, a command-line process
    and an installed copy. The vectors must not depend on that: the draws use hypothesis's
    built-in constants only. (Private API of the hypothesis version constraints.txt pins;
    tests/test_vectors.py's cross-process byte-identity test fails if it changes.)"""
    from hypothesis.internal.conjecture import providers
    from hypothesis.internal.constants_ast import Constants

    original = providers._get_local_constants
    providers._get_local_constants = Constants
    providers.CONSTANTS_CACHE.cache.clear()  # choices cached from earlier draws' local constants
    try:
        yield
    finally:
        providers._get_local_constants = original
        providers.CONSTANTS_CACHE.cache.clear()


def _value_features(key: str, value: Any) -> set[str]:
    """Classes of one parameter value: the edges geometry code gets wrong (0, 1, negatives,
    unequal pairs, each string and flag)."""
    if value is None or isinstance(value, bool | str):
        return {f"{key}={value!r}"}
    if isinstance(value, int):
        return {f"{key}={value}" if -2 <= value <= 2 else f"{key}{'>' if value > 0 else '<'}2"}
    if isinstance(value, float):
        if value in (0.0, 1.0):
            return {f"{key}={value}"}
        return {f"{key}{'<0' if value < 0 else ' in (0, 1)' if value < 1 else '>1'}"}
    if isinstance(value, tuple):
        features = {f"{key}: {len(value)} values"}
        if len(set(map(repr, value))) > 1:
            features.add(f"{key}: unequal values")
        for item in value:
            features |= _value_features(f"{key}[]", item)
        return features
    return {f"{key}: {type(value).__name__}"}


def case_features(spec: OpSpec, params: Mapping[str, Any]) -> set[str]:
    """What a case exercises: the class of every parameter, the rank of every input, non-square
    and length-1 axes, absent optional inputs, and stride against kernel per axis."""
    features: set[str] = set()
    for key, value in params.items():
        features |= _value_features(key, value)
    shapes, kwargs = spec.layout(params)
    for name, shape in shapes.items():
        if shape is None:
            features.add(f"{name} absent")
            continue
        features.add(f"{name}: {len(shape)}-D")
        if len(shape) >= 2 and shape[-1] != shape[-2]:
            features.add(f"{name}: non-square")
        if 1 in shape:
            features.add(f"{name}: a length-1 axis")
    arguments = {**params, **kwargs}
    try:
        kernel = int_pair(arguments.get("kernel_size"), "kernel_size", minimum=1)
        stride = int_pair(arguments.get("stride"), "stride", minimum=1)
    except (TypeError, ValueError):
        return features  # no window, or its stride is implied (None: the kernel size)
    for axis, k, s in zip("hw", kernel, stride, strict=False):
        relation = (
            "stride > kernel" if s > k else "stride = kernel" if s == k else "stride < kernel"
        )
        features.add(f"{relation} ({axis})")
    return features


def _size(spec: OpSpec, params: Mapping[str, Any]) -> int:
    shapes, _ = spec.layout(params)
    return sum(int(np.prod(shape)) for shape in shapes.values() if shape is not None)


def select_params(
    spec: OpSpec, drawn: Sequence[Mapping[str, Any]], count: int
) -> list[tuple[Mapping[str, Any], tuple[str, ...]]]:
    """``count`` of the drawn params that together cover the most features (greedy set cover,
    smallest first among equals, like a shrunk example), in rounds: once every feature is
    covered the next round covers them all again with other cases. Each comes with the
    features it newly covered."""
    pool = [(index, params, case_features(spec, params)) for index, params in enumerate(drawn)]
    sizes = {index: _size(spec, params) for index, params, _ in pool}
    chosen: list[tuple[Mapping[str, Any], tuple[str, ...]]] = []
    covered: set[str] = set()
    while pool and len(chosen) < count:
        best = max(pool, key=lambda c: (len(c[2] - covered), -sizes[c[0]], -c[0]))
        new = best[2] - covered
        if not new and covered:
            covered = set()  # every feature covered once: start the next round
            continue
        pool.remove(best)
        covered |= best[2]
        chosen.append((best[1], tuple(sorted(new))))
    return chosen


def case_sources(
    spec: OpSpec, drawn_cases: int | None = None, draws: int = DRAWS
) -> list[CaseSource]:
    """The op's cases: every edge case that a candidate comparison applies to, then
    ``drawn_cases`` chosen from ``draws`` drawn geometries (seeds 0, 1, 2, ...)."""
    if drawn_cases is None:
        drawn_cases = DRAWN_CASES.get(spec.kind, DEFAULT_DRAWN_CASES)
    sources = [
        CaseSource("edge case", case.id, case.params, case.seed, edge_case=case.id)
        for case in spec.edge_cases
        if case.applies_to("matches_torch")
    ]
    if drawn_cases > 0:
        chosen = select_params(spec, draw_params(spec, draws), drawn_cases)
        for seed, (params, covers) in enumerate(chosen):
            label = f"drawn, seed {seed}"
            sources.append(CaseSource("hypothesis", label, params, seed, covers=covers))
    return sources


# --- computing a case --------------------------------------------------------------------------


def _float32_sample(spec: OpSpec, source: CaseSource) -> Sample:
    if source.edge_case is not None:
        return spec.edge_sample(source.edge_case, "float32")
    return spec.sample(source.params, source.seed, "float32")


def compute_case(spec: OpSpec, source: CaseSource) -> dict[str, Any]:
    """Inputs (float32 values widened), upstream, expected values and both bounds, as arrays."""
    single = _float32_sample(spec, source)
    double = single.with_dtype("float64")
    inputs, kwargs, tolerance = double.inputs, double.kwargs, spec.tolerance
    out = spec.forward(**inputs, **kwargs)
    expected = {"out": out}
    bound64 = {"out": tolerance.forward_bound(spec, inputs, kwargs, np.float64)}
    bound32 = {"out": tolerance.forward_bound(spec, inputs, kwargs, np.float32)}
    upstream = None
    if spec.backward is not None:
        upstream = single.random(np.shape(out), "upstream").astype(np.float64)
        for name, grad in spec.backward_dict(upstream, inputs, kwargs).items():
            expected[f"grad_{name}"] = grad
        for dtype, bounds in ((np.float64, bound64), (np.float32, bound32)):
            for name, bound in tolerance.backward_bounds(
                spec, inputs, kwargs, upstream, dtype
            ).items():
                bounds[f"grad_{name}"] = bound
    return {
        "sample": double,
        "upstream": upstream,
        "expected": expected,
        "bounds": {
            "float64": {q: PAIRWISE_FACTOR * _full(bound64[q], expected[q]) for q in expected},
            "float32": {
                q: _full(bound32[q], expected[q]) + _full(bound64[q], expected[q]) for q in expected
            },
        },
    }


def _full(bound: Any, like: Any) -> NDArray[np.float64]:
    """The bound as an array shaped like the value it bounds (a scalar bound broadcast)."""
    return np.array(np.broadcast_to(np.asarray(bound, np.float64), np.shape(like)))


# --- export ------------------------------------------------------------------------------------


@dataclass
class ExportSummary:
    directory: Path
    cases: dict[str, int] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0


def generator_versions() -> dict[str, str]:
    """What the values depend on besides refcnn: the set is reproducible with the same ones."""
    import hypothesis

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "hypothesis": hypothesis.__version__,
    }


def export(
    directory: Path | str,
    ops: Iterable[str] | None = None,
    drawn_cases: int | None = None,
    log: Callable[[str], None] | None = None,
    draws: int = DRAWS,
) -> ExportSummary:
    """Write the vector set for ``ops`` (default: every catalog op) into ``directory``.

    ``directory`` must be absent, empty, or an earlier vector set (it has an index.json), which
    is replaced. ``drawn_cases`` overrides the number of hypothesis-drawn cases per op and
    ``draws`` the number of geometries they are chosen from (a smaller, faster set for tests).
    """
    import refcnn

    started = time.perf_counter()
    root = Path(directory)
    if root.exists():
        if not root.is_dir() or (any(root.iterdir()) and not (root / INDEX).is_file()):
            raise FileExistsError(f"{root} exists and is not a vector set; not overwriting it")
        shutil.rmtree(root)
    root.mkdir(parents=True)
    specs = catalog.OPS if ops is None else tuple(catalog.get(name) for name in ops)
    summary = ExportSummary(root)
    entries = []
    for spec in specs:
        op_started = time.perf_counter()
        sources = case_sources(spec, drawn_cases, draws)
        manifest, files = _op_manifest(spec, sources, refcnn.__version__)
        manifest_bytes = _json_bytes(manifest)
        for relative, data in [*files, (MANIFEST, manifest_bytes)]:
            path = root / spec.name / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            summary.files += 1
            summary.bytes += len(data)
        summary.cases[spec.name] = len(manifest["cases"])
        entries.append(
            {
                "op": spec.name,
                "cases": len(manifest["cases"]),
                "manifest": f"{spec.name}/{MANIFEST}",
                "sha256": _sha256(manifest_bytes),
            }
        )
        if log is not None:
            seconds = time.perf_counter() - op_started
            log(f"  {spec.name}: {len(manifest['cases'])} cases ({seconds:.1f} s)")
    index = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "refcnn_version": refcnn.__version__,
        "generator": generator_versions(),
        "dtypes": list(DTYPES),
        "ops": entries,
    }
    index_bytes = _json_bytes(index)
    (root / INDEX).write_bytes(index_bytes)
    summary.files += 1
    summary.bytes += len(index_bytes)
    summary.seconds = time.perf_counter() - started
    return summary


def _array_entry(relative: str, array: Any) -> dict[str, Any]:
    return {"file": relative, "shape": list(np.shape(array)), "dtype": "<f8"}


def _op_manifest(
    spec: OpSpec, sources: Sequence[CaseSource], version: str
) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """The op's manifest and its files as (relative path, bytes), checksums included."""
    files: list[tuple[str, bytes]] = []

    def add(relative: str, array: Any) -> dict[str, Any]:
        files.append((relative, _npy_bytes(array)))
        return _array_entry(relative, array)

    cases = []
    for number, source in enumerate(sources):
        case_id = f"{number:03d}"
        computed = compute_case(spec, source)
        sample: Sample = computed["sample"]
        upstream = computed["upstream"]
        case: dict[str, Any] = {
            "id": case_id,
            "source": source.source,
            "label": source.label,
            "params": encode_arguments(dict(source.params)),
            "seed": source.seed,
            "edge_case": source.edge_case,
            "covers": list(source.covers),
            "kwargs": encode_arguments(sample.kwargs),
            "inputs": {
                name: None if value is None else add(f"{case_id}/input.{name}.npy", value)
                for name, value in sample.inputs.items()
            },
            "upstream": None if upstream is None else add(f"{case_id}/upstream.npy", upstream),
            "expected": {
                quantity: add(f"{case_id}/expected.{quantity}.npy", value)
                for quantity, value in computed["expected"].items()
            },
            "bounds": {
                dtype: {
                    quantity: add(f"{case_id}/bound.{dtype}.{quantity}.npy", value)
                    for quantity, value in computed["bounds"][dtype].items()
                }
                for dtype in DTYPES
            },
        }
        cases.append(case)
    manifest = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "refcnn_version": version,
        "op": spec.name,
        "family": spec.family,
        "kind": spec.kind,
        "summary": spec.summary,
        "torch_name": spec.torch_name,
        "docs": spec.docs,
        "inputs": list(spec.inputs),
        "differentiable": list(spec.differentiable),
        "dtypes": list(DTYPES),
        "bound_rule": {
            "float64": f"{PAIRWISE_FACTOR:g}·B64 (candidate and refcnn each within B64)",
            "float32": "B32 + B64 (candidate within B32, refcnn's float64 within B64)",
        },
        "known_deviations": [
            {
                "candidate": deviation.candidate,
                "dtype": deviation.dtype,
                "quantity": deviation.quantity,
                "relative": deviation.relative,
                "reason": deviation.reason,
            }
            for deviation in spec.known_deviations
        ],
        "cases": cases,
        "files": {relative: _sha256(data) for relative, data in files},
    }
    return manifest, files


# --- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VectorSet:
    """A vector set whose files all matched their checksums when it was loaded."""

    directory: Path
    index: dict[str, Any]
    manifests: dict[str, dict[str, Any]]

    def array(self, op: str, entry: Mapping[str, Any] | None) -> NDArray[np.float64] | None:
        if entry is None:
            return None
        path = self.directory / op / entry["file"]
        values: NDArray[np.float64] = np.load(path, allow_pickle=False)
        return values

    def cases(self, op: str) -> list[VectorCase]:
        manifest = self.manifests[op]
        return [self._case(op, case) for case in manifest["cases"]]

    def _case(self, op: str, case: Mapping[str, Any]) -> VectorCase:
        def arrays(entries: Mapping[str, Any]) -> dict[str, Any]:
            return {name: self.array(op, entry) for name, entry in entries.items()}

        return VectorCase(
            op=op,
            id=case["id"],
            label=case["label"],
            params=decode_arguments(case["params"]),
            seed=case["seed"],
            edge_case=case["edge_case"],
            kwargs=decode_arguments(case["kwargs"]),
            inputs=arrays(case["inputs"]),
            upstream=self.array(op, case["upstream"]),
            expected=arrays(case["expected"]),
            bounds={dtype: arrays(entries) for dtype, entries in case["bounds"].items()},
        )


@dataclass(frozen=True)
class VectorCase:
    op: str
    id: str
    label: str
    params: dict[str, Any]
    seed: int
    edge_case: str | None
    kwargs: dict[str, Any]
    inputs: dict[str, Any]
    upstream: Any
    expected: dict[str, Any]
    bounds: dict[str, dict[str, Any]]

    def sample(self, dtype: str) -> Sample:
        inputs = {k: None if v is None else v.astype(dtype) for k, v in self.inputs.items()}
        return Sample(
            op=self.op,
            params=self.params,
            seed=self.seed,
            dtype=dtype,
            inputs=inputs,
            kwargs=self.kwargs,
            edge_case=self.edge_case,
        )


def _read_json(path: Path, expected_sha256: str | None = None) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CorruptVectors(path, f"cannot be read ({error.strerror or error})") from None
    if expected_sha256 is not None and _sha256(data) != expected_sha256:
        raise CorruptVectors(path, "checksum mismatch (sha256 differs from the index)")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptVectors(path, f"not valid JSON ({error})") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise CorruptVectors(path, f"not a {SCHEMA} document")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise CorruptVectors(
            path,
            f"schema_version {document.get('schema_version')!r}, this refcnn reads "
            f"{SCHEMA_VERSION}",
        )
    return document


def load(directory: Path | str, ops: Iterable[str] | None = None) -> VectorSet:
    """Read the index and the manifests of ``ops`` (default all) and verify the checksum of
    every file they list; raises :class:`CorruptVectors` naming the first bad file."""
    root = Path(directory)
    if not (root / INDEX).is_file():
        raise FileNotFoundError(f"no vector set at {root} (no {INDEX})")
    index = _read_json(root / INDEX)
    entries = {entry["op"]: entry for entry in index["ops"]}
    wanted = list(entries) if ops is None else list(ops)
    unknown = [op for op in wanted if op not in entries]
    if unknown:
        raise KeyError(f"ops not in the vector set {root}: {unknown}")
    manifests = {}
    for op in wanted:
        manifest = _read_json(root / entries[op]["manifest"], entries[op]["sha256"])
        for relative, checksum in manifest["files"].items():
            path = root / op / relative
            try:
                data = path.read_bytes()
            except OSError as error:
                raise CorruptVectors(path, f"cannot be read ({error.strerror or error})") from None
            if _sha256(data) != checksum:
                raise CorruptVectors(path, "checksum mismatch (sha256 differs from the manifest)")
        manifests[op] = manifest
    return VectorSet(root, index, manifests)


# --- checking a candidate ----------------------------------------------------------------------


def select_ops(names: str | None) -> list[str] | None:
    """``--ops``: comma-separated op names or families, in catalog order; None for all."""
    if not names:
        return None
    wanted = {name.strip() for name in names.split(",") if name.strip()}
    known = {spec.name for spec in catalog.OPS} | {spec.family for spec in catalog.OPS}
    unknown = sorted(wanted - known)
    if unknown:
        raise KeyError(f"--ops: no op or family {unknown}; see python -m refcnn ops")
    return [spec.name for spec in catalog.OPS if spec.name in wanted or spec.family in wanted]


def load_candidate(target: str, style: str = "auto") -> Adapter:
    """The candidate called ``target`` as ``python -m refcnn check`` loads it (the oracle's
    :func:`~refcnn.testing.oracle.load_candidate`); without the oracle, ``refcnn`` and
    ``torch`` only."""
    try:
        oracle = importlib.import_module("refcnn.testing.oracle")
    except ImportError:
        oracle = None
    if oracle is not None:
        candidate: Adapter = oracle.load_candidate(target, style)
        return candidate
    if target == "refcnn":
        from refcnn.testing.adapters import Reference

        return Reference()
    if target == "torch":
        from refcnn.testing.adapters.torch_adapter import Torch

        return Torch("cpu")
    raise ValueError(f"cannot load {target!r}: this refcnn has no oracle (refcnn and torch only)")


@dataclass
class OpResult:
    """A candidate's outcome on one op's vectors."""

    op: str
    status: str = "pass"  # pass, FAIL, not provided, skipped
    cases: int = 0  # case × dtype runs that were judged
    skipped: int = 0  # case × dtype runs the candidate's API cannot express
    failures: list[str] = field(default_factory=list)
    worst_ratio: dict[str, float] = field(default_factory=dict)
    note: str = ""


def _declared_convention_ops(candidate: Any) -> dict[str, str]:
    """{op: convention name} for the conventions the candidate declares: the vectors hold the
    catalog's default semantics, so such an op is not judged by them."""
    declared = tuple(getattr(candidate, "conventions", ()) or ())
    if not declared:
        return {}
    try:  # the oracle's module of conventions (name -> variant of an op)
        conventions = importlib.import_module("refcnn.testing.conventions")
    except ImportError:
        return {}
    ops = {}
    for name in declared:
        try:
            ops[conventions.get(name).op] = name
        except (AttributeError, KeyError):
            continue
    return ops


def check(
    vectors: VectorSet,
    candidate: Adapter,
    ops: Iterable[str] | None = None,
    dtypes: Sequence[str] = DTYPES,
) -> list[OpResult]:
    """Run ``candidate`` on every case of ``ops`` (default all in the set) in each dtype and
    compare its forward and every gradient with the expected values within the stored bounds
    (plus the allowance of a known deviation the op declares for this candidate)."""
    conventions = _declared_convention_ops(candidate)
    results = []
    for op in vectors.manifests if ops is None else ops:
        spec = catalog.get(op)
        result = OpResult(op)
        results.append(result)
        if not provides(candidate, spec):
            result.status = "not provided"
            continue
        if op in conventions:
            result.status = "skipped"
            result.note = f"declares the convention {conventions[op]!r}"
            continue
        manifest = vectors.manifests[op]
        for case in vectors.cases(op):
            for dtype in dtypes:
                _check_case(spec, manifest, case, dtype, candidate, result)
        if result.failures:
            result.status = "FAIL"
        elif result.cases == 0:
            result.status = "skipped"
            result.note = "no case within the candidate's API"
    return results


def _check_case(
    spec: OpSpec,
    manifest: Mapping[str, Any],
    case: VectorCase,
    dtype: str,
    candidate: Adapter,
    result: OpResult,
) -> None:
    where = f"case {case.id} [{dtype}] ({case.label})"
    sample = case.sample(dtype)
    for value in sample.inputs.values():
        if value is not None:  # an in-place write raises: it would spoil the backward's inputs
            value.setflags(write=False)
    prepare = getattr(candidate, "prepare", None)
    if prepare is not None:
        prepared = prepare(spec, sample)
        if prepared is None or not _same_arguments(prepared, sample):
            result.skipped += 1  # outside its API, or it supplies inputs of its own
            return
    versus = f"{candidate.name} vs refcnn vectors"
    actual: dict[str, Any] = {}
    try:
        actual["out"] = candidate.forward(spec, sample.inputs, sample.kwargs)
        if case.upstream is not None:
            upstream = case.upstream.astype(dtype)
            upstream.setflags(write=False)
            for name, grad in candidate.backward(
                spec, sample.inputs, sample.kwargs, upstream
            ).items():
                actual[f"grad_{name}"] = grad
    except Unsupported:  # the adapter says its candidate's API cannot express this case
        result.skipped += 1
        return
    except Exception as error:  # a candidate's exception is a finding, not a crash
        result.cases += 1
        if isinstance(error, ValueError) and "read-only" in str(error):
            result.failures.append(f"{where}: writes into an input (passed read-only): {error}")
        else:
            result.failures.append(f"{where}: raised {type(error).__name__}: {error}")
        return
    result.cases += 1
    deviations = [KnownDeviation(**entry) for entry in manifest["known_deviations"]]
    for quantity, expected in case.expected.items():
        bound = case.bounds[dtype][quantity]
        reasons = []
        for deviation in deviations:
            if deviation.applies(candidate.name, dtype, quantity):
                bound = bound + deviation.relative * np.abs(expected)
                reasons.append(deviation.reason)
        context = Context(sample, "check_vectors", quantity, versus, "; ".join(reasons))
        got = actual.get(quantity)
        try:
            if not isinstance(got, np.ndarray | np.generic):  # a NumPy scalar is a 0-d result
                what = "nothing" if got is None else f"a {type(got).__name__}"
                fail(context, f"{quantity}: the candidate returned {what}, expected an array")
            record = assert_within_bound(got, expected, bound, context, expected_dtype=dtype)
        except AssertionError as error:
            lines = str(error).splitlines()
            result.failures.append(f"{where}: {lines[0]}")
            result.failures.extend(f"    {line.strip()}" for line in lines[1:3])
            continue
        ratio = result.worst_ratio.get(dtype, 0.0)
        result.worst_ratio[dtype] = max(ratio, record.worst_ratio)


def _same_arguments(prepared: Sample, sample: Sample) -> bool:
    if prepared.kwargs != sample.kwargs or prepared.inputs.keys() != sample.inputs.keys():
        return False
    for name, value in sample.inputs.items():
        other = prepared.inputs[name]
        if (value is None) != (other is None):
            return False
        if value is not None and not np.array_equal(value, other):
            return False
    return True


def format_results(results: Sequence[OpResult], stream: Any = None) -> None:
    """Per-op pass/fail lines, the failures under their op, and a total (to stdout)."""
    stream = sys.stdout if stream is None else stream
    width = max((len(r.op) for r in results), default=0)
    for r in results:
        ratios = ", ".join(f"{d} {r.worst_ratio[d]:.3g}" for d in DTYPES if d in r.worst_ratio)
        detail = {
            "pass": f"{r.cases} runs, worst observed/bound {ratios or '-'}",
            "FAIL": f"{sum(not f.startswith(' ') for f in r.failures)} failing comparisons "
            f"in {r.cases} runs",
            "not provided": "",
            "skipped": r.note,
        }[r.status]
        if r.skipped:
            detail += f" ({r.skipped} runs outside the candidate's API skipped)"
        print(f"  {r.op:<{width}}  {r.status:<12}  {detail}".rstrip(), file=stream)
        for line in r.failures[:12]:
            print(f"      {line}", file=stream)
        if len(r.failures) > 12:
            print(f"      ... {len(r.failures) - 12} more lines", file=stream)
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "FAIL", "not provided")}
    skipped = sum(r.status == "skipped" for r in results)
    print(
        f"{counts['pass']} ops passed, {counts['FAIL']} failed, {counts['not provided']} not "
        f"provided, {skipped} skipped",
        file=stream,
    )
