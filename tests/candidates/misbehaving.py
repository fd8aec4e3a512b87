"""A custom candidate that misbehaves in every way the oracle must survive and report.

relu raises, sigmoid returns a list, tanh never returns, softplus kills its process, softsign
returns NaN, flatten writes into its input, and hardtanh is correct (the run must still reach
it and pass it).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from refcnn import functional as F
from refcnn.testing.adapters import Functions


def _relu_raises(x: Any) -> Any:
    raise RuntimeError("kernel launch failed")


def _sigmoid_list(x: Any) -> Any:
    return F.sigmoid(x).tolist()


def _tanh_sleeps(x: Any) -> Any:
    while True:
        time.sleep(1)


def _softplus_exits(x: Any, beta: float = 1.0, threshold: float = 20.0) -> Any:
    os._exit(3)  # a native kernel's segfault looks like this to the caller


def _softsign_nan(x: Any) -> Any:
    out = F.softsign(x)
    out.flat[0] = np.nan
    return out


def _flatten_in_place(x: Any, start_dim: int = 1, end_dim: int = -1) -> Any:
    out = F.flatten(x, start_dim, end_dim)
    x[...] = 0  # BUG: clobbers the caller's array
    return out


def refcnn_adapter() -> Functions:
    return Functions(
        "misbehaving",
        {
            "relu": (_relu_raises, F.relu_backward),
            "sigmoid": (_sigmoid_list, F.sigmoid_backward),
            "tanh": (_tanh_sleeps, F.tanh_backward),
            "softplus": (_softplus_exits, F.softplus_backward),
            "softsign": (_softsign_nan, F.softsign_backward),
            "flatten": (_flatten_in_place, F.flatten_backward),
            "hardtanh": (F.hardtanh, F.hardtanh_backward),
        },
    )
