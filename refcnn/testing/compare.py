"""Compare an array with the expected one under an elementwise rounding-error bound.

Every comparison yields a :class:`~refcnn.testing.records.Record` (observed/bound, greatest
absolute and relative error with their index) and, when it fails, an AssertionError whose message
reads like ``torch.testing.assert_close``'s and makes sense without the test's source.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from refcnn.testing import records
from refcnn.testing.opspec import Sample
from refcnn.testing.tolerance import observed_over_bound


@dataclass(frozen=True)
class Context:
    """What is being compared, for the record and the message."""

    sample: Sample
    check: str  # name of the function in refcnn.testing.checks that made the comparison
    quantity: str  # "out", "grad_x", ...
    versus: str  # "refcnn vs torch", "backward vs finite differences", ...
    deviation: str = ""  # reason of a known deviation allowed for in the bound

    def title(self) -> str:
        return f"{self.sample.op} {self.quantity} [{self.sample.dtype}] {self.versus}"


def assert_within_bound(
    actual: Any, expected: Any, bound: Any, context: Context, expected_dtype: Any = None
) -> records.Record:
    """Record the comparison; raise AssertionError if any |actual − expected| > bound.

    A wrong shape, or a dtype other than ``expected_dtype`` when given, fails outright.
    """
    actual_array = np.asarray(actual)
    expected_array = np.asarray(expected)
    if actual_array.shape != expected_array.shape:
        message = (
            f"{context.quantity}.shape={actual_array.shape}, but should be "
            f"{expected_array.shape} [{context.title()}, {context.sample.describe()}]"
        )
        return _finish(context, _failed_record(context, message, expected_array.size))
    if expected_dtype is not None and actual_array.dtype != np.dtype(expected_dtype):
        message = (
            f"{context.quantity}.dtype={actual_array.dtype}, but should be "
            f"{np.dtype(expected_dtype)} [{context.title()}, {context.sample.describe()}]"
        )
        return _finish(context, _failed_record(context, message, expected_array.size))
    with np.errstate(invalid="ignore"):  # inf − inf: NaN, resolved just below
        difference = actual_array.astype(np.float64) - expected_array.astype(np.float64)
    error = np.array(np.abs(difference))
    error[np.isnan(error) & ~(np.isnan(actual_array) & np.isnan(expected_array))] = np.inf
    error[np.isnan(actual_array) & np.isnan(expected_array)] = 0.0  # NaN where NaN is due
    error[actual_array == expected_array] = 0.0  # equal, infinities included (inf − inf is NaN)
    scale = np.abs(expected_array.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.array(error / scale)  # x/0 = inf
    relative[error == 0] = 0.0  # exact, whatever the scale
    relative[np.isnan(relative)] = np.inf  # inf/inf: an infinite error on an infinite value
    ratio = observed_over_bound(error, bound)
    bound_array = np.broadcast_to(np.asarray(bound, dtype=np.float64), error.shape)
    failing = ratio > 1
    worst = _argmax(ratio)
    record = _record(
        context,
        elements=int(error.size),
        max_abs_error=float(error.max(initial=0.0)),
        max_rel_error=float(relative.max(initial=0.0)),
        worst_ratio=float(ratio.max(initial=0.0)),
        worst_index=list(worst),
        passed=not bool(failing.any()),
        message="",
    )
    if not record.passed:
        count = int(failing.sum())
        abs_index, rel_index = _argmax(error), _argmax(relative)
        message = (
            f"{context.title()}: {count} / {error.size} elements "
            f"({100.0 * count / error.size:.1f}%) exceed the rounding-error bound\n"
            f"  greatest observed/bound: {record.worst_ratio:.3g} at index {worst} "
            f"(|diff| {error[worst]:.3g}, bound {bound_array[worst]:.3g}, "
            f"actual {actual_array[worst]!r}, expected {expected_array[worst]!r})\n"
            f"  greatest absolute difference: {record.max_abs_error:.3g} at index {abs_index}\n"
            f"  greatest relative difference: {record.max_rel_error:.3g} at index {rel_index}\n"
            f"  sample: {context.sample.describe()}"
        )
        record = dataclasses.replace(record, message=message)
    return _finish(context, record)


def fail(context: Context, message: str, elements: int = 0) -> records.Record:
    """Record a failure that is not a numeric difference (a mutated input, an alias) and raise."""
    return _finish(context, _failed_record(context, f"{context.title()}: {message}", elements))


def _argmax(values: NDArray[Any]) -> tuple[int, ...]:
    if values.size == 0:
        return ()
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(values)), values.shape))


def _record(context: Context, **outcome: Any) -> records.Record:
    """A record of ``outcome`` (errors, ratio, verdict) for the sample and check in ``context``."""
    sample = context.sample
    return records.Record(
        op=sample.op,
        check=context.check,
        quantity=context.quantity,
        dtype=sample.dtype,
        params=repr(sample.params),
        seed=sample.seed,
        repro=sample.repro(context.check),
        deviation=context.deviation,
        **outcome,
    )


def _failed_record(context: Context, message: str, elements: int) -> records.Record:
    inf = float("inf")
    return _record(
        context,
        elements=elements,
        max_abs_error=inf,
        max_rel_error=inf,
        worst_ratio=inf,
        worst_index=[],
        passed=False,
        message=message,
    )


def _finish(context: Context, record: records.Record) -> records.Record:
    records.append(record)
    if not record.passed:
        error = AssertionError(record.message)
        error.add_note("Reproduce with:\n" + record.repro)
        raise error
    return record
