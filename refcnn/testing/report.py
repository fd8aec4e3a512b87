"""Turn discrepancy records into reports/conformance.{html,md,json}, and diff against a baseline.

One row per (op, check, output, dtype): how many examples ran, how many failed, the worst
observed/bound ratio (≤ 1 passes; the closer to 1, the tighter the bound), the worst absolute
and relative errors, and a histogram of every example's ratio. A failing row carries the message
and repro of its LAST failing record: hypothesis replays the shrunk (smallest) counterexample
last, so that is the one shown.

Three renderings of one report dict (see docs/reports.md for its schema):

* ``conformance.json``: all of it, strict JSON (±inf written as the strings "inf"/"-inf");
* ``conformance.md``: a summary short enough for a CI job summary;
* ``conformance.html``: one self-contained page (inline CSS, hand-written inline SVG plots).

A baseline is the same data cut down to what a diff needs (:func:`to_baseline`);
:func:`compare` lists the rows that got worse.
"""

from __future__ import annotations

import ctypes
import hashlib
import html
import json
import math
import os
import platform
import subprocess
import textwrap
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2
SCHEMA_FILE = Path(__file__).with_name("conformance.schema.json")

# Histogram of log10(observed/bound) per row: BINS_PER_DECADE bins per decade from 10^LOG10_LOW
# to 10^LOG10_HIGH, right-closed, so that a ratio of exactly 1 (which passes) falls left of the
# bound. counts[0] holds ratios in (0, 10^LOG10_LOW], counts[-1] those above 10^LOG10_HIGH (inf
# included); exact results (ratio 0) are counted apart, in ``exact``.
LOG10_LOW, LOG10_HIGH, BINS_PER_DECADE = -8, 2, 4
HISTOGRAM_BINS = (LOG10_HIGH - LOG10_LOW) * BINS_PER_DECADE + 2

# Baseline diff: a row regresses when its worst ratio exceeds RATIO_FACTOR times the baseline's,
# or RATIO_FACTOR times RATIO_FLOOR for a row whose baseline ratio is below the floor. Ratios
# are compared only where they can repeat: same derandomized profile, same platform (BLAS
# kernels, torch backend, versions) and the same examples. There they repeat exactly, so what
# moves them is a change to the numerics; why 2 and 0.05: see docs/reports.md.
RATIO_FACTOR = 2.0
RATIO_FLOOR = 0.05

STATUS_RANK = {"pass": 0, "known deviation": 1, "fail": 2}  # larger is worse
DTYPE_ORDER = ("float64", "float32")
OTHER_FAMILY = "other"  # ops the catalog does not know (a removed op, a test's own records)


# --- numbers ----------------------------------------------------------------------------------


def _finite_or_none(value: Any) -> float | None:
    """A record's number as a float; None when it has none (missing, null or NaN: a crash)."""
    if value is None:
        return None
    if isinstance(value, str):  # a strict-JSON report or baseline: "inf" / "-inf"
        value = float(value)
    number = float(value)
    return None if math.isnan(number) else number


