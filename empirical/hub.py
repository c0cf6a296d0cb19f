"""One trained model as a Hugging Face Hub folder, written and read offline.

``circeff export RUN --model I --to hub OUT`` (:func:`export_hub`) writes three files, the
layout of a Hub model repository (nothing is uploaded; push the folder yourself if you want):

* ``OUT/model.safetensors``: the weights of :class:`circeff.empirical.model.Transformer`
  (``W_E``, ``W_pos``, ``W_Q``, ... as in its state dict; safetensors, no pickle).
* ``OUT/config.json``: the architecture (``model``: d_model, n_heads, d_head, d_mlp), the task
  (``task``: name, p, random labels), the derived sizes and token ids, how it was trained and
  what it reached, and the TransformerLens configuration (``transformer_lens``).
* ``OUT/README.md``: a model card (YAML front matter, then the task, tokens, widths, training,
  results, how to load it and the paper's citation): :func:`model_card`.

Reading back: :func:`load_model` (also ``circeff.load_model``) returns the readable
``Transformer`` with the run's weights, so its logits are the run's. With ``huggingface_hub``
installed, :data:`HubTransformer` (a ``Transformer`` and a ``PyTorchModelHubMixin``) loads the
same folder with ``HubTransformer.from_pretrained(OUT)``: the mixin passes the ``model`` and
``task`` entries of config.json to its ``__init__`` and loads ``model.safetensors`` (strictly:
every weight must be in the file). A local folder is read without any network access.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from circeff.empirical.config import ModelConfig, TrainConfig
from circeff.empirical.model import WEIGHT_NAMES, Params, Transformer, model_params, param_norm
from circeff.empirical.tasks import TaskConfig, make_dataset, train_indices
from circeff.errors import ConfigError

__all__ = [
    "CARD_NAME",
    "CONFIG_NAME",
    "FORMAT",
    "HubTransformer",
    "WEIGHTS_NAME",
    "export_hub",
    "hub_config",
    "load_model",
    "model_card",
    "read_hub",
]

WEIGHTS_NAME = "model.safetensors"  # huggingface_hub.constants.SAFETENSORS_SINGLE_FILE
CONFIG_NAME = "config.json"         # huggingface_hub.constants.CONFIG_NAME
CARD_NAME = "README.md"
FORMAT = "circeff-hub-model"
FORMAT_VERSION = 1

PAPER_TITLE = "Explaining grokking through circuit efficiency"
PAPER_ARXIV = "2309.02390"
PAPER_URL = f"https://arxiv.org/abs/{PAPER_ARXIV}"
BIBTEX = """@article{varma2023explaining,
  title   = {Explaining grokking through circuit efficiency},
  author  = {Varma, Vikrant and Shah, Rohin and Kenton, Zachary and Kram{\\'a}r, J{\\'a}nos and Kumar, Ramana},
  journal = {arXiv preprint arXiv:2309.02390},
  year    = {2023}
}"""
TAGS = ("grokking", "mechanistic-interpretability", "modular-arithmetic", "circuit-efficiency",
        "transformer-lens", "pytorch", "safetensors", "pytorch_model_hub_mixin", "model_hub_mixin",
        f"arxiv:{PAPER_ARXIV}")
# The mixin's class arguments: the metadata of the card it writes on save_pretrained (only
# those huggingface_hub 0.23 knows; the paper is in the tags as arxiv:2309.02390).
_MIXIN_CARD = {"library_name": "circeff", "license": "mit",
               "tags": [t for t in TAGS if t not in ("pytorch_model_hub_mixin", "model_hub_mixin")]}


# ---- writing ------------------------------------------------------------------------------------
def _accuracy(model: Transformer, task: TaskConfig, train_size: int, data_seed: int) -> tuple[float, float]:
    """Train and test accuracy of the readable model (the tasks without a Fourier analysis)."""
    data = make_dataset(task)
    with torch.no_grad():
        pred = model(torch.from_numpy(data.tokens().copy()))[:, -1].argmax(-1).numpy()
    correct = pred == data.labels
    mask = np.zeros(len(correct), dtype=bool)
    mask[train_indices(len(correct), train_size, data_seed)] = True
    test = float(correct[~mask].mean()) if (~mask).any() else float("nan")
    return float(correct[mask].mean()), test


def _results(config: TrainConfig, params: Params, step: int, k: int, model: Transformer) -> dict[str, Any]:
    """Final accuracies, and for modular addition the trig share and key frequencies."""
    from circeff.empirical.circuits import FOURIER_TASKS, analyse_params

    if config.task.name in FOURIER_TASKS:
        (c,) = analyse_params(config, params, step, models=[k])
        return {"train_acc": c.train_acc, "test_acc": c.test_acc, "trig_share": c.trig_share,
                "key_frequencies": list(c.key_frequencies), "param_norm": c.param_norm}
    run = config.runs[k]
    train_acc, test_acc = _accuracy(model, config.task, run.train_size, run.data_seed)
    return {"train_acc": train_acc, "test_acc": test_acc, "trig_share": None, "key_frequencies": None,
            "param_norm": float(param_norm(params)[k])}


def hub_config(config: TrainConfig, model: int, step: int, results: dict[str, Any]) -> dict[str, Any]:
    """config.json of model ``model`` of a run: its ``model`` and ``task`` entries are the
    ``HubTransformer`` keyword arguments, the rest describes it."""
    from importlib.metadata import PackageNotFoundError, version

    from circeff.empirical.lens import tl_config

    try:  # the installed distribution's version (circeff itself is the app layer above this one)
        __version__ = version("circuit-efficiency")
    except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        __version__ = "unknown"

    task, run = config.task, config.runs[model]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": {"d_model": config.model.d_model, "n_heads": config.model.n_heads,
                  "d_head": config.model.d_head, "d_mlp": config.model.d_mlp},
        "task": {"name": task.name, "p": task.p, "random_labels": task.random_labels,
                 "label_seed": task.label_seed},
        "architecture": {"n_layers": 1, "d_vocab": task.d_vocab, "d_vocab_out": task.d_vocab_out,
                         "n_ctx": task.n_ctx, "act_fn": "relu", "normalization": None, "biases": False,
                         "weights": list(WEIGHT_NAMES)},
        "tokens": {"elements": [0, task.p - 1], "op": task.op_token, "eq": task.eq_token,
                   "sequence": "a op b =", "answer_position": task.n_ctx - 1},
        "training": {
            "model_index": model, "seed": run.seed, "data_seed": run.data_seed,
            "train_size": run.train_size, "n_examples": task.n_examples,
            "train_fraction": run.train_size / task.n_examples,
            "optimizer": "AdamW", "full_batch": True, "lr": config.lr, "weight_decay": run.weight_decay,
            "betas": [config.beta1, config.beta2], "eps": config.eps,
            "steps": config.steps, "step": step,
            "init_from": config.init_from,
            "init_index": (model if run.init_index is None else run.init_index) if config.init_from else None,
        },
        "results": results,
        "transformer_lens": tl_config(config.model, task),
        "circeff_version": __version__,
    }


def _fmt(x: float | None, digits: int = 4) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}g}"


def _yaml_list(items: list[str]) -> str:
    return "".join(f"\n- {json.dumps(t)}" for t in items)


def model_card(cfg: dict[str, Any]) -> str:
    """README.md of a hub folder from its config.json (:func:`hub_config`)."""
    from circeff.empirical.tasks import TASKS

    m, t, tr, r = cfg["model"], cfg["task"], cfg["training"], cfg["results"]
    arch = cfg["architecture"]
    p = t["p"]
    formula = TASKS[t["name"]].formula
    labels = (f"random labels (seed {t['label_seed']}): every label, train and test, replaced by a "
              "uniform draw (a memorisation-only network; test accuracy is chance, 1/P)"
              if t["random_labels"] else f"`c = {formula}`")
    tags = list(TAGS) + (["permutation-group"] if t["name"] == "perm" else [])
    if t["name"] == "add":
        circuits = (f"| trig share | {_fmt(r['trig_share'])} |\n"
                    f"| key frequencies | {', '.join(str(k) for k in r['key_frequencies']) or 'none'} |\n")
        circuit_note = ("The **trig share** is the fraction of the squared (label-centred) logit norm in "
                        "the Fourier (trigonometric) subspace of `a + b - c` (the paper's Appendix B; "
                        "above 0.95 for a network that computes the answer by the generalising circuit). "
                        "The **key frequencies** `k` (of `cos(2 pi k x / P)`, `sin(2 pi k x / P)`) hold "
                        "90% of that trigonometric norm, largest first.")
    else:
        circuits = "| trig share, key frequencies | n/a (defined for modular addition only) |\n"
        circuit_note = ""
    name = f"circeff {t['name']} P={p}, D={tr['train_size']}, model {tr['model_index']}"
    start = (f"initialisation seed {tr['seed']}" if not tr.get("init_from") else
             f"started from model {tr['init_index']} of the checkpoint `{tr['init_from']}`")
    return f"""---
