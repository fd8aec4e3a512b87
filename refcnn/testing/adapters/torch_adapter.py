"""PyTorch as an implementation: the catalog's ``torch_forward`` binding, gradients by autograd.

torch is imported when this module is imported, never by refcnn itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from refcnn.testing.opspec import OpSpec


class Torch:
    """Runs an op's torch binding on ``device``; backward is ``torch.autograd.grad``.

    On CUDA, cuDNN's float32 convolutions use TF32 (10-bit mantissa products) by default, about
    1e-3 relative: far outside float32's rounding bound. ``tf32=False`` (the default here) turns
    it off for cuDNN and matmul, so the candidate is judged as float32; ``tf32=True`` leaves
    torch's default on and the name says so.
    """

    def __init__(self, device: str = "cpu", tf32: bool = False) -> None:
        self.device = device
        self.tf32 = tf32
        label = device
        if device.startswith("cuda"):
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cuda.matmul.allow_tf32 = tf32
            label = f"{device}, TF32 {'on' if tf32 else 'off'}"
        self.name = f"torch {torch.__version__} ({label})"

    def describe(self) -> dict[str, str]:
        described = {"name": self.name, "version": torch.__version__, "device": self.device}
        if self.device.startswith("cuda"):
            described["gpu"] = torch.cuda.get_device_name(self.device)
            described["tf32"] = "on" if self.tf32 else "off"
        return described

    def provides(self, spec: OpSpec) -> bool:
        return spec.torch_forward is not None

    def _tensors(self, spec: OpSpec, inputs: dict[str, Any]) -> dict[str, Any]:
        return {
            name: None
            if value is None
            else torch.tensor(value, device=self.device, requires_grad=name in spec.differentiable)
            for name, value in inputs.items()
        }

    def forward(self, spec: OpSpec, inputs: dict[str, Any], kwargs: dict[str, Any]) -> Any:
        if spec.torch_forward is None:
            raise TypeError(f"{spec.name} has no torch binding")
        with torch.no_grad():
            out = spec.torch_forward(**self._tensors(spec, inputs), **kwargs)
        return out.detach().cpu().numpy()

    def backward(
        self, spec: OpSpec, inputs: dict[str, Any], kwargs: dict[str, Any], upstream: Any
    ) -> dict[str, Any]:
        if spec.torch_forward is None:
            raise TypeError(f"{spec.name} has no torch binding")
        tensors = self._tensors(spec, inputs)
        out = spec.torch_forward(**tensors, **kwargs)
        wrt = [name for name in spec.differentiable if tensors.get(name) is not None]
        grads = torch.autograd.grad(
            out,
            [tensors[name] for name in wrt],
            grad_outputs=torch.tensor(np.asarray(upstream), device=self.device),
            allow_unused=True,
        )
        return {
            name: np.zeros_like(inputs[name]) if grad is None else grad.cpu().numpy()
            for name, grad in zip(wrt, grads, strict=True)
        }
