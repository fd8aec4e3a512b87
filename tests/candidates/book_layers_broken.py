"""book_layers.py with three classic mistakes, for the oracle to find and name:

1. ``col2im`` ASSIGNS where it must add: a pixel that several windows share keeps only the
   last window's gradient (im2col's backward, Convolution's dx, and Pooling's dx where windows
   overlap);
2. ``Convolution.backward`` sums db over the positions of the FIRST image only, not the batch;
3. ``Affine.backward`` computes dW transposed: dout.T @ x, (out, in) instead of W's (in, out).

Everything else is book_layers.py's (imported from beside this file, as the book's own chapters
import ``common``): ``python -m refcnn check tests/candidates/book_layers_broken.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from book_layers import *  # noqa: F403  (the rest of the module, unchanged)
from book_layers import Affine as _Affine
from book_layers import Convolution as _Convolution
from book_layers import Pooling as _Pooling
from book_layers import _output_size

Array = Any


def col2im(
    col: Array,
    input_shape: tuple[int, int, int, int],
    filter_h: int,
    filter_w: int,
    stride: int = 1,
    pad: int = 0,
) -> Array:
    n, c, h, w = input_shape
    out_h = _output_size(h, filter_h, stride, pad)
    out_w = _output_size(w, filter_w, stride, pad)
    windows = col.reshape(n, out_h, out_w, c, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=col.dtype)
    for di in range(filter_h):
        rows = slice(di, di + stride * (out_h - 1) + 1, stride)
        for dj in range(filter_w):
            cols = slice(dj, dj + stride * (out_w - 1) + 1, stride)
            padded[:, :, rows, cols] = windows[:, :, di, dj]  # MISTAKE 1: = instead of +=
    return padded[:, :, pad : pad + h, pad : pad + w].copy()


class Convolution(_Convolution):
    def backward(self, dout: Array) -> Array:
        filters, c, fh, fw = self.W.shape
        rows = dout.transpose(0, 2, 3, 1).reshape(-1, filters)  # (N·OH·OW, FN)
        self.db = dout[0].sum(axis=(1, 2))  # MISTAKE 2: the first image's windows only
        self.dW = (rows.T @ self.col).reshape(filters, c, fh, fw)
        dcol = rows @ self.W.reshape(filters, -1)
        return col2im(dcol, self.x.shape, fh, fw, self.stride, self.pad)


class Pooling(_Pooling):
    def backward(self, dout: Array) -> Array:
        size = self.pool_h * self.pool_w
        flat = dout.transpose(0, 2, 3, 1).reshape(-1)
        dwindows = np.zeros((flat.size, size), dtype=dout.dtype)
        dwindows[np.arange(flat.size), self.arg_max] = flat
        dcol = dwindows.reshape(-1, self.x.shape[1] * size)
        return col2im(dcol, self.x.shape, self.pool_h, self.pool_w, self.stride, self.pad)


class Affine(_Affine):
    def backward(self, dout: Array) -> Array:
        self.dW = dout.T @ self.x  # MISTAKE 3: (out, in), W's transpose
        self.db = dout.sum(axis=0)
        return (dout @ self.W.T).reshape(self.x_shape)
