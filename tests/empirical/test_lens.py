"""Export to TransformerLens: the exported model computes circeff's logits on every input.

Two levels. Without TransformerLens installed, the exported files (config.json, state_dict.pt)
are read back with ``weights_only=True`` and run through TransformerLens's forward pass written
out here from its documented semantics (embed + pos_embed, attention with biases and
``1/sqrt(d_head)`` scale and a causal mask, ReLU MLP with biases, unembed with bias); with it
installed, the real hooked model of the installed version is loaded (4.x: ``TransformerBridge``
through ``boot_native``; 2.16 - 3.x: ``HookedTransformer``). Both must match circeff's readable
reference model on all P^2 inputs within 1e-5, and TransformerLens's per-head attention pattern
(``blocks.0.attn.hook_pattern``) must equal the one circeff's model computes (read at its
``hook_pattern`` hook point). A mutated export (the two heads' query weights swapped) must not
match, so the comparisons can fail.

The other TransformerLens major than the installed one is checked by a slow test
(``-m slow``) that installs it into a throwaway venv and runs this file's TransformerLens tests
there.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

from circeff.cli.main import run
from circeff.empirical.config import ModelConfig, RunSpec, TrainConfig
from circeff.empirical.lens import (
    CONFIG_NAME,
    STATE_DICT_NAME,
    bridge_state_dict,
    export_transformer_lens,
    input_tokens,
    load_model,
    tl_config,
    tl_state_dict,
    tl_version,
)
from circeff.empirical.model import HOOK_NAMES, Transformer
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


def _reference_hooks(run_dir, model: int) -> dict[str, torch.Tensor]:
    """What each hook point of circeff's readable model sees on all P^2 inputs."""
    config, params = load_model(run_dir, model)
    ref = Transformer.from_params(config.model, config.task, params)
    seen = {}
    for name in HOOK_NAMES:
        getattr(ref, name).register_forward_hook(lambda _m, _i, out, name=name: seen.update({name: out.detach().clone()}))
    with torch.no_grad():
        ref(input_tokens(config.task))
    return seen


def _reference_pattern(run_dir, model: int) -> torch.Tensor:
    """``[N, H, q, s]`` attention pattern of circeff's readable model, read at its hook point."""
    return _reference_hooks(run_dir, model)["hook_pattern"]


# circeff hook point -> TransformerLens hook (the same on HookedTransformer and TransformerBridge)
TL_HOOKS = {
    "hook_embed": "hook_embed", "hook_pos_embed": "hook_pos_embed", "hook_resid_pre": "blocks.0.hook_resid_pre",
    "hook_q": "blocks.0.attn.hook_q", "hook_k": "blocks.0.attn.hook_k", "hook_v": "blocks.0.attn.hook_v",
    "hook_attn_scores": "blocks.0.attn.hook_attn_scores", "hook_pattern": "blocks.0.attn.hook_pattern",
    "hook_z": "blocks.0.attn.hook_z", "hook_attn_out": "blocks.0.hook_attn_out",
    "hook_resid_mid": "blocks.0.hook_resid_mid", "hook_mlp_pre": "blocks.0.mlp.hook_pre",
    "hook_mlp_post": "blocks.0.mlp.hook_post", "hook_mlp_out": "blocks.0.hook_mlp_out",
    "hook_resid_post": "blocks.0.hook_resid_post",
}


def _requires_tl():
    pytest.importorskip("transformer_lens", reason="transformer_lens is not installed (pip install "
                        "'circuit-efficiency[lens]'); the export is checked above without it")
    expected = os.environ.get("CIRCEFF_EXPECT_TL_MAJOR")  # set by the slow other-major test
    if expected is not None:
        assert tl_version()[0] == int(expected), (tl_version(), expected)


def test_hooked_transformer_equals_circeff_on_every_input(run_dir, tmp_path):
    """Logits on all P^2 inputs (every position) and head by head attention patterns."""
    _requires_tl()
    from circeff.empirical.lens import hooked_transformer

    export_transformer_lens(run_dir, 1, tmp_path / "tl")
    tokens = input_tokens(TaskConfig("add", 13))
    want, want_pattern = _reference_logits(run_dir, 1), _reference_pattern(run_dir, 1)
    assert want_pattern.shape == (169, 2, 4, 4)
    for model in (hooked_transformer(tmp_path / "tl"), hooked_transformer(run_dir, 1)):
        with torch.no_grad():
            logits, cache = model.run_with_cache(tokens)
        assert logits.shape == want.shape == (169, 4, 13)
        assert (logits - want).abs().max().item() <= TOL
        pattern = cache["blocks.0.attn.hook_pattern"]
        assert pattern.shape == (169, 2, 4, 4)
        for head in range(2):
            assert (pattern[:, head] - want_pattern[:, head]).abs().max().item() <= TOL


