"""The checks every generic test runs, each a function ``check(spec, sample)``.

Each check computes values two independent ways and a rounding-error bound for their difference
(see :mod:`refcnn.testing.tolerance`), then compares them through
:func:`~refcnn.testing.compare.assert_within_bound`, which records the outcome and raises on
failure. A check never loosens a bound; if one fails, one of the two computations is wrong.

The upstream gradient is always random (``sample.random``), never all ones.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

import hypothesis
import numpy as np

from refcnn.gradcheck import central_difference_step, richardson_truncation_estimate
from refcnn.testing.adapters import Adapter, Reference
from refcnn.testing.compare import Context, assert_within_bound, fail
from refcnn.testing.opspec import ErrorCase, OpSpec, Sample, stream
from refcnn.testing.tolerance import PAIRWISE_FACTOR, gamma, unit_roundoff

Array = Any
REFERENCE = Reference()


def _dot(a: Array, b: Array) -> float:
    """⟨a, b⟩ accumulated in float64 (exact products of float32 or float64 values)."""
    return float(np.sum(np.asarray(a, np.float64) * np.asarray(b, np.float64)))


def _upstream(spec: OpSpec, sample: Sample, purpose: str = "upstream") -> Array:
    out = spec.forward(**sample.inputs, **sample.kwargs)
    return sample.random(out.shape, purpose)


# --- finite differences -------------------------------------------------------------------------


def _fd_quotient(
    spec: OpSpec, sample: Sample, upstream: Array, direction: Mapping[str, Array], h: float
) -> tuple[float, float]:
    """A central difference of φ(t) = ⟨upstream, f(x + t·v)⟩ at 0, and a bound on its error.

    D(h) = (φ(h) − φ(−h)) / 2h. Rounding: each φ(±h) is off by at most ⟨|g|, E±⟩ +
    γ_n·⟨|g|, |f(x±)|⟩, where E± is the forward bound with ``degree`` extra roundings for storing
    x ± h·v; the subtraction and the division add γ_2·|D|.

    Truncation: none when the op is a polynomial of degree ≤ 2 in t (central differences are
    exact for quadratics): D(h) is returned. Otherwise D(h) = φ' + c·h² + O(h⁴), and the
    Richardson extrapolation D_R = (4·D(h) − D(2h)) / 3 = φ' + O(h⁴) is returned, with its
    rounding bound (4·b(h) + b(2h)) / 3 plus |D(h) − D(2h)| / 3 for truncation: that is the
    estimated error of D(h) itself, O(h²), so it allows D_R's O(h⁴) error with a margin of
    order 1/h² wherever f is smooth on [x − 2h·v, x + 2h·v]. Across a kink it is not, and the
    check fails, as it should: the strategy then let an input come within 2h of a kink.
    """
    dtype = np.dtype(sample.dtype)
    n = upstream.size

    def phi_with_bound(t: float) -> tuple[float, float]:
        moved = {
            # np.asarray: NumPy turns 0-d results into scalars, which refcnn rejects as non-arrays
            name: value
            if name not in direction
            else np.asarray((value + t * direction[name]).astype(dtype))
            for name, value in sample.inputs.items()
        }
        out = spec.forward(**moved, **sample.kwargs)
        phi = _dot(upstream, out)
        rounding = spec.tolerance.forward_bound(
            spec, moved, sample.kwargs, dtype, extra_terms=spec.tolerance.degree
        )
        g = np.abs(upstream.astype(np.float64))
        bound = float(np.sum(g * rounding) + gamma(n, np.float64) * np.sum(g * np.abs(out)))
        return phi, bound

    def quotient_with_bound(step: float) -> tuple[float, float]:
        (plus, plus_bound), (minus, minus_bound) = phi_with_bound(step), phi_with_bound(-step)
        quotient = (plus - minus) / (2.0 * step)
        return quotient, (plus_bound + minus_bound) / (2.0 * step) + gamma(2, np.float64) * abs(
            quotient
        )

    quotient, bound = quotient_with_bound(h)
    if spec.polynomial_degree is not None and spec.polynomial_degree <= 2:
        return quotient, bound
    quotient_2h, bound_2h = quotient_with_bound(2 * h)
    extrapolated = (4.0 * quotient - quotient_2h) / 3.0
    rounding = (4.0 * bound + bound_2h) / 3.0 + gamma(3, np.float64) * abs(extrapolated)
    return extrapolated, rounding + richardson_truncation_estimate(quotient, quotient_2h)


def _analytic(
    spec: OpSpec, sample: Sample, upstream: Array
) -> tuple[dict[str, Array], dict[str, Array]]:
    grads = spec.backward_dict(upstream, sample.inputs, sample.kwargs)
    bounds = spec.tolerance.backward_bounds(
        spec, sample.inputs, sample.kwargs, upstream, sample.dtype
    )
    return grads, bounds


def _step(spec: OpSpec, sample: Sample) -> float:
    """The central-difference step for the inputs that are perturbed (the differentiable ones;
    a target of −100 or a running variance says nothing about the scale of x)."""
    scale = max(
        (
            float(np.max(np.abs(sample.inputs[name]), initial=0.0))
            for name in spec.differentiable
            if sample.inputs.get(name) is not None
        ),
        default=1.0,
    )
    return central_difference_step(sample.dtype, scale)


def directional_fd(spec: OpSpec, sample: Sample) -> None:
    """Σ_i ⟨∂L/∂x_i, v_i⟩ from backward equals the central difference of ⟨g, f⟩ along v.

    v is a random signed direction in ALL differentiable inputs at once (scaled to max |v| = 1),
    so one check costs two forward calls whatever the input size.
    """
    dtype = np.dtype(sample.dtype)
    upstream = _upstream(spec, sample)
    grads, grad_bounds = _analytic(spec, sample, upstream)
    raw = {name: sample.random(sample.inputs[name].shape, f"direction {name}") for name in grads}
    largest = max((float(np.max(np.abs(v), initial=0.0)) for v in raw.values()), default=1.0)
    direction = {name: np.asarray((v / largest).astype(dtype)) for name, v in raw.items()}
    quotient, fd_bound = _fd_quotient(spec, sample, upstream, direction, _step(spec, sample))
    analytic = sum(_dot(grads[n], direction[n]) for n in grads)
    m = sum(direction[n].size for n in grads)
    analytic_bound = float(
        sum(
            np.sum(grad_bounds[n] * np.abs(direction[n]))
            + gamma(m, np.float64) * _dot(np.abs(grads[n]), np.abs(direction[n]))
            for n in grads
        )
    )
    context = Context(sample, "directional_fd", "<grad, v>", "backward vs finite differences")
    assert_within_bound(analytic, quotient, fd_bound + analytic_bound, context)


def full_jacobian_fd(spec: OpSpec, sample: Sample) -> None:
    """Every element of every gradient vs its own central difference (tiny shapes only).

    Column j of the Jacobian, contracted with the random upstream g, is the directional
    derivative along the unit vector e_j: (⟨g, f(x + h·e_j)⟩ − ⟨g, f(x − h·e_j)⟩) / 2h.
    """
    upstream = _upstream(spec, sample)
    grads, grad_bounds = _analytic(spec, sample, upstream)
    h = _step(spec, sample)
    for name, grad in grads.items():
        numeric = np.empty(grad.shape, dtype=np.float64)
        fd_bounds = np.empty(grad.shape, dtype=np.float64)
        for index in np.ndindex(grad.shape):
            unit = np.zeros(grad.shape, dtype=sample.dtype)
            unit[index] = 1
            numeric[index], fd_bounds[index] = _fd_quotient(spec, sample, upstream, {name: unit}, h)
        context = Context(
            sample, "full_jacobian_fd", f"grad_{name}", "backward vs finite differences"
        )
        assert_within_bound(grad, numeric, fd_bounds + grad_bounds[name], context)


# --- identities that need no reference values ---------------------------------------------------


def adjoint(spec: OpSpec, sample: Sample) -> None:
    """For each input x the op is linear in: ⟨f(x) − f(0), y⟩ = ⟨x, backward(y)_x⟩, random y.

    For im2col this is ⟨im2col(x), C⟩ = ⟨x, col2im(C)⟩. Subtracting f(0) removes affine terms
    (conv's bias), so the identity holds for every op that is affine in x.
    """
    dtype = np.dtype(sample.dtype)
    tolerance = spec.tolerance
    for name in spec.linear_in:
        x = sample.inputs[name]
        if x is None:
            continue  # an optional input this sample leaves out (no bias, no weight)
        zeroed = {**sample.inputs, name: np.zeros_like(x)}
        out = spec.forward(**sample.inputs, **sample.kwargs)
        y = sample.random(out.shape, f"adjoint {name}")
        image = out - spec.forward(**zeroed, **sample.kwargs)
        lhs = _dot(image, y)
        grad = spec.backward_dict(y, sample.inputs, sample.kwargs)[name]
        rhs = _dot(x, grad)
        u, y_abs = unit_roundoff(dtype), np.abs(y.astype(np.float64))
        image_bound = (
            tolerance.forward_bound(spec, sample.inputs, sample.kwargs, dtype)
            + tolerance.forward_bound(spec, zeroed, sample.kwargs, dtype)
            + u * np.abs(image)
        )
        lhs_bound = np.sum(y_abs * image_bound) + gamma(y.size, np.float64) * _dot(
            y_abs, np.abs(image)
        )
        grad_bound = tolerance.backward_bounds(spec, sample.inputs, sample.kwargs, y, dtype)[name]
        x_abs = np.abs(x.astype(np.float64))
        rhs_bound = np.sum(x_abs * grad_bound) + gamma(x.size, np.float64) * _dot(
            x_abs, np.abs(grad)
        )
        context = Context(sample, "adjoint", f"adjoint in {name}", "<f(x), y> vs <x, f*(y)>")
        assert_within_bound(rhs, lhs, float(lhs_bound + rhs_bound), context)


def matches_definition(spec: OpSpec, sample: Sample) -> None:
    """The vectorised forward equals the op's direct definition (plain nested sums), in the
    sample's dtype and in float32: both keep the input's dtype."""
    if spec.definition is None:
        raise TypeError(f"{spec.name} has no direct definition")
    for each in {sample.dtype: sample, "float32": sample.with_dtype("float32")}.values():
        fast = spec.forward(**each.inputs, **each.kwargs)
        slow = spec.definition(**each.inputs, **each.kwargs)
        bound = PAIRWISE_FACTOR * spec.tolerance.forward_bound(
            spec, each.inputs, each.kwargs, each.dtype
        )
        context = Context(each, "matches_definition", "out", "vectorised path vs definition")
        if np.asarray(slow).dtype != np.dtype(each.dtype):
            fail(context, f"the definition's out.dtype={np.asarray(slow).dtype}, not {each.dtype}")
        assert_within_bound(fast, slow, bound, context, expected_dtype=each.dtype)


def float32_tracks_float64(spec: OpSpec, sample: Sample) -> None:
    """float32 in gives float32 out, within float32's bound of the float64 result.

    The float32 sample's values are widened exactly, so the only difference is the arithmetic.
    """
    single = spec.regenerate(sample, "float32")
    double = single.with_dtype("float64")
    checks: list[tuple[str, Array, Array, Array]] = []
    out32 = spec.forward(**single.inputs, **single.kwargs)
    out64 = spec.forward(**double.inputs, **double.kwargs)
    tol = spec.tolerance
    checks.append(
        (
            "out",
            out32,
            out64,
            tol.forward_bound(spec, double.inputs, double.kwargs, np.float32)
            + tol.forward_bound(spec, double.inputs, double.kwargs, np.float64),
        )
    )
    if spec.backward is not None:
        upstream32 = single.random(out32.shape, "upstream")
        upstream64 = upstream32.astype(np.float64)
        grads32 = spec.backward_dict(upstream32, single.inputs, single.kwargs)
        grads64 = spec.backward_dict(upstream64, double.inputs, double.kwargs)
        bounds32 = tol.backward_bounds(spec, double.inputs, double.kwargs, upstream64, np.float32)
        bounds64 = tol.backward_bounds(spec, double.inputs, double.kwargs, upstream64, np.float64)
        for name in grads32:
            checks.append(
                (f"grad_{name}", grads32[name], grads64[name], bounds32[name] + bounds64[name])
            )
    for quantity, value32, value64, bound in checks:
        context = Context(single, "float32_tracks_float64", quantity, "float32 vs float64")
        assert_within_bound(value32, value64, bound, context, expected_dtype=np.float32)


# --- invariants: what must hold whatever the values ----------------------------------------


def _exact_upstream(sample: Sample, shape: tuple[int, ...], purpose: str) -> Array:
    """Random upstream values on the grid 2⁻¹⁰·ℤ with |g| < 8: sums and power-of-two multiples
    of them are exact in float32 and float64, so a·g1 + b·g2 is formed without rounding."""
    values = np.clip(np.round(sample.random(shape, purpose).astype(np.float64) * 1024), -8191, 8191)
    return np.asarray((values / 1024).astype(sample.dtype))


def upstream_linearity(spec: OpSpec, sample: Sample) -> None:
    """backward is linear in the upstream gradient, and a zero upstream gives exact zeros.

    backward(a·g1 + b·g2) = a·backward(g1) + b·backward(g2) for random g1, g2 and a, b ∈ ±2^k
    (a loss's backward must scale with its scalar upstream). a·g1 + b·g2 is exact (see
    _exact_upstream), so the bound is the backward's own: B(|a·g1| + |b·g2|) for the left side,
    |a|·B(g1) + |b|·B(g2) for the right, and one rounding of the right side's sum.
    """
    out = spec.forward(**sample.inputs, **sample.kwargs)
    g1 = _exact_upstream(sample, out.shape, "upstream 1")
    g2 = _exact_upstream(sample, out.shape, "upstream 2")
    rng = stream(sample.seed, "linearity coefficients")
    a, b = (float(rng.choice([-1.0, 1.0]) * 2.0 ** rng.integers(-1, 4)) for _ in range(2))
    combined = np.asarray(a * g1 + b * g2)
    lhs = spec.backward_dict(combined, sample.inputs, sample.kwargs)
    first = spec.backward_dict(g1, sample.inputs, sample.kwargs)
    second = spec.backward_dict(g2, sample.inputs, sample.kwargs)
    tolerance, dtype = spec.tolerance, sample.dtype
    size = np.abs(a * g1.astype(np.float64)) + np.abs(b * g2.astype(np.float64))
    lhs_bounds = tolerance.backward_bounds(spec, sample.inputs, sample.kwargs, size, dtype)
    bounds_1 = tolerance.backward_bounds(spec, sample.inputs, sample.kwargs, g1, dtype)
    bounds_2 = tolerance.backward_bounds(spec, sample.inputs, sample.kwargs, g2, dtype)
    u = unit_roundoff(dtype)
    for name, grad in lhs.items():
        rhs = np.asarray(a * first[name] + b * second[name])
        bound = (
            lhs_bounds[name]
            + abs(a) * bounds_1[name]
            + abs(b) * bounds_2[name]
            + u * np.abs(rhs.astype(np.float64))
        )
        context = Context(
            sample,
            "upstream_linearity",
            f"grad_{name}",
            f"backward(a·g1 + b·g2) vs a·backward(g1) + b·backward(g2), a={a}, b={b}",
        )
        assert_within_bound(grad, rhs, bound, context, expected_dtype=dtype)
    zero = np.zeros_like(out)
    for name, grad in spec.backward_dict(zero, sample.inputs, sample.kwargs).items():
        context = Context(sample, "upstream_linearity", f"grad_{name}", "backward(0) vs 0")
        assert_within_bound(grad, np.zeros_like(sample.inputs[name]), 0.0, context)


def no_mutation(spec: OpSpec, sample: Sample) -> None:
    """forward and backward leave every input as it was and return fresh arrays.

    Inputs (and the upstream gradient) are passed READ-ONLY, so an in-place write raises; they
    are also compared bit for bit afterwards; a result that shares memory with an input (a
    returned view) is a finding too: the caller's later in-place update would change the input.
    """
    originals = {k: None if v is None else v.copy() for k, v in sample.inputs.items()}
    frozen = {k: None if v is None else _read_only(v) for k, v in sample.inputs.items()}
    results: dict[str, Any] = {}
    context = Context(sample, "no_mutation", "inputs", "inputs before vs after")
    try:
        results["out"] = spec.forward(**frozen, **sample.kwargs)
        if spec.backward is not None:
            upstream = _read_only(sample.random(np.shape(results["out"]), "upstream"))
            for name, grad in spec.backward_dict(upstream, frozen, sample.kwargs).items():
                results[f"grad_{name}"] = grad
    except ValueError as error:
        if "read-only" not in str(error):
            raise
        fail(context, f"writes into one of its inputs: {error}")
    for name, value in originals.items():
        if value is not None:
            assert_within_bound(
                frozen[name],
                value,
                0.0,
                Context(sample, "no_mutation", name, "input after vs before"),
            )
    for quantity, result in results.items():
        for name, value in frozen.items():
            if value is not None and np.shares_memory(np.asarray(result), value):
                fail(context, f"{quantity} shares memory with input {name} (a view, not a copy)")


def backward_rejects_a_bad_upstream(spec: OpSpec, sample: Sample) -> None:
    """The backward validates the upstream gradient itself and names it: a list, the other
    float dtype and a wrong shape each raise, with the message the op's own inputs get
    (``grad_out must be a numpy.ndarray``; ``grad_out.dtype=float32 differs from
    x.dtype=float64``, naming one of the op's inputs; ``grad_out.shape=(…)`` next to the
    output's shape, or "0-D" for a scalar output). A backward that broadcast or cast a wrong
    upstream would return a wrong gradient without a word."""
    out = np.asarray(spec.forward(**sample.inputs, **sample.kwargs))
    upstream, name = sample.random(out.shape, "upstream"), re.escape(spec.upstream_name)
    other_dtype = "float32" if out.dtype == np.float64 else "float64"
    wrong_shape = (1,) if out.ndim == 0 else (*out.shape[:-1], out.shape[-1] + 1)
    output_shape = re.escape(str(out.shape)) if out.ndim else r"(\(\)|0-D)"
    inputs = "|".join(re.escape(input_name) for input_name in sample.inputs)
    bad_upstreams = (
        (upstream.tolist(), TypeError, rf"{name} must be a numpy\.ndarray, got (list|float)"),
        (
            upstream.astype(other_dtype),
            TypeError,
            rf"{name}\.dtype={other_dtype} differs from ({inputs})\.dtype={out.dtype}",
        ),
        (
            sample.random(wrong_shape, "wrong upstream"),
            ValueError,
            rf"(?=.*{name}\.shape={re.escape(str(wrong_shape))})(?=.*{output_shape})",
        ),
    )
    context = Context(sample, "backward_rejects_a_bad_upstream", "error", "raised vs expected")
    backward = spec.backward
    assert backward is not None
    for grad_out, error, match in bad_upstreams:
        call = functools.partial(backward, grad_out, **sample.inputs, **sample.kwargs)
        _expect_error(context, call, error, match)


def _expect_error(
    context: Context, call: Callable[[], Any], error: type[Exception], match: str
) -> None:
    """``call()`` raises ``error`` with a message matching ``match``; anything else fails."""
    try:
        call()
    except error as raised:
        if not re.search(match, str(raised)):
            fail(context, f"raised {error.__name__}({str(raised)!r}), not matching {match!r}")
        return
    except Exception as raised:
        fail(context, f"raised {type(raised).__name__}({raised}), expected {error.__name__}")
    fail(context, f"raised nothing: expected {error.__name__} matching {match!r}")


def inputs_must_be_arrays(spec: OpSpec, sample: Sample) -> None:
    """Every array input given as a list (a float for a 0-d one) is refused by name, by the
    forward and by the backward: ``TypeError: x must be a numpy.ndarray, got list``, raised
    before any attribute of the list is touched (no AttributeError from three calls deep)."""
    calls: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = [("forward", spec.forward, ())]
    if spec.backward is not None:
        out = np.asarray(spec.forward(**sample.inputs, **sample.kwargs))
        calls.append(("backward", spec.backward, (sample.random(out.shape, "upstream"),)))
    for name, value in sample.inputs.items():
        if not isinstance(value, np.ndarray):
            continue
        arguments = {**sample.inputs, name: value.tolist()}
        given = type(value.tolist()).__name__
        match = rf"{re.escape(name)} must be a numpy\.ndarray\b.*, got {given}"
        for which, function, upstream in calls:
            context = Context(sample, "inputs_must_be_arrays", name, f"{which} raised vs expected")
            call = functools.partial(function, *upstream, **arguments, **sample.kwargs)
            _expect_error(context, call, TypeError, match)


def _read_only(value: Array) -> Array:
    frozen = np.array(value, copy=True)
    frozen.setflags(write=False)
    return frozen


def repeatable(spec: OpSpec, sample: Sample) -> None:
    """Calling forward and backward again gives bit-identical results, gradients shaped and
    typed like their inputs (nothing cached, nothing drawn at random inside the op)."""
    dtype = sample.dtype
    out = spec.forward(**sample.inputs, **sample.kwargs)
    again = spec.forward(**sample.inputs, **sample.kwargs)
    assert_within_bound(
        again,
        out,
        0.0,
        Context(sample, "repeatable", "out", "second vs first"),
        expected_dtype=dtype,
    )
    if spec.backward is None:
        return
    upstream = sample.random(np.shape(out), "upstream")
    grads = spec.backward_dict(upstream, sample.inputs, sample.kwargs)
    repeat = spec.backward_dict(upstream, sample.inputs, sample.kwargs)
    for name, grad in grads.items():
        context = Context(sample, "repeatable", f"grad_{name}", f"grad_{name} vs input {name}")
        if np.shape(grad) != np.shape(sample.inputs[name]):
            fail(
                context,
                f"grad_{name}.shape={np.shape(grad)}, but {name}.shape="
                f"{np.shape(sample.inputs[name])}",
            )
        assert_within_bound(
            repeat[name],
            grad,
            0.0,
            Context(sample, "repeatable", f"grad_{name}", "second vs first"),
            expected_dtype=dtype,
        )


def batch_slices(spec: OpSpec, sample: Sample) -> None:
    """An op that treats samples independently gives, on each slice of the batch, the slice of
    its batched result, and the gradients of shared parameters add up over the slices.

    Bounds: the two computations follow the same formula over different blocks (PAIRWISE_FACTOR
    times the model's bound); a shared parameter's gradient adds the N per-slice errors and one
    length-N sum, γ_N·Σ|slice gradients|, to the batched gradient's own bound.
    """
    if spec.per_sample is None:
        raise TypeError(f"{spec.name} does not declare per-sample inputs")
    batched = spec.per_sample(sample)
    if not batched:
        return  # this sample's arguments couple the samples (e.g. softmax over dim 0)
    tolerance, dtype = spec.tolerance, sample.dtype
    out = spec.forward(**sample.inputs, **sample.kwargs)
    upstream = sample.random(np.shape(out), "upstream")
    grads = spec.backward_dict(upstream, sample.inputs, sample.kwargs) if spec.backward else {}
    # the sums over samples start at zeros shaped like each shared gradient (an empty batch: 0)
    totals: dict[str, Any] = {
        n: np.zeros(np.shape(g)) for n, g in grads.items() if n not in batched
    }
    total_bounds: dict[str, Any] = {n: np.zeros(np.shape(totals[n])) for n in totals}
    for index in range(sample.inputs[batched[0]].shape[0]):
        piece = slice(index, index + 1)
        sliced = {k: v[piece] if k in batched else v for k, v in sample.inputs.items()}
        versus = f"sample {index} alone vs its slice of the batch"
        assert_within_bound(
            spec.forward(**sliced, **sample.kwargs),
            out[piece],
            PAIRWISE_FACTOR * tolerance.forward_bound(spec, sliced, sample.kwargs, dtype),
            Context(sample, "batch_slices", "out", versus),
            expected_dtype=dtype,
        )
        if not grads:
            continue
        slice_grads = spec.backward_dict(upstream[piece], sliced, sample.kwargs)
        slice_bounds = tolerance.backward_bounds(
            spec, sliced, sample.kwargs, upstream[piece], dtype
        )
        for name, grad in slice_grads.items():
            if name in batched:
                assert_within_bound(
                    grad,
                    grads[name][piece],
                    PAIRWISE_FACTOR * slice_bounds[name],
                    Context(sample, "batch_slices", f"grad_{name}", versus),
                    expected_dtype=dtype,
                )
            else:
                totals[name] = totals[name] + grad.astype(np.float64)
                total_bounds[name] = (
                    total_bounds[name]
                    + slice_bounds[name]
                    + gamma(sample.inputs[batched[0]].shape[0], dtype)
                    * np.abs(grad.astype(np.float64))
                )
    full_bounds = tolerance.backward_bounds(spec, sample.inputs, sample.kwargs, upstream, dtype)
    for name, total in totals.items():
        assert_within_bound(
            grads[name],
            total,
            total_bounds[name] + full_bounds[name],
            Context(
                sample, "batch_slices", f"grad_{name}", "batched gradient vs the sum over samples"
            ),
        )


def translation(spec: OpSpec, sample: Sample) -> None:
    """Sliding windows commute with translation: x with (sh, sw) fresh rows and columns put in
    front of it (one stride) gives one more output row and column in front, and the rest is
    f(x) unchanged.

    Gradient: with zero upstream on the extra windows, the gradient of the grown input, cut back
    to x's region, is x's gradient (the same windows read the same pixels). Both sides follow the
    same formula: PAIRWISE_FACTOR times the model's bound on each.
    """
    if spec.translation_step is None:
        raise TypeError(f"{spec.name} does not declare a translation step")
    declared = spec.translation_step(sample)
    if declared is None:
        return  # the kernel does not fit x without padding
    (sh, sw), kwargs = declared
    tolerance, dtype = spec.tolerance, sample.dtype
    x = sample.inputs["x"]
    grown = sample.random((*x.shape[:-2], x.shape[-2] + sh, x.shape[-1] + sw), "translation")
    grown[..., sh:, sw:] = x
    moved = {**sample.inputs, "x": grown}
    versus = f"f(x) vs f(x moved by {(sh, sw)}) without its first output row and column"
    out = spec.forward(**sample.inputs, **kwargs)
    out_moved = spec.forward(**moved, **kwargs)
    assert_within_bound(
        out_moved[..., 1:, 1:],
        out,
        PAIRWISE_FACTOR * tolerance.forward_bound(spec, sample.inputs, kwargs, dtype),
        Context(sample, "translation", "out", versus),
        expected_dtype=dtype,
    )
    if spec.backward is None:
        return
    upstream = sample.random(np.shape(out), "upstream")
    upstream_moved = np.zeros_like(out_moved)
    upstream_moved[..., 1:, 1:] = upstream
    grad = spec.backward_dict(upstream, sample.inputs, kwargs)["x"]
    grad_moved = spec.backward_dict(upstream_moved, moved, kwargs)["x"][..., sh:, sw:]
    bound = (
        tolerance.backward_bounds(spec, sample.inputs, kwargs, upstream, dtype)["x"]
        + tolerance.backward_bounds(spec, moved, kwargs, upstream_moved, dtype)["x"][..., sh:, sw:]
    )
    assert_within_bound(
        grad_moved,
        grad,
        bound,
        Context(sample, "translation", "grad_x", versus),
        expected_dtype=dtype,
    )


def channel_permutation(spec: OpSpec, sample: Sample) -> None:
    """Permuting the input channels the op sums over, in x and in the weight alike, leaves the
    output as it is and permutes their gradients the same way (a transposed or mis-indexed
    channel axis in a backward shows here). Only the summation order changes: PAIRWISE_FACTOR
    times the model's bound."""
    if spec.channel_axes is None:
        raise TypeError(f"{spec.name} does not declare channel axes")
    axes = spec.channel_axes(sample)
    if not axes:
        return  # e.g. grouped convolution: channels are tied to their groups
    first = next(iter(axes))
    count = sample.inputs[first].shape[axes[first]]
    order = stream(sample.seed, "channel permutation").permutation(count)
    permuted = {
        k: np.take(v, order, axis=axes[k]) if k in axes else v for k, v in sample.inputs.items()
    }
    tolerance, dtype = spec.tolerance, sample.dtype
    out = spec.forward(**sample.inputs, **sample.kwargs)
    assert_within_bound(
        spec.forward(**permuted, **sample.kwargs),
        out,
        PAIRWISE_FACTOR * tolerance.forward_bound(spec, sample.inputs, sample.kwargs, dtype),
        Context(sample, "channel_permutation", "out", f"channels permuted by {order.tolist()}"),
        expected_dtype=dtype,
    )
    if spec.backward is None:
        return
    upstream = sample.random(np.shape(out), "upstream")
    grads = spec.backward_dict(upstream, sample.inputs, sample.kwargs)
    grads_permuted = spec.backward_dict(upstream, permuted, sample.kwargs)
    bounds = tolerance.backward_bounds(spec, sample.inputs, sample.kwargs, upstream, dtype)
    for name, axis in axes.items():
        if name not in grads:
            continue
        expected = np.take(grads[name], order, axis=axis)
        bound = 2 * np.take(bounds[name], order, axis=axis)
        assert_within_bound(
            grads_permuted[name],
            expected,
            bound,
            Context(
                sample,
                "channel_permutation",
                f"grad_{name}",
                "gradient of the permuted problem vs the gradient permuted",
            ),
            expected_dtype=dtype,
        )


# --- against another implementation -------------------------------------------------------------


def matches_candidate(
    spec: OpSpec,
    sample: Sample,
    candidate: Adapter,
    reference: Adapter = REFERENCE,
    check: str = "matches_candidate",
) -> None:
    """Forward and every gradient of ``candidate`` vs refcnn, same dtype, same random upstream.

    Both are held to the same model, so they may differ by PAIRWISE_FACTOR·γ_k·magnitude, plus
    the allowance of a KnownDeviation the catalog declares for this candidate, dtype and output.
    The candidate must return arrays of the sample's dtype.
    """
    versus = f"{candidate.name} vs {reference.name}"
    expected = {"out": reference.forward(spec, sample.inputs, sample.kwargs)}
    actual = {"out": candidate.forward(spec, sample.inputs, sample.kwargs)}
    tolerance = spec.tolerance
    bounds = {"out": tolerance.forward_bound(spec, sample.inputs, sample.kwargs, sample.dtype)}
    if spec.backward is not None:
        upstream = sample.random(expected["out"].shape, "upstream")
        for name, value in reference.backward(spec, sample.inputs, sample.kwargs, upstream).items():
            expected[f"grad_{name}"] = value
        for name, value in candidate.backward(spec, sample.inputs, sample.kwargs, upstream).items():
            actual[f"grad_{name}"] = value
        for name, bound in tolerance.backward_bounds(
            spec, sample.inputs, sample.kwargs, upstream, sample.dtype
        ).items():
            bounds[f"grad_{name}"] = bound
    for quantity, value in expected.items():
        bound = PAIRWISE_FACTOR * bounds[quantity]
        reasons = []
        for deviation in spec.known_deviations:
            if deviation.applies(candidate.name, sample.dtype, quantity):
                bound = bound + deviation.relative * np.abs(value.astype(np.float64))
                reasons.append(deviation.reason)
        context = Context(sample, check, quantity, versus, deviation="; ".join(reasons))
        assert_within_bound(
            actual.get(quantity), value, bound, context, expected_dtype=sample.dtype
        )


def matches_torch(spec: OpSpec, sample: Sample) -> None:
    """:func:`matches_candidate` with torch (CPU) as the candidate."""
    from refcnn.testing.adapters.torch_adapter import Torch

    matches_candidate(spec, sample, Torch("cpu"), check="matches_torch")


# --- keyword defaults ---------------------------------------------------------------------------
# The samples pass every keyword argument, so a default value is exercised only here.


def _keyword_defaults(function: Callable[..., Any]) -> dict[str, Any]:
    parameters = inspect.signature(function).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def _default_variants(spec: OpSpec, sample: Sample) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(keywords given, keywords they stand for) pairs: every defaulted keyword left out at
    once, then each alone (a default may matter only next to another keyword: avg_pool2d's
    count_include_pad only with padding)."""
    defaults = _keyword_defaults(spec.forward)
    omissible = [k for k in sample.kwargs if k in defaults]
    variants = []
    for left_out in [omissible, *([k] for k in omissible)] if omissible else []:
        given = {k: v for k, v in sample.kwargs.items() if k not in left_out}
        variants.append((given, {**sample.kwargs, **{k: defaults[k] for k in left_out}}))
    return variants


def _forward_with_defaults(
    spec: OpSpec,
    sample: Sample,
    check: str,
    other: Callable[[dict[str, Any]], Any],
    other_name: str,
    other_errors: tuple[type[Exception], ...],
) -> None:
    """refcnn's forward and ``other`` called with keywords left out compute the same."""
    for given, meant in _default_variants(spec, sample):
        try:
            expected = spec.forward(**sample.inputs, **given)
        except ValueError:  # the defaults do not fit this sample's geometry: other must agree
            try:
                other(given)
            except other_errors:
                continue
            raise AssertionError(
                f"{spec.name} rejects keywords {given} on {sample.describe()}, "
                f"{other_name} does not"
            ) from None
        bound = PAIRWISE_FACTOR * spec.tolerance.forward_bound(
            spec, sample.inputs, meant, sample.dtype
        )
        context = Context(sample, check, "out", f"{other_name} vs refcnn, keywords {given}")
        assert_within_bound(other(given), expected, bound, context, expected_dtype=sample.dtype)


def defaults_match_torch(spec: OpSpec, sample: Sample) -> None:
    """With keywords left out (all defaulted ones at once, then each alone), the op computes
    what torch computes with the same keywords left out: refcnn's defaults are torch's."""
    from refcnn.testing.adapters.torch_adapter import Torch

    torch = Torch("cpu")

    def other(given: dict[str, Any]) -> Any:
        return torch.forward(spec, sample.inputs, given)

    # torch's errors for a geometry its defaults make impossible
    _forward_with_defaults(
        spec, sample, "defaults_match_torch", other, "torch", (ValueError, RuntimeError, IndexError)
    )


def definition_defaults_match_forward(spec: OpSpec, sample: Sample) -> None:
    """With keywords left out, the op and its direct definition compute the same thing: their
    defaults agree. A call the defaults make invalid must fail in both."""
    definition = spec.definition
    if definition is None:
        raise TypeError(f"{spec.name} has no direct definition")

    def other(given: dict[str, Any]) -> Any:
        return definition(**sample.inputs, **given)

    _forward_with_defaults(
        spec, sample, "definition_defaults", other, "the definition", (ValueError,)
    )


def backward_defaults_match_forward(spec: OpSpec, sample: Sample) -> None:
    """The backward's keyword defaults are the forward's: with keywords left out it returns
    exactly what it returns with the forward's defaults written out."""
    if spec.backward is None:
        raise TypeError(f"{spec.name} has no backward")
    for given, meant in _default_variants(spec, sample):
        try:
            out = spec.forward(**sample.inputs, **given)
        except ValueError:
            continue  # the defaults do not fit this sample's input
        upstream = sample.random(out.shape, "upstream")
        implicit = spec.backward_dict(upstream, sample.inputs, given)
        explicit = spec.backward_dict(upstream, sample.inputs, meant)
        for name, value in explicit.items():
            context = Context(sample, "backward_defaults", f"grad_{name}", f"keywords {given}")
            assert_within_bound(implicit[name], value, 0.0, context, expected_dtype=sample.dtype)


# --- bad input ----------------------------------------------------------------------------------


def raises_documented_error(spec: OpSpec, case: ErrorCase) -> None:
    """The call raises ``case.error`` with a message matching ``case.match``."""
    arguments = case.materialize()
    function = spec.backward if "grad_out" in arguments else spec.forward
    assert function is not None
    try:
        function(**arguments)
    except case.error as error:
        if not re.search(case.match, str(error)):
            raise AssertionError(
                f"{spec.name} [{case.id}] raised {type(error).__name__}({str(error)!r}), whose "
                f"message does not match {case.match!r}"
            ) from error
        return
    except Exception as error:
        raise AssertionError(
            f"{spec.name} [{case.id}] raised {type(error).__name__}({error}), "
            f"expected {case.error.__name__} matching {case.match!r}"
        ) from error
    raise AssertionError(
        f"{spec.name} [{case.id}] raised nothing, expected "
        f"{case.error.__name__} matching {case.match!r}"
    )


# Checks of validation rather than numerics: whether a bad argument is refused depends on the
# shapes drawn, hardly on the values, so they run a quarter of the profile's examples, like an
# op's costly checks (profiles.costly_examples), besides every edge case.
FEWER_EXAMPLES = frozenset({"backward_rejects_a_bad_upstream", "inputs_must_be_arrays"})

# Every property check the catalog's ops get (properties/test_catalog.py; the conventions get the
# same, tests/test_conventions.py): (check, capability an op needs for it, size budget of the
# drawn samples). matches_torch is not here: it compares with another implementation.
PROPERTY_CHECKS: list[tuple[Callable[..., None], str | None, str]] = [
    (directional_fd, "backward", "small"),
    (full_jacobian_fd, "backward", "tiny"),
    (adjoint, "linear", "small"),
    (matches_definition, "definition", "small"),
    (definition_defaults_match_forward, "definition", "small"),
    (float32_tracks_float64, None, "small"),
    # invariants: no reference values needed
    (backward_defaults_match_forward, "backward", "small"),
    (upstream_linearity, "backward", "small"),
    (backward_rejects_a_bad_upstream, "backward", "small"),
    (inputs_must_be_arrays, None, "small"),
    (no_mutation, None, "small"),
    (repeatable, None, "small"),
    (batch_slices, "per_sample", "small"),
    (translation, "translation", "small"),
    (channel_permutation, "channel_permutation", "small"),
]


# --- the learner's entry point --------------------------------------------------------------------


def check_gradient(op: str, /, seed: int = 0, **arguments: Any) -> None:
    """Finite differences on arrays you choose: ``check_gradient("conv2d", x=x, weight=w)``.

    The op's explicit backward, fed a random upstream g drawn from ``seed`` (never all ones), is
    compared with central differences of ⟨g, op(...)⟩: element by element for every
    differentiable input (:func:`full_jacobian_fd`, so keep the arrays small), then along one
    random direction in all of them at once (:func:`directional_fd`). Each comparison allows the
    rounding-error bound of :mod:`refcnn.testing.tolerance` and nothing more; a wrong gradient
    raises AssertionError naming the worst element. Keyword arguments that are not inputs of the
    op (stride, padding, reduction, ...) are passed to it unchanged.
    """
    from refcnn.testing import catalog  # the catalog imports this module

    spec = catalog.get(op)
    if spec.backward is None or not spec.differentiable:
        raise ValueError(f"op={op!r} has no explicit backward to check")
    unknown_inputs = [name for name in spec.differentiable if arguments.get(name) is None]
    if len(unknown_inputs) == len(spec.differentiable):
        raise TypeError(
            f"check_gradient({op!r}) needs at least one of its differentiable inputs "
            f"{list(spec.differentiable)} as a keyword argument"
        )
    inputs = {name: arguments.pop(name, None) for name in spec.inputs}
    dtypes = {
        np.asarray(inputs[name]).dtype for name in spec.differentiable if inputs[name] is not None
    }
    if len(dtypes) != 1 or not all(np.issubdtype(d, np.floating) for d in dtypes):
        raise TypeError(
            f"the differentiable inputs of {op} must share one floating dtype, got "
            f"{sorted(str(d) for d in dtypes)}"
        )
    (dtype,) = dtypes
    # the bounds read the keyword arguments the catalog passes: fill in the forward's defaults
    # for those not given (the catalog's smallest example names them)
    _, catalog_kwargs = spec.layout(hypothesis.find(spec.params("small"), lambda _: True))
    for name, default in _keyword_defaults(spec.forward).items():
        if name in catalog_kwargs:
            arguments.setdefault(name, default)
    sample = Sample(
        op=op,
        params={},
        seed=seed,
        dtype=str(dtype),
        inputs={k: None if v is None else np.asarray(v) for k, v in inputs.items()},
        kwargs=arguments,
    )
    full_jacobian_fd(spec, sample)
    directional_fd(spec, sample)
