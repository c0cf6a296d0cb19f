"""``circeff export --to hub``: a Hugging Face Hub folder written offline, read back exactly.

The folder (config.json, model.safetensors, README.md) must give back the run's model:
``circeff.load_model(OUT)`` computes the run's logits on all P^2 inputs exactly, and so does
huggingface_hub's ``PyTorchModelHubMixin.from_pretrained(OUT)`` with the network shut off.
The weights are safetensors (no pickle), and the model card states the task, tokens, widths,
training, results and the paper's citation. Mutated or incomplete files must be refused or
give other logits, so the comparisons can fail.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import pytest
import torch

import circeff
from circeff.cli.main import run
from circeff.empirical.circuits import analyse_run
from circeff.empirical.config import ModelConfig, RunSpec, TrainConfig
from circeff.empirical.hub import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, export_hub, read_hub
from circeff.empirical.lens import input_tokens, load_model
from circeff.empirical.model import WEIGHT_NAMES, Transformer
from circeff.empirical.tasks import TaskConfig
from circeff.empirical.train import train
from circeff.errors import ConfigError

SMALL = ModelConfig(d_model=16, n_heads=2, d_head=8, d_mlp=32)
TASK = TaskConfig("add", 13)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Two models of modular addition at P = 13, 30 steps (weights no longer at initialisation)."""
    out = tmp_path_factory.mktemp("hub") / "run"
    cfg = TrainConfig(task=TASK, runs=(RunSpec(seed=0, train_size=80), RunSpec(seed=1, weight_decay=0.5, train_size=90)),
                      model=SMALL, steps=30, log_every=10, checkpoint_every=30, lr=3e-3)
    train(cfg, out, progress=False)
    return out


