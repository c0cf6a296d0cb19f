"""The plain way: one model, full sequence, an ``nn.Module`` (as in Nanda et al. 2023's code).

Used as ground truth by the tests (the batched engine must give the same logits) and as the
baseline of ``benchmarks/bench_engine.py``. It computes queries, keys, values, attention
patterns, the MLP and the unembedding at all four positions with a causal mask, and then keeps
the last position, which is what public grokking code does.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from circeff.empirical.config import ModelConfig
from circeff.empirical.model import WEIGHT_NAMES, Params, init_params, weight_shapes
from circeff.empirical.tasks import TaskConfig

__all__ = ["ReferenceTransformer", "cross_entropy_high_precision"]


class ReferenceTransformer(nn.Module):
    """One 1-layer transformer (no LayerNorm, no biases, ReLU MLP), TransformerLens names."""

    def __init__(self, cfg: ModelConfig, task: TaskConfig, seed: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.task = task
        shapes = weight_shapes(cfg, task)
        init = init_params(cfg, task, [seed])  # the same initialisation as the engine
        for name in WEIGHT_NAMES:
            assert tuple(init[name].shape[1:]) == shapes[name]
            setattr(self, name, nn.Parameter(init[name][0].clone()))
        mask = torch.tril(torch.ones(task.n_ctx, task.n_ctx, dtype=torch.bool))
        self.register_buffer("causal_mask", mask, persistent=False)

    @classmethod
    def from_params(cls, cfg: ModelConfig, task: TaskConfig, params: Params) -> ReferenceTransformer:
        """A reference model holding copies of one model's weights (no leading E)."""
        model = cls(cfg, task)
        with torch.no_grad():
            for name in WEIGHT_NAMES:
                getattr(model, name).copy_(params[name])
        return model.to(params["W_E"].device)

    def forward(self, tokens: Tensor) -> Tensor:
        """``tokens [N, n_ctx]`` -> logits ``[N, n_ctx, d_vocab_out]`` at every position."""
        n_ctx = tokens.shape[1]
        x = self.W_E[tokens] + self.W_pos[:n_ctx]                            # [N, pos, d_model]
        q = torch.einsum("npd,hdk->nhpk", x, self.W_Q)                       # [N, H, pos, d_head]
        k = torch.einsum("npd,hdk->nhpk", x, self.W_K)
        v = torch.einsum("npd,hdk->nhpk", x, self.W_V)
        scores = torch.einsum("nhqk,nhsk->nhqs", q, k) / math.sqrt(self.cfg.d_head)  # [N, H, q, s]
        scores = scores.masked_fill(~self.causal_mask[:n_ctx, :n_ctx], float("-inf"))
        pattern = scores.softmax(dim=-1)
        z = torch.einsum("nhqs,nhsk->nhqk", pattern, v)                      # [N, H, pos, d_head]
        attn_out = torch.einsum("nhqk,hkd->nqd", z, self.W_O)                # [N, pos, d_model]
        resid_mid = x + attn_out
        mlp_out = torch.relu(resid_mid @ self.W_in) @ self.W_out             # [N, pos, d_model]
        resid_post = resid_mid + mlp_out
        return resid_post @ self.W_U                                         # [N, pos, d_vocab_out]


def cross_entropy_high_precision(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy computed in float64 from the logits (Nanda et al. 2023's helper)."""
    logprobs = logits.to(torch.float64).log_softmax(dim=-1)
    return -logprobs.gather(-1, labels[:, None]).mean()
