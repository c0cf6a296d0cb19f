"""Export to TransformerLens: the exported model computes circeff's logits on every input.

Two levels. Without TransformerLens installed, the exported files (config.json, state_dict.pt)
are read back with ``weights_only=True`` and run through TransformerLens's forward pass written
out here from its documented semantics (embed + pos_embed, attention with biases and
``1/sqrt(d_head)`` scale and a causal mask, ReLU MLP with biases, unembed with bias); with it
installed, the real ``HookedTransformer`` is loaded. Both must match circeff's readable
reference model on all P^2 inputs within 1e-5. A mutated export (one weight transposed between
heads) must not match, so the comparison can fail.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from circeff.cli.main import run
from circeff.empirical.config import ModelConfig, RunSpec, TrainConfig
from circeff.empirical.lens import (
    CONFIG_NAME,
    STATE_DICT_NAME,
    export_transformer_lens,
    input_tokens,
    load_model,
    tl_config,
    tl_state_dict,
)
from circeff.empirical.model import Transformer
from circeff.empirical.tasks import TaskConfig
from circeff.empirical.train import train

SMALL = ModelConfig(d_model=16, n_heads=2, d_head=8, d_mlp=32)
TOL = 1e-5


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Two models of modular addition at P = 13, 30 steps (weights no longer at initialisation)."""
    out = tmp_path_factory.mktemp("lens") / "run"
    cfg = TrainConfig(task=TaskConfig("add", 13), runs=(RunSpec(seed=0, train_size=80), RunSpec(seed=1, train_size=80)),
                      model=SMALL, steps=30, log_every=10, checkpoint_every=30, lr=3e-3)
    train(cfg, out, progress=False)
    return out


def tl_semantics_logits(cfg: dict, sd: dict, tokens: torch.Tensor) -> torch.Tensor:
    """TransformerLens's forward pass for this configuration (attn + MLP, no LayerNorm), by hand."""
    assert cfg["normalization_type"] is None and cfg["act_fn"] == "relu" and cfg["n_layers"] == 1
    n = tokens.shape[1]
    x = sd["embed.W_E"][tokens] + sd["pos_embed.W_pos"][:n]
    q = torch.einsum("npd,hdk->nphk", x, sd["blocks.0.attn.W_Q"]) + sd["blocks.0.attn.b_Q"]
    k = torch.einsum("npd,hdk->nphk", x, sd["blocks.0.attn.W_K"]) + sd["blocks.0.attn.b_K"]
    v = torch.einsum("npd,hdk->nphk", x, sd["blocks.0.attn.W_V"]) + sd["blocks.0.attn.b_V"]
    scale = math.sqrt(cfg["d_head"]) if cfg["use_attn_scale"] else 1.0
    scores = torch.einsum("nqhk,nshk->nhqs", q, k) / scale
    mask = torch.tril(torch.ones(n, n, dtype=torch.bool))
    pattern = scores.masked_fill(~mask, float("-inf")).softmax(-1)
    z = torch.einsum("nhqs,nshk->nqhk", pattern, v)
    x = x + torch.einsum("nqhk,hkd->nqd", z, sd["blocks.0.attn.W_O"]) + sd["blocks.0.attn.b_O"]
    hidden = torch.relu(x @ sd["blocks.0.mlp.W_in"] + sd["blocks.0.mlp.b_in"])
    x = x + hidden @ sd["blocks.0.mlp.W_out"] + sd["blocks.0.mlp.b_out"]
    return x @ sd["unembed.W_U"] + sd["unembed.b_U"]


def _reference_logits(run_dir, model: int) -> torch.Tensor:
    config, params = load_model(run_dir, model)
    with torch.no_grad():
        return Transformer.from_params(config.model, config.task, params)(input_tokens(config.task))


def test_tokens_are_circeffs_a_op_b_eq_on_all_p_squared_inputs():
    tokens = input_tokens(TaskConfig("add", 13))
    assert tokens.shape == (169, 4)
    assert set(tokens[:, 0].tolist()) == set(range(13)) == set(tokens[:, 2].tolist())
    assert set(tokens[:, 1].tolist()) == {13} and set(tokens[:, 3].tolist()) == {14}


@pytest.mark.parametrize("model", [0, 1])
def test_exported_files_compute_circeffs_logits_without_transformer_lens(run_dir, tmp_path, model):
    out = export_transformer_lens(run_dir, model, tmp_path / "tl")
    cfg = json.loads((out / CONFIG_NAME).read_text())
    sd = torch.load(out / STATE_DICT_NAME, weights_only=True)  # plain tensors: no unpickling of code
    tokens = input_tokens(TaskConfig("add", 13))
    got = tl_semantics_logits(cfg, sd, tokens)
    want = _reference_logits(run_dir, model)
    assert got.shape == want.shape == (169, 4, 13)
    assert (got[:, -1] - want[:, -1]).abs().max().item() <= TOL
    assert (got - want).abs().max().item() <= TOL  # every position, not only the answer's
    assert cfg == tl_config(SMALL, TaskConfig("add", 13))


def test_a_mutated_export_does_not_match(run_dir):
    """Negative control: swapping the two heads' query weights changes the logits beyond 1e-5."""
    config, params = load_model(run_dir, 0)
    sd = tl_state_dict(params, config.model, config.task)
    sd["blocks.0.attn.W_Q"] = sd["blocks.0.attn.W_Q"].flip(0)
    got = tl_semantics_logits(tl_config(config.model, config.task), sd, input_tokens(config.task))
    assert (got[:, -1] - _reference_logits(run_dir, 0)[:, -1]).abs().max().item() > 1e-3


def test_hooked_transformer_equals_circeff_on_every_input(run_dir, tmp_path):
    pytest.importorskip("transformer_lens", reason="transformer_lens is not installed (pip install "
                        "'circuit-efficiency[lens]'); the export is checked above without it")
    from circeff.empirical.lens import hooked_transformer

    export_transformer_lens(run_dir, 1, tmp_path / "tl")
    tokens = input_tokens(TaskConfig("add", 13))
    want = _reference_logits(run_dir, 1)
    for model in (hooked_transformer(tmp_path / "tl"), hooked_transformer(run_dir, 1)):
        with torch.no_grad():
            logits, cache = model.run_with_cache(tokens)
        assert (logits[:, -1] - want[:, -1]).abs().max().item() <= TOL
        assert cache["blocks.0.attn.hook_pattern"].shape == (169, 2, 4, 4)


def test_export_command_and_its_bad_input(run_dir, tmp_path, capsys):
    out = tmp_path / "tl"
    assert run(["export", str(run_dir), "--model", "1", "--to", "transformer-lens", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {CONFIG_NAME, STATE_DICT_NAME}
    capsys.readouterr()
    for argv, flag in [([str(run_dir), str(tmp_path / "x"), "--model", "2"], "--model"),
                       ([str(run_dir), str(tmp_path / "x"), "--to", "onnx"], "--to"),
                       ([str(tmp_path), str(tmp_path / "x")], "RUN_DIR")]:
        assert run(["export", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {flag}:") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()
