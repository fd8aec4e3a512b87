"""The book's optimizer API over torch's update rules.

"Deep Learning from Scratch" (O'Reilly Japan, ch. 6) writes an optimizer as a class whose
``update(params, grads)`` takes two dicts (``{"W1": array, "b1": array, ...}``), updates the
arrays of ``params`` IN PLACE (a network holds the same arrays, so it sees the change) and creates
its per-key state lazily, at the first call. These classes keep that shape and the book's
constructor signatures; the arithmetic is :mod:`refcnn.optim`'s, that is torch.optim's:

=============================  ==========================  ===================================
book                           here (torch.optim)          where the book's formula differs
=============================  ==========================  ===================================
``SGD(lr=0.01)``               SGD(lr)                     nowhere
``Momentum(lr, momentum)``     SGD(lr, momentum)           nowhere in exact arithmetic: the
                                                           book's v = μ·v − lr·g is −lr·b with
                                                           torch's b = μ·b + g (b₁ = g)
``Nesterov(lr, momentum)``     SGD(lr, momentum,           the book's code updates v first,
                               nesterov=True)              then θ += μ²·v − (1 + μ)·lr·g with
                                                           the NEW v; torch, like Bengio et
                                                           al. (2012) whom the book cites,
                                                           uses the old one:
                                                           θ += μ²·v_old − (1 + μ)·lr·g
``AdaGrad(lr=0.01)``           Adagrad(lr, eps=1e-10)      eps 1e-7 (pass ``eps=1e-7``)
``RMSprop(lr, decay_rate)``    RMSprop(lr, alpha=          eps 1e-7 (pass ``eps=1e-7``)
                               decay_rate, eps=1e-8)
``Adam(lr=0.001, beta1,        Adam(lr, betas, eps=1e-8)   the book folds both bias corrections
beta2)``                                                   into the step size, lr·√(1 − β₂ᵗ)/
                                                           (1 − β₁ᵗ), and adds eps = 1e-7 to the
                                                           UNcorrected √v: torch's rule with the
                                                           step-dependent eps 1e-7/√(1 − β₂ᵗ)
=============================  ==========================  ===================================

So ``AdaGrad(lr, eps=1e-7)`` and ``RMSprop(lr, decay_rate, eps=1e-7)`` compute the book's
formulas; the book's Adam and its new-v Nesterov are other functions (docs/optimizers.md
shows by how much). State lives in ``state`` (None until the first ``update``, then one torch-style
state dict per key) rather than the book's ``v``, ``h``, ``m`` attributes.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from refcnn import optim
from refcnn.geometry import FloatArray

Step = Callable[..., tuple[FloatArray, optim.State]]

__all__ = ["SGD", "AdaGrad", "Adam", "Momentum", "Nesterov", "RMSprop"]


class _BookOptimizer:
    """``update(params, grads)`` over a pure step function of refcnn.optim."""

    def __init__(self, step: Step, **hyperparameters: Any) -> None:
        self._step = step
        self.hyperparameters = hyperparameters
        self.state: dict[str, optim.State] | None = None  # created at the first update, as the book

    def update(
        self, params: MutableMapping[str, FloatArray], grads: MutableMapping[str, FloatArray]
    ) -> None:
        """One step for every key of ``params``; each array is updated in place.

        θ_new, state[key] = step(params[key], grads[key], state[key]);  params[key][...] = θ_new

        See docs/optimizers.md.
        """
        if self.state is None:
            self.state = {}
        for key, param in params.items():
            new_param, self.state[key] = self._step(
                param, grads[key], self.state.get(key), **self.hyperparameters
            )
            param[...] = new_param  # in place: the network's own array changes


class SGD(_BookOptimizer):
    """The book's SGD (torch.optim.SGD without momentum).

    θ ← θ − lr·g

    See docs/optimizers.md.
    """

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__(optim.sgd_step, lr=lr)


class Momentum(_BookOptimizer):
    """The book's Momentum, with torch's momentum rule (the same values in exact arithmetic).

    b ← g at the first step, then b ← μ·b + g;  θ ← θ − lr·b

    See docs/optimizers.md.
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__(optim.sgd_step, lr=lr, momentum=momentum)


class Nesterov(_BookOptimizer):
    """The book's Nesterov API with torch's Nesterov momentum (the old-v order of Bengio et al.).

    b as Momentum;  θ ← θ − lr·(g + μ·b)

    See docs/optimizers.md.
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__(optim.sgd_step, lr=lr, momentum=momentum, nesterov=True)


class AdaGrad(_BookOptimizer):
    """The book's AdaGrad (torch.optim.Adagrad).

    h ← h + g²;  θ ← θ − lr·g/(√h + eps), torch's eps 1e-10 (the book's: 1e-7)

    See docs/optimizers.md.
    """

    def __init__(self, lr: float = 0.01, *, eps: float = 1e-10) -> None:
        super().__init__(optim.adagrad_step, lr=lr, eps=eps)


class RMSprop(_BookOptimizer):
    """The book's RMSprop (torch.optim.RMSprop).

    h ← ρ·h + (1 − ρ)·g² (ρ = decay_rate);  θ ← θ − lr·g/(√h + eps), torch's eps 1e-8

    See docs/optimizers.md.
    """

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99, *, eps: float = 1e-8) -> None:
        super().__init__(optim.rmsprop_step, lr=lr, alpha=decay_rate, eps=eps)


class Adam(_BookOptimizer):
    """The book's Adam signature with torch's Adam rule (eps 1e-8, added after the bias correction).

    θ ← θ − lr/(1 − β₁ᵗ) · m/(√v/√(1 − β₂ᵗ) + eps)

    See docs/optimizers.md.
    """

    def __init__(
        self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, *, eps: float = 1e-8
    ) -> None:
        super().__init__(optim.adam_step, lr=lr, betas=(float(beta1), float(beta2)), eps=eps)
