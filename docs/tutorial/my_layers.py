"""A learner's convolution layer in the API of "Deep Learning from Scratch" (docs/tutorial.md).

im2col turns every filter window into a row, so that the convolution is one matrix product;
col2im takes the gradient of those rows back to the image.
"""

import numpy as np


def im2col(input_data, filter_h, filter_w, stride=1, pad=0):
    """(N, C, H, W) images -> (N·OH·OW, C·FH·FW): one row per window, columns ordered (c, y, x)."""
    N, C, H, W = input_data.shape
    out_h = (H + 2 * pad - filter_h) // stride + 1
    out_w = (W + 2 * pad - filter_w) // stride + 1
    img = np.pad(input_data, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    col = np.zeros((N, C, filter_h, filter_w, out_h, out_w), dtype=input_data.dtype)
    for y in range(filter_h):  # offset (y, x) inside the window, for every window at once
        y_max = y + stride * out_h
        for x in range(filter_w):
            x_max = x + stride * out_w
            col[:, :, y, x, :, :] = img[:, :, y:y_max:stride, x:x_max:stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * out_h * out_w, -1)


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    """The way back: (N·OH·OW, C·FH·FW) rows -> (N, C, H, W) image gradient."""
    N, C, H, W = input_shape
    out_h = (H + 2 * pad - filter_h) // stride + 1
    out_w = (W + 2 * pad - filter_w) // stride + 1
    col = col.reshape(N, out_h, out_w, C, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=col.dtype)
    for y in range(filter_h):
        y_max = y + stride * out_h
        for x in range(filter_w):
            x_max = x + stride * out_w
            img[:, :, y:y_max:stride, x:x_max:stride] = col[:, :, y, x, :, :]  # back to its pixel
    return img[:, :, pad : H + pad, pad : W + pad]


class Convolution:
    """out = W ⋆ x + b, filters W (FN, C, FH, FW), bias b (FN,); one int stride, one int pad."""

    def __init__(self, W, b, stride=1, pad=0):
        self.W = W
        self.b = b
        self.stride = stride
        self.pad = pad
        self.x = None  # kept by forward for backward
        self.col = None
        self.col_W = None
        self.dW = None  # left here by backward
        self.db = None

    def forward(self, x):
        FN, _, FH, FW = self.W.shape
        N, _, H, W = x.shape
        out_h = (H + 2 * self.pad - FH) // self.stride + 1
        out_w = (W + 2 * self.pad - FW) // self.stride + 1
        col = im2col(x, FH, FW, self.stride, self.pad)  # (N·OH·OW, C·FH·FW)
        col_W = self.W.reshape(FN, -1).T  # (C·FH·FW, FN)
        out = col @ col_W + self.b  # (N·OH·OW, FN)
        self.x, self.col, self.col_W = x, col, col_W
        return out.reshape(N, out_h, out_w, FN).transpose(0, 3, 1, 2)

    def backward(self, dout):
        FN, C, FH, FW = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, FN)  # (N·OH·OW, FN), rows as in col
        self.db = np.sum(dout, axis=0)  # every window of every image
        self.dW = (self.col.T @ dout).T.reshape(FN, C, FH, FW)
        dcol = dout @ self.col_W.T  # (N·OH·OW, C·FH·FW)
        return col2im(dcol, self.x.shape, FH, FW, self.stride, self.pad)
