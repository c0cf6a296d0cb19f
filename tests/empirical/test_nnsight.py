"""nnsight on circeff's readable Transformer, through its identity hook points.

Needs ``nnsight`` (the ``[nnsight]`` extra); skipped without it. The code is the example of
docs/lens.md (section "nnsight"): read one head's attention pattern and compare it with the
pattern computed by hand from the weights; zero head 1's ``z`` at the last position and check
that the logits are those of the same edit made by hand, and differ from the clean logits.
(nnsight reads the body of a ``with model.trace(...)`` block from its source file, so the
traces must live in a file, as here, not in ``exec`` strings.)
"""

from __future__ import annotations

import math

import pytest
import torch

from circeff.empirical.config import ModelConfig
from circeff.empirical.lens import input_tokens
from circeff.empirical.model import WEIGHT_NAMES, Transformer
from circeff.empirical.tasks import TaskConfig

nnsight = pytest.importorskip("nnsight", reason="nnsight is not installed (pip install 'circuit-efficiency[nnsight]')")

SMALL = ModelConfig(d_model=16, n_heads=2, d_head=8, d_mlp=32)
TASK = TaskConfig("add", 13)
TOL = 1e-5


def by_hand(m: Transformer, tokens: torch.Tensor, z_edit=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pattern [N, H, q, s], logits [N, pos, P])`` from the weights, optionally editing z."""
    n = tokens.shape[1]
    x = m.W_E[tokens] + m.W_pos[:n]
    q, k, v = (torch.einsum("npd,hdk->nhpk", x, w) for w in (m.W_Q, m.W_K, m.W_V))
    scores = torch.einsum("nhqk,nhsk->nhqs", q, k) / math.sqrt(m.cfg.d_head)
    pattern = scores.masked_fill(~torch.tril(torch.ones(n, n, dtype=torch.bool)), float("-inf")).softmax(-1)
    z = torch.einsum("nhqs,nhsk->nhqk", pattern, v)
    if z_edit is not None:
        z = z.clone()
        z_edit(z)
    x = x + torch.einsum("nhqk,hkd->nqd", z, m.W_O)
    x = x + torch.relu(x @ m.W_in) @ m.W_out
    return pattern, x @ m.W_U


@pytest.fixture()
def circeff_model():
    return Transformer(SMALL, TASK, seed=3).eval()


def test_read_one_heads_attention_pattern(circeff_model):
    from nnsight import NNsight

    tokens = input_tokens(TASK)                       # all P^2 sequences a op b =
    model = NNsight(circeff_model)
    with torch.no_grad(), model.trace(tokens):
        pattern = model.hook_pattern.output[:, 0].save()   # head 0, [N, q, s]
        logits = model.output.save()

    with torch.no_grad():
        want_pattern, want_logits = by_hand(circeff_model, tokens)
    assert pattern.shape == (169, 4, 4)
    assert (pattern - want_pattern[:, 0]).abs().max().item() <= TOL
    assert (pattern - want_pattern[:, 1]).abs().max().item() > 1e-3  # it is head 0's, not head 1's
    assert (logits - want_logits).abs().max().item() <= TOL


def test_patch_zero_head1_z_at_the_last_position(circeff_model):
    from nnsight import NNsight

    tokens = input_tokens(TASK)
    model = NNsight(circeff_model)
    with torch.no_grad(), model.trace(tokens):
        model.hook_z.output[:, 1, -1] = 0.0               # z is [N, H, pos, d_head]
        patched = model.output.save()

    def zero_head1_last(z):
        z[:, 1, -1] = 0.0

    with torch.no_grad():
        _, want = by_hand(circeff_model, tokens, z_edit=zero_head1_last)
        clean = circeff_model(tokens)
    assert (patched - want).abs().max().item() <= TOL
    assert (patched[:, -1] - clean[:, -1]).abs().max().item() > 1e-3
    # the patch lived only inside the trace: the model still computes the clean logits
    with torch.no_grad():
        assert torch.equal(circeff_model(tokens), by_hand(circeff_model, tokens)[1])
    assert list(circeff_model.state_dict()) == list(WEIGHT_NAMES)