library_name: circeff
license: mit
tags:{_yaml_list(tags)}
metrics:
- accuracy
---

# {name}

A 1-layer transformer trained on **{t['name']}** (P = {p}) with circeff {cfg['circeff_version']}
(the Python package `circuit-efficiency`), the software reproduction of *{PAPER_TITLE}*
(Varma et al., 2023, [arXiv:{PAPER_ARXIV}]({PAPER_URL})).

## Task

Pairs `(a, b)` of `{{0, ..., {p - 1}}}`; the label is {labels}. There are {tr['n_examples']} examples;
this model was trained on **D = {tr['train_size']}** of them (training fraction
{tr['train_fraction']:.4g}, the first D of a permutation drawn with data seed {tr['data_seed']}); the
rest are its test set.

## Tokens

`a` and `b` are the tokens `0 .. {p - 1}`, the operation token is `{cfg['tokens']['op']}` (P) and `=` is
`{cfg['tokens']['eq']}` (P + 1). A sequence is `a op b =` ({arch['n_ctx']} tokens, no BOS), and the
answer is read at the last position (index {cfg['tokens']['answer_position']}) as logits over the P
answers `0 .. {p - 1}`.

## Model

| | |
|---|---|
| layers | 1 (attention + ReLU MLP, no LayerNorm, no biases) |
| d_model | {m['d_model']} |
| heads | {m['n_heads']} |
| d_head | {m['d_head']} |
| d_mlp | {m['d_mlp']} |
| n_ctx | {arch['n_ctx']} |
| vocabulary | {arch['d_vocab']} in (P elements, op, =), {arch['d_vocab_out']} out |

