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
example, differentiable by autograd).

Training runs stage 2 through :func:`loss_and_table_grads` instead: the same function, with
its forward and backward written out (tests check both against autograd), in blocks of
examples small enough for the CPU caches, and back-propagates through stage 1 once per step.
Written out, it spends less time outside the matrix products than autograd does, and with
the maps after attention multiplied out its forward needs one product per example
(``post W_out W_U``) instead of three: the attention output ``z`` is a weighted sum of value
vectors, so ``z W_O W_in`` and ``z W_O W_U`` are the same weighted sums of rows made once
per step for every (position, head, token).

This is the same function as :class:`circeff.empirical.model.Transformer` (tests check
equality to 1e-5); only the order of floating-point operations differs.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from circeff.empirical.config import ModelConfig
from circeff.empirical.metrics import cross_entropy64_and_grad
from circeff.empirical.model import Params
from circeff.empirical.tasks import TaskConfig

__all__ = [
    "final_logits",
    "forward_matmul_flops",
    "logits_all",
    "logits_from_tables",
    "loss_and_table_grads",
    "training_matmul_flops",
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
    return _after_attention(t, _attend(t, a, b).z)[-1]


def loss_and_table_grads(t: Params, a: Tensor, b: Tensor, labels: Tensor, weights: Tensor,
                         block_size: int | None = None) -> tuple[Tensor, Params]:
    """Stage 2 forward and backward by hand, for training: the ``[E]`` float64 weighted
    cross-entropy (:func:`circeff.empirical.metrics.cross_entropy64`) of the examples ``[E, N]``,
    taken ``block_size`` at a time, and its gradient with respect to every table.

    The same function and gradient as autograd through :func:`logits_from_tables` (tests check
    both to float rounding). Written out because autograd spends a third of a training step
    outside the matrix products here (separate ReLU and float64 passes, the temporaries it
    keeps, a scatter per gathered table), and because with the maps multiplied out the
    forward needs no product per example for ``z W_OI`` and ``z W_OU``: those are sums of 4H
    rows of tables made once per step (:func:`_products_per_token`). The backward still
    multiplies by ``W_OI`` and ``W_OU`` per example (the gradients of ``z`` and of those maps).
    """
    grads = {k: torch.zeros_like(v) for k, v in t.items()}
    loss = torch.zeros(a.shape[0], dtype=torch.float64, device=a.device)
    per_token = _products_per_token(t) if "W_OI" in t else None
    block = block_size or a.shape[1]
    for j in range(0, a.shape[1], block):
        cols = slice(j, j + block)
        mix = _attend(t, a[:, cols], b[:, cols])
        saved = _after_attention(t, mix.z) if per_token is None else _after_attention_by_rows(t, mix, per_token)
        block_loss, g_logits = cross_entropy64_and_grad(saved[-1], labels[:, cols], weights[:, cols])
        loss += block_loss
        g_z = _after_attention_backward(t, mix.z, saved, g_logits, grads)
        _attend_backward(t, mix, g_z, grads)
    return loss, grads


def _products_per_token(t: Params) -> tuple[Tensor, Tensor]:
    """``z W_OI`` and ``z W_OU`` split into rows: ``z`` is a weighted sum over positions and
    heads of value vectors, so each product is the same weighted sum of rows
    ``v[token, head] W_O[head] W_in`` (and ``... W_U``), one row per model, position, head and
    token that position can hold, plus one row per model for the constant ``c_in`` (``c_U``).

    Returns ``[R, d_mlp]`` and ``[R, d_vocab_out]`` in the row order of :func:`_rows_of`.
    """
    E, p, n_heads = t["s_a"].shape
    d_head = t["v_a"].shape[-1] // n_heads
    out = []
    for W, c in ((t["W_OI"], t["c_in"]), (t["W_OU"], t["c_U"])):
        m = W.shape[-1]
        W = W.view(E * n_heads, d_head, m)
        rows = W.new_empty(2 * E * n_heads * (p + 1) + E, m)
        at = 0
        for v in (t["v_a"], t["v_op"].unsqueeze(1), t["v_b"], t["v_eq"].unsqueeze(1)):  # positions a, o, b, =
            n = v.shape[1]
            v = v.view(E, n, n_heads, d_head).transpose(1, 2).reshape(E * n_heads, n, d_head)
            torch.bmm(v, W, out=rows[at:at + E * n_heads * n].view(E * n_heads, n, m))
            at += E * n_heads * n
        rows[at:] = c.view(E, m)
        out.append(rows)
    return out[0], out[1]


def _rows_of(mix: _Mixed, p: int) -> tuple[Tensor, Tensor]:
    """Which rows of :func:`_products_per_token` each example sums, and with what weights:
    ``[E*N, 4H + 1]`` each. Rows: position a (model, head, token), o (model, head), b (model,
    head, token), = (model, head), and the constant (model)."""
    E, N, _, n_heads = mix.pattern.shape
    device = mix.a.device
    model = torch.arange(E, device=device).repeat_interleave(N).unsqueeze(1)   # [E*N, 1]
    head = (model * n_heads + torch.arange(n_heads, device=device))           # [E*N, H]: model-head
    a, b = mix.a.reshape(E * N, 1), mix.b.reshape(E * N, 1)
    n_a = E * n_heads * p
    rows = torch.cat([head * p + a, n_a + head, n_a + E * n_heads + head * p + b,
                      2 * n_a + E * n_heads + head, 2 * n_a + 2 * E * n_heads + model], dim=1)
    weight = torch.cat([mix.pattern.reshape(E * N, 4 * n_heads), mix.pattern.new_ones(E * N, 1)], dim=1)
    return rows, weight


def _after_attention_by_rows(t: Params, mix: _Mixed, per_token: tuple[Tensor, Tensor]) -> tuple[Tensor, ...]:
    """:func:`_after_attention` (maps multiplied out) with ``c_in + z W_OI`` and
    ``c_U + z W_OU`` as weighted sums of rows of :func:`_products_per_token`."""
    E, N = mix.pattern.shape[:2]
    rows, weight = _rows_of(mix, t["s_a"].shape[1])
    T_in, T_U = per_token
    post = F.embedding_bag(rows, T_in, per_sample_weights=weight, mode="sum").view(E, N, -1).relu_()
    logits = F.embedding_bag(rows, T_U, per_sample_weights=weight, mode="sum").view(E, N, -1)
    return post, logits.baddbmm_(post, t["W_outU"])


class _Mixed(NamedTuple):
    """What the 4-way attention of the last position computed for a block (kept for the backward)."""

    a: Tensor         # [E, N] element tokens of the block
    b: Tensor
    rows_a: Tensor    # [E*N] row of each example's ``a`` in the tables flattened over models
    rows_b: Tensor
    pattern: Tensor   # [E, N, 4, H] attention of the last query on positions a, o, b, =
    v_a: Tensor       # [E, N, H, d_head] value of each example's ``a`` (and ``b``)
    v_b: Tensor
    z: Tensor         # [E, N, H*d_head] attention output, heads side by side


def _attend(t: Params, a: Tensor, b: Tensor) -> _Mixed:
    E, N = a.shape
    p, n_heads = t["s_a"].shape[1], t["s_a"].shape[2]
    hd = t["v_a"].shape[-1]
    d_head = hd // n_heads
    # One index_select on the tables flattened over models (model e's rows start at e * P).
    first_row = torch.arange(E, device=a.device).unsqueeze(1) * p
    rows_a, rows_b = (a + first_row).reshape(-1), (b + first_row).reshape(-1)
    s_a = t["s_a"].reshape(E * p, n_heads).index_select(0, rows_a).view(E, N, n_heads)
    s_b = t["s_b"].reshape(E * p, n_heads).index_select(0, rows_b).view(E, N, n_heads)
    # A 4-way softmax per head over the positions a, o, b, = (the last query sees all four).
    scores = torch.stack([s_a, t["s_op"].unsqueeze(1).expand(E, N, n_heads),
                          s_b, t["s_eq"].unsqueeze(1).expand(E, N, n_heads)], dim=2)  # [E, N, 4, H]
    pattern = scores.softmax(dim=2)
    w = pattern.unsqueeze(-1)                                 # [E, N, 4, H, 1]
    # ... and the weighted sum of the four value vectors.
    v_a = t["v_a"].reshape(E * p, hd).index_select(0, rows_a).view(E, N, n_heads, d_head)
    v_b = t["v_b"].reshape(E * p, hd).index_select(0, rows_b).view(E, N, n_heads, d_head)
    z = (torch.mul(v_a, w[:, :, 0]).addcmul_(t["v_op"].view(E, 1, n_heads, d_head), w[:, :, 1])
         .addcmul_(v_b, w[:, :, 2]).addcmul_(t["v_eq"].view(E, 1, n_heads, d_head), w[:, :, 3]))
    return _Mixed(a, b, rows_a, rows_b, pattern, v_a, v_b, z.view(E, N, hd))


def _after_attention(t: Params, z: Tensor) -> tuple[Tensor, ...]:
    """The residual stream after attention, the MLP and the unembedding at the last position.
    Returns the activations the backward needs, logits last."""
    if "W_OI" not in t:
        # Literal order: attention output, residual, MLP, residual, unembedding.
        resid_mid = torch.baddbmm(t["x_eq"].unsqueeze(1), z, t["W_O"])  # [E, N, d_model]
        post = torch.bmm(resid_mid, t["W_in"]).relu_()                   # [E, N, d_mlp]
        resid_post = torch.baddbmm(resid_mid, post, t["W_out"])          # [E, N, d_model]
        return resid_mid, post, resid_post, torch.bmm(resid_post, t["W_U"])
    post = torch.baddbmm(t["c_in"], z, t["W_OI"]).relu_()                # [E, N, d_mlp]
    return post, torch.baddbmm(t["c_U"], z, t["W_OU"]).baddbmm_(post, t["W_outU"])  # [E, N, d_vocab_out]


def _after_attention_backward(t: Params, z: Tensor, saved: tuple[Tensor, ...], g_logits: Tensor,
                              grads: Params) -> Tensor:
    """Backward of :func:`_after_attention`: adds the gradients of its tables into ``grads``
    and returns the gradient of ``z``."""
    zT = z.transpose(1, 2)
    if "W_OI" not in t:
        resid_mid, post, resid_post, _ = saved
        grads["W_U"].baddbmm_(resid_post.transpose(1, 2), g_logits)
        g_resid = torch.bmm(g_logits, t["W_U"].transpose(1, 2))          # d resid_post
        grads["W_out"].baddbmm_(post.transpose(1, 2), g_resid)
        g_pre = _relu_backward(torch.bmm(g_resid, t["W_out"].transpose(1, 2)), post)
        grads["W_in"].baddbmm_(resid_mid.transpose(1, 2), g_pre)
        g_resid.baddbmm_(g_pre, t["W_in"].transpose(1, 2))                # d resid_mid
        grads["x_eq"] += g_resid.sum(dim=1)
        grads["W_O"].baddbmm_(zT, g_resid)
        return torch.bmm(g_resid, t["W_O"].transpose(1, 2))
    post, _ = saved
    grads["W_outU"].baddbmm_(post.transpose(1, 2), g_logits)
    grads["c_U"] += g_logits.sum(dim=1, keepdim=True)
    g_pre = _relu_backward(torch.bmm(g_logits, t["W_outU"].transpose(1, 2)), post)
    grads["c_in"] += g_pre.sum(dim=1, keepdim=True)
    grads["W_OI"].baddbmm_(zT, g_pre)
    grads["W_OU"].baddbmm_(zT, g_logits)
    return torch.bmm(g_logits, t["W_OU"].transpose(1, 2)).baddbmm_(g_pre, t["W_OI"].transpose(1, 2))


def _attend_backward(t: Params, mix: _Mixed, g_z: Tensor, grads: Params) -> None:
    """Backward of :func:`_attend`: adds the gradients of the score and value tables into ``grads``."""
    E, N, _, n_heads = mix.pattern.shape
    p, hd = t["s_a"].shape[1], g_z.shape[-1]
    d_head = hd // n_heads
    w = mix.pattern
    # Positions o and = hold one token each, so their terms are products over all examples:
    # <g_z head h, v_o head h> for every example is g_z times a block-diagonal [H*d_head, H]
    # matrix, and sum_n w(n) g_z(n) is one [2H, N] x [N, H*d_head] product whose head-h block of
    # row h is kept (the other blocks mix heads and are dropped; H times the work, no copies).
    v_fixed = torch.stack([t["v_op"], t["v_eq"]], dim=1).view(E, 2, n_heads, d_head)
    blocks = torch.diag_embed(v_fixed.transpose(2, 3))                       # [E, 2, d_head, H, H]
    blocks = blocks.permute(0, 3, 2, 1, 4).reshape(E, hd, 2 * n_heads)
    g_fixed = torch.bmm(g_z, blocks).view(E, N, 2, n_heads)
    sums = torch.bmm(w[:, :, 1::2].reshape(E, N, 2 * n_heads).transpose(1, 2), g_z)
    sums = sums.view(E, 2, n_heads, n_heads, d_head).diagonal(dim1=2, dim2=3).transpose(2, 3)
    grads["v_op"] += sums[:, 0].reshape(E, hd)
    grads["v_eq"] += sums[:, 1].reshape(E, hd)
    # Positions a and b: a value row per example, scattered back to its token's row.
    g_z = g_z.view(E, N, n_heads, d_head)
    grads["v_a"].view(E * p, hd).index_add_(0, mix.rows_a, (g_z * w[:, :, 0, :, None]).view(E * N, hd))
    grads["v_b"].view(E * p, hd).index_add_(0, mix.rows_b, (g_z * w[:, :, 2, :, None]).view(E * N, hd))
    # Through the weighted sum to the pattern, then through the softmax over the four positions.
    g_pattern = torch.stack([torch.linalg.vecdot(g_z, mix.v_a), g_fixed[:, :, 0],
                             torch.linalg.vecdot(g_z, mix.v_b), g_fixed[:, :, 1]], dim=2)
    g_scores = w * (g_pattern - (w * g_pattern).sum(dim=2, keepdim=True))
    grads["s_a"].view(E * p, n_heads).index_add_(0, mix.rows_a, g_scores[:, :, 0].reshape(E * N, n_heads))
    grads["s_b"].view(E * p, n_heads).index_add_(0, mix.rows_b, g_scores[:, :, 2].reshape(E * N, n_heads))
    grads["s_op"] += g_scores[:, :, 1].sum(dim=1)
    grads["s_eq"] += g_scores[:, :, 3].sum(dim=1)


def _relu_backward(grad: Tensor, post: Tensor) -> Tensor:
    """``grad`` where relu's OUTPUT ``post`` is positive, else 0, in place (the kernel autograd's
    own ReLU backward calls, one pass)."""
    return torch.ops.aten.threshold_backward.grad_input(grad, post, 0.0, grad_input=grad)


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


def training_matmul_flops(cfg: ModelConfig, task: TaskConfig, n_examples: int) -> int:
    """FLOPs (2 per multiply-add) of one training step of ONE model on ``n_examples``
    examples: :func:`vocabulary_tables` and its backward to the weights (counted as 2x its
    forward) and :func:`loss_and_table_grads`.

    With the maps multiplied out, the forward sums 4H + 1 rows per example instead of
    multiplying ``z`` by ``W_OI`` and ``W_OU`` (the rows cost one product per token and head,
    once per step), and the backward multiplies twice by each map per example (the gradient
    of ``z`` and of the map). The literal path is 3x its forward (each product's backward is
    two products). Elementwise work (softmax, ReLU, the float64 loss) is not counted.
    """
    if not uses_fold(cfg, task, n_examples):
        return 3 * forward_matmul_flops(cfg, task, n_examples, fold=False)
    hd, p, d_mlp, d_out = cfg.n_heads * cfg.d_head, task.p, cfg.d_mlp, task.d_vocab_out
    tables = forward_matmul_flops(cfg, task, 0, fold=True) // 2        # per model, no example
    rows = (2 * p + 2) * hd * (d_mlp + d_out)                           # _products_per_token
    forward = 4 * hd + (4 * cfg.n_heads + 1) * (d_mlp + d_out) + d_mlp * d_out
    backward = 2 * 4 * hd + 2 * hd * (d_mlp + d_out) + 2 * d_mlp * d_out
    return 2 * (3 * tables + rows + n_examples * (forward + backward))


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