@pytest.fixture(scope="module")
def hub_dir(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "hub"
    assert run(["export", str(run_dir), "--model", "1", "--to", "hub", str(out)]) == 0
    return out


def _run_logits(run_dir, model: int) -> torch.Tensor:
    config, params = load_model(run_dir, model)
    with torch.no_grad():
        return Transformer.from_params(config.model, config.task, params)(input_tokens(config.task))


def _final_metrics(run_dir, model: int) -> dict[str, str]:
    import csv

    rows = [r for r in csv.DictReader(open(run_dir / "metrics.csv")) if int(r["model"]) == model]
    return rows[-1]


def test_the_folder_holds_config_safetensors_and_card_only(hub_dir):
    assert {p.name for p in hub_dir.iterdir()} == {CONFIG_NAME, WEIGHTS_NAME, CARD_NAME}
    raw = (hub_dir / WEIGHTS_NAME).read_bytes()
    header_len = int.from_bytes(raw[:8], "little")  # safetensors: u64 header size, then JSON
    header = json.loads(raw[8:8 + header_len])
    assert set(header) - {"__metadata__"} == set(WEIGHT_NAMES)
    assert header["__metadata__"] == {"format": "pt"}
    assert all(header[n]["dtype"] == "F32" for n in WEIGHT_NAMES)
    assert not raw.startswith(b"PK") and b"\x80\x02" not in raw[:2]  # no torch zip, no pickle


def test_load_model_gives_the_runs_logits_exactly(run_dir, hub_dir):
    model = circeff.load_model(hub_dir)
    assert type(model) is Transformer and not model.training
    with torch.no_grad():
        got = model(input_tokens(TASK))
    want = _run_logits(run_dir, 1)
    assert got.shape == want.shape == (169, 4, 13)
    assert torch.equal(got, want)
    assert not torch.equal(got, _run_logits(run_dir, 0))  # the other model of the batch differs
    with torch.no_grad():  # a run folder with --model works as well
        assert torch.equal(circeff.load_model(run_dir, 1)(input_tokens(TASK)), want)


def test_config_json_describes_the_model(run_dir, hub_dir):
    cfg = json.loads((hub_dir / CONFIG_NAME).read_text())
    assert cfg["model"] == {"d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32}
    assert cfg["task"] == {"name": "add", "p": 13, "random_labels": False, "label_seed": 0}
    assert cfg["tokens"]["op"] == 13 and cfg["tokens"]["eq"] == 14 and cfg["tokens"]["answer_position"] == 3
    tr = cfg["training"]
    assert (tr["model_index"], tr["seed"], tr["train_size"], tr["weight_decay"], tr["lr"]) == (1, 1, 90, 0.5, 3e-3)
    assert tr["betas"] == [0.9, 0.98] and tr["steps"] == tr["step"] == 30
    assert tr["train_fraction"] == pytest.approx(90 / 169)
    (c,) = analyse_run(run_dir, [1])
    r = cfg["results"]
    assert (r["train_acc"], r["test_acc"], r["trig_share"]) == (c.train_acc, c.test_acc, c.trig_share)
    assert r["key_frequencies"] == list(c.key_frequencies)
    m = _final_metrics(run_dir, 1)  # the engine's own accuracies at the last step
    assert r["train_acc"] == pytest.approx(float(m["train_acc"])) and r["test_acc"] == pytest.approx(float(m["test_acc"]))
    assert cfg["circeff_version"] == circeff.__version__


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    block = text.split("---\n", 2)[1]
    try:
        import yaml
    except ImportError:  # pragma: no cover - pyyaml comes with huggingface_hub and transformers
        pytest.skip("pyyaml is not installed")
    return yaml.safe_load(block)


def test_model_card_states_what_the_model_is(run_dir, hub_dir):
    card = (hub_dir / CARD_NAME).read_text()
    meta = _front_matter(card)
    assert meta["library_name"] == "circeff" and meta["license"] == "mit"
    assert {"grokking", "mechanistic-interpretability", "modular-arithmetic", "arxiv:2309.02390"} <= set(meta["tags"])
    cfg = json.loads((hub_dir / CONFIG_NAME).read_text())
    r = cfg["results"]
    body = " ".join(card.split("---\n", 2)[2].split())  # one line: sentences may wrap anywhere
    for phrase in [
        "**add** (P = 13)", "`c = a + b mod P`", "**D = 90**", "training fraction 0.5325", "169 examples",
        "the operation token is `13` (P) and `=` is `14` (P + 1)", "A sequence is `a op b =`",
        "answer is read at the last position",
        "| d_model | 16 |", "| heads | 2 |", "| d_head | 8 |", "| d_mlp | 32 |", "| n_ctx | 4 |",
        "| vocabulary | 15 in (P elements, op, =), 13 out |",
        "Full-batch AdamW: learning rate 0.003, weight decay 0.5, betas (0.9, 0.98)", "30 steps",
        f"| train accuracy | {r['train_acc']:.4g} |", f"| test accuracy | {r['test_acc']:.4g} |",
        f"| trig share | {r['trig_share']:.4g} |",
        f"| key frequencies | {', '.join(str(k) for k in r['key_frequencies'])} |",
        f"circeff {circeff.__version__}",
        "Explaining grokking through circuit efficiency", "arXiv:2309.02390",
    ]:
        assert phrase in body, phrase
    bibtex = re.search(r"```bibtex\n(.*?)```", card, re.S).group(1)
    for part in ["Varma, Vikrant", "Shah, Rohin", "Kenton, Zachary", "Kram{\\'a}r, J{\\'a}nos", "Kumar, Ramana",
                 "arXiv:2309.02390", "year    = {2023}", "title   = {Explaining grokking through circuit efficiency}"]:
        assert part in bibtex, part


def test_card_of_a_task_without_fourier_analysis(tmp_path):
    """Other tasks: accuracies from the exported model itself, trig share marked n/a."""
    run_dir = tmp_path / "run"
    task = TaskConfig("sub", 7)
    train(TrainConfig(task=task, runs=(RunSpec(seed=0, train_size=30),), model=SMALL, steps=5, log_every=5,
                      checkpoint_every=5, lr=3e-3), run_dir, progress=False)
    out = export_hub(run_dir, 0, tmp_path / "hub")
    cfg = json.loads((out / CONFIG_NAME).read_text())
    m = _final_metrics(run_dir, 0)
    assert cfg["results"]["train_acc"] == pytest.approx(float(m["train_acc"]))
    assert cfg["results"]["test_acc"] == pytest.approx(float(m["test_acc"]))
    assert cfg["results"]["trig_share"] is None
    card = (out / CARD_NAME).read_text()
    assert "| trig share, key frequencies | n/a (defined for modular addition only) |" in card
    assert "`c = a - b mod P`" in card and "**sub** (P = 7)" in card


@pytest.fixture()
def no_network(monkeypatch):
    """HF_HUB_OFFLINE=1, and any socket connection fails the test."""
    pytest.importorskip("huggingface_hub")
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # huggingface_hub reads it at import

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_from_pretrained_loads_the_same_weights_offline(run_dir, hub_dir, no_network):
    from huggingface_hub import PyTorchModelHubMixin

    from circeff.empirical.hub import HubTransformer

    model = HubTransformer.from_pretrained(hub_dir)
    assert isinstance(model, Transformer) and isinstance(model, PyTorchModelHubMixin) and not model.training
    assert model.cfg == SMALL and model.task == TASK
    with torch.no_grad():
        assert torch.equal(model(input_tokens(TASK)), _run_logits(run_dir, 1))
    assert model.state_dict().keys() == set(WEIGHT_NAMES)


def test_save_pretrained_writes_a_folder_circeff_reads(run_dir, hub_dir, tmp_path, no_network):
    """from_pretrained, then the mixin's own save_pretrained: circeff.load_model reads it back."""
    from circeff.empirical.hub import HubTransformer

    HubTransformer.from_pretrained(hub_dir).save_pretrained(tmp_path / "again")
    assert json.loads((tmp_path / "again" / CONFIG_NAME).read_text()) == {
        "model": {"d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32},
        "task": {"name": "add", "p": 13, "random_labels": False, "label_seed": 0}}
    with torch.no_grad():
        assert torch.equal(circeff.load_model(tmp_path / "again")(input_tokens(TASK)), _run_logits(run_dir, 1))


def test_from_pretrained_refuses_a_file_missing_a_weight(hub_dir, tmp_path, no_network):
    """The mixin loads non-strictly by default; HubTransformer loads strictly, and load_model too."""
    from safetensors.torch import load_file, save_file

    from circeff.empirical.hub import HubTransformer

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / CONFIG_NAME).write_text((hub_dir / CONFIG_NAME).read_text())
    tensors = load_file(hub_dir / WEIGHTS_NAME)
    del tensors["W_O"]
    save_file(tensors, bad / WEIGHTS_NAME, metadata={"format": "pt"})
    with pytest.raises(RuntimeError, match="W_O"):
        HubTransformer.from_pretrained(bad)
    with pytest.raises(ConfigError, match="must hold exactly"):
        circeff.load_model(bad)


def test_a_mutated_file_gives_other_logits(run_dir, hub_dir, tmp_path):
    """Negative control: the heads' W_Q swapped in model.safetensors."""
    from safetensors.torch import load_file, save_file

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / CONFIG_NAME).write_text((hub_dir / CONFIG_NAME).read_text())
    tensors = load_file(hub_dir / WEIGHTS_NAME)
    tensors["W_Q"] = tensors["W_Q"].flip(0).contiguous()
    save_file(tensors, bad / WEIGHTS_NAME, metadata={"format": "pt"})
    with torch.no_grad():
        got = circeff.load_model(bad)(input_tokens(TASK))
    assert (got[:, -1] - _run_logits(run_dir, 1)[:, -1]).abs().max().item() > 1e-3


def test_read_hub_refuses_other_folders(run_dir, tmp_path):
    with pytest.raises(ConfigError, match="must be a folder holding"):
        read_hub(run_dir)
    (tmp_path / CONFIG_NAME).write_text("{}")
    (tmp_path / WEIGHTS_NAME).write_bytes(b"")
    with pytest.raises(ConfigError, match="not a circeff hub config"):
        read_hub(tmp_path)


def test_import_circeff_stays_cheap_and_load_model_is_lazy():
    code = ("import sys, circeff; assert 'torch' not in sys.modules, 'import circeff imported torch'; "
            "f = circeff.load_model; assert 'torch' in sys.modules; print(f.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "circeff.empirical.hub"
    with pytest.raises(AttributeError):
        circeff.no_such_name  # noqa: B018


def test_export_help_names_both_formats(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert run(["export", "--help"]) == 0
    out = capsys.readouterr().out
    option = " ".join(out[out.index("--to"):out.index("--help")].replace("│", " ").split())  # the --to row
    assert "Target format: transformer-lens (" in option and " or hub (" in option
    assert "model.safetensors" in option and "README.md model card" in option
    assert "Hugging Face Hub folder" in " ".join(out[:out.index("--to")].split())  # the docstring


def test_export_hub_bad_input_is_one_line(run_dir, tmp_path, capsys):
    for argv, flag in [([str(run_dir), str(tmp_path / "x"), "--model", "2", "--to", "hub"], "--model"),
                       ([str(tmp_path), str(tmp_path / "x"), "--to", "hub"], "RUN_DIR")]:
        assert run(["export", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {flag}:") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()