The weights (`{WEIGHTS_NAME}`, safetensors) have TransformerLens's names and shapes
(`W_E [d_vocab, d_model]`, `W_Q [heads, d_model, d_head]`, ..., `W_U [d_model, d_vocab_out]`).

## Training

Full-batch AdamW: learning rate {tr['lr']:g}, weight decay {tr['weight_decay']:g}, betas
({tr['betas'][0]:g}, {tr['betas'][1]:g}), eps {tr['eps']:g}, {tr['steps']} steps (these weights: step
{tr['step']}); {start}; model {tr['model_index']} of its training batch.

## Results (these weights)

| | |
|---|---|
| train accuracy | {_fmt(r['train_acc'])} |
| test accuracy | {_fmt(r['test_acc'])} |
{circuits}
{circuit_note}

## Use

```python
import circeff
from circeff.empirical.lens import input_tokens

model = circeff.load_model("THIS_FOLDER")   # circeff.empirical.model.Transformer
tokens = input_tokens(model.task)           # all {p * p} sequences a op b =, [N, 4]
logits = model(tokens)                      # [N, 4, {p}]; the answer's logits are logits[:, -1]
```

With `huggingface_hub` installed, `circeff.empirical.hub.HubTransformer.from_pretrained("THIS_FOLDER")`
loads the same weights (`PyTorchModelHubMixin`); with TransformerLens,
`circeff.empirical.lens.hooked_transformer("THIS_FOLDER")` gives a hooked model. The folder was
written by `circeff export RUN --model {tr['model_index']} --to hub OUT`. The license above is
circeff's (MIT); change it if you publish these weights under another.

## Citation

