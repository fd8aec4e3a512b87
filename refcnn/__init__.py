"""refcnn: a plain-NumPy reference for CNN layers, with explicit backward passes.

NumPy only: torch and hypothesis appear in ``refcnn.testing`` alone.
"""

from refcnn import functional, geometry, gradcheck
from refcnn.functional import col2im, conv2d, conv2d_backward, im2col

__version__ = "0.1.0"
__all__ = ["col2im", "conv2d", "conv2d_backward", "functional", "geometry", "gradcheck", "im2col"]
