"""The model: one 1-layer transformer, written the plain way (as in Nanda et al. 2023's code).

Read this module first. It is the whole architecture of the paper's algorithmic tasks (paper
Appendix A): the input is the sequence ``a o b =`` (four tokens), and the logits at the last
position (``=``) predict ``c = a o b``. There is no LayerNorm and there are no biases. The
weights have TransformerLens names and, for ONE model, these shapes:

    W_E    [d_vocab, d_model]            token embedding (d_vocab = P + 2: elements, o, =)
    W_pos  [n_ctx, d_model]              position embedding (n_ctx = 4)
    W_Q    [n_heads, d_model, d_head]    queries
    W_K    [n_heads, d_model, d_head]    keys
    W_V    [n_heads, d_model, d_head]    values
    W_O    [n_heads, d_head, d_model]    attention output
    W_in   [d_model, d_mlp]              MLP in (ReLU)
    W_out  [d_mlp, d_model]              MLP out
    W_U    [d_model, d_vocab_out]        unembedding (d_vocab_out = P: answers are elements)

:class:`Transformer` computes every position with a causal mask, exactly as written. Training
uses :mod:`circeff.empirical.batched` instead, which computes the same function for E models
at once and only at the scored position (the tests hold the two equal); the weights of a batch
are the tensors above stacked with a leading model axis ``E`` (:func:`init_params`).

**Hook points.** :meth:`Transformer.forward` passes each intermediate through an
``nn.Identity`` submodule named as in TransformerLens (:data:`HOOK_NAMES`), so that nnsight
(``NNsight(model)``, ``model.hook_pattern.output``) and plain torch forward hooks can read and
replace them. Identity holds no parameters or buffers and returns its input unchanged: the
state dict and the output are the same as without them. The layouts are circeff's (heads before
positions), not TransformerLens's ``[N, pos, H, d_head]``; ``N`` is the batch, ``pos`` the
position (``q`` query, ``s`` key/source position):

    hook_embed        [N, pos, d_model]     W_E[tokens]
    hook_pos_embed    [pos, d_model]        W_pos[:pos] (not broadcast over N)
    hook_resid_pre    [N, pos, d_model]     embed + pos_embed
    hook_q, hook_k, hook_v  [N, H, pos, d_head]
    hook_attn_scores  [N, H, q, s]          scaled by 1/sqrt(d_head), -inf above the diagonal
    hook_pattern      [N, H, q, s]          softmax over s
    hook_z            [N, H, pos, d_head]   pattern-weighted values
    hook_attn_out     [N, pos, d_model]     sum over heads of z @ W_O
    hook_resid_mid    [N, pos, d_model]
    hook_mlp_pre      [N, pos, d_mlp]       resid_mid @ W_in
    hook_mlp_post     [N, pos, d_mlp]       ReLU
    hook_mlp_out      [N, pos, d_model]
    hook_resid_post   [N, pos, d_model]     logits = resid_post @ W_U
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from circeff.empirical.config import ModelConfig
from circeff.empirical.tasks import TaskConfig

__all__ = [
    "HOOK_NAMES",
    "WEIGHT_NAMES",
    "Params",
    "Transformer",
    "cross_entropy_high_precision",
    "init_params",
    "init_weights",
    "model_params",
    "param_norm",
    "weight_shapes",
]

Params = dict[str, Tensor]

WEIGHT_NAMES = ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_in", "W_out", "W_U")

# The nn.Identity hook points of Transformer, in the order forward calls them (layouts above).
HOOK_NAMES = ("hook_embed", "hook_pos_embed", "hook_resid_pre", "hook_q", "hook_k", "hook_v",
              "hook_attn_scores", "hook_pattern", "hook_z", "hook_attn_out", "hook_resid_mid",
              "hook_mlp_pre", "hook_mlp_post", "hook_mlp_out", "hook_resid_post")


def weight_shapes(cfg: ModelConfig, task: TaskConfig) -> dict[str, tuple[int, ...]]:
    """Shape of every weight of ONE model (stacked batches add a leading E)."""
    return {
        "W_E": (task.d_vocab, cfg.d_model),
        "W_pos": (task.n_ctx, cfg.d_model),
        "W_Q": (cfg.n_heads, cfg.d_model, cfg.d_head),
        "W_K": (cfg.n_heads, cfg.d_model, cfg.d_head),
        "W_V": (cfg.n_heads, cfg.d_model, cfg.d_head),
        "W_O": (cfg.n_heads, cfg.d_head, cfg.d_model),
        "W_in": (cfg.d_model, cfg.d_mlp),
        "W_out": (cfg.d_mlp, cfg.d_model),
        "W_U": (cfg.d_model, task.d_vocab_out),
    }


def init_weights(cfg: ModelConfig, task: TaskConfig, seed: int) -> Params:
    """float32 weights of one model, drawn from its own CPU generator in ``WEIGHT_NAMES`` order.

    Nanda et al. 2023's public code: N(0, 1/d_model) everywhere except the unembedding, which
    is N(0, 1/d_vocab_out). (The paper does not state its initialisation.)
    """
    g = torch.Generator().manual_seed(int(seed))
    std = {n: 1.0 / math.sqrt(task.d_vocab_out if n == "W_U" else cfg.d_model) for n in WEIGHT_NAMES}
    shapes = weight_shapes(cfg, task)
    return {n: torch.randn(shapes[n], generator=g) * std[n] for n in WEIGHT_NAMES}


def init_params(cfg: ModelConfig, task: TaskConfig, seeds: Sequence[int],
                device: str | torch.device = "cpu") -> Params:
    """The weights of ``len(seeds)`` models stacked on a leading axis; model k is
    ``init_weights(seeds[k])``, so it does not depend on its batch neighbours or the device."""
    per_model = [init_weights(cfg, task, s) for s in seeds]
    return {n: torch.stack([m[n] for m in per_model]).to(device) for n in WEIGHT_NAMES}


def model_params(params: Params, k: int) -> Params:
    """The weights of model ``k`` of a stacked batch (views, no leading E)."""
    return {n: params[n][k] for n in WEIGHT_NAMES}


@torch.no_grad()
def param_norm(params: Params) -> Tensor:
    """``[E]`` float64 L2 norm of all weights of each model of a stacked batch."""
    return torch.sqrt(sum(t.double().pow(2).flatten(1).sum(1) for t in params.values()))


class Transformer(nn.Module):
    """One 1-layer transformer (no LayerNorm, no biases, ReLU MLP), TransformerLens names.

    Its intermediates pass through the identity hook points :data:`HOOK_NAMES` (module
    docstring), for nnsight and torch forward hooks; they are not in the state dict.
    """

    def __init__(self, cfg: ModelConfig, task: TaskConfig, seed: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.task = task
        for name, w in init_weights(cfg, task, seed).items():
            setattr(self, name, nn.Parameter(w))
        mask = torch.tril(torch.ones(task.n_ctx, task.n_ctx, dtype=torch.bool))
        self.register_buffer("causal_mask", mask, persistent=False)
        for name in HOOK_NAMES:
            setattr(self, name, nn.Identity())

    @classmethod
    def from_params(cls, cfg: ModelConfig, task: TaskConfig, params: Params) -> Transformer:
        """A model holding copies of one model's weights (no leading E)."""
        model = cls(cfg, task)
        with torch.no_grad():
            for name in WEIGHT_NAMES:
                getattr(model, name).copy_(params[name])
        return model.to(params["W_E"].device)

    def forward(self, tokens: Tensor) -> Tensor:
        """``tokens [N, n_ctx]`` -> logits ``[N, n_ctx, d_vocab_out]`` at every position."""
        n_ctx = tokens.shape[1]
        x = self.hook_resid_pre(self.hook_embed(self.W_E[tokens])
                                + self.hook_pos_embed(self.W_pos[:n_ctx]))   # [N, pos, d_model]
        q = self.hook_q(torch.einsum("npd,hdk->nhpk", x, self.W_Q))         # [N, H, pos, d_head]
        k = self.hook_k(torch.einsum("npd,hdk->nhpk", x, self.W_K))
        v = self.hook_v(torch.einsum("npd,hdk->nhpk", x, self.W_V))
        scores = torch.einsum("nhqk,nhsk->nhqs", q, k) / math.sqrt(self.cfg.d_head)  # [N, H, q, s]
        scores = self.hook_attn_scores(scores.masked_fill(~self.causal_mask[:n_ctx, :n_ctx], float("-inf")))
        pattern = self.hook_pattern(scores.softmax(dim=-1))
        z = self.hook_z(torch.einsum("nhqs,nhsk->nhqk", pattern, v))        # [N, H, pos, d_head]
        attn_out = self.hook_attn_out(torch.einsum("nhqk,hkd->nqd", z, self.W_O))  # [N, pos, d_model]
        resid_mid = self.hook_resid_mid(x + attn_out)
        mlp_post = self.hook_mlp_post(torch.relu(self.hook_mlp_pre(resid_mid @ self.W_in)))
        mlp_out = self.hook_mlp_out(mlp_post @ self.W_out)                   # [N, pos, d_model]
        resid_post = self.hook_resid_post(resid_mid + mlp_out)
        return resid_post @ self.W_U                                         # [N, pos, d_vocab_out]


def cross_entropy_high_precision(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy computed in float64 from the logits (Nanda et al. 2023's helper).

    Late in training the loss is tiny, and in float32 ``log_softmax`` of the correct class
    rounds to 0 once its margin is about 17 nats, so the loss is taken in float64.
    """
    logprobs = logits.to(torch.float64).log_softmax(dim=-1)
    return -logprobs.gather(-1, labels[:, None]).mean()
