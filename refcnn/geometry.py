"""Sliding-window geometry shared by im2col, convolution and pooling.

Conventions (those of ``torch.nn.functional.conv2d``):

* arrays are NCHW: ``x.shape == (N, C, H, W)``;
* ``kernel_size``, ``stride`` and ``dilation`` are an int (both axes) or a pair ``(h, w)``;
* ``padding`` is one of

  - an int ``p``: ``p`` zeros on every side,
  - a pair ``(ph, pw)``: ``ph`` on top and bottom, ``pw`` on left and right,
  - four ints ``(top, bottom, left, right)``: every side on its own. Note the order: it is NOT
    ``torch.nn.functional.pad``'s ``(left, right, top, bottom)``,
  - ``"valid"``: no padding,
  - ``"same"``: output size = input size; stride 1 only; the total padding per axis is
    ``d·(k − 1)``, ``total // 2`` before and the rest (the extra one) after, i.e. bottom/right.

The output length along one axis, with ``L`` the input length and ``k_eff = d·(k − 1) + 1`` the
dilated kernel extent::

    out = floor((L + pad_before + pad_after − k_eff) / s) + 1

Every function here validates its arguments and raises ``TypeError``/``ValueError`` naming the
argument and the offending value, so that a mistake never surfaces as a reshape error deep inside.

The windows with examples: docs/conv2d.md (convolution) and docs/pooling.md (pooling's rules).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import NDArray

IntPair: TypeAlias = int | tuple[int, int]
Padding: TypeAlias = int | tuple[int, int] | tuple[int, int, int, int] | Literal["same", "valid"]
FloatArray: TypeAlias = NDArray[np.floating[Any]]


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def int_pair(value: object, name: str, *, minimum: int) -> tuple[int, int]:
    """Normalise an int or a pair of ints to ``(h, w)``, each at least ``minimum``.

    k ↦ (k, k);   (h, w) ↦ (h, w)

    See docs/conv2d.md.
    """
    if _is_int(value):
        pair = (int(value), int(value))  # type: ignore[call-overload]
    elif isinstance(value, tuple | list) and len(value) == 2 and all(_is_int(v) for v in value):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints (h, w), got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum} on both axes, got {name}={value!r}")
    return pair


def normalize_padding(
    padding: object,
    kernel_size: tuple[int, int],
    dilation: tuple[int, int],
    stride: tuple[int, int],
) -> tuple[int, int, int, int]:
    """Return padding as ``(top, bottom, left, right)``; see the module docstring.

    p ↦ (p, p, p, p);  (ph, pw) ↦ (ph, ph, pw, pw);  'valid' ↦ 0s;
    'same': total = d·(k − 1) per axis ↦ (total // 2 before, total − total // 2 after)

    See docs/conv2d.md.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(
                    f"padding='same' requires stride 1 (as torch), got stride={stride}"
                )
            total_h = dilation[0] * (kernel_size[0] - 1)
            total_w = dilation[1] * (kernel_size[1] - 1)
            # The extra pixel of an odd total goes after: bottom and right.
            return (total_h // 2, total_h - total_h // 2, total_w // 2, total_w - total_w // 2)
        raise ValueError(f"padding must be 'same' or 'valid' when a string, got {padding!r}")
    if _is_int(padding):
        sides = (int(padding),) * 4  # type: ignore[call-overload]
    elif isinstance(padding, tuple | list) and all(_is_int(v) for v in padding):
        if len(padding) == 2:
            sides = (padding[0], padding[0], padding[1], padding[1])
        elif len(padding) == 4:
            sides = tuple(padding)
        else:
            raise ValueError(
                "padding must be an int, (ph, pw), (top, bottom, left, right), 'same' or "
                f"'valid', got {len(padding)} values: padding={padding!r}"
            )
    else:
        raise TypeError(
            "padding must be an int, (ph, pw), (top, bottom, left, right), 'same' or 'valid', "
            f"got {padding!r}"
        )
    if min(sides) < 0:
        raise ValueError(f"padding must be non-negative, got padding={padding!r}")
    top, bottom, left, right = (int(v) for v in sides)
    return (top, bottom, left, right)


def output_length(
    length: int, kernel: int, stride: int, pad_before: int, pad_after: int, dilation: int
) -> int:
    """The output length of a sliding window along one axis.

    out = floor((L + pad_before + pad_after − d·(k − 1) − 1) / s) + 1

    See docs/conv2d.md.
    """
    return (length + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


@dataclass(frozen=True)
class WindowGeometry:
    """Everything about a 2-D sliding window over an ``(H, W)`` image, validated.

    output_size = (output_length along H, output_length along W):
    out = floor((L + pad_before + pad_after − d·(k − 1) − 1) / s) + 1 per axis

    ``padding`` is always per side: ``(top, bottom, left, right)``.

    See docs/conv2d.md.
    """

    input_size: tuple[int, int]
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    dilation: tuple[int, int]
    output_size: tuple[int, int]

    @property
    def padded_size(self) -> tuple[int, int]:
        top, bottom, left, right = self.padding
        return (self.input_size[0] + top + bottom, self.input_size[1] + left + right)

    @property
    def kernel_extent(self) -> tuple[int, int]:
        """Dilated kernel extent ``d·(k − 1) + 1`` per axis."""
        return (
            self.dilation[0] * (self.kernel_size[0] - 1) + 1,
            self.dilation[1] * (self.kernel_size[1] - 1) + 1,
        )

    @property
    def windows_overlap(self) -> bool:
        """True when some pixel is read by two different window positions.

        Along one axis, taps ``i·d`` and ``j·d`` of windows ``m`` strides apart meet when
        ``(i − j)·d = m·s`` for some ``0 < i − j < k`` and ``0 < m < out``. Two windows share a
        pixel when they meet along one axis (and are equal or meet along the other).
        """
        return any(
            _axis_windows_overlap(k, s, d, out)
            for k, s, d, out in zip(
                self.kernel_size, self.stride, self.dilation, self.output_size, strict=True
            )
        )


def _axis_windows_overlap(kernel: int, stride: int, dilation: int, out: int) -> bool:
    return any(
        (delta * dilation) % stride == 0 and 0 < (delta * dilation) // stride < out
        for delta in range(1, kernel)
    )


def window_geometry(
    input_size: tuple[int, int],
    kernel_size: object,
    stride: object = 1,
    padding: object = 0,
    dilation: object = 1,
) -> WindowGeometry:
    """Validate a sliding-window configuration and compute its output size.

    out = floor((L + pad_before + pad_after − d·(k − 1) − 1) / s) + 1 along each axis

    Raises ``ValueError`` when the dilated kernel does not fit in the padded input (torch:
    "Kernel size can't be greater than actual input size").

    See docs/conv2d.md.
    """
    kernel = int_pair(kernel_size, "kernel_size", minimum=1)
    steps = int_pair(stride, "stride", minimum=1)
    dilations = int_pair(dilation, "dilation", minimum=1)
    pads = normalize_padding(padding, kernel, dilations, steps)
    height, width = input_size
    top, bottom, left, right = pads
    extent = (dilations[0] * (kernel[0] - 1) + 1, dilations[1] * (kernel[1] - 1) + 1)
    padded = (height + top + bottom, width + left + right)
    if padded[0] < extent[0] or padded[1] < extent[1]:
        raise ValueError(
            f"kernel larger than the padded input: dilated kernel extent {extent} "
            f"(kernel_size={kernel}, dilation={dilations}) > padded input size {padded} "
            f"(input {input_size}, padding (top, bottom, left, right)={pads})"
        )
    output = (
        output_length(height, kernel[0], steps[0], top, bottom, dilations[0]),
        output_length(width, kernel[1], steps[1], left, right, dilations[1]),
    )
    return WindowGeometry(input_size, kernel, steps, pads, dilations, output)


def check_float_array(value: object, name: str, ndim: int, layout: str) -> FloatArray:
    """Check that ``value`` is a floating NumPy array with ``ndim`` dimensions.

    ``layout`` names the axes for the error message, e.g. ``"(N, C, H, W)"``.

    See docs/conv2d.md (the shapes each op takes).
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(value).__name__}")
    if not np.issubdtype(value.dtype, np.floating):
        raise TypeError(f"{name} must have a floating dtype, got {name}.dtype={value.dtype}")
    if value.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got {name}.shape={value.shape}")
    return value


def check_float_tensor(value: object, name: str) -> FloatArray:
    """Check that ``value`` is a floating NumPy array of any rank (see check_float_array).

    See docs/conv2d.md (the shapes each op takes).
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(value).__name__}")
    return check_float_array(value, name, value.ndim, "")


def normalize_dim(dim: object, ndim: int, name: str = "dim") -> int:
    """``dim`` as an index in ``0 .. ndim − 1``; negative dims count from the end (torch's rule).

    dim ↦ dim mod max(ndim, 1), for −max(ndim, 1) ≤ dim < max(ndim, 1)

    A 0-d array accepts ``dim`` in [-1, 0], as torch does (it is treated as a 1-element vector).

    See docs/softmax.md.
    """
    if not isinstance(dim, numbers.Integral) or isinstance(dim, bool):
        raise TypeError(f"{name} must be an int, got {name}={dim!r}")
    dim, rank = int(dim), max(ndim, 1)
    if not -rank <= dim < rank:
        raise ValueError(
            f"{name} out of range (expected to be in range of [{-rank}, {rank - 1}], but got "
            f"{name}={dim}) for an array with ndim={ndim}"
        )
    return dim % rank


def check_grad_out(grad_out: object, like: FloatArray, output: str) -> FloatArray:
    """``grad_out`` is a floating array shaped like the op's output (``like``), in its dtype.

    ``output`` names the output in the message, e.g. "the activation's output".

    See docs/conv2d.md (the upstream gradient G is laid out like the output).
    """
    upstream = check_float_tensor(grad_out, "grad_out")
    check_same_dtype("x", like, grad_out=upstream)
    if upstream.shape != like.shape:
        raise ValueError(
            f"grad_out.shape={upstream.shape}, but {output} has x's shape {like.shape}"
        )
    return upstream


def check_same_dtype(reference_name: str, reference: FloatArray, **others: object) -> None:
    """Every array in ``others`` (None allowed) has ``reference``'s dtype: no silent casts.

    See docs/conv2d.md.
    """
    for name, other in others.items():
        if isinstance(other, np.ndarray) and other.dtype != reference.dtype:
            raise TypeError(
                f"{name}.dtype={other.dtype} differs from {reference_name}.dtype="
                f"{reference.dtype}; refcnn never casts silently, convert one of them"
            )


# --- pooling ------------------------------------------------------------------------------------
#
# Pooling windows follow torch's pooling rules, which differ from convolution's in three ways:
#
# * padding is symmetric, an int or a pair ``(ph, pw)``, and at most half the kernel size per
#   axis: ``pad ≤ kernel_size // 2`` (torch checks ``pad ≤ (d·(k − 1) + 1) // 2`` and then
#   ``pad ≤ k // 2``, so the dilation never allows more);
# * ``stride`` defaults to the kernel size (None, as torch's ``stride=None``);
# * ``ceil_mode`` rounds the output length up, then drops the last window if it would start at
#   or past ``L + pad`` (inside the right padding or beyond)::
#
#       out = floor((L + 2·pad − d·(k − 1) − 1 + (s − 1 if ceil_mode else 0)) / s) + 1
#       if ceil_mode and (out − 1)·s ≥ L + pad: out −= 1
#
# In ceil mode the last window may hang past the padded input ("overhang"). Nothing there is
# ever counted: not by max pooling, not in avg pooling's divisor.


def pooling_output_length(
    length: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool
) -> int:
    """Output length along one axis, torch's ``pooling_output_shape`` (see the comment above).

    out = floor((L + 2·pad − d·(k − 1) − 1 + (s − 1 if ceil_mode else 0)) / s) + 1,
    minus 1 if ceil_mode and (out − 1)·s ≥ L + pad (the last window would start in the padding)

    See docs/pooling.md.
    """
    span = length + 2 * pad - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    out = (span + stride - 1) // stride + 1  # ceil(span / s) + 1
    if (out - 1) * stride >= length + pad:  # the last window would start in the right padding
        out -= 1
    return out


@dataclass(frozen=True)
class PoolingGeometry:
    """A validated pooling configuration over an ``(H, W)`` image.

    windows.padding = (ph, ph + overhang_h, pw, pw + overhang_w), overhang = the ceil_mode part
    of the last window past the padded input

    ``windows`` is the sliding-window geometry im2col reads: its bottom/right padding includes
    the ceil_mode overhang, so every window fits in the padded array. ``padding`` is the
    declared symmetric ``(ph, pw)``: positions in ``[−ph, H + ph)`` count towards avg pooling's
    ``count_include_pad`` divisor, the overhang does not.

    See docs/pooling.md.
    """

    windows: WindowGeometry
    padding: tuple[int, int]
    ceil_mode: bool

    @property
    def output_size(self) -> tuple[int, int]:
        return self.windows.output_size

    def window_starts(self, axis: int) -> list[int]:
        """First row (axis 0) or column (axis 1) of every window, in unpadded coordinates."""
        step, pad = self.windows.stride[axis], self.padding[axis]
        return [o * step - pad for o in range(self.windows.output_size[axis])]


def pooling_geometry(
    input_size: tuple[int, int],
    kernel_size: object,
    stride: object = None,
    padding: object = 0,
    dilation: object = 1,
    ceil_mode: object = False,
) -> PoolingGeometry:
    """Validate a pooling configuration (torch's rules, see above) and compute its geometry.

    out = :func:`pooling_output_length` along each axis, stride = kernel_size when None,
    padding ≤ kernel_size // 2

    Raises ``ValueError`` when the padding exceeds half the kernel, when the output would be
    empty (kernel larger than the padded input), and when a dilated window would read padding
    only (torch returns −inf there and its backward writes out of bounds).

    See docs/pooling.md.
    """
    kernel = int_pair(kernel_size, "kernel_size", minimum=1)
    if stride is None or (isinstance(stride, tuple | list) and len(stride) == 0):
        steps = kernel  # torch: stride=None (or empty) means stride = kernel_size
    else:
        steps = int_pair(stride, "stride", minimum=1)
    dilations = int_pair(dilation, "dilation", minimum=1)
    if isinstance(padding, tuple | list) and len(padding) != 2:
        raise ValueError(
            "padding must be an int or a pair (ph, pw) for pooling (symmetric, as torch), "
            f"got {len(padding)} values: padding={padding!r}"
        )
    pads = int_pair(padding, "padding", minimum=0)
    if not isinstance(ceil_mode, bool | np.bool_):
        raise TypeError(f"ceil_mode must be a bool, got ceil_mode={ceil_mode!r}")
    if pads[0] > kernel[0] // 2 or pads[1] > kernel[1] // 2:
        raise ValueError(
            "pad should be at most half of the kernel size on each axis (torch's rule: "
            f"pad <= kernel_size // 2, whatever the dilation), got padding={pads} for "
            f"kernel_size={kernel}"
        )
    output = tuple(
        pooling_output_length(length, k, s, p, d, bool(ceil_mode))
        for length, k, s, p, d in zip(input_size, kernel, steps, pads, dilations, strict=True)
    )
    extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilations, strict=True))
    padded = tuple(length + 2 * p for length, p in zip(input_size, pads, strict=True))
    if min(output) < 1:
        raise ValueError(
            f"kernel larger than the padded input: dilated kernel extent {extent} "
            f"(kernel_size={kernel}, dilation={dilations}) > padded input size {padded} "
            f"(input {tuple(input_size)}, padding={pads}, ceil_mode={ceil_mode}): output size "
            f"{output} is too small"
        )
    # ceil_mode: how far the last window reaches past the padded input, added to bottom/right.
    overhang = tuple(
        max(0, (out - 1) * s + e - size)
        for out, s, e, size in zip(output, steps, extent, padded, strict=True)
    )
    windows = WindowGeometry(
        input_size=(int(input_size[0]), int(input_size[1])),
        kernel_size=kernel,
        stride=steps,
        padding=(pads[0], pads[0] + overhang[0], pads[1], pads[1] + overhang[1]),
        dilation=dilations,
        output_size=(output[0], output[1]),
    )
    geometry = PoolingGeometry(windows, pads, bool(ceil_mode))
    for axis, name in enumerate(("H", "W")):
        k, d, length = kernel[axis], dilations[axis], input_size[axis]
        for o, start in enumerate(geometry.window_starts(axis)):
            if not any(0 <= start + i * d < length for i in range(k)):
                raise ValueError(
                    f"window {o} along {name} reads padding only (rows/columns "
                    f"{[start + i * d for i in range(k)]} of an input of length {length}, "
                    f"kernel_size={kernel}, dilation={dilations}, padding={pads}): every "
                    "pooling window must contain an input element"
                )
    return geometry