def test_every_transformer_lens_hook_sees_what_circeffs_hook_point_sees(run_dir):
    """The layouts differ where documented: TransformerLens's q, k, v, z are [N, pos, H, d_head]
    (circeff's [N, H, pos, d_head]) and its hook_pos_embed is broadcast over N."""
    _requires_tl()
    from circeff.empirical.lens import hooked_transformer

    want = _reference_hooks(run_dir, 1)
    assert set(TL_HOOKS) == set(HOOK_NAMES)
    with torch.no_grad():
        _, cache = hooked_transformer(run_dir, 1).run_with_cache(input_tokens(TaskConfig("add", 13)))
    causal = torch.tril(torch.ones(4, 4, dtype=torch.bool))
    for ours, theirs in TL_HOOKS.items():
        got, ref = cache[theirs], want[ours]
        if ours in ("hook_q", "hook_k", "hook_v", "hook_z"):
            ref = ref.transpose(1, 2)
        if ours == "hook_pos_embed":
            ref = ref.expand_as(got)
        if ours == "hook_attn_scores":  # above the diagonal both mask (-inf or a large negative)
            got, ref = got[..., causal], ref[..., causal]
            if tl_version()[0] >= 4 and (got - want["hook_pattern"][..., causal]).abs().max().item() <= TOL:
                continue  # TL 4.3's bridge fires hook_attn_scores with the pattern (docs/lens.md)
        assert got.shape == ref.shape, ours
        assert (got - ref).abs().max().item() <= TOL, ours


def test_an_edit_at_hook_pattern_changes_the_logits_as_in_circeff(run_dir):
    """Head 1's attention zeroed through ``run_with_hooks`` equals the same edit at circeff's
    ``hook_pattern`` (3.x's TransformerBridge would ignore it: hence HookedTransformer there)."""
    _requires_tl()
    from circeff.empirical.lens import hooked_transformer

    def zero_head1(pattern, hook=None):
        pattern = pattern.clone()
        pattern[:, 1] = 0.0
        return pattern

    config, params = load_model(run_dir, 1)
    ref = Transformer.from_params(config.model, config.task, params)
    tokens = input_tokens(config.task)
    ref.hook_pattern.register_forward_hook(lambda _m, _i, out: zero_head1(out))
    with torch.no_grad():
        want = ref(tokens)
        got = hooked_transformer(run_dir, 1).run_with_hooks(tokens, fwd_hooks=[("blocks.0.attn.hook_pattern", zero_head1)])
    assert (got - want).abs().max().item() <= TOL
    assert (got[:, -1] - _reference_logits(run_dir, 1)[:, -1]).abs().max().item() > 1e-3


def test_hooked_transformer_takes_the_installed_versions_route(run_dir):
    _requires_tl()
    from circeff.empirical.lens import hooked_transformer

    model = hooked_transformer(run_dir, 0)
    expected = "TransformerBridge" if tl_version()[0] >= 4 else "HookedTransformer"
    assert type(model).__name__ == expected
    assert not model.training


def test_a_mutated_export_does_not_match_in_transformer_lens(run_dir, tmp_path):
    """Negative control through the real TransformerLens: the heads' W_Q swapped in the file."""
    _requires_tl()
    from circeff.empirical.lens import hooked_transformer

    out = export_transformer_lens(run_dir, 0, tmp_path / "tl")
    sd = torch.load(out / STATE_DICT_NAME, weights_only=True)
    sd["blocks.0.attn.W_Q"] = sd["blocks.0.attn.W_Q"].flip(0)
    torch.save(sd, out / STATE_DICT_NAME)
    with torch.no_grad():
        logits, cache = hooked_transformer(out).run_with_cache(input_tokens(TaskConfig("add", 13)))
    assert (logits[:, -1] - _reference_logits(run_dir, 0)[:, -1]).abs().max().item() > 1e-3
    assert (cache["blocks.0.attn.hook_pattern"] - _reference_pattern(run_dir, 0)).abs().max().item() > 1e-3


