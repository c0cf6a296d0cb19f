"""The readable Transformer's identity hook points (empirical/model.py, HOOK_NAMES).

They must be invisible (no state-dict entries, the same output bit for bit as the forward
pass written without them) and useful: each is called once per forward, in HOOK_NAMES order,
with the documented circeff layout, and a torch forward hook that replaces its output changes
the logits as the same edit made by hand.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from circeff.empirical.config import ModelConfig
from circeff.empirical.lens import input_tokens
from circeff.empirical.model import HOOK_NAMES, WEIGHT_NAMES, Transformer
from circeff.empirical.tasks import TaskConfig

SMALL = ModelConfig(d_model=16, n_heads=2, d_head=8, d_mlp=32)
TASK = TaskConfig("add", 13)
N, POS, H, DH, DM, DMLP = 169, 4, 2, 8, 16, 32
SHAPES = {
    "hook_embed": (N, POS, DM), "hook_pos_embed": (POS, DM), "hook_resid_pre": (N, POS, DM),
    "hook_q": (N, H, POS, DH), "hook_k": (N, H, POS, DH), "hook_v": (N, H, POS, DH),
    "hook_attn_scores": (N, H, POS, POS), "hook_pattern": (N, H, POS, POS), "hook_z": (N, H, POS, DH),
    "hook_attn_out": (N, POS, DM), "hook_resid_mid": (N, POS, DM), "hook_mlp_pre": (N, POS, DMLP),
    "hook_mlp_post": (N, POS, DMLP), "hook_mlp_out": (N, POS, DM), "hook_resid_post": (N, POS, DM),
}


def by_hand(m: Transformer, tokens: torch.Tensor, z_edit=None) -> torch.Tensor:
    """The forward pass written out from the weights, without hook points."""
    return intermediates(m, tokens, z_edit)["logits"]


def intermediates(m: Transformer, tokens: torch.Tensor, z_edit=None) -> dict[str, torch.Tensor]:
    """Every value a hook point should see, named by its hook, and the logits."""
    a = {"hook_embed": m.W_E[tokens], "hook_pos_embed": m.W_pos[:POS]}
    a["hook_resid_pre"] = x = a["hook_embed"] + a["hook_pos_embed"]
    for name, w in (("hook_q", m.W_Q), ("hook_k", m.W_K), ("hook_v", m.W_V)):
        a[name] = torch.einsum("npd,hdk->nhpk", x, w)
    scores = torch.einsum("nhqk,nhsk->nhqs", a["hook_q"], a["hook_k"]) / math.sqrt(DH)
    a["hook_attn_scores"] = scores.masked_fill(~torch.tril(torch.ones(POS, POS, dtype=torch.bool)), float("-inf"))
    a["hook_pattern"] = a["hook_attn_scores"].softmax(-1)
    a["hook_z"] = z = torch.einsum("nhqs,nhsk->nhqk", a["hook_pattern"], a["hook_v"])
    if z_edit is not None:
        z = z_edit(z.clone())
    a["hook_attn_out"] = torch.einsum("nhqk,hkd->nqd", z, m.W_O)
    a["hook_resid_mid"] = x = x + a["hook_attn_out"]
    a["hook_mlp_pre"] = x @ m.W_in
    a["hook_mlp_post"] = torch.relu(a["hook_mlp_pre"])
    a["hook_mlp_out"] = a["hook_mlp_post"] @ m.W_out
    a["hook_resid_post"] = x = x + a["hook_mlp_out"]
    a["logits"] = x @ m.W_U
    return a


def test_hook_points_hold_no_state_and_change_no_output():
    model = Transformer(SMALL, TASK, seed=3)
    assert list(model.state_dict()) == list(WEIGHT_NAMES)
    assert [n for n, _ in model.named_parameters()] == list(WEIGHT_NAMES)
    assert all(isinstance(getattr(model, n), nn.Identity) for n in HOOK_NAMES)
    with torch.no_grad():
        assert torch.equal(model(input_tokens(TASK)), by_hand(model, input_tokens(TASK)))


def test_each_hook_point_is_called_once_in_order_with_its_layout_and_value():
    model = Transformer(SMALL, TASK, seed=3)
    seen = []
    for name in HOOK_NAMES:
        getattr(model, name).register_forward_hook(lambda _m, _i, out, name=name: seen.append((name, out.clone())))
    with torch.no_grad():
        model(input_tokens(TASK))
        want = intermediates(model, input_tokens(TASK))
    assert [n for n, _ in seen] == list(HOOK_NAMES)
    assert {n: tuple(t.shape) for n, t in seen} == SHAPES
    for name, value in seen:
        assert torch.equal(value, want[name]), name


def test_replacing_a_hook_points_output_edits_the_forward_pass():
    """Zero head 1's z at the last position through a forward hook; the same edit by hand."""
    model = Transformer(SMALL, TASK, seed=3)
    tokens = input_tokens(TASK)

    def zero_head1_last(z):
        z[:, 1, -1] = 0.0
        return z

    handle = model.hook_z.register_forward_hook(lambda _m, _i, out: zero_head1_last(out.clone()))
    with torch.no_grad():
        patched = model(tokens)
    handle.remove()
    with torch.no_grad():
        want, clean = by_hand(model, tokens, z_edit=zero_head1_last), model(tokens)
    assert (patched - want).abs().max().item() <= 1e-5
    assert (patched[:, -1] - clean[:, -1]).abs().max().item() > 1e-3
    assert torch.equal(patched[:, :-1], clean[:, :-1])  # earlier positions do not see the last one
