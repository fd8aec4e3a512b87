"""Side-by-side timing on a noisy machine: interleaved A/B rounds, medians, and the spread seen.

Two callables are timed in alternating order (A B, B A, A B, ...), each round running both the
same number of times, so that a burst of load from another process hits both sides alike. A
figure is reported as the MEDIAN over rounds of the per-round ratio A/B, with its interquartile
range as the noise; absolute times are medians too, with their own relative spread. The garbage
collector is off while timing (as timeit does).
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable
from typing import Any


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def _run(function: Callable[[], Any], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        function()
    return (time.perf_counter() - start) / number


def interleaved(
    a: Callable[[], Any],
    b: Callable[[], Any],
    rounds: int = 15,
    min_time: float = 0.02,
    warmup: int = 2,
) -> dict[str, float]:
    """Time ``a`` and ``b`` side by side; ``ratio`` is the median of the per-round a/b.

    Each timed sample repeats a call ``number`` times, enough for the faster side to take
    about ``min_time`` seconds, so that timer resolution and call overhead do not matter.
    """
    for _ in range(warmup):
        a()
        b()
    once = min(_run(a, 1), _run(b, 1))
    number = max(1, math.ceil(min_time / max(once, 1e-9)))
    times_a: list[float] = []
    times_b: list[float] = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for index in range(rounds):
            order = ((times_a, a), (times_b, b)) if index % 2 == 0 else ((times_b, b), (times_a, a))
            for times, function in order:
                times.append(_run(function, number))
    finally:
        if enabled:
            gc.enable()
    ratios = [x / y for x, y in zip(times_a, times_b, strict=True)]
    r1, r2, r3 = _quartiles(ratios)
    a1, a2, a3 = _quartiles(times_a)
    b1, b2, b3 = _quartiles(times_b)
    return {
        "a_ms": a2 * 1e3,
        "b_ms": b2 * 1e3,
        "ratio": r2,
        "ratio_q1": r1,
        "ratio_q3": r3,
        "a_spread": (a3 - a1) / a2,  # interquartile range / median
        "b_spread": (b3 - b1) / b2,
        "rounds": rounds,
        "number": number,
    }


def median_time(function: Callable[[], Any], rounds: int = 5, warmup: int = 1) -> float:
    """Median seconds of one call (for costs that are not a side-by-side ratio)."""
    for _ in range(warmup):
        function()
    enabled = gc.isenabled()
    gc.disable()
    try:
        samples = [_run(function, 1) for _ in range(rounds)]
    finally:
        if enabled:
            gc.enable()
    return statistics.median(samples)
