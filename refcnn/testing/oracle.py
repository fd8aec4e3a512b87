"""The oracle: check someone else's implementation of the catalog's ops and say what is wrong.

``python -m refcnn check TARGET`` loads a candidate (:func:`load_candidate`), then for every
catalog op it provides:

1. **values** — forward and every gradient against refcnn in float64, the reference truth, on
   samples hypothesis draws (and shrinks on failure) and on the op's edge cases. A float64
   candidate may differ from refcnn by the pairwise bound (both round: 2·γ_k·M); a float32
   candidate is compared with the float64 result on the same (exactly widened) inputs within
   bound32 + bound64: the "precise" rule, which blames whichever side is farther from float64.
2. **invariants** — the checks of :mod:`refcnn.testing.checks` that need no reference values
   (linearity in the upstream gradient, no mutation of inputs, repeatability and shapes, batch
   slices, translation, channel permutation, adjoint), run on the candidate itself.
3. On a failure, **diagnosis** on the shrunk case: the op's conventions
   (:mod:`refcnn.testing.conventions`) — "conforms under convention X" — and the bug zoo's
   mutants (:mod:`refcnn.testing.bugzoo`) — "grad_x matches bug 'col2im assigns instead of
   accumulating'". A variant matches when the candidate agrees with it within the pairwise bound
   on every failing quantity of the shrunk case and on a few more samples.

A candidate is only ever called through its adapter. Exceptions, wrong shapes or dtypes,
non-finite values and mutated inputs are findings; each op runs in a worker process with a time
limit, so a candidate that hangs or crashes costs that op, and the run goes on to the next.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import functools
import importlib
import importlib.util
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from refcnn.testing import catalog, checks, records
from refcnn.testing.adapters import Functions, Reference, Unsupported, from_specs, provides
from refcnn.testing.compare import Context, assert_within_bound, fail
from refcnn.testing.opspec import OpSpec, Sample
from refcnn.testing.strategies import seeds
from refcnn.testing.tolerance import PAIRWISE_FACTOR

Candidate = str | Callable[[], Any]

# Invariants run on the candidate: (check in refcnn.testing.checks, capability it needs)
INVARIANTS: tuple[tuple[str, str | None], ...] = (
    ("upstream_linearity", "backward"),
    ("no_mutation", None),
    ("repeatable", None),
    ("batch_slices", "per_sample"),
    ("translation", "translation"),
    ("channel_permutation", "channel_permutation"),
    ("adjoint", "linear"),
)
DTYPES = ("float64", "float32")
PROFILES: dict[
    str, dict[str, Any]
] = {  # examples per search; the derandomized ones reproduce run to run
    "dev": {"max_examples": 15, "derandomize": False},
    "ci": {"max_examples": 100, "derandomize": True},
    "thorough": {"max_examples": 1000, "derandomize": False},
}
CONFIRMATIONS = 10  # further samples a variant must agree on before it names a failure
STYLES = ("auto", "refcnn", "book", "custom")


class UsageError(Exception):
    """A target that cannot be loaded or a bad option: ``check`` exits with 2 and this message."""


# --- loading a candidate ------------------------------------------------------------------------


def load_candidate(target: str, style: str = "auto") -> Any:
    """The adapter for ``target``:

    - ``refcnn`` — refcnn itself; ``torch``, ``torch:cpu``, ``torch:cuda`` (TF32 off; add
      ``:tf32`` to leave it on, as torch's cuDNN default does) — PyTorch via autograd;
    - ``zoo:<mutant name>`` — refcnn with one bug-zoo mutant swapped in;
    - a path to a ``.py`` file or a dotted module name, optionally ``:attribute`` — your code.

    ``style`` says how to read a module: ``book`` (the "Deep Learning from Scratch" class API),
    ``refcnn`` (functions named and called like refcnn.functional's), ``custom`` (the module
    gives an adapter: ``refcnn_adapter()``, ``ADAPTER``, or the ``:attribute`` named), ``auto``
    (custom if it gives an adapter, else book if it has book classes, else refcnn).
    """
    if style not in STYLES:
        raise UsageError(f"--style must be one of {STYLES}, got {style!r}")
    if target == "refcnn":
        return Reference()
    if target == "torch" or target.startswith("torch:"):
        return _torch_candidate(target)
    if target.startswith("zoo:"):
        return zoo_candidate(target[len("zoo:") :])
    module_name, _, attribute = target.partition(":")
    if module_name.endswith(".py") and len(attribute) == 1 and not Path(target).exists():
        module_name, attribute = target, ""  # not module:attr after all (a Windows drive?)
    module = import_module_from(module_name)
    if attribute:
        try:
            found = getattr(module, attribute)
        except AttributeError:
            raise UsageError(f"{module_name} has no attribute {attribute!r}") from None
        return found() if callable(found) and not _is_adapter(found) else found
    if style in ("auto", "custom"):
        if hasattr(module, "refcnn_adapter"):
            return module.refcnn_adapter()
        if hasattr(module, "ADAPTER"):
            return module.ADAPTER
        if style == "custom":
            raise UsageError(
                f"{module_name} gives no adapter: define refcnn_adapter() or ADAPTER, or name "
                "the attribute as TARGET:attribute (see docs/oracle.md)"
            )
    if style == "book" or (style == "auto" and _looks_like_book(module)):
        from refcnn.testing.adapters.book import BookStyle

        return BookStyle(module)
    return RefcnnStyle(module)


def import_module_from(name: str) -> Any:
    """Import a ``.py`` file (its folder goes on sys.path, so its sibling modules import as when
    it runs as a script) or a dotted module; UsageError naming the failure."""
    try:
        if name.endswith(".py"):
            path = Path(name)
            if not path.is_file():
                raise UsageError(f"no such file: {name}")
            module_name = path.stem if path.stem not in sys.modules else f"candidate_{path.stem}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise UsageError(f"cannot import {name}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            folder = str(path.resolve().parent)
            if folder not in sys.path:  # its sibling modules import, as when run as a script
                sys.path.insert(0, folder)
            spec.loader.exec_module(module)
            return module
        return importlib.import_module(name)
    except UsageError:
        raise
    except Exception as error:  # the candidate's own import failed: say so, with its error
        raise UsageError(f"cannot import {name}: {type(error).__name__}: {error}") from error


def _is_adapter(value: Any) -> bool:
    return hasattr(value, "forward") and hasattr(value, "backward") and hasattr(value, "name")


def _looks_like_book(module: Any) -> bool:
    names = {name.lower() for name in dir(module)}
    return bool(names & {"convolution", "affine", "softmaxwithloss", "pooling", "relu"})


def _torch_candidate(target: str) -> Any:
    parts = target.split(":")[1:]
    device = parts[0] if parts else "cpu"
    tf32 = "tf32" in parts[1:]
    if device not in ("cpu", "cuda") or any(p != "tf32" for p in parts[1:]):
        raise UsageError(f"torch targets are torch, torch:cpu, torch:cuda[:tf32]; got {target!r}")
    try:
        from refcnn.testing.adapters.torch_adapter import Torch
    except ImportError as error:
        raise UsageError(f"cannot import torch: {error}") from error
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("torch:cuda asked for, but torch sees no CUDA device")
    return Torch(device, tf32=tf32)


class RefcnnStyle:
    """A module with refcnn's function names and signatures (a fork, a port behind bindings):
    the catalog op whose forward is ``refcnn.functional.<f>`` is the module's ``<f>``, and its
    backward the module's function of the same name as refcnn's backward."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.name = getattr(module, "__name__", str(module))
        self.ops: dict[str, tuple[Callable[..., Any], Callable[..., Any] | None]] = {}
        for spec in catalog.OPS:
            forward = self._lookup(spec.forward)
            backward = self._lookup(spec.backward) if spec.backward is not None else None
            if forward is not None and (spec.backward is None or backward is not None):
                self.ops[spec.name] = (forward, backward)
        self._functions = Functions(self.name, self.ops)

    def _lookup(self, function: Any) -> Callable[..., Any] | None:
        name = getattr(function, "__name__", "")
        if not getattr(function, "__module__", "").startswith("refcnn.") or name.startswith("_"):
            return None  # a catalog wrapper, not a public refcnn function: nothing to look up
        found = getattr(self.module, name, None)
        return found if callable(found) else None

    def provides(self, spec: OpSpec) -> bool:
        return spec.name in self.ops

    def forward(self, spec: OpSpec, inputs: dict[str, Any], kwargs: dict[str, Any]) -> Any:
        return self._functions.forward(spec, inputs, kwargs)

    def backward(
        self, spec: OpSpec, inputs: dict[str, Any], kwargs: dict[str, Any], upstream: Any
    ) -> dict[str, Any]:
        return self._functions.backward(spec, inputs, kwargs, upstream)

    def describe(self) -> dict[str, str]:
        return _module_description(self.module, "refcnn")


def _module_description(module: Any, style: str) -> dict[str, str]:
    return {
        "name": getattr(module, "__name__", str(module)),
        "path": str(getattr(module, "__file__", "") or ""),
        "version": str(getattr(module, "__version__", "") or ""),
        "style": style,
    }


def zoo_candidate(name: str) -> Functions:
    """refcnn with the bug-zoo mutant called ``name`` in place of its op (all other ops are
    refcnn's): how the zoo is run as a candidate, and a way to see what a report of a known bug
    looks like (``python -m refcnn check "zoo:col2im assigns instead of accumulating"``)."""
    from refcnn.testing import bugzoo

    try:
        mutant = bugzoo.get(name)
    except KeyError as error:
        raise UsageError(str(error)) from None
    specs = {spec.name: spec for spec in catalog.OPS}
    specs[mutant.op] = mutant.spec()
    return from_specs(f"zoo:{name}", specs)


def describe(candidate: Any) -> dict[str, str]:
    method = getattr(candidate, "describe", None)
    described = dict(method()) if method is not None else {}
    described.setdefault("name", candidate.name)
    return {k: str(v) for k, v in described.items()}


# --- the candidate as an OpSpec, so every check runs on it unchanged ----------------------------


class _BoundsOf:
    """The tolerance model of ``reference``, whatever spec it is asked about: a Multilinear
    bound evaluates the op on |inputs|, which must be refcnn's op, never the candidate's."""

    def __init__(self, reference: OpSpec) -> None:
        self.reference = reference
        self.degree = reference.tolerance.degree

    def forward_bound(self, spec: OpSpec, *args: Any, **kwargs: Any) -> Any:
        return self.reference.tolerance.forward_bound(self.reference, *args, **kwargs)

    def backward_bounds(self, spec: OpSpec, *args: Any, **kwargs: Any) -> Any:
        return self.reference.tolerance.backward_bounds(self.reference, *args, **kwargs)


def bind(reference: OpSpec, candidate: Any) -> OpSpec:
    """``reference`` with forward and backward calling ``candidate`` (bounds stay refcnn's)."""

    def split(arguments: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        inputs = {name: arguments.pop(name) for name in reference.inputs if name in arguments}
        return inputs, arguments

    def forward(**arguments: Any) -> Any:
        inputs, kwargs = split(arguments)
        return _checked_array(candidate.forward(reference, inputs, kwargs), "forward")

    def backward(grad_out: Any, **arguments: Any) -> Any:
        inputs, kwargs = split(arguments)
        grads = candidate.backward(reference, inputs, kwargs, grad_out)
        if not isinstance(grads, dict):
            raise TypeError(f"backward returned {type(grads).__name__}, expected a dict")
        return tuple(
            None if name not in grads else _checked_array(grads[name], f"grad_{name}")
            for name in reference.differentiable
        )

    return dataclasses.replace(
        reference,
        forward=forward,
        backward=backward if reference.backward is not None else None,
        tolerance=_BoundsOf(reference),  # type: ignore[arg-type]
    )


def _checked_array(value: Any, what: str) -> Any:
    """``value`` as an array; a list, None or a torch tensor is a finding, not an array."""
    if isinstance(value, np.generic):  # a 0-d result (a loss) as a NumPy scalar
        return np.asarray(value)
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{what} returned {type(value).__name__}, expected a NumPy array")
    return value


# --- judging values against refcnn in float64 ---------------------------------------------------


def judge(
    reference: OpSpec,
    candidate: Any,
    sample: Sample,
    check: str = "values",
    only: Collection[str] | None = None,
) -> None:
    """The candidate's forward and every gradient against ``reference`` (refcnn) in float64.

    float64 sample: both sides round, so they may differ by PAIRWISE_FACTOR·B64. float32 sample:
    the reference runs on the same values widened exactly to float64 and the candidate's float32
    results may differ from it by B32 + B64 (its own rounding plus the reference's). A
    KnownDeviation of the catalog for this candidate adds its allowance. Every quantity is
    compared (or those in ``only``); the AssertionError lists all that fail.
    """
    failures = [
        message
        for quantity, message in compare_quantities(reference, candidate, sample, check)
        if only is None or quantity in only
    ]
    if failures:
        raise AssertionError("\n".join(failures))


def compare_quantities(
    reference: OpSpec, candidate: Any, sample: Sample, check: str = "values"
) -> list[tuple[str, str]]:
    """(quantity, message) for every quantity outside its bound (see :func:`judge`)."""
    double = sample.with_dtype("float64")
    tolerance, dtype = reference.tolerance, sample.dtype
    expected = {"out": reference.forward(**double.inputs, **double.kwargs)}
    actual = {
        "out": _checked_array(candidate.forward(reference, sample.inputs, sample.kwargs), "forward")
    }

    def bound_of(b64: Any, b32: Any) -> Any:
        return PAIRWISE_FACTOR * b64 if dtype == "float64" else b32 + b64

    bounds = {
        "out": bound_of(
            tolerance.forward_bound(reference, double.inputs, double.kwargs, np.float64),
            tolerance.forward_bound(reference, double.inputs, double.kwargs, np.float32),
        )
    }
    if reference.backward is not None and np.shape(actual["out"]) == np.shape(expected["out"]):
        # (a wrongly shaped output fails below; the upstream would not fit its backward)
        upstream = sample.random(np.shape(expected["out"]), "upstream")
        upstream64 = upstream.astype(np.float64)
        for name, value in reference.backward_dict(
            upstream64, double.inputs, double.kwargs
        ).items():
            expected[f"grad_{name}"] = value
        grads = candidate.backward(reference, sample.inputs, sample.kwargs, upstream)
        for name in reference.differentiable:
            if sample.inputs.get(name) is not None:
                actual[f"grad_{name}"] = grads.get(name) if isinstance(grads, dict) else grads
        b64 = tolerance.backward_bounds(
            reference, double.inputs, double.kwargs, upstream64, "float64"
        )
        b32 = (
            tolerance.backward_bounds(
                reference, double.inputs, double.kwargs, upstream64, "float32"
            )
            if dtype == "float32"
            else b64
        )
        for name in b64:
            bounds[f"grad_{name}"] = bound_of(b64[name], b32[name])
    versus = f"{candidate.name} vs refcnn float64"
    failures: list[tuple[str, str]] = []
    for quantity, value in expected.items():
        bound, reasons = bounds[quantity], []
        for deviation in reference.known_deviations:
            if deviation.applies(candidate.name, dtype, quantity):
                bound = bound + deviation.relative * np.abs(value)
                reasons.append(deviation.reason)
        allowance = getattr(candidate, "allowance", None)  # the adapter's own conversions
        allowed = allowance(reference, sample, quantity, value) if allowance else None
        if allowed is not None:
            bound = bound + allowed[0]
            reasons.append(allowed[1])
        context = Context(sample, check, quantity, versus, deviation="; ".join(reasons))
        try:
            got: Any = actual.get(quantity)
            if got is None:
                fail(context, f"{quantity} missing: the candidate returned no {quantity}")
            if not isinstance(got, np.ndarray | np.generic):
                fail(context, f"{quantity} is a {type(got).__name__}, expected a NumPy array")
            finite = np.isfinite(value).all()
            if np.shape(got) == np.shape(value) and finite and not np.isfinite(got).all():
                bad = int(np.size(got) - np.isfinite(got).sum())
                fail(context, f"{bad} non-finite value(s) where refcnn's are all finite")
            assert_within_bound(got, value, bound, context, expected_dtype=dtype)
        except AssertionError as error:
            failures.append((quantity, str(error)))
    return failures


# --- one op: searches, edge cases, diagnosis ----------------------------------------------------


@dataclass
class Finding:
    """One way the candidate fails an op, on the smallest case hypothesis found."""

    op: str
    check: str  # "values", an invariant's name, "exception", "timeout", "crash"
    dtype: str
    quantities: list[str]
    message: str
    case: dict[str, Any]  # params, seed, dtype, edge_case: the sample, reproducible
    shapes: str  # sample.describe()
    repro: str  # a paste-able snippet
    diagnosis: list[str] = field(default_factory=list)
    known: str = ""  # the reason from the known-differences file that accepts this finding

    def match_keys(self) -> list[str]:
        """``op/dtype/check/quantity`` for each failing quantity: what known-differences
        patterns match."""
        return [f"{self.op}/{self.dtype}/{self.check}/{q}" for q in self.quantities or ["-"]]


@dataclass
class OpResult:
    op: str
    status: str  # pass | fail | convention | known | not provided | timeout | crash
    examples: dict[str, int] = field(default_factory=dict)  # per search: samples run
    skipped: int = 0  # samples outside the candidate's API
    findings: list[Finding] = field(default_factory=list)
    reference: str = "refcnn"  # the catalog entry, or the declared convention judged against
    worst_ratio: float = 0.0
    seconds: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class Settings:
    profile: str = "dev"
    dtypes: tuple[str, ...] = DTYPES
    invariants: bool = True
    diagnose: bool = True
    conventions: tuple[str, ...] = ()  # declared in the known-differences file
    derandomize: bool | None = None  # None: as the profile says (tests fix it: no flakiness)

    def hypothesis(self, max_examples: int | None = None) -> settings:
        chosen = PROFILES[self.profile]
        return settings(
            max_examples=max_examples or chosen["max_examples"],
            derandomize=chosen["derandomize"] if self.derandomize is None else self.derandomize,
            database=None,
            deadline=None,
            report_multiple_bugs=False,
            print_blob=False,
            suppress_health_check=list(HealthCheck),
        )


def prepare(candidate: Any, spec: OpSpec, sample: Sample) -> Sample | None:
    method = getattr(candidate, "prepare", None)
    return sample if method is None else method(spec, sample)


def sample_strategy(candidate: Any, spec: OpSpec, budget: str, dtype: str) -> Any:
    """Samples of ``spec`` within the candidate's API (its own params strategy if it has one)."""
    method = getattr(candidate, "params", None)
    params = method(spec, budget) if method is not None else None
    params = spec.params(budget) if params is None else params
    return st.builds(lambda p, seed: spec.sample(p, seed, dtype), params, seeds())


def reference_spec(
    candidate: Any, spec: OpSpec, declared: Iterable[str] = ()
) -> tuple[OpSpec, str]:
    """The entry a candidate is judged against, and its label: the catalog's ("refcnn"), or the
    variant of the conventions it declares for this op (the adapter's ``conventions`` and a
    known-differences file's ``convention:`` lines). A candidate that computes the op without a
    backward (``forward_only``) is judged on its forward alone."""
    from refcnn.testing import conventions

    names = set(getattr(candidate, "conventions", ())) | set(declared)
    ops = {c.name: c.op for c in conventions.CONVENTIONS}
    mine = sorted(name for name in names if ops.get(name) == spec.name)
    reference = conventions.spec_for(spec.name, mine) if mine else spec
    label = ", ".join(mine) or "refcnn"
    forward_only = getattr(candidate, "forward_only", None)
    if forward_only is not None and forward_only(spec):
        reference = dataclasses.replace(reference, backward=None, differentiable=())
        label += " (forward only)"
    return reference, label


def run_check(
    check: str,
    reference: OpSpec,
    candidate: Any,
    sample: Sample,
    only: Collection[str] | None = None,
) -> None:
    """``check`` ("values" or an invariant's name) of the candidate on one prepared sample
    (``only``: the quantities the values check counts)."""
    if check == "values":
        judge(reference, candidate, sample, only=only)
    else:
        getattr(checks, check)(bind(reference, candidate), sample)


class _Search:
    """One hypothesis search of ``check`` on the candidate: counts the samples run and skipped
    and keeps the last failing sample, which after shrinking is the smallest."""

    def __init__(
        self,
        check: str,
        reference: OpSpec,
        candidate: Any,
        config: Settings,
        only: Collection[str] | None = None,
    ) -> None:
        self.only = only  # the quantities that count (a variant's confirmation: the failing ones)
        self.check, self.reference, self.candidate, self.config = (
            check,
            reference,
            candidate,
            config,
        )
        self.run = self.skipped = 0
        self.failure: tuple[Sample, BaseException] | None = None

    def attempt(self, sample: Sample) -> bool:
        """Run the check on ``sample``; False when the sample is outside the candidate's API."""
        prepared = prepare(self.candidate, self.reference, sample)
        if prepared is None:
            self.skipped += 1
            return False
        try:
            run_check(self.check, self.reference, self.candidate, prepared, self.only)
        except Unsupported:
            self.skipped += 1
            return False
        except Exception as error:
            self.run += 1
            self.failure = (prepared, error)
            raise
        self.run += 1
        return True

    def search(self, dtype: str, max_examples: int | None = None) -> bool:
        """True when no failure was found."""
        strategy = sample_strategy(self.candidate, self.reference, "small", dtype)

        @self.config.hypothesis(max_examples)
        @given(strategy)
        def body(sample: Sample) -> None:
            assume(self.attempt(sample))

        try:
            body()
        except Unsatisfiable:
            return True  # every sample was outside the candidate's API: nothing failed
        except Exception:
            if self.failure is None:
                raise  # not the candidate's failure: the oracle's own
            return False
        return True

    def edge_cases(self, dtype: str, applies: Callable[[Any], bool]) -> bool:
        for case in self.reference.edge_cases:
            if not applies(case):
                continue
            try:
                self.attempt(self.reference.edge_sample(case.id, dtype))
            except Exception:
                return False
        return True


def check_op(candidate: Any, spec: OpSpec, config: Settings, target: str = "") -> OpResult:
    """Every search on one op; a failure stops that check (its smallest case is the finding)."""
    started = time.monotonic()
    if not provides(candidate, spec):
        return OpResult(spec.name, "not provided")
    reference, judged_against = reference_spec(candidate, spec, config.conventions)
    result = OpResult(spec.name, "pass", reference=judged_against)
    ratios: list[float] = []

    def listen(record: records.Record) -> None:
        if record.passed:
            ratios.append(record.worst_ratio)

    records.LISTENERS.append(listen)
    try:
        plan = [("values", dtype) for dtype in config.dtypes]
        plan += [(check, "float64") for check in checks_for(reference, config.invariants)[1:]]
        for check, dtype in plan:
            if check == "values" and dtype != plan[0][1] and result.findings:
                continue  # wrong in float64 already: the float32 search would say it again
            if check not in ("values", "no_mutation") and result.findings:
                # wrong values make most invariants fail as a consequence; a mutated input
                # is never a consequence, so that one still runs
                result.note = "invariants other than no_mutation not run: the values are wrong"
                continue
            search = _Search(check, reference, candidate, config)
            edge_check = "matches_torch" if check == "values" else check

            def applies(case: Any, name: str = edge_check) -> bool:
                return bool(case.applies_to(name) or case.applies_to("matches_candidate"))

            ok = search.search(dtype) and search.edge_cases(dtype, applies)
            result.examples[f"{check} {dtype}"] = search.run
            result.skipped += search.skipped
            if not ok:
                assert search.failure is not None
                finding = _finding(spec, check, search.failure, candidate, target)
                if config.diagnose:
                    finding.diagnosis = diagnose(
                        candidate, spec, judged_against, finding, search.failure[0], config
                    )
                if not any(f.message == finding.message for f in result.findings):
                    result.findings.append(finding)  # the same exception again says nothing new
    finally:
        records.LISTENERS.remove(listen)
    result.worst_ratio = max(ratios, default=0.0)
    result.seconds = time.monotonic() - started
    if result.findings:
        result.status = "fail"
        if all(
            f.diagnosis and f.diagnosis[0].startswith("conforms under convention")
            for f in result.findings
        ):
            result.status = "convention"
    if sum(result.examples.values()) == 0 and result.skipped:
        result.note = "every sample was outside the candidate's API"
    return result


def _finding(
    spec: OpSpec, check: str, failure: tuple[Sample, BaseException], candidate: Any, target: str
) -> Finding:
    sample, error = failure
    message = str(error).strip()
    if not isinstance(error, AssertionError):
        message = f"raised {type(error).__name__}: {message}{_where(error)}"
    quantities = sorted(set(re.findall(r"\b(out|grad_\w+)\b(?=[ .:]| missing)", message)))
    return Finding(
        op=spec.name,
        check=check,
        dtype=sample.dtype,
        quantities=quantities if isinstance(error, AssertionError) else [],
        message=message,
        case={
            "params": repr(sample.params),
            "seed": sample.seed,
            "dtype": sample.dtype,
            "edge_case": sample.edge_case,
        },
        shapes=sample.describe(),
        repro=repro(target or describe(candidate)["name"], spec.name, check, sample),
    )


def _where(error: BaseException) -> str:
    """`` (at file.py:line)`` of the innermost frame outside refcnn.testing: the candidate's
    line that raised, not the oracle's."""
    frames = traceback.extract_tb(error.__traceback__) if error.__traceback__ else []
    import hypothesis

    ours = (str(Path(__file__).parent), str(Path(hypothesis.__file__).parent))
    outside = [f for f in frames if not f.filename.startswith(ours)]
    if not outside:
        return ""
    return f" (at {Path(outside[-1].filename).name}:{outside[-1].lineno})"


def checks_for(spec: OpSpec, invariants: bool = True) -> list[str]:
    """The checks the oracle runs on ``spec``: values, then the invariants that apply."""
    names = ["values"]
    if invariants:
        names += [
            check
            for check, need in INVARIANTS
            if (need is None or need in spec.capabilities) and check not in spec.not_applicable
        ]
    return names


def _signature(message: str) -> str:
    """A failure message's first line without numbers: what failed, not by how much."""
    return re.sub(r"[-+.\de]+", "#", message.splitlines()[0] if message else "")


def repro(target: str, op: str, check: str, sample: Sample) -> str:
    """A snippet that re-runs ``check`` on exactly ``sample`` with the candidate."""
    where = (
        f"edge_case={sample.edge_case!r}"
        if sample.edge_case is not None
        else f"params={sample.params!r}, seed={sample.seed}"
    )
    return (
        "from refcnn.testing import oracle\n"
        f"candidate = oracle.load_candidate({target!r})\n"
        f"oracle.rerun(candidate, {op!r}, {check!r}, {where}, dtype={sample.dtype!r})"
    )


def rerun(
    candidate: Any,
    op: str,
    check: str,
    params: Any = None,
    seed: int = 0,
    dtype: str = "float64",
    edge_case: str | None = None,
    conventions: Sequence[str] = (),
) -> None:
    """Run ``check`` ("values" or an invariant) on one sample; raises what the oracle saw."""
    spec = catalog.get(op)
    reference, _ = reference_spec(candidate, spec, conventions)
    sample = (
        reference.edge_sample(edge_case, dtype)
        if edge_case
        else reference.sample(params, seed, dtype)
    )
    prepared = prepare(candidate, reference, sample)
    if prepared is None:
        raise Unsupported(f"{op}: the candidate's API cannot express {sample.describe()}")
    run_check(check, reference, candidate, prepared)


# --- diagnosis ----------------------------------------------------------------------------------


def diagnose(
    candidate: Any,
    spec: OpSpec,
    judged_against: str,
    finding: Finding,
    sample: Sample,
    config: Settings,
) -> list[str]:
    """Name what is wrong: the conventions and bug-zoo mutants of the op that the candidate
    matches on the failing sample and on CONFIRMATIONS more."""
    from refcnn.testing import bugzoo, conventions

    named: list[str] = []
    if finding.check == "values" and not finding.quantities:
        return named  # an exception or a missing result: nothing to compare variants with
    for convention in conventions.for_op(spec.name):
        if convention.name in judged_against:
            continue
        variant = convention.spec()
        if _matches(candidate, variant, finding, sample, config):
            named.append(f"conforms under convention '{convention.name}': {convention.summary}")
    for mutant in (m for m in bugzoo.MUTANTS if m.op == spec.name):
        variant = mutant.spec()
        only = set(finding.quantities) if finding.check == "values" else None
        if _matches(candidate, variant, finding, sample, config, only):
            what = ", ".join(finding.quantities) or finding.check
            named.append(f"{what} matches bug '{mutant.name}'")
    return named


def _matches(
    candidate: Any,
    variant: OpSpec,
    finding: Finding,
    sample: Sample,
    config: Settings,
    only: Collection[str] | None = None,
) -> bool:
    """The candidate agrees with ``variant`` on ``sample`` and on more samples (in the
    quantities ``only``, when given: a bug in grad_x is named even if grad_bias has another);
    for an invariant failure, the variant fails that invariant on ``sample`` too."""
    try:
        if finding.check != "values":
            try:
                run_check(finding.check, variant, Reference(), sample)
            except AssertionError as error:  # the variant fails the invariant: the same way?
                expected = _signature(str(error)).split("]", 1)[-1]
                if expected != _signature(finding.message).split("]", 1)[-1]:
                    return False
            else:
                return False
        variant_sample = (
            variant.regenerate(sample, sample.dtype) if sample.edge_case is None else sample
        )
        judge(variant, candidate, variant_sample, only=only)
    except Exception:
        return False
    search = _Search("values", _lenient(variant), candidate, config, only)
    return search.search(sample.dtype, CONFIRMATIONS)


def _lenient(variant: OpSpec) -> OpSpec:
    """``variant`` whose errors mean "no verdict on this sample" (Unsupported): a mutant that
    pads on one side only rejects geometry the catalog accepts, and such a sample says nothing
    about whether the candidate agrees with it."""

    def guard(function: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except Exception as error:
                raise Unsupported(f"the variant itself raised {error!r}") from error

        return guarded

    backward = None if variant.backward is None else guard(variant.backward)
    return dataclasses.replace(variant, forward=guard(variant.forward), backward=backward)


# --- the run: every op in a worker process with a time limit -----------------------------------


@dataclass
class Run:
    candidate: dict[str, str]
    target: str
    style: str
    settings: Settings
    results: list[OpResult]
    seconds: float
    environment: dict[str, str]
    known: list[KnownDifference] = field(default_factory=list)
    stale: list[KnownDifference] = field(default_factory=list)

    @property
    def failing(self) -> list[OpResult]:
        return [r for r in self.results if r.status in ("fail", "timeout", "crash")]

    def exit_code(self) -> int:
        return 1 if self.failing else 0


def run(
    target: Candidate,
    style: str = "auto",
    ops: Sequence[str] | None = None,
    config: Settings = Settings(),
    timeout: float = 300.0,
    isolate: bool = True,
    known: Sequence[KnownDifference] = (),
    progress: Callable[[OpResult], None] | None = None,
) -> Run:
    """Check every op (or ``ops``) of the catalog on the candidate. ``target`` is what
    :func:`load_candidate` takes, or a picklable zero-argument factory of an adapter. With
    ``isolate`` every op runs in a worker process that is killed after ``timeout`` seconds."""
    started = time.monotonic()
    candidate = _load(target, style)  # in this process too: import errors are usage errors
    specs = [catalog.get(name) for name in ops] if ops else list(catalog.OPS)
    declared = tuple(k.convention for k in known if k.convention)
    config = dataclasses.replace(config, conventions=config.conventions + declared)
    label = target if isinstance(target, str) else describe(candidate)["name"]
    results: list[OpResult] = []
    worker = _Worker(target, style, config, label) if isolate else None
    try:
        for spec in specs:
            if not provides(candidate, spec):
                result = OpResult(spec.name, "not provided")
            elif worker is not None:
                result = worker.check(spec.name, timeout)
            else:
                result = check_op(candidate, spec, config, label)
            results.append(result)
            if progress is not None:
                progress(result)
    finally:
        if worker is not None:
            worker.close()
    outcome = Run(
        candidate=describe(candidate),
        target=label,
        style=style,
        settings=config,
        results=results,
        seconds=time.monotonic() - started,
        environment=_environment(candidate),
    )
    apply_known(outcome, known)
    return outcome


def selected_candidate(config: Any = None) -> tuple[str | None, str]:
    """The candidate named for the suite: pytest's ``--refcnn-impl``/``--refcnn-style``, else
    ``REFCNN_IMPL``/``REFCNN_STYLE``."""
    option = config.getoption if config is not None else (lambda name, default: default)
    target = option("refcnn_impl", None) or os.environ.get("REFCNN_IMPL") or None
    style = option("refcnn_style", None) or os.environ.get("REFCNN_STYLE") or "auto"
    return target, style


class CandidateTimeout(BaseException):
    """The candidate did not return within the time limit. A BaseException, so that hypothesis
    stops at once instead of shrinking (every shrink step would wait out the limit again)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise CandidateTimeout in this (main) thread after ``seconds``: the pytest mode's guard
    against a candidate that never returns (``check`` stops its worker process instead). Python
    code is interrupted; a native call is interrupted when it returns to Python."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise CandidateTimeout(f"no answer within {seconds:g} s (REFCNN_TIMEOUT)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@functools.cache
def cached_candidate(target: str, style: str = "auto") -> Any:
    """One adapter per process for ``(target, style)`` (pytest builds many tests on one)."""
    return load_candidate(target, style)


def _load(target: Candidate, style: str) -> Any:
    return load_candidate(target, style) if isinstance(target, str) else target()


def _environment(candidate: Any) -> dict[str, str]:
    import platform

    import hypothesis

    import refcnn

    env = {
        "refcnn": refcnn.__version__,
        "numpy": np.__version__,
        "hypothesis": hypothesis.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if "torch" in sys.modules:
        env["torch"] = str(sys.modules["torch"].__version__)
    env.update({k: v for k, v in sorted(os.environ.items()) if k.startswith("REFCNN_")})
    return env


class _Worker:
    """A child process that loads the candidate once and checks the ops it is sent. One that
    overruns its time or dies is replaced; the op is reported as timeout / crash."""

    STARTUP = 60.0  # seconds a fresh worker may take to import numpy, hypothesis, the candidate

    def __init__(self, target: Candidate, style: str, config: Settings, label: str) -> None:
        self.arguments = (target, style, config, label)
        self.context = multiprocessing.get_context("spawn")  # safe with torch and CUDA
        self.process: Any = None
        self.connection: Any = None
        self.fresh = True

    def check(self, op: str, timeout: float) -> OpResult:
        if self.process is None:
            parent, child = self.context.Pipe()
            self.process = self.context.Process(
                target=_worker_main, args=(child, *self.arguments), daemon=True
            )
            self.process.start()
            child.close()
            self.connection, self.fresh = parent, True
        started = time.monotonic()
        self.connection.send(op)
        limit = timeout + (self.STARTUP if self.fresh else 0.0)
        self.fresh = False
        hung = False
        try:
            if self.connection.poll(limit):
                reply = self.connection.recv()
                if isinstance(reply, OpResult):
                    return reply
                self.close()
                return OpResult(op, "crash", note=str(reply))
            hung = True  # no answer in time
        except EOFError:  # the worker died: its end of the pipe closed
            self.process.join(10)
        elapsed = time.monotonic() - started
        self.close()
        if hung:
            note = f"no answer within {timeout:g} s; the worker was stopped"
            return OpResult(op, "timeout", seconds=elapsed, note=note)
        note = f"the worker process died (exit code {self.process_exitcode})"
        return OpResult(op, "crash", seconds=elapsed, note=note)

    process_exitcode: int | None = None

    def close(self) -> None:
        if self.process is None:
            return
        if self.process.is_alive():
            self.process.kill()
        self.process.join(10)
        self.process_exitcode = self.process.exitcode
        self.connection.close()
        self.process = self.connection = None


def _worker_main(
    connection: Any, target: Candidate, style: str, config: Settings, label: str
) -> None:
    try:
        candidate = _load(target, style)
    except Exception as error:
        while True:
            try:
                connection.recv()
            except EOFError:
                return
            connection.send(f"cannot load the candidate: {error}")
    while True:
        try:
            op = connection.recv()
        except EOFError:
            return
        try:
            reply: Any = check_op(candidate, catalog.get(op), config, label)
        except Exception as error:  # the oracle's own failure: report it, go on
            reply = f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
        connection.send(reply)


# --- known differences --------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownDifference:
    """One line of a known-differences file: ``PATTERN  # reason`` or
    ``convention: NAME  # reason``. PATTERN is a glob over ``op/dtype/check/quantity``."""

    line: int
    pattern: str
    reason: str
    convention: str = ""


def read_known(path: Path) -> list[KnownDifference]:
    """Parse a known-differences file; a line without a reason, or an unknown convention, is
    a usage error."""
    from refcnn.testing import conventions

    entries = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        pattern, _, reason = text.partition("#")
        pattern, reason = pattern.strip(), reason.strip()
        if not reason:
            raise UsageError(f"{path}:{number}: every entry needs a reason after '#': {text!r}")
        if pattern.startswith("convention:"):
            name = pattern[len("convention:") :].strip()
            try:
                conventions.get(name)
            except KeyError:
                known = [c.name for c in conventions.CONVENTIONS]
                raise UsageError(
                    f"{path}:{number}: no convention {name!r}; known: {known}"
                ) from None
            entries.append(KnownDifference(number, pattern, reason, convention=name))
        else:
            entries.append(KnownDifference(number, pattern, reason))
    return entries


def apply_known(outcome: Run, known: Sequence[KnownDifference]) -> None:
    """Accept the findings that known-differences patterns match; list the stale entries."""
    used: set[int] = set()
    for result in outcome.results:
        for finding in result.findings:
            for entry in known:
                if entry.convention:
                    continue
                if all(
                    fnmatch.fnmatchcase(key, entry.pattern)
                    or fnmatch.fnmatchcase(key, entry.pattern + "/*")
                    for key in finding.match_keys()
                ):
                    finding.known = entry.reason
                    used.add(entry.line)
                    break
        if result.status == "fail" and result.findings and all(f.known for f in result.findings):
            result.status = "known"
    for result in outcome.results:
        if result.reference != "refcnn":
            used.update(k.line for k in known if k.convention == result.reference)
    outcome.known = list(known)
    outcome.stale = [k for k in known if k.line not in used]
