"""AdamW on stacked weights with one weight decay per model.

``torch.optim.AdamW`` applies one weight decay per parameter group; a batch whose models have
different weight decays would need one group per model and per weight (slow). This is the
same update, written on the stacked tensors with the decay as a per-model vector. It follows
``torch.optim.adam._single_tensor_adam`` (decoupled weight decay) operation by operation:

    p     <- p * (1 - lr * wd_k)
    m     <- m + (1 - beta1) (g - m)                (lerp)
    v     <- beta2 v + (1 - beta2) g^2
    p     <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

Tests check it against ``torch.optim.AdamW`` (one model, and several models each with its own
torch optimiser). A model that is not ``active`` (frozen after divergence) keeps its weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["AdamWState", "adamw_init", "adamw_step"]


@dataclass
class AdamWState:
    """Moments of every stacked weight and the (shared) step count."""

    step: int
    exp_avg: dict[str, Tensor]
    exp_avg_sq: dict[str, Tensor]


def adamw_init(params: dict[str, Tensor]) -> AdamWState:
    return AdamWState(0, {n: torch.zeros_like(p) for n, p in params.items()},
                      {n: torch.zeros_like(p) for n, p in params.items()})


@torch.no_grad()
def adamw_step(params: dict[str, Tensor], grads: dict[str, Tensor], state: AdamWState, *,
               lr: float, beta1: float, beta2: float, eps: float, weight_decay: Tensor,
               active: Tensor | None = None) -> None:
    """One AdamW step in place on all models.

    Args:
        weight_decay: ``[E]`` per-model weight decay.
        active: ``[E]`` bool; inactive models keep their weights (their gradients must be
            finite, e.g. zero). ``None``: all active.
    """
    state.step += 1
    bias_correction1 = 1 - beta1 ** state.step
    bias_correction2 = 1 - beta2 ** state.step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2 ** 0.5
    decay = 1 - lr * weight_decay.double()
    if active is not None:
        decay = torch.where(active, decay, torch.ones_like(decay))
    for name, p in params.items():
        g, m, v = grads[name], state.exp_avg[name], state.exp_avg_sq[name]
        shape = (-1,) + (1,) * (p.dim() - 1)
        # The factor is rounded to the weight's dtype, as torch does with its Python scalar.
        p.mul_(decay.to(device=p.device, dtype=p.dtype).view(shape))
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denom = (v.sqrt() / bias_correction2_sqrt).add_(eps)
        if active is None:
            p.addcdiv_(m, denom, value=-step_size)
        else:
            p.addcdiv_(m * active.to(device=p.device, dtype=p.dtype).view(shape), denom, value=-step_size)
