"""Pure functions, ``torch.nn.functional`` names: forward and explicit backward per op.

Every ``<op>_backward(grad_out, <the op's inputs>, <its keyword arguments>)`` takes the upstream
gradient and every input it needs (nothing is cached) and returns the gradient of each
differentiable input: a tuple for ops with several (conv2d: ``(grad_x, grad_weight, grad_bias)``),
the array itself for ops with one.
"""

from refcnn.functional.conv import conv2d, conv2d_backward, conv2d_direct
from refcnn.functional.dropout import dropout, dropout_backward
from refcnn.functional.linear import (
    flatten,
    flatten_backward,
    linear,
    linear_backward,
    linear_direct,
    reshape,
    reshape_backward,
)
from refcnn.functional.pooling import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    avg_pool2d_direct,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_direct,
)
from refcnn.functional.softmax import (
    log_softmax,
    log_softmax_backward,
    log_softmax_direct,
    softmax,
    softmax_backward,
    softmax_direct,
    softmin,
    softmin_backward,
    softmin_direct,
)
from refcnn.im2col import col2im, im2col

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "avg_pool2d_direct",
    "col2im",
    "conv2d",
    "conv2d_backward",
    "conv2d_direct",
    "dropout",
    "dropout_backward",
    "flatten",
    "flatten_backward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "im2col",
    "linear",
    "linear_backward",
    "linear_direct",
    "log_softmax",
    "log_softmax_backward",
    "log_softmax_direct",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_direct",
    "reshape",
    "reshape_backward",
    "softmax",
    "softmax_backward",
    "softmax_direct",
    "softmin",
    "softmin_backward",
    "softmin_direct",
]