```bibtex
{BIBTEX}
```
"""


def export_hub(run_dir: str | Path, model: int, out: str | Path) -> Path:
    """Write ``out/config.json``, ``out/model.safetensors`` and ``out/README.md`` for model
    ``model`` of a run folder (its final checkpoint). Needs torch and safetensors only."""
    from safetensors.torch import save as safetensors_bytes

    from circeff.empirical.circuits import load_run
    from circeff.io import atomic_write_bytes, atomic_write_text, ensure_dir, write_json

    config, params, step = load_run(run_dir)
    if isinstance(model, bool) or not 0 <= model < config.n_models:
        raise ConfigError("model", f"must be in [0, {config.n_models - 1}] (the run holds "
                          f"{config.n_models} model(s))", model)
    weights = {n: t.detach().to("cpu", torch.float32).contiguous().clone()
               for n, t in model_params(params, model).items()}
    readable = Transformer.from_params(config.model, config.task, weights).eval()
    cfg = hub_config(config, model, step, _results(config, params, step, model, readable))
    target = ensure_dir(out)
    atomic_write_bytes(target / WEIGHTS_NAME, safetensors_bytes(weights, metadata={"format": "pt"}))
    write_json(target / CONFIG_NAME, cfg)
    atomic_write_text(target / CARD_NAME, model_card(cfg))
    return target


# ---- reading ------------------------------------------------------------------------------------
def _configs(model: Any, task: Any) -> tuple[ModelConfig, TaskConfig]:
    mc = model if isinstance(model, ModelConfig) else ModelConfig(**model)
    tc = task if isinstance(task, TaskConfig) else TaskConfig(**task)
    return mc, tc


def read_hub(folder: str | Path) -> tuple[ModelConfig, TaskConfig, Params]:
    """``(model config, task, weights)`` of a hub folder written by :func:`export_hub` (or by
    ``HubTransformer.save_pretrained``)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from circeff.io import read_json

    path = Path(folder)
    if not (path / WEIGHTS_NAME).is_file() or not (path / CONFIG_NAME).is_file():
        raise ConfigError("path", f"must be a folder holding {CONFIG_NAME} and {WEIGHTS_NAME} "
                          "(from circeff export --to hub)", str(path))
    cfg = read_json(path / CONFIG_NAME)
    # export_hub's config names its format; HubTransformer.save_pretrained's holds only the
    # mixin's init arguments (model, task)
    ours = isinstance(cfg, dict) and (cfg.get("format") == FORMAT or (
        "format" not in cfg and isinstance(cfg.get("model"), dict) and isinstance(cfg.get("task"), dict)))
    if not ours:
        raise ConfigError("path", f"{CONFIG_NAME} is not a circeff hub config (format {FORMAT!r})", str(path))
    model_cfg, task = _configs(cfg["model"], cfg["task"])
    try:
        tensors = load_file(path / WEIGHTS_NAME, device="cpu")
    except SafetensorError as exc:
        raise ConfigError("path", f"{WEIGHTS_NAME} cannot be read ({exc})", str(path)) from None
    if set(tensors) != set(WEIGHT_NAMES):
        raise ConfigError("path", f"{WEIGHTS_NAME} must hold exactly {', '.join(WEIGHT_NAMES)}",
                          ", ".join(sorted(tensors)))
    return model_cfg, task, tensors


def load_model(path: str | Path, model: int = 0) -> Transformer:
    """The readable :class:`~circeff.empirical.model.Transformer` (eval mode) of a hub folder
    (:func:`export_hub`), or of model ``model`` of a run folder."""
    if (Path(path) / WEIGHTS_NAME).is_file():
        model_cfg, task, params = read_hub(path)
        out = Transformer(model_cfg, task)
        out.load_state_dict(params, strict=True)
        return out.eval()
    from circeff.empirical.lens import load_model as load_run_model

    config, params = load_run_model(path, model)
    return Transformer.from_params(config.model, config.task, params).eval()


# ---- huggingface_hub --------------------------------------------------------------------------
_hub_class: type | None = None


def _make_hub_transformer() -> type:
    from huggingface_hub import PyTorchModelHubMixin

    card = {**_MIXIN_CARD, "tags": list(_MIXIN_CARD["tags"])}  # the mixin appends to the list

    class HubTransformer(Transformer, PyTorchModelHubMixin, **card):
        """circeff's readable ``Transformer`` with ``PyTorchModelHubMixin``:
        ``HubTransformer.from_pretrained(folder)`` reads a folder of :func:`export_hub`.

        ``model`` and ``task`` are config.json's entries of those names (dicts, or a
        ``ModelConfig`` and a ``TaskConfig``).
        """

        def __init__(self, model: Any, task: Any) -> None:
            model_cfg, task_cfg = _configs(model, task)
            super().__init__(model_cfg, task_cfg)

        @classmethod
        def _from_pretrained(cls, *, strict: bool = True, **kwargs: Any):  # noqa: ANN206
            # The mixin's default is strict=False, which would leave a weight missing from the
            # file at its random initial value without a word; eval mode as in recent versions.
            return super()._from_pretrained(strict=strict, **kwargs).eval()

    HubTransformer.__module__ = __name__
    HubTransformer.__qualname__ = "HubTransformer"
    return HubTransformer


def __getattr__(name: str) -> Any:
    """``HubTransformer`` is built on first use, so that importing this module does not import
    huggingface_hub (an optional dependency)."""
    global _hub_class
    if name == "HubTransformer":
        if _hub_class is None:
            try:
                _hub_class = _make_hub_transformer()
            except ImportError:
                raise ConfigError("huggingface_hub", "is not installed: pip install "
                                  "'circuit-efficiency[hub]'") from None
        return _hub_class
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
