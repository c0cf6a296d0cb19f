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
tables above and the weight products after attention, as :class:`LiteralTables` or, with the
maps after attention multiplied out, :class:`FoldedTables`) and :func:`logits_from_tables` (per
example, differentiable by autograd).

Training runs stage 2 through :func:`loss_and_table_grads` instead: the same function, with
its forward and backward written out (tests check both against autograd), in blocks of
examples small enough for the CPU caches, and back-propagates through stage 1 once per step.
With the maps after attention multiplied out, no product per example involves the attention
output ``z``: ``z`` is a weighted sum of value vectors, so ``z W_O W_in`` and ``z W_O W_U`` are
the same weighted sums of rows ``v W_O W_in`` (``v W_O W_U``) made once per step for every
(head, position, token). The forward sums 4H + 1 rows per example; the backward makes the
same sums the other way round (each row collects its examples) and one dot per (example,
row) for the attention weights. Per example only ``post W_out W_U`` and its backward remain
as matrix products.

This is the same function as :class:`circeff.empirical.model.Transformer` (tests check
equality to 1e-5); only the order of floating-point operations differs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Self

import torch
import torch.nn.functional as F
from torch import Tensor

from circeff.empirical.config import ModelConfig
from circeff.empirical.metrics import cross_entropy64_and_grad
from circeff.empirical.model import Params
from circeff.empirical.tasks import TaskConfig