def test_bridge_layout_is_the_hooked_layout_rearranged(run_dir):
    """Without TransformerLens: the bridge state dict computes the same per-head queries, keys,
    values and outputs as nn.Linear layers (``y = x @ weight.T``)."""
    config, params = load_model(run_dir, 0)
    kwargs, sd = tl_config(config.model, config.task), tl_state_dict(params, config.model, config.task)
    br = bridge_state_dict(sd, kwargs)
    x = torch.randn(5, 16, generator=torch.Generator().manual_seed(0))
    for name in "QKV":
        flat = x @ br[f"blocks.0.attn.{name.lower()}.weight"].T                 # [5, (H dh)]
        per_head = torch.einsum("nd,hdk->nhk", x, sd[f"blocks.0.attn.W_{name}"])  # [5, H, dh]
        assert torch.allclose(flat.reshape(5, 2, 8), per_head, atol=1e-6)
    z = torch.randn(5, 2, 8, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(z.reshape(5, 16) @ br["blocks.0.attn.o.weight"].T,
                          torch.einsum("nhk,hkd->nd", z, sd["blocks.0.attn.W_O"]), atol=1e-6)
    for old, new in [("blocks.0.mlp.W_in", "blocks.0.mlp.in.weight"), ("blocks.0.mlp.W_out", "blocks.0.mlp.out.weight"),
                     ("unembed.W_U", "unembed.weight")]:
        assert torch.equal(br[new], sd[old].T)
    assert torch.equal(br["embed.weight"], sd["embed.W_E"]) and torch.equal(br["pos_embed.weight"], sd["pos_embed.W_pos"])
    assert len(br) == len(sd)


def test_bridge_layout_equals_transformer_lens_converter_and_loads(run_dir):
    """circeff's rearrangement is TransformerLens 4's ``convert_tl_checkpoint`` (where present),
    and a ``boot_native`` bridge (4.x, also 3.x) holding it computes circeff's logits."""
    _requires_tl()
    try:
        from transformer_lens.config import TransformerBridgeConfig
        from transformer_lens.model_bridge import TransformerBridge
    except ImportError:
        pytest.skip("this TransformerLens has no TransformerBridge")
    config, params = load_model(run_dir, 0)
    kwargs, sd = tl_config(config.model, config.task), tl_state_dict(params, config.model, config.task)
    ours = bridge_state_dict(sd, kwargs)
    cfg = TransformerBridgeConfig.from_dict(dict(kwargs))
    try:
        from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint
    except ImportError:
        assert tl_version()[0] < 4
    else:
        theirs = convert_tl_checkpoint(dict(sd), cfg)
        assert theirs.keys() == ours.keys()
        assert all(torch.equal(theirs[k], ours[k]) for k in ours)
    try:
        import transformer_lens.model_bridge.sources.native  # noqa: F401
    except ImportError:
        pass
    bridge = TransformerBridge.boot_native(cfg)
    bridge.load_state_dict(ours, strict=True)
    with torch.no_grad():
        got = bridge(input_tokens(config.task))
    assert (got - _reference_logits(run_dir, 0)).abs().max().item() <= TOL


_OTHER_MAJOR = {4: "transformer-lens==3.9.0"}  # installed major -> the other one to try
_NETWORK_SIGNS = ("No matching distribution", "Could not find a version", "NewConnectionError",
                  "Max retries exceeded", "Temporary failure in name resolution", "Network is unreachable",
                  "ConnectionError", "ProxyError", "Could not fetch URL", "ReadTimeoutError")


@pytest.mark.slow
def test_the_other_transformer_lens_major_in_a_throwaway_venv(tmp_path):
    """This file's tests on the other TransformerLens major (4.3.0 where 2.x/3.x is installed,
    3.9.0 where 4.x is), installed with ``--no-deps`` into a venv that sees this environment's
    packages (circeff included); none may be skipped. Skipped if pip cannot reach the index."""
    pytest.importorskip("transformer_lens", reason="needs TransformerLens's dependencies installed")
    installed = tl_version()[0]
    spec = _OTHER_MAJOR.get(installed, "transformer-lens==4.3.0")
    other_major = int(spec.split("==")[1].split(".")[0])
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--timeout", "30", spec],
                         capture_output=True, text=True)
    if pip.returncode != 0:
        if any(sign in pip.stdout + pip.stderr for sign in _NETWORK_SIGNS):
            pytest.skip(f"pip cannot install {spec} (no index reachable?): {pip.stderr.strip()[-300:]}")
        raise AssertionError(f"pip install {spec} failed:\n{pip.stdout}\n{pip.stderr}")
    report = tmp_path / "report.xml"
    env = dict(os.environ, CIRCEFF_EXPECT_TL_MAJOR=str(other_major))
    tests = Path(__file__).resolve()
    run_ = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
                           f"--junitxml={report}", str(tests)],
                          capture_output=True, text=True, env=env, cwd=tests.parents[2])
    assert run_.returncode == 0, run_.stdout[-4000:] + run_.stderr[-2000:]
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    assert int(suite.get("failures")) == int(suite.get("errors")) == int(suite.get("skipped")) == 0
    assert int(suite.get("tests")) >= 12, run_.stdout[-2000:]  # every test of this file but this one


def test_export_command_and_its_bad_input(run_dir, tmp_path, capsys):
    out = tmp_path / "tl"
    assert run(["export", str(run_dir), "--model", "1", "--to", "transformer-lens", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {CONFIG_NAME, STATE_DICT_NAME}
    sd = torch.load(out / STATE_DICT_NAME, weights_only=True)
    assert torch.equal(sd["blocks.0.attn.W_Q"], load_model(run_dir, 1)[1]["W_Q"])
    capsys.readouterr()
    for argv, flag in [([str(run_dir), str(tmp_path / "x"), "--model", "2"], "--model"),
                       ([str(run_dir), str(tmp_path / "x"), "--to", "onnx"], "--to"),
                       ([str(tmp_path), str(tmp_path / "x")], "RUN_DIR")]:
        assert run(["export", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {flag}:") and err.count("\n") == 1 and "Traceback" not in err
        if flag == "--to":
            assert "transformer-lens, hub" in err
    assert not (tmp_path / "x").exists()
