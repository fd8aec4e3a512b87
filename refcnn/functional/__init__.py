"""Pure functions, ``torch.nn.functional`` names: forward and explicit backward per op."""

from refcnn.functional.conv import conv2d, conv2d_backward, conv2d_direct
from refcnn.im2col import col2im, im2col

__all__ = ["col2im", "conv2d", "conv2d_backward", "conv2d_direct", "im2col"]