__all__ = [
    "FoldedTables",
    "Incidence",
    "LiteralTables",
    "Tables",
    "build_incidence",
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


# ---------------------------------------------------------------------------------------------
# The tables of stage 1. Shapes: E models, P element tokens, H heads, R = H (2P + 2) + 1 rows.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Tables:
    """What both layouts of stage 1 hold: the scored query's attention scores (divided by
    sqrt(d_head)) of every token each position can hold, per head.

    The tables are tensors in autograd's graph (training back-propagates through them to the
    weights); the gradients of a set of tables are tables of the same class and shapes
    (:func:`loss_and_table_grads`). :meth:`tensors` lists them in field order, the order in
    which they are handed to autograd.
    """

    s_a: Tensor   # [E, P, H] position 0 holding element token a
    s_b: Tensor   # [E, P, H] position 2 holding element token b
    s_op: Tensor  # [E, H]    position 1 (the token o)
    s_eq: Tensor  # [E, H]    position 3 (the token =, the scored query's own key)

    def tensors(self) -> tuple[Tensor, ...]:
        """Every table, in field order (the fields are the instance's only attributes: it is
        frozen, and ``__init__`` sets them in that order)."""
        return tuple(vars(self).values())

    def map(self, fn: Callable[[Tensor], Tensor]) -> Self:
        """The same class with ``fn`` applied to every table (e.g. ``Tensor.detach``, ``torch.zeros_like``)."""
        return type(self)(*(fn(t) for t in self.tensors()))

    def detach(self) -> Self:
        return self.map(Tensor.detach)

    def scores(self) -> Tables:
        """The score tables alone (e.g. to hold their gradients while the rest is computed)."""
        return Tables(self.s_a, self.s_b, self.s_op, self.s_eq)

    @property
    def n_models(self) -> int:
        return self.s_a.shape[0]

    @property
    def p(self) -> int:
        """Element tokens."""
        return self.s_a.shape[1]

    @property
    def n_heads(self) -> int:
        return self.s_a.shape[2]


@dataclass(frozen=True, eq=False)
class LiteralTables(Tables):
    """Stage 1 for the literal path: the values of every token each position can hold, and the
    maps after attention as they are (TransformerLens names, a leading model axis; ``W_O``
    with the heads side by side)."""

    v_a: Tensor    # [E, P, H*d_head] value of element token a at position 0, heads side by side
    v_b: Tensor    # [E, P, H*d_head] value of element token b at position 2
    v_op: Tensor   # [E, H*d_head]    value of position 1 (o)
    v_eq: Tensor   # [E, H*d_head]    value of position 3 (=)
    W_O: Tensor    # [E, H*d_head, d_model] attention output, heads stacked
    x_eq: Tensor   # [E, d_model]     residual stream entering attention at position 3: W_E[=] + W_pos[3]
    W_in: Tensor   # [E, d_model, d_mlp]
    W_out: Tensor  # [E, d_mlp, d_model]
    W_U: Tensor    # [E, d_model, d_vocab_out]


@dataclass(frozen=True, eq=False)
class FoldedTables(Tables):
    """Stage 1 with the maps after attention multiplied out: the rows that an example's MLP
    input and logits are weighted sums of (:func:`_rows_per_token`, in :func:`_row_index`'s
    order: per head the 2P + 2 tokens a, o, b, =, then one constant row), and ``W_out W_U``."""

    rows_in: Tensor  # [E, R, d_mlp]       v W_O[h] W_in per (head, token); last row x_eq W_in
    rows_U: Tensor   # [E, R, d_vocab_out] v W_O[h] W_U per (head, token); last row x_eq W_U
    W_outU: Tensor   # [E, d_mlp, d_vocab_out] W_out W_U


def vocabulary_tables(params: Params, task: TaskConfig, fold: bool) -> LiteralTables | FoldedTables:
    """Stage 1 of :func:`final_logits`, once per model and step: everything that depends on
    the weights but not on the example (attention scores of every token a position can hold,
    the one query, and either the values and the maps after attention (:class:`LiteralTables`),
    or, with ``fold``, the maps multiplied out and applied to every value: the rows of
    :func:`_rows_per_token` (:class:`FoldedTables`)).
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
    scores = (torch.bmm(x_a, k_q),                           # s_a  [E, P, H]
              torch.bmm(x_b, k_q),                           # s_b  [E, P, H]
              torch.einsum("ed,edh->eh", x_op, k_q),         # s_op [E, H]
              torch.einsum("ed,edh->eh", x_eq, k_q))         # s_eq [E, H]
    values = (torch.bmm(x_a, W_V_all),                       # v_a  [E, P, H*d_head]
              torch.bmm(x_b, W_V_all),                       # v_b  [E, P, H*d_head]
              torch.einsum("ed,edk->ek", x_op, W_V_all),     # v_op [E, H*d_head]
              torch.einsum("ed,edk->ek", x_eq, W_V_all))     # v_eq [E, H*d_head]
    W_O_all = W_O.reshape(E, hd, d_model)                    # [E, H*d_head, d_model]
    if not fold:
        return LiteralTables(*scores, *values, W_O=W_O_all, x_eq=x_eq, W_in=W_in, W_out=W_out, W_U=W_U)
    # resid_mid = x_eq + z W_O, so (same function, fewer products per example):
    #   resid_mid W_in = x_eq W_in + z (W_O W_in)
    #   resid_post W_U = x_eq W_U + z (W_O W_U) + post (W_out W_U),
    # and z is a weighted sum of value vectors, so z (W_O W_in) is the same weighted sum of
    # the rows v W_O W_in, one per (head, position, token), made here once per step.
    return FoldedTables(
        *scores,
        rows_in=_rows_per_token(*values, n_heads, torch.bmm(W_O_all, W_in), torch.bmm(x_eq.unsqueeze(1), W_in)),
        rows_U=_rows_per_token(*values, n_heads, torch.bmm(W_O_all, W_U), torch.bmm(x_eq.unsqueeze(1), W_U)),
        W_outU=torch.bmm(W_out, W_U),
    )


def _rows_per_token(v_a: Tensor, v_b: Tensor, v_op: Tensor, v_eq: Tensor, n_heads: int, W: Tensor,
                    const: Tensor) -> Tensor:
    """``[E, R, m]``: for each head h and each token a position can hold, its value times
    ``W_O[h] W`` (``W`` is ``[E, H*d_head, m]``, the map from attention output onwards), then the
    constant ``const`` ``[E, 1, m]``; the row order is :func:`_row_index`'s. The values are
    :class:`LiteralTables`' ``v_a``, ``v_b``, ``v_op``, ``v_eq``."""
    E, p, hd = v_a.shape
    n_slots, d_head = 2 * p + 2, hd // n_heads
    v = torch.cat([v_a, v_op.unsqueeze(1), v_b, v_eq.unsqueeze(1)], dim=1)
    v = v.view(E, n_slots, n_heads, d_head).transpose(1, 2)                  # [E, H, slots, d_head]
    per_head = torch.matmul(v, W.view(E, n_heads, d_head, -1))               # [E, H, slots, m]
    return torch.cat([per_head.reshape(E, n_heads * n_slots, -1), const], dim=1)


def logits_from_tables(t: LiteralTables | FoldedTables, a: Tensor, b: Tensor) -> Tensor:
    """Stage 2 of :func:`final_logits`, per example: ``[E, N]`` tokens -> ``[E, N, d_vocab_out]``."""
    if isinstance(t, FoldedTables):
        rows = _row_index(a, b, t.p, t.n_heads)
        pattern = _pattern(t, *_token_rows(a, b, t.p))
        return _after_attention_by_rows(t, rows, _row_weights(pattern))[-1]
    return _after_attention(t, _attend(t, a, b).z)[-1]


def loss_and_table_grads(t: LiteralTables | FoldedTables, a: Tensor, b: Tensor, labels: Tensor, weights: Tensor,
                         block_size: int | None = None,
                         incidence: Incidence | None = None) -> tuple[Tensor, LiteralTables | FoldedTables]:
    """Stage 2 forward and backward by hand, for training: the ``[E]`` float64 weighted
    cross-entropy (:func:`circeff.empirical.metrics.cross_entropy64`) of the examples ``[E, N]``,
    taken ``block_size`` at a time, and its gradient with respect to every table.

    The same function and gradient as autograd through :func:`logits_from_tables` (tests check
    both to float rounding). Written out because autograd spends a third of a training step
    outside the matrix products here (separate ReLU and float64 passes, the temporaries it
    keeps, a scatter per gathered table). With the maps multiplied out, ``c_in + z W_OI`` (and
    ``c_U + z W_OU``) is a weighted sum of 4H + 1 rows per example, and its backward is the
    same sums the other way round (:func:`_rows_backward`): no product per example touches the
    attention output. ``incidence`` is :func:`build_incidence` of ``(a, b)``, for a caller
    that keeps it between steps; its block size is then the one used.
    """
    if isinstance(t, LiteralTables):
        return _literal_loss_and_table_grads(t, a, b, labels, weights, block_size)
    E, N = a.shape
    p, n_heads = t.p, t.n_heads
    inc = incidence or build_incidence(a, b, p, n_heads, block_size)
    # The scores' and W_outU's gradients add up block by block; the rows' are set whole by _rows_backward.
    g_scores = t.scores().map(torch.zeros_like)
    g_outU = torch.zeros_like(t.W_outU)
    loss = torch.zeros(E, dtype=torch.float64, device=a.device)
    # Per example, block after block: the rows' weights, and the gradients at the row sums.
    row_weight = t.s_a.new_empty(E * N, 4 * n_heads + 1)
    g_pre = t.rows_in.new_empty(E * N, t.rows_in.shape[-1])
    g_logits = t.rows_U.new_empty(E * N, t.rows_U.shape[-1])
    for cols, at in _blocks(E, N, inc.block):
        weight = _row_weights(_pattern(t, *_token_rows(a[:, cols], b[:, cols], p)), out=row_weight[at])
        post, logits = _after_attention_by_rows(t, inc.rows[at], weight)
        block_loss, g_block = cross_entropy64_and_grad(logits, labels[:, cols], weights[:, cols])
        loss += block_loss
        g_logits[at] = g_block.view(weight.shape[0], -1)
        g_outU.baddbmm_(post.transpose(1, 2), g_block)
        _relu_backward(torch.bmm(g_block, t.W_outU.transpose(1, 2), out=g_pre[at].view_as(post)), post)
    g_rows_in, g_rows_U, g_weight = _rows_backward(t, inc, row_weight, g_pre, g_logits)
    for cols, at in _blocks(E, N, inc.block):
        n = cols.stop - cols.start
        pattern, g_pattern = (w[at, :-1].view(E, n, 4, n_heads) for w in (row_weight, g_weight))
        _pattern_backward(pattern, g_pattern, *_token_rows(a[:, cols], b[:, cols], p), g_scores)
    return loss, FoldedTables(*g_scores.tensors(), rows_in=g_rows_in, rows_U=g_rows_U, W_outU=g_outU)


def _blocks(E: int, N: int, block: int):  # noqa: ANN202 - a generator of slice pairs
    """The blocks of ``block`` examples: each block's columns of ``[E, N]`` and its rows of the
    block-major ``[E*N, ...]`` buffers (all models' examples of block 0, then of block 1, ...),
    where a block is one contiguous ``[E, n, ...]`` piece."""
    for j in range(0, N, block):
        n = min(block, N - j)
        yield slice(j, j + n), slice(E * j, E * (j + n))


class Incidence(NamedTuple):
    """Which rows of the row tables (:class:`FoldedTables`' ``rows_in``, ``rows_U``) each example sums, and the same
    pairs sorted by row: the forward gathers rows per example, the backward collects examples
    per row. It depends only on the tokens and the block size, so a training loop makes it once.

    Examples are numbered block-major (:func:`_blocks`), rows across models (model e's start at
    ``e * R``) as in :func:`_row_index`.
    """

    rows: Tensor      # [E*N, 4H + 1] the rows each example sums (see _row_index)
    order: Tensor     # [E*N*(4H + 1)] the entries of ``rows.flatten()``, sorted by row (stable)
    examples: Tensor  # [E*N*(4H + 1)] the example of each sorted entry
    offsets: Tensor   # [E*R + 1] where each row's entries start among the sorted ones
    block: int        # examples per block


def build_incidence(a: Tensor, b: Tensor, p: int, n_heads: int, block_size: int | None = None) -> Incidence:
    """:class:`Incidence` of the examples ``(a, b)`` (``[E, N]`` each), taken ``block_size`` at a time."""
    E, N = a.shape
    block = block_size or N
    rows = torch.cat([_row_index(a[:, cols], b[:, cols], p, n_heads) for cols, _ in _blocks(E, N, block)])
    sorted_rows, order = torch.sort(rows.flatten(), stable=True)
    offsets = torch.searchsorted(sorted_rows, torch.arange(E * _rows_per_model(p, n_heads) + 1, device=a.device))
    return Incidence(rows, order, order // rows.shape[1], offsets, block)


def _rows_per_model(p: int, n_heads: int) -> int:
    return n_heads * (2 * p + 2) + 1


def _row_index(a: Tensor, b: Tensor, p: int, n_heads: int) -> Tensor:
    """``[E*N, 4H + 1]``: the rows of :func:`_rows_per_token` each example ``(a, b)`` sums,
    numbered across models. Per model, head h has 2P + 2 slots (a = 0..P-1, o, b = 0..P-1,
    =), heads one after another, then the constant. The columns follow
    ``pattern.reshape(E, N, 4H)`` (positions a, o, b, =, each by head), then the constant."""
    E, N = a.shape
    slots = 2 * p + 2
    first = torch.arange(E, device=a.device).view(E, 1, 1) * _rows_per_model(p, n_heads)
    head = first + torch.arange(n_heads, device=a.device) * slots                  # [E, 1, H]
    a, b = a.unsqueeze(-1), b.unsqueeze(-1)
    return torch.cat([head + a, (head + p).expand(E, N, n_heads), head + (p + 1) + b,
                      (head + slots - 1).expand(E, N, n_heads), (first + n_heads * slots).expand(E, N, 1)],
                     dim=-1).view(E * N, 4 * n_heads + 1)


def _row_weights(pattern: Tensor, out: Tensor | None = None) -> Tensor:
    """``[E*N, 4H + 1]``: the attention weight of each row of :func:`_row_index`, 1 for the
    constant (written into ``out`` when given)."""
    flat = pattern.reshape(pattern.shape[0] * pattern.shape[1], -1)
    return torch.cat([flat, flat.new_ones(flat.shape[0], 1)], dim=1, out=out)


def _after_attention_by_rows(t: FoldedTables, rows: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    """``post`` (after the ReLU) and logits, ``[E, n, ...]``, with ``c_in + z W_OI`` and
    ``c_U + z W_OU`` as sums of the rows of :func:`_rows_per_token` (``rows`` from
    :func:`_row_index`, with weights ``weight``, ``[E*n, 4H + 1]`` each)."""
    E = t.n_models
    T_in, T_U = t.rows_in, t.rows_U
    post = F.embedding_bag(rows, T_in.view(-1, T_in.shape[-1]), per_sample_weights=weight, mode="sum")
    logits = F.embedding_bag(rows, T_U.view(-1, T_U.shape[-1]), per_sample_weights=weight, mode="sum")
    post = post.view(E, -1, post.shape[-1]).relu_()
    return post, logits.view(E, -1, logits.shape[-1]).baddbmm_(post, t.W_outU)


def _rows_backward(t: FoldedTables, inc: Incidence, weight: Tensor, g_pre: Tensor,
                   g_logits: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Backward of the row sums of :func:`_after_attention_by_rows` over all examples
    (block-major ``[E*N, ...]``): the gradients of ``rows_in``, of ``rows_U`` and of ``weight``.

    A row's gradient is the sum over the examples that use it of their weight times the
    gradient there: a weighted sum of example rows, grouped by ``inc``'s sorted order (the
    forward's ``embedding_bag`` the other way round). A weight's gradient is the dot of its
    row with the example's gradient: a product sampled at the incidence's pairs.
    """
    sorted_weight = weight.flatten()[inc.order]
    dots = 0
    g_rows = []
    for rows, g in ((t.rows_in, g_pre), (t.rows_U, g_logits)):
        table = rows.view(-1, rows.shape[-1])
        g_rows.append(F.embedding_bag(inc.examples, g, inc.offsets, per_sample_weights=sorted_weight, mode="sum",
                                      include_last_offset=True).view_as(rows))
        dots = dots + _sampled_dots(table, g, inc, sorted_weight)
    return *g_rows, torch.empty_like(dots).index_copy_(0, inc.order, dots).view_as(weight)


def _sampled_dots(rows: Tensor, g: Tensor, inc: Incidence, values: Tensor) -> Tensor:
    """``rows[r] . g[n]`` for each (row r, example n) pair of ``inc``, in its sorted order."""
    if g.device.type == "meta":  # torch has no meta kernel for sampled_addmm (shapes only)
        return values.new_empty(values.shape)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)
        pairs = torch.sparse_csr_tensor(inc.offsets, inc.examples, values, size=(rows.shape[0], g.shape[0]),
                                        check_invariants=False)
    # beta = 0: the pairs' values are not read, only where they are.
    return torch.sparse.sampled_addmm(pairs, rows, g.T, beta=0.0).values()


class _Mixed(NamedTuple):
    """What the 4-way attention of the last position computed for a block (kept for the
    backward of the literal path)."""

    pattern: Tensor   # [E, N, 4, H] attention of the last query on positions a, o, b, =
    rows_a: Tensor    # [E*N] row of each example's ``a`` in the tables flattened over models
    rows_b: Tensor
    v_a: Tensor       # [E, N, H, d_head] value of each example's ``a`` (and ``b``)
    v_b: Tensor
    z: Tensor         # [E, N, H*d_head] attention output, heads side by side


def _token_rows(a: Tensor, b: Tensor, p: int) -> tuple[Tensor, Tensor]:
    """``[E*N]`` rows of each example's ``a`` and ``b`` in P-row tables flattened over models
    (model e's rows start at e * P), for one ``index_select`` or ``index_add_`` across models."""
    first_row = torch.arange(a.shape[0], device=a.device).unsqueeze(1) * p
    return (a + first_row).reshape(-1), (b + first_row).reshape(-1)


def _pattern(t: Tables, rows_a: Tensor, rows_b: Tensor) -> Tensor:
    """``[E, N, 4, H]``: the last query's 4-way softmax per head over positions a, o, b, = (it
    sees all four), for the examples whose tokens sit at ``rows_a``, ``rows_b`` (:func:`_token_rows`)."""
    E, p, n_heads = t.s_a.shape
    N = rows_a.shape[0] // E
    s_a = t.s_a.reshape(E * p, n_heads).index_select(0, rows_a).view(E, N, n_heads)
    s_b = t.s_b.reshape(E * p, n_heads).index_select(0, rows_b).view(E, N, n_heads)
    scores = torch.stack([s_a, t.s_op.unsqueeze(1).expand(E, N, n_heads),
                          s_b, t.s_eq.unsqueeze(1).expand(E, N, n_heads)], dim=2)
    return scores.softmax(dim=2)


def _attend(t: LiteralTables, a: Tensor, b: Tensor) -> _Mixed:
    """The attention pattern and the weighted sum of the four value vectors (literal path)."""
    E, N = a.shape
    p, n_heads = t.p, t.n_heads
    hd = t.v_a.shape[-1]
    d_head = hd // n_heads
    rows_a, rows_b = _token_rows(a, b, p)
    pattern = _pattern(t, rows_a, rows_b)
    w = pattern.unsqueeze(-1)                                 # [E, N, 4, H, 1]
    v_a = t.v_a.reshape(E * p, hd).index_select(0, rows_a).view(E, N, n_heads, d_head)
    v_b = t.v_b.reshape(E * p, hd).index_select(0, rows_b).view(E, N, n_heads, d_head)
    z = (torch.mul(v_a, w[:, :, 0]).addcmul_(t.v_op.view(E, 1, n_heads, d_head), w[:, :, 1])
         .addcmul_(v_b, w[:, :, 2]).addcmul_(t.v_eq.view(E, 1, n_heads, d_head), w[:, :, 3]))
    return _Mixed(pattern, rows_a, rows_b, v_a, v_b, z.view(E, N, hd))


def _literal_loss_and_table_grads(t: LiteralTables, a: Tensor, b: Tensor, labels: Tensor, weights: Tensor,
                                  block_size: int | None) -> tuple[Tensor, LiteralTables]:
    """:func:`loss_and_table_grads` for the literal path (maps not multiplied out)."""
    grads = t.map(torch.zeros_like)
    E, N = a.shape
    loss = torch.zeros(E, dtype=torch.float64, device=a.device)
    for cols, _ in _blocks(E, N, block_size or N):
        mix = _attend(t, a[:, cols], b[:, cols])
        saved = _after_attention(t, mix.z)
        block_loss, g_logits = cross_entropy64_and_grad(saved[-1], labels[:, cols], weights[:, cols])
        loss += block_loss
        g_z = _after_attention_backward(t, mix.z, saved, g_logits, grads)
        _attend_backward(t, mix, g_z, grads)
    return loss, grads


def _after_attention(t: LiteralTables, z: Tensor) -> tuple[Tensor, ...]:
    """The literal order after attention (attention output, residual, MLP, residual,
    unembedding) at the last position. Returns the activations the backward needs, logits last."""
    resid_mid = torch.baddbmm(t.x_eq.unsqueeze(1), z, t.W_O)        # [E, N, d_model]
    post = torch.bmm(resid_mid, t.W_in).relu_()                      # [E, N, d_mlp]
    resid_post = torch.baddbmm(resid_mid, post, t.W_out)             # [E, N, d_model]
    return resid_mid, post, resid_post, torch.bmm(resid_post, t.W_U)


def _after_attention_backward(t: LiteralTables, z: Tensor, saved: tuple[Tensor, ...], g_logits: Tensor,
                              grads: LiteralTables) -> Tensor:
    """Backward of :func:`_after_attention`: adds the gradients of its tables into ``grads``
    and returns the gradient of ``z``."""
    resid_mid, post, resid_post, _ = saved
    grads.W_U.baddbmm_(resid_post.transpose(1, 2), g_logits)
    g_resid = torch.bmm(g_logits, t.W_U.transpose(1, 2))             # d resid_post
    grads.W_out.baddbmm_(post.transpose(1, 2), g_resid)
    g_pre = _relu_backward(torch.bmm(g_resid, t.W_out.transpose(1, 2)), post)
    grads.W_in.baddbmm_(resid_mid.transpose(1, 2), g_pre)
    g_resid.baddbmm_(g_pre, t.W_in.transpose(1, 2))                   # d resid_mid
    grads.x_eq.add_(g_resid.sum(dim=1))
    grads.W_O.baddbmm_(z.transpose(1, 2), g_resid)
    return torch.bmm(g_resid, t.W_O.transpose(1, 2))


def _attend_backward(t: LiteralTables, mix: _Mixed, g_z: Tensor, grads: LiteralTables) -> None:
    """Backward of :func:`_attend`: adds the gradients of the score and value tables into ``grads``."""
    E, N, _, n_heads = mix.pattern.shape
    p, hd = t.p, g_z.shape[-1]
    d_head = hd // n_heads
    w = mix.pattern
    # Positions o and = hold one token each, so their terms are products over all examples:
    # <g_z head h, v_o head h> for every example is g_z times a block-diagonal [H*d_head, H]
    # matrix, and sum_n w(n) g_z(n) is one [2H, N] x [N, H*d_head] product whose head-h block of
    # row h is kept (the other blocks mix heads and are dropped; H times the work, no copies).
    v_fixed = torch.stack([t.v_op, t.v_eq], dim=1).view(E, 2, n_heads, d_head)
    blocks = torch.diag_embed(v_fixed.transpose(2, 3))                       # [E, 2, d_head, H, H]
    blocks = blocks.permute(0, 3, 2, 1, 4).reshape(E, hd, 2 * n_heads)
    g_fixed = torch.bmm(g_z, blocks).view(E, N, 2, n_heads)
    sums = torch.bmm(w[:, :, 1::2].reshape(E, N, 2 * n_heads).transpose(1, 2), g_z)
    sums = sums.view(E, 2, n_heads, n_heads, d_head).diagonal(dim1=2, dim2=3).transpose(2, 3)
    grads.v_op.add_(sums[:, 0].reshape(E, hd))
    grads.v_eq.add_(sums[:, 1].reshape(E, hd))
    # Positions a and b: a value row per example, scattered back to its token's row.
    g_z = g_z.view(E, N, n_heads, d_head)
    grads.v_a.view(E * p, hd).index_add_(0, mix.rows_a, (g_z * w[:, :, 0, :, None]).view(E * N, hd))
    grads.v_b.view(E * p, hd).index_add_(0, mix.rows_b, (g_z * w[:, :, 2, :, None]).view(E * N, hd))
    # Through the weighted sum to the pattern.
    g_pattern = torch.stack([torch.linalg.vecdot(g_z, mix.v_a), g_fixed[:, :, 0],
                             torch.linalg.vecdot(g_z, mix.v_b), g_fixed[:, :, 1]], dim=2)
    _pattern_backward(w, g_pattern, mix.rows_a, mix.rows_b, grads)


def _pattern_backward(pattern: Tensor, g_pattern: Tensor, rows_a: Tensor, rows_b: Tensor, grads: Tables) -> None:
    """Through the softmax over the four positions to the score tables (adds into the score
    fields of ``grads``)."""
    E, N, _, n_heads = pattern.shape
    p = grads.p
    g_scores = pattern * (g_pattern - (pattern * g_pattern).sum(dim=2, keepdim=True))
    grads.s_a.view(E * p, n_heads).index_add_(0, rows_a, g_scores[:, :, 0].reshape(E * N, n_heads))
    grads.s_b.view(E * p, n_heads).index_add_(0, rows_b, g_scores[:, :, 2].reshape(E * N, n_heads))
    grads.s_op.add_(g_scores[:, :, 1].sum(dim=1))
    grads.s_eq.add_(g_scores[:, :, 3].sum(dim=1))


def _relu_backward(grad: Tensor, post: Tensor) -> Tensor:
    """``grad`` where relu's OUTPUT ``post`` is positive, else 0, in place (the kernel autograd's
    own ReLU backward calls, one pass)."""
    return torch.ops.aten.threshold_backward.grad_input(grad, post, 0.0, grad_input=grad)


def uses_fold(cfg: ModelConfig, task: TaskConfig, n_examples: int) -> bool:
    """Whether :func:`final_logits` multiplies the maps out for ``n_examples`` per model: when
    the multiply-adds it saves on the examples exceed what multiplying out costs per model."""
    return _fold_pays(_widths(cfg, task), n_examples)


class _Widths(NamedTuple):
    d_model: int
    n_heads: int
    d_head: int
    d_mlp: int
    p: int       # element tokens
    d_out: int


def _widths(cfg: ModelConfig, task: TaskConfig) -> _Widths:
    return _Widths(cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp, task.p, task.d_vocab_out)


def _dims_of(params: Params) -> _Widths:
    """The widths of a stacked batch, read from its weights (the same as from its config)."""
    _, n_heads, d_model, d_head = params["W_Q"].shape
    return _Widths(d_model, n_heads, d_head, params["W_in"].shape[-1], params["W_E"].shape[1] - 2,
                   params["W_U"].shape[-1])


def _fold_pays(w: _Widths, n_examples: int) -> bool:
    # The one rule; uses_fold (from a config) and final_logits (from weights) both ask it.
    return n_examples * (_per_example(w, fold=False) - _per_example(w, fold=True)) > _fold_cost(w)


def _per_example(w: _Widths, fold: bool) -> int:
    """Multiply-adds per example of the forward after the attention scores: the literal path
    mixes the values and multiplies by W_O, W_in, W_out, W_U; the multiplied-out path sums
    4H + 1 rows into the MLP input and the logits and multiplies by W_out W_U."""
    hd = w.n_heads * w.d_head
    if fold:
        return (4 * w.n_heads + 1) * (w.d_mlp + w.d_out) + w.d_mlp * w.d_out
    return 4 * hd + hd * w.d_model + 2 * w.d_model * w.d_mlp + w.d_model * w.d_out


def _fold_cost(w: _Widths) -> int:
    """Multiply-adds per model of multiplying the maps out (W_O W_in, W_O W_U, W_out W_U, the
    constants) and of the rows: 2P + 2 value vectors per head times W_O W_in and W_O W_U."""
    hd, m = w.n_heads * w.d_head, w.d_mlp + w.d_out
    return hd * w.d_model * m + w.d_mlp * w.d_model * w.d_out + w.d_model * m + (2 * w.p + 2) * hd * m


def _tables_cost(w: _Widths) -> int:
    """Multiply-adds per model of the attention tables: the query, the keys folded with it,
    and scores and values of the 2P + 2 tokens the positions can hold."""
    hd = w.n_heads * w.d_head
    return 2 * w.d_model * hd + (2 * w.p + 2) * w.d_model * (w.n_heads + hd)


def forward_matmul_flops(cfg: ModelConfig, task: TaskConfig, n_examples: int, fold: bool | None = None) -> int:
    """Matrix-product FLOPs (2 per multiply-add) of :func:`final_logits` for ONE model on
    ``n_examples`` examples: the vocabulary tables and the per-example work of the chosen path
    (:func:`_per_example`). The row sums count as products (one multiply-add per element).
    """
    w = _widths(cfg, task)
    if fold is None:
        fold = _fold_pays(w, n_examples)
    per_model = _tables_cost(w) + (_fold_cost(w) if fold else 0)
    return 2 * (per_model + n_examples * _per_example(w, fold))


def training_matmul_flops(cfg: ModelConfig, task: TaskConfig, n_examples: int) -> int:
    """FLOPs (2 per multiply-add) of one training step of ONE model on ``n_examples``
    examples: :func:`vocabulary_tables` and its backward to the weights, and
    :func:`loss_and_table_grads`. Elementwise work (softmax, ReLU, the float64 loss) is not
    counted.

    Both paths cost 3x their forward (:func:`forward_matmul_flops`). A product's backward is
    two products of its size. With the maps multiplied out, so is a row sum's: the rows'
    gradients (the same sums the other way round) and the weights' (one dot per row).
    """
    return 3 * forward_matmul_flops(cfg, task, n_examples)


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
        e = tables.n_models
        chunks.append(torch.cat([logits_from_tables(tables, a[j:j + block_size].expand(e, -1),
                                                    b[j:j + block_size].expand(e, -1))
                                 for j in range(0, p * p, block_size)], dim=1))
    out = torch.cat(chunks).view(E, p, p, -1)
    return out[0] if model_index is not None else out


