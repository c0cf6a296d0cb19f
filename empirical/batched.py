"""The fast path: E models of :mod:`circeff.empirical.model` at once, only at the scored position.

Every weight of :mod:`circeff.empirical.model` gets a leading model axis ``E`` (``W_E`` is
``[E, d_vocab, d_model]``, and so on). Only the last position (``=``) is scored, so
:func:`final_logits` computes exactly what that position's logits need and nothing else:

* In a 1-layer model the residual stream entering attention at position i is
  ``W_E[token_i] + W_pos[i]``. Positions 1 (``o``) and 3 (``=``) always hold the same token,
  so the only query ever scored, ``q = (W_E[=] + W_pos[3]) W_Q``, is one vector per head per
  model, the same for every example.
* Keys and values of positions 0 and 2 depend only on ``a`` and on ``b``: they are tables
  over the P element tokens, computed once per step per model (P rows instead of N
  examples). The score of a key is ``x W_K . q = x . (W_K q)``, so ``W_K q`` is folded first.
* The last query attends to all four positions (the causal mask hides nothing from it), so
  per example only a 4-way softmax per head and a weighted sum of four value vectors remain.
* The MLP and the unembedding run at the last position only.

So :func:`final_logits` has two stages: :func:`vocabulary_tables` (per model, per step: the
tables above and the weight products after attention) and :func:`logits_from_tables` (per
example). The training loop runs stage 2 in blocks of examples (small enough for the CPU
caches) and back-propagates through stage 1 once per step.

This is the same function as :class:`circeff.empirical.model.Transformer` (tests check
equality to 1e-5); only the order of floating-point operations differs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from circeff.empirical.config import ModelConfig
from circeff.empirical.model import Params
from circeff.empirical.tasks import TaskConfig

__all__ = [
    "final_logits",
    "forward_matmul_flops",
    "logits_all",
    "logits_from_tables",
    "uses_fold",
    "vocabulary_tables",
]


def final_logits(params: Params, a: Tensor, b: Tensor, task: TaskConfig, fold: bool | None = None) -> Tensor:
    """Logits at the last position (``=``) for the sequences ``a o b =``.

    Args:
        params: stacked weights with leading axis E (any subset of a batch, e.g. a chunk).
        a, b: ``[E, N]`` int64 element tokens, one row of examples per model.
        task: supplies ``P`` and the token ids of ``o`` and ``=``.
        fold: multiply out ``W_O W_in``, ``W_O W_U`` and ``W_out W_U`` once per model (the
            same function, fewer FLOPs when N is large). ``None``: whichever costs fewer FLOPs.

    Returns:
        ``[E, N, d_vocab_out]`` float logits.
    """
    if fold is None:
        fold = _fold_pays(_dims_of(params), a.shape[1])
    return logits_from_tables(vocabulary_tables(params, task, fold), a, b)


def vocabulary_tables(params: Params, task: TaskConfig, fold: bool) -> Params:
    """Stage 1 of :func:`final_logits`, once per model and step: everything that depends on
    the weights but not on the example (attention scores and values of every token a
    position can hold, the one query, and the maps after attention).
    """
    W_E, W_pos = params["W_E"], params["W_pos"]      # [E, d_vocab, d_model], [E, n_ctx, d_model]
    W_Q, W_K, W_V, W_O = params["W_Q"], params["W_K"], params["W_V"], params["W_O"]
    W_in, W_out, W_U = params["W_in"], params["W_out"], params["W_U"]
    E, n_heads, d_model, d_head = W_Q.shape
    hd = n_heads * d_head
    p = task.p

    # Residual stream entering attention, as tables over what each position can hold.
    x_a = W_E[:, :p] + W_pos[:, 0:1]                         # [E, P, d_model]   position 0
    x_b = W_E[:, :p] + W_pos[:, 2:3]                         # [E, P, d_model]   position 2
    x_op = W_E[:, task.op_token] + W_pos[:, 1]               # [E, d_model]      position 1
    x_eq = W_E[:, task.eq_token] + W_pos[:, 3]               # [E, d_model]      position 3

    # The one query that is scored, folded into the keys: score(x) = x . (W_K q) / sqrt(d_head).
    q = torch.einsum("ed,ehdk->ehk", x_eq, W_Q)              # [E, H, d_head]
    k_q = torch.einsum("ehdk,ehk->edh", W_K, q) / math.sqrt(d_head)  # [E, d_model, H]
    # Values of all heads side by side.
    W_V_all = W_V.permute(0, 2, 1, 3).reshape(E, d_model, hd)  # [E, d_model, H*d_head]
    tables = {
        "s_a": torch.bmm(x_a, k_q),                          # [E, P, H]
        "s_b": torch.bmm(x_b, k_q),                          # [E, P, H]
        "s_op": torch.einsum("ed,edh->eh", x_op, k_q),       # [E, H]
        "s_eq": torch.einsum("ed,edh->eh", x_eq, k_q),       # [E, H]
        "v_a": torch.bmm(x_a, W_V_all),                      # [E, P, H*d_head]
        "v_b": torch.bmm(x_b, W_V_all),                      # [E, P, H*d_head]
        "v_op": torch.einsum("ed,edk->ek", x_op, W_V_all),   # [E, H*d_head]
        "v_eq": torch.einsum("ed,edk->ek", x_eq, W_V_all),   # [E, H*d_head]
    }
    W_O_all = W_O.reshape(E, hd, d_model)                    # [E, H*d_head, d_model]
    if not fold:
        return tables | {"W_O": W_O_all, "x_eq": x_eq, "W_in": W_in, "W_out": W_out, "W_U": W_U}
    # resid_mid = x_eq + z W_O, so (same function, fewer products per example):
    #   resid_mid W_in = x_eq W_in + z (W_O W_in)
    #   resid_post W_U = x_eq W_U + z (W_O W_U) + post (W_out W_U).
    return tables | {
        "W_OI": torch.bmm(W_O_all, W_in),                    # [E, H*d_head, d_mlp]
        "W_OU": torch.bmm(W_O_all, W_U),                     # [E, H*d_head, d_vocab_out]
        "W_outU": torch.bmm(W_out, W_U),                     # [E, d_mlp, d_vocab_out]
        "c_in": torch.bmm(x_eq.unsqueeze(1), W_in),          # [E, 1, d_mlp]
        "c_U": torch.bmm(x_eq.unsqueeze(1), W_U),            # [E, 1, d_vocab_out]
    }


def logits_from_tables(t: Params, a: Tensor, b: Tensor) -> Tensor:
    """Stage 2 of :func:`final_logits`, per example: ``[E, N]`` tokens -> ``[E, N, d_vocab_out]``."""
    E, N = a.shape
    n_heads = t["s_a"].shape[-1]
    hd = t["v_a"].shape[-1]
    d_head = hd // n_heads

    # A 4-way softmax per head over the positions a, o, b, = (the last query sees all four).
    scores = torch.stack([
        torch.gather(t["s_a"], 1, a.unsqueeze(-1).expand(E, N, n_heads)),
        t["s_op"].unsqueeze(1).expand(E, N, n_heads),
        torch.gather(t["s_b"], 1, b.unsqueeze(-1).expand(E, N, n_heads)),
        t["s_eq"].unsqueeze(1).expand(E, N, n_heads),
    ], dim=-1)                                               # [E, N, H, 4]
    pattern = scores.softmax(dim=-1).unsqueeze(-1)           # [E, N, H, 4, 1]
    # ... and the weighted sum of the four value vectors.
    v_a = torch.gather(t["v_a"], 1, a.unsqueeze(-1).expand(E, N, hd)).view(E, N, n_heads, d_head)
    v_b = torch.gather(t["v_b"], 1, b.unsqueeze(-1).expand(E, N, hd)).view(E, N, n_heads, d_head)
    z = (pattern[..., 0, :] * v_a
         + pattern[..., 1, :] * t["v_op"].view(E, 1, n_heads, d_head)
         + pattern[..., 2, :] * v_b
         + pattern[..., 3, :] * t["v_eq"].view(E, 1, n_heads, d_head)).reshape(E, N, hd)  # [E, N, H*d_head]

    if "W_OI" not in t:
        # Literal order: attention output, residual, MLP, residual, unembedding.
        resid_mid = torch.bmm(z, t["W_O"]) + t["x_eq"].unsqueeze(1)      # [E, N, d_model]
        post = torch.bmm(resid_mid, t["W_in"]).relu_()                   # [E, N, d_mlp]
        resid_post = resid_mid + torch.bmm(post, t["W_out"])             # [E, N, d_model]
        return torch.bmm(resid_post, t["W_U"])                           # [E, N, d_vocab_out]
    post = torch.baddbmm(t["c_in"], z, t["W_OI"]).relu_()                # [E, N, d_mlp]
    return torch.baddbmm(torch.baddbmm(t["c_U"], z, t["W_OU"]), post, t["W_outU"])  # [E, N, d_vocab_out]


def uses_fold(cfg: ModelConfig, task: TaskConfig, n_examples: int) -> bool:
    """Whether :func:`final_logits` multiplies the maps out for ``n_examples`` per model: when
    the multiply-adds it saves on the examples exceed what multiplying out costs per model."""
    return _fold_pays((cfg.d_model, cfg.n_heads * cfg.d_head, cfg.d_mlp, task.d_vocab_out), n_examples)


def _dims_of(params: Params) -> tuple[int, int, int, int]:
    """The widths of a stacked batch, read from its weights (the same four as from its config)."""
    _, n_heads, d_model, d_head = params["W_Q"].shape
    return d_model, n_heads * d_head, params["W_in"].shape[-1], params["W_U"].shape[-1]


def _fold_pays(dims: tuple[int, int, int, int], n_examples: int) -> bool:
    # The one rule; uses_fold (from a config) and final_logits (from weights) both ask it.
    return n_examples * _fold_saving(*dims) > _fold_cost(*dims)


def _fold_saving(d_model: int, hd: int, d_mlp: int, d_out: int) -> int:
    """Multiply-adds per example saved by multiplying out W_O W_in, W_O W_U and W_out W_U."""
    literal = hd * d_model + d_model * d_mlp + d_mlp * d_model + d_model * d_out
    folded = hd * d_mlp + hd * d_out + d_mlp * d_out
    return literal - folded


def _fold_cost(d_model: int, hd: int, d_mlp: int, d_out: int) -> int:
    """Multiply-adds per model of multiplying them out."""
    return hd * d_model * d_mlp + hd * d_model * d_out + d_mlp * d_model * d_out + d_model * (d_mlp + d_out)


def forward_matmul_flops(cfg: ModelConfig, task: TaskConfig, n_examples: int, fold: bool | None = None) -> int:
    """Matrix-product FLOPs (2 per multiply-add) of :func:`final_logits` for ONE model on
    ``n_examples`` examples: the vocabulary tables (query, scores, values), the 4-way mixing,
    and the per-example products of the chosen path. Forward + backward is about 3x this.
    """
    hd, p = cfg.n_heads * cfg.d_head, task.p
    dims = (cfg.d_model, hd, cfg.d_mlp, task.d_vocab_out)
    if fold is None:
        fold = uses_fold(cfg, task, n_examples)
    tables = 2 * cfg.d_model * hd + 2 * (p + 1) * cfg.d_model * (cfg.n_heads + hd)  # 2P + 2 rows
    mixing = 4 * hd
    literal = hd * cfg.d_model + cfg.d_model * cfg.d_mlp + cfg.d_mlp * cfg.d_model + cfg.d_model * task.d_vocab_out
    per_example = mixing + literal - (_fold_saving(*dims) if fold else 0)
    return 2 * (tables + (_fold_cost(*dims) if fold else 0) + n_examples * per_example)


@torch.no_grad()
def logits_all(params: Params, task: TaskConfig, model_index: int | None = None,
               chunk_size: int | None = None, block_size: int = 4096) -> Tensor:
    """Logits for every pair ``(a, b)`` of the P x P grid, indexed ``[a, b, c]``.

    Returns ``[P, P, d_vocab_out]`` for ``model_index`` or ``[E, P, P, d_vocab_out]`` for all
    models (computed ``chunk_size`` models and ``block_size`` pairs at a time). Pairs outside
    the task (``b = 0`` for ``div``) are included: the model reads any tokens. This is the
    input of the Fourier decomposition (:mod:`circeff.empirical.fourier`).
    """
    if model_index is not None:
        params = {n: t[model_index:model_index + 1] for n, t in params.items()}
    E, p = params["W_E"].shape[0], task.p
    grid = torch.arange(p, device=params["W_E"].device)
    a, b = grid.repeat_interleave(p), grid.repeat(p)        # example a * P + b
    fold = _fold_pays(_dims_of(params), p * p)
    step = chunk_size or E
    chunks = []
    for i in range(0, E, step):
        tables = vocabulary_tables({n: t[i:i + step] for n, t in params.items()}, task, fold)
        e = tables["s_a"].shape[0]
        chunks.append(torch.cat([logits_from_tables(tables, a[j:j + block_size].expand(e, -1),
                                                    b[j:j + block_size].expand(e, -1))
                                 for j in range(0, p * p, block_size)], dim=1))
    out = torch.cat(chunks).view(E, p, p, -1)
    return out[0] if model_index is not None else out


