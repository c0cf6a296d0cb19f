"""Across to TransformerLens: one trained model as a ``HookedTransformer``.

circeff's model already is TransformerLens's 1-layer architecture with no LayerNorm and ReLU;
its weights carry TransformerLens's names and shapes. What TransformerLens adds are biases
(zero here: circeff's model has none) and its configuration. The tokens are circeff's:
``a`` and ``b`` are ``0..P-1``, the operation token is ``P``, ``=`` is ``P + 1``, a sequence is
``a op b =`` and the answer is read at the last position (logits over the ``P`` answers).

Everything here works from parameter dicts (:func:`circeff.empirical.checkpoint.load_params`,
:func:`circeff.empirical.model.model_params`), so it does not depend on how the batched
engine computes. TransformerLens itself (the ``[lens]`` extra) is needed only by
:func:`hooked_transformer`; the exported files need nothing but torch to write or read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from circeff.empirical.config import ModelConfig, TrainConfig
from circeff.empirical.model import Params, model_params
from circeff.empirical.tasks import TaskConfig, make_dataset
from circeff.errors import ConfigError

__all__ = [
    "CONFIG_NAME",
    "STATE_DICT_NAME",
    "export_transformer_lens",
    "hooked_transformer",
    "input_tokens",
    "load_model",
    "tl_config",
    "tl_state_dict",
]

CONFIG_NAME = "config.json"
STATE_DICT_NAME = "state_dict.pt"

# circeff weight name -> TransformerLens state-dict key (layer 0 of a 1-layer model)
_TL_NAMES = {
    "W_E": "embed.W_E",
    "W_pos": "pos_embed.W_pos",
    "W_Q": "blocks.0.attn.W_Q",
    "W_K": "blocks.0.attn.W_K",
    "W_V": "blocks.0.attn.W_V",
    "W_O": "blocks.0.attn.W_O",
    "W_in": "blocks.0.mlp.W_in",
    "W_out": "blocks.0.mlp.W_out",
    "W_U": "unembed.W_U",
}


def tl_config(model: ModelConfig, task: TaskConfig) -> dict[str, Any]:
    """Keyword arguments of ``HookedTransformerConfig`` for circeff's architecture on ``task``."""
    return {
        "n_layers": 1,
        "d_model": model.d_model,
        "n_heads": model.n_heads,
        "d_head": model.d_head,
        "d_mlp": model.d_mlp,
        "d_vocab": task.d_vocab,          # P elements, the operation token, '='
        "d_vocab_out": task.d_vocab_out,  # answers are elements
        "n_ctx": task.n_ctx,
        "act_fn": "relu",
        "normalization_type": None,
        "attn_only": False,
        "positional_embedding_type": "standard",
        "use_attn_scale": True,           # scores / sqrt(d_head), as circeff's model
        "default_prepend_bos": False,     # circeff's sequences have no BOS token
    }


def tl_state_dict(params: Params, model: ModelConfig, task: TaskConfig) -> dict[str, Tensor]:
    """One model's weights (no leading E) as a ``HookedTransformer`` state dict.

    Every parameter of TransformerLens's model is present: the weights, and its biases as
    zeros. Its buffers (the causal mask, the masking constant) are left out: they are not
    weights and their stored shape differs between TransformerLens versions; load with
    ``model.load_state_dict(sd, strict=False)``.
    """
    sd = {_TL_NAMES[n]: t.detach().to("cpu", torch.float32).contiguous().clone() for n, t in params.items()}
    h, dh, dm, dmlp = model.n_heads, model.d_head, model.d_model, model.d_mlp
    zeros = {
        "blocks.0.attn.b_Q": (h, dh), "blocks.0.attn.b_K": (h, dh), "blocks.0.attn.b_V": (h, dh),
        "blocks.0.attn.b_O": (dm,), "blocks.0.mlp.b_in": (dmlp,), "blocks.0.mlp.b_out": (dm,),
        "unembed.b_U": (task.d_vocab_out,),
    }
    sd |= {k: torch.zeros(shape) for k, shape in zeros.items()}
    return sd


def input_tokens(task: TaskConfig) -> Tensor:
    """``[n_examples, 4]`` int64 sequences ``a op b =`` of every input, in circeff's order."""
    return torch.from_numpy(make_dataset(task).tokens().copy())


def load_model(run_dir: str | Path, model: int = 0) -> tuple[TrainConfig, Params]:
    """``(config, weights of model ``model``)`` from a run folder's final checkpoint."""
    from circeff.empirical.circuits import load_run

    config, params, _ = load_run(run_dir)
    if isinstance(model, bool) or not 0 <= model < config.n_models:
        raise ConfigError("model", f"must be in [0, {config.n_models - 1}] (the run holds "
                          f"{config.n_models} model(s))", model)
    return config, {n: t.clone() for n, t in model_params(params, model).items()}


def export_transformer_lens(run_dir: str | Path, model: int, out: str | Path) -> Path:
    """Write ``out/config.json`` (HookedTransformerConfig kwargs) and ``out/state_dict.pt``.

    The state dict holds plain tensors only: ``torch.load(path, weights_only=True)`` reads it.
    """
    import io as _io

    from circeff.io import atomic_write_bytes, ensure_dir, write_json

    config, params = load_model(run_dir, model)
    target = ensure_dir(out)
    buf = _io.BytesIO()
    torch.save(tl_state_dict(params, config.model, config.task), buf)
    atomic_write_bytes(target / STATE_DICT_NAME, buf.getvalue())
    write_json(target / CONFIG_NAME, tl_config(config.model, config.task))
    return target


def hooked_transformer(source: str | Path | tuple[TrainConfig, Params], model: int = 0):  # noqa: ANN201
    """A ``transformer_lens.HookedTransformer`` holding a trained model (needs the [lens] extra).

    ``source`` is a run folder (its model ``model``), an export folder written by
    :func:`export_transformer_lens`, or a ``(config, weights of one model)`` pair.
    """
    try:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
    except ImportError:
        raise ConfigError("transformer_lens", "is not installed: pip install 'circuit-efficiency[lens]'") from None
    if isinstance(source, tuple):
        config, params = source
        kwargs, sd = tl_config(config.model, config.task), tl_state_dict(params, config.model, config.task)
    elif (Path(source) / STATE_DICT_NAME).is_file():
        from circeff.io import read_json

        kwargs = read_json(Path(source) / CONFIG_NAME)
        sd = torch.load(Path(source) / STATE_DICT_NAME, map_location="cpu", weights_only=True)
    else:
        config, params = load_model(source, model)
        kwargs, sd = tl_config(config.model, config.task), tl_state_dict(params, config.model, config.task)
    tl = HookedTransformer(HookedTransformerConfig(**kwargs))
    missing, unexpected = tl.load_state_dict(sd, strict=False)
    weights_missing = [k for k in missing if not k.endswith((".mask", ".IGNORE"))]
    if weights_missing or unexpected:
        raise ConfigError("transformer_lens", "does not match this export (missing "
                          f"{weights_missing}, unexpected {unexpected})")
    return tl.eval()