def _strict(data: Any) -> Any:
    """``data`` with ±inf as the strings "inf"/"-inf" and NaN as null: JSON without extensions."""
    if isinstance(data, float):
        if math.isnan(data):
            return None
        if math.isinf(data):
            return "inf" if data > 0 else "-inf"
        return data
    if isinstance(data, dict):
        return {key: _strict(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_strict(value) for value in data]
    return data


def _number(value: Any) -> str:
    """A ratio or error for people: 3 significant digits, "inf", or "—" for no number."""
    number = _finite_or_none(value)
    if number is None:
        return "—"
    if math.isinf(number):
        return "inf"
    return "0" if number == 0 else f"{number:.3g}"


def dumps(data: Any) -> str:
    """Strict JSON, indented one space per level, a list of plain numbers (a histogram) on one
    line."""
    return _pretty(_strict(data), 0)


def _pretty(value: Any, depth: int) -> str:
    inner, outer = " " * (depth + 1), " " * depth
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k)}: {_pretty(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + outer + "}"
    if isinstance(value, list) and any(isinstance(v, dict | list | str) for v in value):
        items = [inner + _pretty(v, depth + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + outer + "]"
    return json.dumps(value, allow_nan=False)


def _count(value: int) -> str:
    return f"{value:,}"


def _plural(value: int, noun: str) -> str:
    """ "1 test", "2 tests", "1,054 rows"."""
    return f"{value:,} {noun}" if value == 1 else f"{value:,} {noun}s"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours:,} h {minutes} min"
    return f"{minutes} min {rest} s" if minutes else f"{seconds:.1f} s"


def _when(moment: str) -> str:
    """An ISO time in UTC as "2026-11-24 10:29:22 UTC"."""
    return moment.replace("T", " ").replace("+00:00", " UTC")


# --- rows ---------------------------------------------------------------------------------------


def histogram_bin(ratio: float) -> int:
    """Index into ``Row.histogram`` of a positive ratio (see LOG10_LOW above)."""
    if math.isinf(ratio) or ratio > 10.0**LOG10_HIGH:
        return HISTOGRAM_BINS - 1
    index = math.ceil(BINS_PER_DECADE * (math.log10(ratio) - LOG10_LOW))
    return min(max(index, 0), HISTOGRAM_BINS - 1)


def bin_edges(index: int) -> tuple[float, float]:
    """The interval (low, high] of histogram bin ``index`` (0 for the lowest, inf for the top)."""
    if index == 0:
        return 0.0, 10.0**LOG10_LOW
    if index == HISTOGRAM_BINS - 1:
        return 10.0**LOG10_HIGH, math.inf
    return (
        10.0 ** (LOG10_LOW + (index - 1) / BINS_PER_DECADE),
        10.0 ** (LOG10_LOW + index / BINS_PER_DECADE),
    )


@dataclass
class Row:
    """Every record of one (op, check, output, dtype), aggregated."""

    op: str
    check: str
    quantity: str
    dtype: str
    family: str = OTHER_FAMILY
    examples: int = 0
    failures: int = 0
    worst_ratio: float | None = None  # None until an example has a number
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    worst_params: str = ""  # the example with the worst ratio
    worst_seed: int = 0
    worst_index: list[int] = field(default_factory=list)
    exact: int = 0  # examples that matched exactly (ratio 0)
    unmeasured: int = 0  # examples without a number (the candidate crashed)
    histogram: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BINS)
    failure: dict[str, Any] = field(default_factory=dict)
    deviation: str = ""
    sample_sum: int = 0  # order-free sum of the examples' hashes: see ``samples``

    @property
    def status(self) -> str:
        if self.failures:
            return "fail"
        return "known deviation" if self.deviation else "pass"

    @property
    def samples(self) -> str:
        """A digest of which examples ran (their params and seeds, in any order): equal digests
        mean the same examples, so that their ratios may be compared one to one."""
        return f"{self.sample_sum:016x}"

    def add(self, record: Mapping[str, Any]) -> None:
        self.examples += 1
        identity = f"{record['params']}|{record['seed']}".encode()
        self.sample_sum = (self.sample_sum + _hash64(identity)) % 2**64
        ratio = _finite_or_none(record.get("worst_ratio"))
        if ratio is None:
            self.unmeasured += 1
        elif ratio == 0:
            self.exact += 1
        else:
            self.histogram[histogram_bin(ratio)] += 1
        if ratio is not None and (self.worst_ratio is None or ratio >= self.worst_ratio):
            self.worst_ratio = ratio
            self.worst_params, self.worst_seed = record["params"], record["seed"]
            self.worst_index = list(record.get("worst_index") or [])
        self.max_abs_error = _larger(self.max_abs_error, record.get("max_abs_error"))
        self.max_rel_error = _larger(self.max_rel_error, record.get("max_rel_error"))
        if record.get("deviation"):
            self.deviation = record["deviation"]
        if not record["passed"]:
            self.failures += 1
            self.failure = {key: record[key] for key in ("params", "seed", "message", "repro")}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["sample_sum"]
        return {**data, "samples": self.samples, "status": self.status}


def _hash64(data: bytes) -> int:
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "little")


def _larger(current: float | None, value: Any) -> float | None:
    number = _finite_or_none(value)
    if number is None:
        return current
    return number if current is None else max(current, number)


def catalog_families() -> dict[str, str]:
    """{op name: family}, in catalog order."""
    from refcnn.testing import catalog

    return {spec.name: spec.family for spec in catalog.OPS}


def summarize(
    records: Iterable[Mapping[str, Any]], families: Mapping[str, str] | None = None
) -> list[Row]:
    """Aggregate records into rows, failures first, then by op, check, output and dtype."""
    families = catalog_families() if families is None else families
    rows: dict[tuple[str, str, str, str], Row] = {}
    for record in records:
        key = (record["op"], record["check"], record["quantity"], record["dtype"])
        if key not in rows:
            rows[key] = Row(*key, family=families.get(record["op"], OTHER_FAMILY))
        rows[key].add(record)
    return sorted(
        rows.values(),
        key=lambda r: (-STATUS_RANK[r.status], r.op, r.check, r.quantity, r.dtype),
    )


# --- the environment of a run ---------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_revision(directory: Path | None = None) -> str:
    """``git rev-parse --short HEAD`` of the checkout refcnn runs from, "+dirty" when tracked files
    changed since; "unknown" outside a git checkout."""
    directory = directory or Path(__file__).resolve().parents[2]
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{revision}+dirty" if changes else revision or "unknown"


def _openblas_core() -> str | None:
    """The CPU kernel set a DYNAMIC_ARCH OpenBLAS picked at run time (it fixes summation order)."""
    import numpy as np

    libraries = Path(np.__file__).parent.with_name("numpy.libs")
    for library in sorted(libraries.glob("lib*openblas*.so*")):
        try:
            handle = ctypes.CDLL(str(library))
        except OSError:
            continue
        for symbol in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename"):
            function = getattr(handle, symbol, None)
            if function is not None:
                function.restype = ctypes.c_char_p
                name: bytes = function()
                return name.decode()
    return None


def blas() -> str:
    """NumPy's BLAS as its build configuration names it, with the run-time kernel when known."""
    import numpy as np

    try:
        config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        description = f"{config['name']} {config.get('version', '')}".strip()
    except (KeyError, TypeError, ValueError):
        return "unknown"
    core = _openblas_core()
    return f"{description} ({core} kernels)" if core else description


def torch_backend() -> str:
    """How torch computes on this CPU: its BLAS, vector capability and thread count."""
    try:
        import torch
    except ImportError:
        return "not installed"
    library = "MKL" if torch.backends.mkl.is_available() else "no MKL"  # type: ignore[no-untyped-call]
    capability = torch.backends.cpu.get_cpu_capability()
    return f"{library}, {capability}, {torch.get_num_threads()} threads"


def seed_policy(profile: str) -> str:
    """How hypothesis seeds the named profile: "derandomized" or "random"."""
    try:
        from hypothesis import settings
        from hypothesis.errors import InvalidArgument

        try:
            chosen = settings.get_profile(profile)
        except InvalidArgument:  # not registered in this process (the command line)
            from refcnn.testing.profiles import register_profiles

            register_profiles()
            chosen = settings.get_profile(profile)
    except Exception:  # hypothesis missing or an unknown profile
        return "unknown"
    return "derandomized" if chosen.derandomize else "random"


def environment(profile: str | None, seed: str | None = None) -> dict[str, str]:
    """Versions and settings that decide a run's numbers. The pytest controller stores this with
    the records (see conftest.py); the report falls back to the current process."""
    profile = profile or "unknown"
    env = {
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "torch": _version("torch"),
        "hypothesis": _version("hypothesis"),
        "refcnn": _version("refcnn"),
        "refcnn_revision": git_revision(),
        "blas": blas(),
        "torch_backend": torch_backend(),
        "platform": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "hypothesis_profile": profile,
        "hypothesis_seed": seed or seed_policy(profile),
    }
    # every REFCNN_* setting (REFCNN_PROFILE, REFCNN_IMPL, ...) decides what ran
    env.update({k: v for k, v in sorted(os.environ.items()) if k.startswith("REFCNN_")})
    target = os.environ.get("REFCNN_IMPL")
    if target:
        env.update(_candidate_description(target, os.environ.get("REFCNN_STYLE", "auto")))
    return env


def _candidate_description(target: str, style: str) -> dict[str, str]:
    """``candidate_<key>`` entries (name, path, version) of the REFCNN_IMPL candidate."""
    from refcnn.testing import oracle

    try:
        described = oracle.describe(oracle.load_candidate(target, style))
    except oracle.UsageError as error:
        return {"candidate_error": str(error)}
    return {f"candidate_{key}": value for key, value in described.items()}


# --- the report dict ------------------------------------------------------------------------


def _candidates(rows: Sequence[Row]) -> list[str]:
    """Implementations compared with refcnn: the X of every ``matches_X`` check."""
    names = {r.check.removeprefix("matches_") for r in rows if r.check.startswith("matches_")}
    return sorted(names - {"definition", "candidate"})


def _per_dtype(rows: Sequence[Row]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = summary.setdefault(
            row.dtype, {"rows": 0, "examples": 0, "failing_rows": 0, "worst_ratio": 0.0}
        )
        entry["rows"] += 1
        entry["examples"] += row.examples
        entry["failing_rows"] += row.status == "fail"
        entry["worst_ratio"] = _larger(entry["worst_ratio"], row.worst_ratio)
    return summary


def _per_family(rows: Sequence[Row], order: Sequence[str]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for family in [*order, *sorted({r.family for r in rows} - set(order))]:
        members = [r for r in rows if r.family == family]
        if not members:
            continue
        statuses = [r.status for r in members]
        summary[family] = {
            "ops": len({r.op for r in members}),
            "rows": len(members),
            "passed": statuses.count("pass"),
            "failing_rows": statuses.count("fail"),
            "known_deviation_rows": statuses.count("known deviation"),
            "examples": sum(r.examples for r in members),
            "worst_ratio": max((r.worst_ratio or 0.0 for r in members), default=0.0),
        }
    return summary


def _empty_family() -> dict[str, Any]:
    """A family with failed tests but no records: its ops failed before any comparison."""
    return {
        "ops": 0,
        "rows": 0,
        "passed": 0,
        "failing_rows": 0,
        "known_deviation_rows": 0,
        "examples": 0,
        "worst_ratio": None,
    }


def _ops(rows: Sequence[Row], curves: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per op: its rows' totals and, per dtype, the merged histogram of every example's ratio."""
    ops: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = ops.setdefault(
            row.op,
            {
                "op": row.op,
                "family": row.family,
                "rows": 0,
                "examples": 0,
                "failing_rows": 0,
                "worst_ratio": 0.0,
                "distribution": {},
                "fd_curves": curves.get(row.op, {}),
            },
        )
        entry["rows"] += 1
        entry["examples"] += row.examples
        entry["failing_rows"] += row.status == "fail"
        entry["worst_ratio"] = _larger(entry["worst_ratio"], row.worst_ratio)
        merged = entry["distribution"].setdefault(
            row.dtype, {"exact": 0, "unmeasured": 0, "counts": [0] * HISTOGRAM_BINS}
        )
        merged["exact"] += row.exact
        merged["unmeasured"] += row.unmeasured
        merged["counts"] = [a + b for a, b in zip(merged["counts"], row.histogram, strict=True)]
    return list(ops.values())


def _run(times: Sequence[float], rows: Sequence[Row]) -> dict[str, Any]:
    def moment(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")

    candidates = _candidates(rows)
    return {
        "candidates": candidates,
        "title": "refcnn vs " + ", ".join(candidates) if candidates else "refcnn (properties)",
        "records": sum(r.examples for r in rows),
        "started": moment(min(times)) if times else None,
        "finished": moment(max(times)) if times else None,
        "wall_time_s": max(times) - min(times) if times else None,
    }


def to_json(
    rows: list[Row],
    profile: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    times: Sequence[float] = (),
    curves: Mapping[str, Any] | None = None,
    family_order: Sequence[str] = (),
    outcomes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The report as a dict (non-finite floats still floats: :func:`_strict` is applied on
    writing). ``env`` defaults to this process's :func:`environment`; ``outcomes`` are pytest's
    (see records.read_outcomes), None when the run stored none."""
    statuses = [r.status for r in rows]
    per_family = _per_family(rows, family_order)
    if outcomes is not None:
        for failure in outcomes["failures"]:
            entry = per_family.setdefault(failure["family"], _empty_family())
            entry["failed_tests"] = entry.get("failed_tests", 0) + 1
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "report",
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "run": _run(times, rows),
        "environment": dict(env) if env is not None else environment(profile),
        "summary": {
            "rows": len(rows),
            "passed": statuses.count("pass"),
            "failing_rows": statuses.count("fail"),
            "known_deviation_rows": statuses.count("known deviation"),
            "examples": sum(r.examples for r in rows),
            "per_dtype": _per_dtype(rows),
            "per_family": per_family,
            "failed_tests": None if outcomes is None else outcomes["failed"],
        },
        "pytest": dict(outcomes) if outcomes is not None else None,
        "histogram": {
            "log10_low": LOG10_LOW,
            "log10_high": LOG10_HIGH,
            "bins_per_decade": BINS_PER_DECADE,
        },
        "ops": _ops(rows, curves or {}),
        "rows": [row.to_dict() for row in rows],
        "baseline": None,
    }


def build(
    records: Iterable[Mapping[str, Any]],
    profile: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    curves: Mapping[str, Any] | None = None,
    families: Mapping[str, str] | None = None,
    outcomes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The report dict of ``records`` (read once)."""
    families = catalog_families() if families is None else families
    kept = list(records)
    times = [float(r["time"]) for r in kept if r.get("time") is not None]
    order = list(dict.fromkeys(families.values()))
    return to_json(
        summarize(kept, families),
        profile,
        env=env,
        times=times,
        curves=curves,
        family_order=order,
        outcomes=outcomes,
    )


# --- finite-difference error against the step size --------------------------------------------

FD_STEPS = tuple(10.0 ** (-k / 2) for k in range(2, 19))  # 10^-1 … 10^-9, half a decade apart
FD_MIN_ELEMENTS = 12  # the sample: the simplest one with this many differentiable elements


def _fd_params(spec: Any) -> Any:
    """The simplest params (hypothesis's shrinking order) with FD_MIN_ELEMENTS differentiable
    elements: a fixed small sample, neither degenerate (one element) nor extreme (the catalog's
    first edge cases probe overflow with |x| ~ 1000, where the curve says little)."""
    from hypothesis import HealthCheck, find, settings

    def big_enough(params: Any) -> bool:
        shapes, _ = spec.layout(params)
        sizes = [math.prod(shapes[n]) for n in spec.differentiable if shapes.get(n) is not None]
        return bool(sum(sizes) >= FD_MIN_ELEMENTS)

    quiet = settings(database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    return find(spec.params("small"), big_enough, settings=quiet)


def fd_curve(spec: Any, params: Any, dtype: str) -> dict[str, Any]:
    """|D(h) − analytic| of checks.directional_fd's sample for each h in FD_STEPS.

    D(h) and its error bound come from checks._fd_quotient, exactly as the check computes them
    (Richardson-extrapolated for non-polynomial ops), along the check's random direction.
    """
    import numpy as np

    from refcnn.testing import checks

    sample = spec.sample(params, 0, dtype)
    upstream = checks._upstream(spec, sample)
    grads, _ = checks._analytic(spec, sample, upstream)
    # The direction as checks.directional_fd draws it (it has no helper of its own for this).
    raw = {name: sample.random(sample.inputs[name].shape, f"direction {name}") for name in grads}
    largest = max((float(np.max(np.abs(v), initial=0.0)) for v in raw.values()), default=1.0)
    direction = {name: np.asarray((v / largest).astype(dtype)) for name, v in raw.items()}
    analytic = sum(checks._dot(grads[n], direction[n]) for n in grads)
    errors: list[float | None] = []
    bounds: list[float | None] = []
    skipped: list[dict[str, Any]] = []
    for step in FD_STEPS:
        try:
            quotient, bound = checks._fd_quotient(spec, sample, upstream, direction, step)
        except ValueError as error:  # x ± h·v left the op's domain (a probability above 1)
            skipped.append({"step": step, "error": str(error)})
            quotient, bound = math.nan, math.nan
        errors.append(_finite_or_none(abs(quotient - analytic)))
        bounds.append(_finite_or_none(bound))
    polynomial = spec.polynomial_degree is not None and spec.polynomial_degree <= 2
    return {
        "skipped": skipped,
        "params": repr(params),
        "seed": 0,
        "steps": list(FD_STEPS),
        "errors": errors,
        "bounds": bounds,
        "check_step": checks._step(spec, sample),
        "extrapolated": not polynomial,
        "analytic": analytic,
    }


def fd_curves(specs: Iterable[Any] | None = None) -> dict[str, dict[str, Any]]:
    """{op: {dtype: curve}} for every differentiable op; a curve that cannot be computed holds
    {"error": message} instead."""
    import numpy as np

    if specs is None:
        from refcnn.testing import catalog

        specs = catalog.OPS
    curves: dict[str, dict[str, Any]] = {}
    for spec in specs:
        if spec.backward is None:
            continue
        per_dtype: dict[str, Any] = {}
        try:
            params = _fd_params(spec)
        except Exception as error:  # no sample that large: say so instead of a plot
            curves[spec.name] = {"float64": {"error": f"{type(error).__name__}: {error}"}}
            continue
        for dtype in DTYPE_ORDER:
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")  # overflow at h = 0.1 is part of the picture
                    per_dtype[dtype] = fd_curve(spec, params, dtype)
            except Exception as error:
                per_dtype[dtype] = {"error": f"{type(error).__name__}: {error}"}
        curves[spec.name] = per_dtype
    return curves


# --- baseline ---------------------------------------------------------------------------------

_BASELINE_FIELDS = (
    "op",
    "check",
    "quantity",
    "dtype",
    "status",
    "examples",
    "worst_ratio",
    "samples",
)


def _key(row: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (row["op"], row["check"], row["quantity"], row["dtype"])


def _label(key: Sequence[str]) -> str:
    return " · ".join(key)


def to_baseline(report: Mapping[str, Any]) -> dict[str, Any]:
    """What a later run is compared with: per row its status, examples and worst ratio."""
    rows = sorted((dict((k, row[k]) for k in _BASELINE_FIELDS) for row in report["rows"]), key=_key)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "baseline",
        "generated": report["generated"],
        "run": report["run"],
        "environment": report["environment"],
        "rows": rows,
    }


def baseline_text(report: Mapping[str, Any]) -> str:
    """The baseline as strict JSON with one row per line, so that git diffs of it read well."""
    baseline = _strict(to_baseline(report))
    rows = baseline.pop("rows")
    head = json.dumps(baseline, indent=1, sort_keys=True)
    body = ",\n".join("  " + json.dumps(row, sort_keys=True, allow_nan=False) for row in rows)
    return head[:-2] + ',\n "rows": [\n' + body + "\n ]\n}\n"


def load(path: Path) -> dict[str, Any]:
    """A report or baseline written by this module (schema version 2)."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if data.get("schema_version") != SCHEMA_VERSION or "rows" not in data:
        raise ValueError(
            f"{path} is not a schema-version-{SCHEMA_VERSION} refcnn report or baseline "
            f"(schema_version={data.get('schema_version')!r})"
        )
    return data


# What decides the order of summation, and so the rounding errors: ratios of two runs compare
# only when all of these agree (measured: another kernel set moved a row from exactly 0 to 0.49).
PLATFORM_FIELDS = ("numpy", "blas", "torch", "torch_backend", "platform")


def _mismatches(old: Mapping[str, Any], new: Mapping[str, Any], fields: Sequence[str]) -> list[str]:
    return [
        f"{name} {old.get(name, 'unknown')} → {new.get(name, 'unknown')}"
        for name in fields
        if old.get(name) != new.get(name)
    ]


def compare(
    report: Mapping[str, Any],
    baseline: Mapping[str, Any],
    source: str = "baseline",
    factor: float = RATIO_FACTOR,
) -> dict[str, Any]:
    """What changed since ``baseline``.

    Regressions: a status that got worse (pass → known deviation → fail); a row that disappeared;
    a worst ratio above ``factor`` × max(baseline's, RATIO_FLOOR). New rows are listed apart.
    The examples, and so the row set, repeat only under the same derandomized profile; the
    ratios only under that profile on the same platform (PLATFORM_FIELDS). What cannot be
    compared is listed as "not compared", with the reason in ``note``.
    """
    old_env, new_env = baseline["environment"], report["environment"]
    profile_changes = _mismatches(old_env, new_env, ("hypothesis_profile", "hypothesis_seed"))
    if old_env.get("hypothesis_seed") != "derandomized":
        profile_changes.append("the baseline's profile is not derandomized")
    platform_changes = _mismatches(old_env, new_env, PLATFORM_FIELDS)
    rows_compared = not profile_changes
    ratios_compared = rows_compared and not platform_changes
    note = "; ".join(profile_changes + platform_changes)
    before = {_key(row): row for row in baseline["rows"]}
    after = {_key(row): row for row in report["rows"]}
    regressions: list[dict[str, Any]] = []
    not_compared: list[dict[str, Any]] = []
    improved: list[dict[str, Any]] = []

    def change(key: tuple[str, ...], kind: str, old: Any, new: Any) -> dict[str, Any]:
        return {"row": _label(key), "kind": kind, "before": old, "after": new}

    for key, row in after.items():
        old = before.get(key)
        if old is None:
            continue
        rank, old_rank = STATUS_RANK[row["status"]], STATUS_RANK[old["status"]]
        if rank > old_rank:
            regressions.append(change(key, "status", old["status"], row["status"]))
        elif rank < old_rank:
            improved.append(change(key, "status", old["status"], row["status"]))
        else:
            ratio = _finite_or_none(row["worst_ratio"]) or 0.0
            old_ratio = _finite_or_none(old["worst_ratio"]) or 0.0
            if ratio > factor * max(old_ratio, RATIO_FLOOR):
                entry = change(key, "ratio", old_ratio, ratio)
                same_examples = row.get("samples") == old.get("samples", row.get("samples"))
                if ratios_compared and same_examples:
                    regressions.append(entry)
                else:
                    entry["why"] = note if not ratios_compared else "other examples drawn"
                    not_compared.append(entry)
    for key in sorted(before.keys() - after.keys()):
        entry = change(key, "disappeared", before[key]["status"], None)
        if rows_compared:
            regressions.append(entry)
        else:
            entry["why"] = note
            not_compared.append(entry)
    return {
        "source": source,
        "generated": baseline.get("generated"),
        "revision": old_env.get("refcnn_revision", "unknown"),
        "profile": old_env.get("hypothesis_profile"),
        "rows_compared": rows_compared,
        "ratios_compared": ratios_compared,
        "note": note,
        "factor": factor,
        "floor": RATIO_FLOOR,
        "regressions": regressions,
        "not_compared": not_compared,
        "improved": improved,
        "new": [_label(key) for key in sorted(after.keys() - before.keys())],
    }


def describe_change(change: Mapping[str, Any]) -> str:
    """One line for a baseline change: "op · check · output · dtype: pass → fail"."""
    kind = change["kind"]
    if kind == "status":
        what = f"{change['before']} → {change['after']}"
    elif kind == "ratio":
        before, after = change["before"], change["after"]
        growth = f"×{after / before:.3g}" if before else "from 0"
        what = f"worst observed/bound {_number(before)} → {_number(after)} ({growth})"
    else:
        what = f"disappeared (was {change['before']})"
    why = f" (not compared: {change['why']})" if change.get("why") else ""
    return f"{change['row']}: {what}{why}"


REFRESH_HINT = (
    "If the change is deliberate, refresh the baseline from a full ci-profile run: "
    "REFCNN_PROFILE=ci nox -s conformance, then "
    "python -m refcnn report --save-baseline reports/baseline/refcnn-vs-torch.json, "
    "and commit the file with the change that explains it."
)


# --- Markdown ---------------------------------------------------------------------------------

MARKDOWN_FAILURE_DETAILS = 10  # failures shown with message and repro; the rest are in the HTML
MARKDOWN_CHANGES = 20  # baseline changes listed other than regressions (all are in the JSON)


def _headline(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    parts = [f"{_count(s['passed'])} pass"]
    if s["known_deviation_rows"]:
        parts.append(f"{_count(s['known_deviation_rows'])} known deviation")
    parts.append(f"{_count(s['failing_rows'])} fail")
    failed = s.get("failed_tests")
    failed_tests = f"; {_plural(failed, 'test')} failed" if failed else ""
    return f"{_count(s['rows'])} rows: " + ", ".join(parts) + failed_tests


def _setting_line(report: Mapping[str, Any]) -> str:
    env, run = report["environment"], report["run"]
    return (
        f"Profile `{env.get('hypothesis_profile')}` ({env.get('hypothesis_seed', 'unknown')}) · "
        f"{_when(run['started'] or report['generated'])} · wall time "
        f"{_duration(run['wall_time_s'])} · refcnn {env.get('refcnn_revision', 'unknown')} · "
        f"torch {env.get('torch')} ({env.get('torch_backend', 'unknown')}) · "
        f"NumPy {env.get('numpy')}, {env.get('blas', 'BLAS unknown')} · Python {env.get('python')}"
    )


def _markdown_rows(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = [
        "| op | check | output | dtype | examples | worst observed/bound | status |",
        "|---|---|---|---|---:|---:|---|",
    ]
    for row in rows:
        status = "**FAIL**" if row["status"] == "fail" else row["status"]
        lines.append(
            f"| {row['op']} | {row['check']} | {row['quantity']} | {row['dtype']} | "
            f"{_count(row['examples'])} | {_number(row['worst_ratio'])} | {status} |"
        )
    return lines


def _markdown_baseline(comparison: Mapping[str, Any]) -> list[str]:
    regressions = comparison["regressions"]
    lines = [
        "",
        f"## Baseline: {len(regressions)} regression{'s' if len(regressions) != 1 else ''}",
        "",
        f"Against `{comparison['source']}` (refcnn {comparison['revision']}, profile "
        f"`{comparison['profile']}`); a ratio regresses above {comparison['factor']:g}× "
        f"max(baseline, {comparison['floor']:g}).",
    ]
    if not comparison["ratios_compared"]:
        compared = "status changes" + ("" if comparison["rows_compared"] else " only")
        if comparison["rows_compared"]:
            compared += " and missing rows"
        lines += [
            "",
            f"Compared: {compared}, not the ratios, which repeat only under the same "
            f"derandomized profile on the same platform ({comparison['note']}).",
        ]
    for title, entries, most in (
        ("Regressions", regressions, len(regressions)),
        ("Grew, not compared", comparison["not_compared"], MARKDOWN_CHANGES),
        ("Improved", comparison["improved"], MARKDOWN_CHANGES),
    ):
        if entries:
            lines += ["", f"{title}:", ""] + [f"- {describe_change(c)}" for c in entries[:most]]
        if len(entries) > most:
            lines.append(f"- … and {len(entries) - most} more (conformance.json)")
    if comparison["new"]:
        lines += ["", f"New rows (not in the baseline): {len(comparison['new'])}."]
    if regressions:
        lines += ["", REFRESH_HINT]
    return lines


def _markdown_failures(failing: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["", "## Failures (smallest counterexample found)"]
    for row in failing[:MARKDOWN_FAILURE_DETAILS]:
        lines += [
            "",
            f"### {row['op']} · {row['check']} · {row['quantity']} · {row['dtype']}",
            "",
            "```",
            row["failure"].get("message", ""),
            "```",
            "",
            "Reproduce:",
            "",
            "```python",
            row["failure"].get("repro", ""),
            "```",
        ]
    if len(failing) > MARKDOWN_FAILURE_DETAILS:
        hidden = len(failing) - MARKDOWN_FAILURE_DETAILS
        lines += ["", f"… and {hidden} more failures in conformance.html."]
    return lines


def _markdown_failed_tests(failures: Sequence[Mapping[str, str]]) -> list[str]:
    lines = ["", f"## Failed tests ({len(failures)})", ""]
    for failure in failures[:MARKDOWN_CHANGES]:
        lines.append(f"- `{failure['nodeid']}`: {_first_line(failure['message'])}")
    if len(failures) > MARKDOWN_CHANGES:
        lines.append(f"- … and {len(failures) - MARKDOWN_CHANGES} more (conformance.json)")
    return lines


def to_markdown(report: Mapping[str, Any]) -> str:
    """Per family: rows, failing, worst ratio; then only the rows a reader must look at."""
    summary, rows = report["summary"], report["rows"]
    verdict = "FAIL" if summary["failing_rows"] or summary.get("failed_tests") else "pass"
    lines = [
        f"# refcnn conformance: {report['run']['title']} — {verdict}",
        "",
        f"**{_headline(report)}.** {_setting_line(report)}",
        "",
        "A row is one op × check × output × dtype; it passes when, on every example, "
        "|difference| ≤ the rounding-error bound elementwise (observed/bound ≤ 1).",
        "",
    ]
    if not rows:
        lines += ["No records: the run made no comparisons (is REFCNN_RECORDS_DIR set?)."]
    else:
        lines += [
            "| family | ops | rows | failing | known deviation | examples | worst observed/bound |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for family, entry in summary["per_family"].items():
            lines.append(
                f"| {family} | {entry['ops']} | {_count(entry['rows'])} | "
                f"{entry['failing_rows']} | {entry['known_deviation_rows']} | "
                f"{_count(entry['examples'])} | {_number(entry['worst_ratio'])} |"
            )
    if report.get("baseline"):
        lines += _markdown_baseline(report["baseline"])
    notable = [row for row in rows if row["status"] != "pass"]
    if notable:
        lines += ["", "## Failing and known-deviation rows", "", *_markdown_rows(notable)]
    deviations = sorted({row["deviation"] for row in rows if row["deviation"]})
    if deviations:
        lines += ["", "Known deviations, allowed for in the bound (declared in the catalog):"]
        lines += [f"- {reason}" for reason in deviations]
    failing = [row for row in rows if row["status"] == "fail"]
    if failing:
        lines += _markdown_failures(failing)
    if report.get("pytest") and report["pytest"]["failures"]:
        lines += _markdown_failed_tests(report["pytest"]["failures"])
    lines += [
        "",
        "Every row, the ratio histograms and the finite-difference plots: "
        "[conformance.html](conformance.html); the data: conformance.json.",
    ]
    return "\n".join(lines) + "\n"


# --- SVG: small hand-written plots -------------------------------------------------------------

SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power(exponent: int) -> str:
    """10^e as text: "10⁻³"."""
    return "10" + str(exponent).translate(SUPERSCRIPT)


def _attributes(**attributes: Any) -> str:
    """XML attributes; a trailing underscore is dropped (class_) and _ becomes - elsewhere."""
    parts = []
    for name, value in attributes.items():
        if value is None:
            continue
        name = name.rstrip("_").replace("_", "-")
        if isinstance(value, float):
            value = f"{value:.1f}"
        parts.append(f'{name}="{html.escape(str(value))}"')
    return " ".join(parts)


def _element(tag: str, tooltip: str | None = None, **attributes: Any) -> str:
    """One SVG element; ``tooltip`` becomes a <title> child (shown on hover)."""
    if tooltip is None:
        return f"<{tag} {_attributes(**attributes)}/>"
    return f"<{tag} {_attributes(**attributes)}><title>{html.escape(tooltip)}</title></{tag}>"


def _text(x: float, y: float, text: str, anchor: str = "middle", class_: str = "") -> str:
    attributes = _attributes(x=x, y=y, text_anchor=anchor, class_=class_ or None)
    return f"<text {attributes}>{html.escape(text)}</text>"


def _line(x1: float, y1: float, x2: float, y2: float, css: str, tooltip: str | None = None) -> str:
    return _element("line", tooltip=tooltip, x1=x1, y1=y1, x2=x2, y2=y2, class_=css)


def _svg(width: int, height: int, label: str, body: Sequence[str]) -> str:
    """An inline <svg> (no xmlns needed in HTML), with ``label`` as its accessible name."""
    head = _attributes(
        width=width, height=height, viewBox=f"0 0 {width} {height}", role="img", aria_label=label
    )
    return f"<svg {head}><title>{html.escape(label)}</title>{''.join(body)}</svg>"


@dataclass(frozen=True)
class Frame:
    """The plotting area inside an SVG: left, top, width, height in pixels."""

    left: float
    top: float
    width: float
    height: float

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def right(self) -> float:
        return self.left + self.width

    def x(self, fraction: float) -> float:
        return self.left + fraction * self.width

    def y(self, fraction: float) -> float:
        """Fraction 0 is the bottom edge, 1 the top."""
        return self.bottom - fraction * self.height


def _log_fraction(value: float, low: float, high: float) -> float:
    """Where ``value`` sits between decades ``low`` and ``high`` (exponents), in [0, 1]."""
    return (math.log10(value) - low) / (high - low)


# The ratio histogram: one bar per bin in a zoomed decade range, float64 stacked under float32.
HISTOGRAM_SIZE = (440, 196)
DTYPE_CLASS = {"float64": "f64", "float32": "f32"}


def _dtype_class(dtype: str) -> str:
    return DTYPE_CLASS.get(dtype, "other")


def _histogram_range(distribution: Mapping[str, Any]) -> tuple[int, int]:
    """Decades (low, high) to draw: the occupied bins, at least 10⁻⁴…10¹ so 1 is always in."""
    occupied = [
        index
        for entry in distribution.values()
        for index, count in enumerate(entry["counts"])
        if count and 0 < index < HISTOGRAM_BINS - 1
    ]
    low, high = -4, 1
    if occupied:
        low = min(low, LOG10_LOW + (min(occupied) - 1) // BINS_PER_DECADE)
        high = max(high, LOG10_LOW + math.ceil(max(occupied) / BINS_PER_DECADE))
    return low, high


@dataclass(frozen=True)
class Column:
    """One bar of the histogram: its label under the axis, position, width and counts per dtype."""

    label: str
    x: float
    width: float
    counts: tuple[int, ...]
    words: str  # "in (0.1, 0.178]", for the tooltip


def _columns(
    distribution: Mapping[str, Any], dtypes: Sequence[str], frame: Frame, low: int, high: int
) -> list[Column]:
    """A bar per bin from 10^low to 10^high on the axis; apart from it, on the left, the exact
    matches (0) and the ratios below the axis, on the right those above it."""
    first = (low - LOG10_LOW) * BINS_PER_DECADE + 1  # first bin drawn on the axis
    last = (high - LOG10_LOW) * BINS_PER_DECADE  # last bin drawn on the axis
    bar = frame.width / (last - first + 1)

    def counts(indices: Iterable[int]) -> tuple[int, ...]:
        chosen = list(indices)
        return tuple(sum(distribution[d]["counts"][i] for i in chosen) for d in dtypes)

    exact = tuple(distribution[d]["exact"] for d in dtypes)
    columns = [
        Column("exact", 8, 14, exact, "0 (exact)"),  # at the left edge of the picture
        Column(f"≤{_power(low)}", 44, 14, counts(range(first)), f"≤ {10.0**low:g}"),
    ]
    for index in range(first, last + 1):
        edge_low, edge_high = bin_edges(index)
        x = frame.x(_log_fraction(edge_low, low, high))
        columns.append(Column("", x, bar, counts([index]), f"in ({edge_low:.3g}, {edge_high:.3g}]"))
    above = counts(range(last + 1, HISTOGRAM_BINS))
    columns.append(Column(f">{_power(high)}", frame.right + 20, 14, above, f"> {10.0**high:g}"))
    return columns


def histogram_svg(op: str, distribution: Mapping[str, Any]) -> str:
    """Bars of every example's observed/bound on a log axis, float64 stacked under float32.

    Exact matches (0) and the ratios beyond either end of the axis get bars of their own, apart
    from the axis. The failing side of the bound (ratio > 1) is shaded red. The count axis fits
    the bars on the log axis; a taller bar apart is cut, with a break mark and its count.
    """
    width, height = HISTOGRAM_SIZE
    frame = Frame(left=112, top=26, width=width - 112 - 44, height=height - 26 - 40)
    low, high = _histogram_range(distribution)
    dtypes = [d for d in DTYPE_ORDER if d in distribution]
    dtypes += sorted(set(distribution) - set(DTYPE_ORDER))
    columns = _columns(distribution, dtypes, frame, low, high)
    tallest = max([sum(c.counts) for c in columns if not c.label] + [1])
    one = frame.x(_log_fraction(1.0, low, high))
    shade = _element(
        "rect", x=one, y=frame.top, width=frame.right - one, height=frame.height, class_="fails"
    )
    body = [shade]
    for column in columns:
        body += _stacked_bar(column, dtypes, frame, tallest)
    body += _log_x_axis(frame, low, high)
    body += _count_axis(frame, tallest)
    body.append(_line(one, frame.top, one, frame.bottom, "bound"))
    body.append(_text(one - 3, frame.top + 10, "bound", anchor="end", class_="bound-label"))
    body.append(_text(frame.x(0.5), height - 4, "observed / bound (log scale)", class_="axis"))
    body += _legend(frame.left, 11, [(d, _dtype_class(d), "box") for d in dtypes])
    return _svg(width, height, f"{op}: distribution of observed/bound over all examples", body)


def _stacked_bar(column: Column, dtypes: Sequence[str], frame: Frame, tallest: int) -> list[str]:
    """One column's segments (one per dtype, stacked) and label; if cut, a break and its count."""
    body: list[str] = []
    stacked = 0
    for dtype, count in zip(dtypes, column.counts, strict=True):
        if not count:
            continue
        top = min(stacked + count, tallest)  # cut at the top of the frame
        body.append(
            _element(
                "rect",
                tooltip=f"{dtype}: {_count(count)} examples with observed/bound {column.words}",
                x=column.x,
                y=frame.y(top / tallest),
                width=max(column.width - 1, 1.0),
                height=max(frame.height * (top - stacked) / tallest, 0.5),
                class_=_dtype_class(dtype),
            )
        )
        stacked = top
    middle, total = column.x + column.width / 2, sum(column.counts)
    if column.label and (total or column.label == "exact"):
        body.append(_text(middle, frame.bottom + 15, column.label, class_="tick"))
    if total > tallest:  # a white gap across the bar says it is cut
        gap = frame.top + 7
        cut = _element(
            "rect", x=column.x - 1, y=gap, width=column.width + 1, height=3, class_="cut"
        )
        body.append(cut)
        body.append(_text(middle, frame.top - 3, _count(total), class_="tick"))
    return body


def _log_x_axis(frame: Frame, low: int, high: int) -> list[str]:
    """A bottom axis with a tick and label per decade (every other one past 8 decades)."""
    body = [_line(frame.left, frame.bottom, frame.right, frame.bottom, "axis-line")]
    step = 1 if high - low <= 8 else 2
    for exponent in range(low, high + 1, step):
        x = frame.x((exponent - low) / (high - low))
        body.append(_line(x, frame.bottom, x, frame.bottom + 4, "axis-line"))
        body.append(_text(x, frame.bottom + 15, _power(exponent), class_="tick"))
    return body


def _count_axis(frame: Frame, tallest: int) -> list[str]:
    """A left axis for counts: 0 and the tallest bar on the log axis."""
    return [
        _line(frame.left, frame.top, frame.left, frame.bottom, "axis-line"),
        _text(frame.left - 4, frame.bottom, "0", anchor="end", class_="tick"),
        _text(frame.left - 4, frame.top + 8, _count(tallest), anchor="end", class_="tick"),
    ]


def _legend(left: float, y: float, entries: Sequence[tuple[str, str, str]]) -> list[str]:
    """A one-line legend from ``left``: per entry (name, css class, swatch) a swatch, "box" or a
    short "line", then the name."""
    body = []
    x = left
    for name, css, swatch in entries:
        if swatch == "box":
            body.append(_element("rect", x=x, y=y - 8, width=10, height=9, class_=css))
        else:
            body.append(_line(x, y - 4, x + 16, y - 4, css))
        body.append(_text(x + 20, y, name, anchor="start", class_="tick"))
        x += 20 + 6.2 * len(name) + 14  # about 6.2 px per character at 11 px
    return body


# The finite-difference plot: log-log error and bound per dtype, the checks' step marked.
FD_SIZE = (440, 196)


def _decade_range(values: Iterable[float]) -> tuple[int, int]:
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if not positive:
        return -16, 0
    return math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))


def fd_svg(op: str, curves: Mapping[str, Any]) -> str:
    """|D(h) − analytic| (solid) and its error bound (dashed) against h, log-log, per dtype; a
    dotted vertical line at the step the checks use. An error of exactly 0 sits on the bottom
    edge as an open circle."""
    width, height = FD_SIZE
    frame = Frame(left=52, top=26, width=width - 52 - 16, height=height - 26 - 40)
    drawn = {d: c for d, c in curves.items() if "errors" in c}
    x_low, x_high = math.floor(math.log10(min(FD_STEPS))), math.ceil(math.log10(max(FD_STEPS)))
    y_values = [v for c in drawn.values() for v in (*c["errors"], *c["bounds"]) if v is not None]
    y_low, y_high = _decade_range(y_values)
    y_low, y_high = max(y_low, y_high - 18), max(y_high, y_low + 1)  # at most 18 decades

    def point(step: float, value: float) -> tuple[float, float]:
        clipped = min(max(value, 10.0**y_low), 10.0**y_high)
        return frame.x(_log_fraction(step, x_low, x_high)), frame.y(
            _log_fraction(clipped, y_low, y_high)
        )

    body = _log_x_axis(frame, x_low, x_high) + _log_y_axis(frame, y_low, y_high)
    for dtype, curve in drawn.items():
        css = _dtype_class(dtype)
        x = frame.x(_log_fraction(curve["check_step"], x_low, x_high))
        tooltip = f"{dtype}: the step the checks use, h = {curve['check_step']:.2g}"
        body.append(_line(x, frame.top, x, frame.bottom, f"step {css}", tooltip))
        for name, series in (("bound", curve["bounds"]), ("error", curve["errors"])):
            points = [point(s, v) for s, v in zip(FD_STEPS, series, strict=True) if v is not None]
            coordinates = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            body.append(_element("polyline", points=coordinates, class_=f"{name} {css}"))
        body += _fd_dots(dtype, curve, point)
    body.append(_text(frame.x(0.5), height - 4, "step h (log scale)", class_="axis"))
    entries = [(d, f"error {_dtype_class(d)}", "line") for d in drawn]
    entries += [("bound", "key-bound", "line"), ("step the checks use", "key-step", "line")]
    body += _legend(frame.left, 11, entries)
    return _svg(width, height, f"{op}: finite-difference error against the step size", body)


def _fd_dots(dtype: str, curve: Mapping[str, Any], point: Any) -> list[str]:
    """A dot per step with the error in its tooltip; exact (0) errors as open circles."""
    body = []
    for step, value in zip(FD_STEPS, curve["errors"], strict=True):
        if value is None:
            continue
        cx, cy = point(step, value)
        words = "exactly 0" if value == 0 else f"{value:.3g}"
        body.append(
            _element(
                "circle",
                tooltip=f"{dtype}, h = {step:.1g}: |D(h) − analytic| = {words}",
                cx=cx,
                cy=cy,
                r=2.5,
                class_=f"dot {_dtype_class(dtype)}" + (" exact" if value == 0 else ""),
            )
        )
    return body


def _log_y_axis(frame: Frame, low: int, high: int) -> list[str]:
    """A left axis with a label every few decades, so that at most ~6 labels show."""
    body = [_line(frame.left, frame.top, frame.left, frame.bottom, "axis-line")]
    step = max(1, math.ceil((high - low) / 6))
    for exponent in range(low, high + 1, step):
        y = frame.y((exponent - low) / (high - low))
        body.append(_line(frame.left - 4, y, frame.left, y, "axis-line"))
        body.append(_text(frame.left - 6, y + 4, _power(exponent), anchor="end", class_="tick"))
    return body


# --- HTML -------------------------------------------------------------------------------------

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d232b;
  margin: 0 auto; max-width: 1400px; padding: 0 24px 48px; }
h1 { font-size: 24px; margin: 24px 0 4px; } h2 { font-size: 19px; margin: 36px 0 6px; }
h3 { font-size: 15px; margin: 0 0 4px; }
code, pre { font: 12.5px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
pre { background: #f5f6f8; border: 1px solid #dde1e6; border-radius: 4px; padding: 8px 10px;
  white-space: pre-wrap; word-break: break-word; margin: 4px 0 10px; }
a { color: #0b5cad; }
.subtitle { color: #4a5563; margin: 0 0 14px; }
.verdict { font-size: 17px; font-weight: 600; padding: 10px 14px; border-radius: 6px;
  margin: 12px 0 16px; }
.verdict.pass { background: #e6f4ea; color: #135f2c; border: 1px solid #a8d5b5; }
.verdict.fail { background: #fdecea; color: #8a1c12; border: 1px solid #f1a9a0; }
dl.env { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 3px 14px;
  margin: 0 0 8px; }
dl.env dt { color: #4a5563; } dl.env dd { margin: 0; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { padding: 3px 9px; border-bottom: 1px solid #e3e6ea; text-align: left;
  vertical-align: top; }
th { background: #f0f2f5; font-weight: 600; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 600; border-top: 2px solid #c9ced6; }
table.rows { width: 100%; font-size: 13px; } table.rows td { white-space: nowrap; }
table.rows tr.detail td, table.rows tr.detail-deviation td { white-space: normal; }
.status { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px;
  white-space: nowrap; }
.status.pass { background: #e6f4ea; color: #135f2c; }
.status.fail { background: #d93025; color: white; font-weight: 600; }
.status.known-deviation { background: #fef3d6; color: #7a4f00; }
tr.fail > td { background: #fff5f4; }
tr.detail td { border-bottom: 2px solid #f1a9a0; }
.meter { display: inline-block; width: 54px; height: 7px; background: #e9ecef;
  border-radius: 4px; margin-right: 6px; vertical-align: middle; overflow: hidden; }
.meter span { display: block; height: 100%; background: #5b8fd6; }
.meter span.near { background: #e8a33d; } .meter span.over { background: #d93025; }
.muted { color: #6b7480; } .small { font-size: 12px; }
.op { display: grid; grid-template-columns: minmax(0, 1fr) 450px; gap: 18px;
  border-top: 1px solid #dde1e6; padding: 12px 0 8px; }
.op.failing h3 { color: #b3261e; }
.op .plots p { margin: 0 0 8px; max-width: 440px; }
svg { display: block; margin: 4px 0; overflow: visible; }
svg text { font: 11px system-ui, sans-serif; fill: #3b4350; }
svg text.axis { fill: #4a5563; } svg text.bound-label { fill: #b3261e; font-weight: 600; }
svg .axis-line { stroke: #8a929c; stroke-width: 1; }
svg rect.fails { fill: #fdecea; }
svg line.bound { stroke: #b3261e; stroke-width: 1.5; stroke-dasharray: 4 3; }
svg rect.f64 { fill: #3a70c0; } svg rect.f32 { fill: #e59b2e; } svg rect.other { fill: #777; }
svg polyline { fill: none; stroke-width: 1.6; }
svg polyline.error.f64 { stroke: #3a70c0; } svg polyline.error.f32 { stroke: #e59b2e; }
svg polyline.bound { stroke-dasharray: 5 3; stroke-width: 1.2; }
svg polyline.bound.f64 { stroke: #3a70c0; } svg polyline.bound.f32 { stroke: #e59b2e; }
svg circle.f64 { fill: #3a70c0; } svg circle.f32 { fill: #e59b2e; }
svg circle.exact { fill: white; stroke: #3b4350; }
svg line.step { stroke-width: 1; stroke-dasharray: 2 2; }
svg line.step.f64 { stroke: #3a70c0; } svg line.step.f32 { stroke: #e59b2e; }
svg line.error { stroke-width: 1.6; } svg line.error.f64 { stroke: #3a70c0; }
svg line.error.f32 { stroke: #e59b2e; }
svg line.key-bound { stroke: #3b4350; stroke-dasharray: 5 3; }
svg line.key-step { stroke: #3b4350; stroke-dasharray: 2 2; }
svg rect.cut { fill: white; }
nav.families a { margin-right: 12px; }
.failed-tests { background: #fff5f4; border: 1px solid #f1a9a0; border-radius: 6px;
  padding: 8px 12px; margin: 8px 0; }
footer { margin-top: 40px; color: #4a5563; border-top: 1px solid #dde1e6; padding-top: 10px; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _anchor(*parts: str) -> str:
    """An HTML id from free text: letters, digits and dashes."""
    text = "-".join(parts).lower()
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")


def _status(status: str) -> str:
    return f'<span class="status {_anchor(status)}">{_e(status)}</span>'


def _meter(ratio: Any) -> str:
    """A small bar for observed/bound on a log scale from 10⁻⁶ (empty) to 1 (full); red past 1."""
    number = _finite_or_none(ratio)
    if number is None:
        return '<span class="meter"></span>'
    fill = 0.0 if number <= 0 else min(max((math.log10(number) + 6) / 6, 0.0), 1.0)
    tone = "over" if number > 1 else "near" if number > 0.5 else ""
    return (
        f'<span class="meter"><span class="{tone}" style="width:{100 * fill:.0f}%"></span></span>'
    )


def _verdict(summary: Mapping[str, Any]) -> tuple[str, str]:
    """The banner's CSS class and words."""
    rows, failing = summary["rows"], summary["failing_rows"]
    deviations, failed_tests = summary["known_deviation_rows"], summary.get("failed_tests") or 0
    problems = []
    if failing:
        problems.append(f"{_count(failing)} of {_count(rows)} rows FAIL")
    if failed_tests:
        problems.append(f"{_plural(failed_tests, 'test')} failed")
    if problems:
        rows_part = (
            f"{_count(summary['passed'])} rows pass, {_count(deviations)} known deviation"
            if failing
            else f"all {_plural(rows, 'row')} within their bounds"
        )
        return "fail", "; ".join(problems) + f" ({rows_part})"
    if not rows:
        return "fail", "No records: the run made no comparisons (is REFCNN_RECORDS_DIR set?)"
    allowed = (
        f", {_count(deviations)} of them with a known deviation allowed for" if deviations else ""
    )
    return "pass", f"All {_count(rows)} rows within their rounding-error bounds{allowed}"


def _html_header(report: Mapping[str, Any]) -> str:
    env, run, summary = report["environment"], report["run"], report["summary"]
    verdict_class, verdict = _verdict(summary)
    fields = [
        ("Candidate", run["title"]),
        ("refcnn revision", env.get("refcnn_revision", "unknown")),
        ("Date", _when(run["started"] or report["generated"])),
        ("Wall time", _duration(run["wall_time_s"])),
        ("Python", env.get("python")),
        ("Platform", env.get("platform", "unknown")),
        ("NumPy", f"{env.get('numpy')} · BLAS {env.get('blas', 'unknown')}"),
        ("torch", f"{env.get('torch')} · {env.get('torch_backend', 'unknown')}"),
        ("hypothesis", env.get("hypothesis")),
        ("Profile", f"{env.get('hypothesis_profile')} (seed: {env.get('hypothesis_seed')})"),
        ("Comparisons", _count(summary["examples"])),
        ("Report generated", _when(report["generated"])),
    ]
    items = "".join(f"<dt>{_e(name)}</dt><dd>{_e(value)}</dd>" for name, value in fields)
    return (
        f"<header><h1>refcnn conformance report</h1>"
        f'<p class="subtitle">{_e(run["title"])}: every op × check × output × dtype, '
        "the observed difference against its rounding-error bound.</p>"
        f'<div class="verdict {verdict_class}">{_e(verdict)}.</div>'
        f'<dl class="env">{items}</dl></header>'
    )


def _summary_cells(label: str, entry: Mapping[str, Any], with_tests: bool) -> str:
    numbers = [entry["ops"], entry["rows"], entry["passed"], entry["failing_rows"]]
    numbers += [entry["known_deviation_rows"], entry["examples"]]
    if with_tests:
        numbers.append(entry.get("failed_tests", 0))
    cells = "".join(f"<td class=num>{_count(n)}</td>" for n in numbers)
    ratio = entry["worst_ratio"]
    return f"<td>{label}</td>{cells}<td>{_meter(ratio)}{_number(ratio)}</td>"


def _html_summary(report: Mapping[str, Any]) -> str:
    """Per family: ops, rows by status, examples, (failed tests,) worst observed/bound."""
    per_family, summary = report["summary"]["per_family"], report["summary"]
    if not per_family:
        return ""
    with_tests = report.get("pytest") is not None
    head = "".join(
        f"<th class=num>{name}</th>"
        for name in ["ops", "rows", "pass", "fail", "known deviation", "examples"]
        + (["failed tests"] if with_tests else [])
    )
    body = [
        f"<tr>{_summary_cells(_family_link(family), entry, with_tests)}</tr>"
        for family, entry in per_family.items()
    ]
    total = {
        "ops": len(report["ops"]),
        "rows": summary["rows"],
        "passed": summary["passed"],
        "failing_rows": summary["failing_rows"],
        "known_deviation_rows": summary["known_deviation_rows"],
        "examples": summary["examples"],
        "failed_tests": summary.get("failed_tests") or 0,
        "worst_ratio": max((e["worst_ratio"] or 0.0 for e in per_family.values()), default=0.0),
    }
    body.append(f'<tr class="total">{_summary_cells("all", total, with_tests)}</tr>')
    return (
        f"<h2>Summary</h2><table><tr><th>family</th>{head}<th>worst observed/bound</th></tr>"
        f"{''.join(body)}</table>"
    )


def _family_link(family: str) -> str:
    return f'<a href="#{_anchor("family", family)}">{_e(family)}</a>'


def _html_baseline(report: Mapping[str, Any]) -> str:
    """The baseline diff: what was compared, the regressions, then the other changes."""
    comparison = report.get("baseline")
    if not comparison:
        return ""
    regressions = comparison["regressions"]
    title = f"Baseline: {len(regressions)} regression{'s' if len(regressions) != 1 else ''}"
    parts = [
        f'<h2 id="baseline">{_e(title)}</h2>',
        f"<p>Against <code>{_e(comparison['source'])}</code> (refcnn "
        f"{_e(comparison['revision'])}, profile {_e(comparison['profile'])}); a ratio regresses "
        f"above {comparison['factor']:g}× max(baseline, {comparison['floor']:g}) when the same "
        "examples ran on the same platform.</p>",
    ]
    if not comparison["ratios_compared"]:
        parts.append(f'<p class="muted">Ratios not compared: {_e(comparison["note"])}.</p>')
    for heading, changes in (
        ("Regressions", regressions),
        ("Grew, not compared", comparison["not_compared"]),
        ("Improved", comparison["improved"]),
    ):
        if changes:
            items = "".join(f"<li>{_e(describe_change(c))}</li>" for c in changes)
            parts.append(f"<p>{heading} ({len(changes)}):</p><ul>{items}</ul>")
    if comparison["new"]:
        parts.append(f"<p>New rows (not in the baseline): {len(comparison['new'])}.</p>")
    if regressions:
        parts.append(f"<p>{_e(REFRESH_HINT)}</p>")
    return "".join(parts)


def _html_failures(report: Mapping[str, Any]) -> str:
    """Links to every failing row, and pytest's failed tests (some fail before comparing)."""
    failing = [row for row in report["rows"] if row["status"] == "fail"]
    tests = (report.get("pytest") or {}).get("failures", [])
    if not failing and not tests:
        return ""
    parts = ['<h2 id="failures">Failures</h2>']
    if failing:
        links = "".join(
            f'<li><a href="#{_row_anchor(row)}">{_e(_label(_key(row)))}</a>: '
            f"{_e(_first_line(row['failure'].get('message', '')))}</li>"
            for row in failing
        )
        parts.append(f"<p>Rows with a failing comparison:</p><ul>{links}</ul>")
    if tests:
        items = "".join(
            f"<li><code>{_e(t['nodeid'])}</code> ({_e(t['when'])}): "
            f"{_e(_first_line(t['message']))}</li>"
            for t in tests
        )
        parts.append(
            f"<p>Tests pytest reports as failed ({len(tests)}), including any that failed "
            f"before making a comparison (an exception in the op, a health check):</p>"
            f"<ul>{items}</ul>"
        )
    return "".join(parts)


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else "(no message)"


def _row_anchor(row: Mapping[str, Any]) -> str:
    return _anchor("row", *_key(row))


def _html_row(row: Mapping[str, Any]) -> str:
    """A table row of one op × check × output × dtype; a failure adds a row with its smallest
    counterexample and repro, a known deviation one with its reason."""
    index = row["worst_index"]
    where = f"[{', '.join(map(str, index))}]" if index else "scalar"
    tooltip = f"worst example: params {row['worst_params']}, seed {row['worst_seed']}"
    cells = (
        f"<td>{_e(row['check'])}</td><td><code>{_e(row['quantity'])}</code></td>"
        f"<td>{_e(row['dtype'])}</td><td class=num>{_count(row['examples'])}</td>"
        f"<td class=num>{_meter(row['worst_ratio'])}{_number(row['worst_ratio'])}</td>"
        f"<td class=num>{_number(row['max_abs_error'])}</td>"
        f"<td class=num>{_number(row['max_rel_error'])}</td>"
        f'<td class="small" title="{_e(tooltip)}">{_e(where)}</td>'
        f"<td>{_status(row['status'])}</td>"
    )
    html_row = f'<tr id="{_row_anchor(row)}" class="{_anchor(row["status"])}">{cells}</tr>'
    if row["status"] == "fail":
        failure = row["failure"]
        html_row += (
            '<tr class="detail fail"><td colspan="9">'
            f"<strong>Smallest counterexample</strong> (params {_e(failure.get('params'))}, "
            f"seed {_e(failure.get('seed'))}):<pre>{_e(failure.get('message', ''))}</pre>"
            f"<strong>Reproduce</strong>:<pre>{_e(failure.get('repro', ''))}</pre></td></tr>"
        )
    elif row["deviation"]:
        html_row += (
            '<tr class="detail-deviation"><td colspan="9" class="small muted">'
            f"Known deviation, allowed for in the bound: {_e(row['deviation'])}</td></tr>"
        )
    return html_row


ROW_HEADER = (
    "<tr><th>check</th><th>output</th><th>dtype</th><th class=num>examples</th>"
    "<th class=num>worst observed/bound</th><th class=num>max abs err</th>"
    "<th class=num>max rel err</th><th>worst at</th><th>status</th></tr>"
)


def _plots(entry: Mapping[str, Any]) -> str:
    """An op's ratio histogram and, if it is differentiable, its FD error against h."""
    parts = [histogram_svg(entry["op"], entry["distribution"])]
    curves = entry["fd_curves"]
    drawn = {d: c for d, c in curves.items() if "errors" in c}
    if drawn:
        parts.append(fd_svg(entry["op"], drawn))
        curve = next(iter(drawn.values()))
        method = (
            "Richardson-extrapolated" if curve["extrapolated"] else "plain (exact on quadratics)"
        )
        left_out = [entry for c in drawn.values() for entry in c.get("skipped", [])]
        if left_out:
            steps = ", ".join(sorted({f"{e['step']:.2g}" for e in left_out}, key=float))
            reason = textwrap.shorten(left_out[0]["error"], 90, placeholder=" …")
            parts.append(
                f'<p class="small muted">Not drawn where x ± h·v leaves the op’s domain: h = '
                f"{steps} ({_e(reason)}).</p>"
            )
        parts.append(
            '<p class="small muted">Finite differences along the check’s random direction, '
            f"{method}, on <code>{_e(curve['params'])}</code>, seed {curve['seed']}.</p>"
        )
    for dtype, curve in curves.items():
        if "error" in curve:
            parts.append(
                f'<p class="small muted">No FD plot ({_e(dtype)}): {_e(curve["error"])}</p>'
            )
    return "".join(parts)


def _op_block(entry: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    """One op: its rows (failures first) on the left, its plots on the right."""
    failing = " failing" if entry["failing_rows"] else ""
    summary = (
        f"{entry['rows']} rows · {_count(entry['examples'])} examples · worst observed/bound "
        f"{_number(entry['worst_ratio'])}"
        + (f" · <strong>{entry['failing_rows']} failing</strong>" if failing else "")
    )
    return (
        f'<div class="op{failing}" id="{_anchor("op", entry["op"])}"><div>'
        f'<h3>{_e(entry["op"])}</h3><p class="small muted">{summary}</p>'
        f'<table class="rows">{ROW_HEADER}{"".join(_html_row(row) for row in rows)}</table>'
        f'</div><div class="plots">{_plots(entry)}</div></div>'
    )


def _html_family(report: Mapping[str, Any], family: str) -> str:
    entry = report["summary"]["per_family"][family]
    ops = [op for op in report["ops"] if op["family"] == family]
    ops.sort(key=lambda op: -op["failing_rows"])  # failing ops first, else as the rows are
    counts = (
        f"{entry['ops']} ops · {_count(entry['rows'])} rows · {_count(entry['failing_rows'])} "
        f"failing · {_count(entry['known_deviation_rows'])} known deviation · "
        f"{_count(entry['examples'])} examples"
    )
    blocks = [_op_block(op, [row for row in report["rows"] if row["op"] == op["op"]]) for op in ops]
    tests = [t for t in (report.get("pytest") or {}).get("failures", []) if t["family"] == family]
    if tests:
        items = "".join(
            f"<li><code>{_e(t['nodeid'])}</code>: {_e(_first_line(t['message']))}</li>"
            for t in tests
        )
        blocks.insert(0, f'<div class="failed-tests">Failed tests:<ul>{items}</ul></div>')
    return (
        f'<section id="{_anchor("family", family)}"><h2>{_e(family)}</h2>'
        f'<p class="muted">{counts}</p>{"".join(blocks)}</section>'
    )


FOOTER = (
    "<footer><p><strong>Reading the page.</strong> observed/bound is, for each example, the "
    "largest elementwise |difference| divided by the rounding-error bound of that element "
    "(γ<sub>k</sub> model, see refcnn/testing/tolerance.py); ≤ 1 passes, and a row's worst "
    "value close to 1 means a tight bound. The histograms count every example of an op by its "
    "observed/bound (float64 in blue, float32 in orange; bars at the ends: exact matches and "
    "values beyond the axis; the shaded area past the red line fails). The finite-difference "
    "plots show, for one fixed small sample, |D(h) − analytic| for the directional derivative "
    "(solid) and its error bound (dashed) as the step h varies; the vertical line marks the "
    "step the checks use (h = u<sup>1/3</sup>·max(1, |x|)). The data: conformance.json "
    "(schema in docs/reports.md).</p></footer>"
)


def to_html(report: Mapping[str, Any]) -> str:
    """The whole report as one self-contained HTML page (no scripts, no external resources)."""
    per_family = report["summary"]["per_family"]
    families = list(per_family)
    failing = [
        f for f in families if per_family[f]["failing_rows"] or per_family[f].get("failed_tests")
    ]
    ordered = failing + [f for f in families if f not in failing]  # failing families first
    nav = "".join(f'<a href="#{_anchor("family", f)}">{_e(f)}</a>' for f in ordered)
    title = f"refcnn conformance: {report['run']['title']} — {_headline(report)}"
    parts = [
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>',
        f'<meta name="viewport" content="width=device-width"><style>{CSS}</style></head><body>',
        _html_header(report),
        f'<nav class="families">Families: {nav}</nav>' if nav else "",
        _html_baseline(report),
        _html_failures(report),
        _html_summary(report),
        *(_html_family(report, family) for family in ordered),
        FOOTER,
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


# --- files ------------------------------------------------------------------------------------


def write(
    records: Iterable[Mapping[str, Any]],
    out_dir: Path,
    profile: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    curves: Mapping[str, Any] | None = None,
    baseline: Mapping[str, Any] | None = None,
    baseline_source: str = "baseline",
    families: Mapping[str, str] | None = None,
    outcomes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write conformance.{json,md,html} under ``out_dir``; return the report dict."""
    report = build(records, profile, env=env, curves=curves, families=families, outcomes=outcomes)
    if baseline is not None:
        report["baseline"] = compare(report, baseline, baseline_source)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "conformance.json").write_text(dumps(report) + "\n", encoding="utf-8")
    (out_dir / "conformance.md").write_text(to_markdown(report), encoding="utf-8")
    (out_dir / "conformance.html").write_text(to_html(report), encoding="utf-8")
    return report
