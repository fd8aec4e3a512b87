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
    """Normalise an int or a pair of ints to ``(h, w)``, each at least ``minimum``."""
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
    """Return padding as ``(top, bottom, left, right)``; see the module docstring."""
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
    """``floor((L + pad_before + pad_after − d·(k − 1) − 1) / s) + 1``."""
    return (length + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


@dataclass(frozen=True)
class WindowGeometry:
    """Everything about a 2-D sliding window over an ``(H, W)`` image, validated.

    ``padding`` is always per side: ``(top, bottom, left, right)``.
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

    Raises ``ValueError`` when the dilated kernel does not fit in the padded input (torch:
    "Kernel size can't be greater than actual input size").
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
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(value).__name__}")
    if not np.issubdtype(value.dtype, np.floating):
        raise TypeError(f"{name} must have a floating dtype, got {name}.dtype={value.dtype}")
    if value.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got {name}.shape={value.shape}")
    return value


def check_same_dtype(reference_name: str, reference: FloatArray, **others: object) -> None:
    """Every array in ``others`` (None allowed) has ``reference``'s dtype: no silent casts."""
    for name, other in others.items():
        if isinstance(other, np.ndarray) and other.dtype != reference.dtype:
            raise TypeError(
                f"{name}.dtype={other.dtype} differs from {reference_name}.dtype="
                f"{reference.dtype}; refcnn never casts silently, convert one of them"
            )
