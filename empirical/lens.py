"""Across to TransformerLens: one trained model as a hooked TransformerLens model.

circeff's model already is TransformerLens's 1-layer architecture with no LayerNorm and ReLU;
its weights carry TransformerLens's names and shapes. What TransformerLens adds are biases
(zero here: circeff's model has none) and its configuration. The tokens are circeff's:
``a`` and ``b`` are ``0..P-1``, the operation token is ``P``, ``=`` is ``P + 1``, a sequence is
``a op b =`` and the answer is read at the last position (logits over the ``P`` answers).

The export (:func:`export_transformer_lens`) is TransformerLens's long-standing checkpoint
format: ``HookedTransformerConfig`` keyword arguments and a ``HookedTransformer`` state dict.
Every TransformerLens from 2.16 reads it: 2.16 - 3.x as a ``HookedTransformer``, 4.x (which
removed ``HookedTransformer``) through ``TransformerBridge.boot_native`` after converting the
state dict to the bridge's layout (:func:`bridge_state_dict`). :func:`hooked_transformer`
takes the route of the installed version.

Everything here works from parameter dicts (:func:`circeff.empirical.checkpoint.load_params`,
:func:`circeff.empirical.model.model_params`), so it does not depend on how the batched
engine computes. TransformerLens itself (the ``[lens]`` extra) is needed only by
:func:`hooked_transformer`; the exported files need nothing but torch to write or read.
"""

from __future__ import annotations

import itertools
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
    "bridge_state_dict",
    "export_transformer_lens",
    "hooked_transformer",
    "input_tokens",
    "load_model",
    "tl_config",
    "tl_source",
    "tl_state_dict",
    "tl_version",
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
    """Keyword arguments of ``HookedTransformerConfig`` (TransformerLens 2.16 - 3.x) and of
    ``TransformerBridgeConfig.from_dict`` (4.x) for circeff's architecture on ``task``."""
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
    TransformerLens 2.16 - 3.x load it into a ``HookedTransformer`` as it is; 4.x after
    :func:`bridge_state_dict` (or its own ``convert_tl_checkpoint``): :func:`hooked_transformer`.
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


def tl_version() -> tuple[int, ...] | None:
    """The installed TransformerLens version as integers (``(4, 3, 0)``), or None if absent."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = version("transformer-lens")
    except PackageNotFoundError:
        return None
    parts = []
    for piece in text.split("."):
        digits = "".join(itertools.takewhile(str.isdigit, piece))
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or None


def bridge_state_dict(sd: dict[str, Tensor], kwargs: dict[str, Any]) -> dict[str, Tensor]:
    """A ``HookedTransformer`` state dict (:func:`tl_state_dict`) in TransformerLens 4's
    ``TransformerBridge.boot_native`` layout (``nn.Linear`` weights, heads flattened).

    The same rearrangement as TransformerLens 4's ``convert_tl_checkpoint``, written out so that
    it is readable and available where that function is not (TransformerLens 3):

    - ``attn.W_Q``, ``W_K``, ``W_V`` ``[H, d_model, d_head]`` -> ``attn.q/k/v.weight``
      ``[(H d_head), d_model]``; ``attn.b_Q``, ``b_K``, ``b_V`` ``[H, d_head]`` ->
      ``attn.q/k/v.bias`` ``[(H d_head)]``
    - ``attn.W_O`` ``[H, d_head, d_model]`` -> ``attn.o.weight`` ``[d_model, (H d_head)]``;
      ``attn.b_O`` -> ``attn.o.bias``
    - ``mlp.W_in``, ``mlp.W_out``, ``unembed.W_U`` (used as ``x @ W``) -> ``mlp.in.weight``,
      ``mlp.out.weight``, ``unembed.weight`` (transposed); ``b_in``, ``b_out``, ``b_U`` ->
      ``in.bias``, ``out.bias``, ``unembed.bias``
    - ``embed.W_E``, ``pos_embed.W_pos`` -> ``embed.weight``, ``pos_embed.weight``
    """
    h, dh, dm = kwargs["n_heads"], kwargs["d_head"], kwargs["d_model"]
    out: dict[str, Tensor] = {}
    for key, t in sd.items():
        if key.endswith((".mask", ".IGNORE")):
            continue
        prefix, _, name = key.rpartition(".")
        if name in ("W_Q", "W_K", "W_V"):
            _expect_shape(key, t, (h, dm, dh))
            new, t = name[-1].lower() + ".weight", t.permute(0, 2, 1).reshape(h * dh, dm)
        elif name in ("b_Q", "b_K", "b_V"):
            _expect_shape(key, t, (h, dh))
            new, t = name[-1].lower() + ".bias", t.reshape(h * dh)
        elif name == "W_O":
            _expect_shape(key, t, (h, dh, dm))
            new, t = "o.weight", t.reshape(h * dh, dm).T
        elif name == "b_O":
            new = "o.bias"
        elif name in ("W_in", "W_out", "W_U"):
            new, t = ("weight" if name == "W_U" else name[2:] + ".weight"), t.T
        elif name in ("b_in", "b_out", "b_U"):
            new = "bias" if name == "b_U" else name[2:] + ".bias"
        elif name in ("W_E", "W_pos"):
            new = "weight"
        else:
            raise ConfigError("state_dict", "holds a key the TransformerBridge layout has no place for", key)
        out[f"{prefix}.{new}"] = t.contiguous().clone()
    return out


def _expect_shape(key: str, t: Tensor, shape: tuple[int, ...]) -> None:
    if tuple(t.shape) != shape:
        raise ConfigError("state_dict", f"{key} has shape {tuple(t.shape)}, the config says {shape}",
                          key)


def tl_source(source: str | Path | tuple[TrainConfig, Params], model: int = 0
              ) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``(HookedTransformerConfig kwargs, HookedTransformer state dict)`` of ``source``: a run
    folder (its model ``model``), an export folder of :func:`export_transformer_lens`, a hub
    folder of :func:`circeff.empirical.hub.export_hub`, or a ``(config, one model's weights)``
    pair. Needs no TransformerLens."""
    if isinstance(source, tuple):
        config, params = source
        return tl_config(config.model, config.task), tl_state_dict(params, config.model, config.task)
    folder = Path(source)
    if (folder / STATE_DICT_NAME).is_file():
        from circeff.io import read_json

        sd = torch.load(folder / STATE_DICT_NAME, map_location="cpu", weights_only=True)
        return read_json(folder / CONFIG_NAME), sd
    from circeff.empirical.hub import WEIGHTS_NAME, read_hub

    if (folder / WEIGHTS_NAME).is_file():
        model_cfg, task, params = read_hub(folder)
        return tl_config(model_cfg, task), tl_state_dict(params, model_cfg, task)
    config, params = load_model(source, model)
    return tl_config(config.model, config.task), tl_state_dict(params, config.model, config.task)


def hooked_transformer(source: str | Path | tuple[TrainConfig, Params], model: int = 0):  # noqa: ANN201
    """A hooked TransformerLens model holding a trained model (needs the ``[lens]`` extra).

    ``source``: as :func:`tl_source` (a run folder with ``model``, an export folder, a hub
    folder, or a ``(config, weights)`` pair). What comes back depends on the installed
    TransformerLens:

    * 4.x: a ``TransformerBridge`` built offline by ``TransformerBridge.boot_native`` (TL's own
      model, no Hub and no ``transformers`` model), the export converted by
      :func:`bridge_state_dict` (TL's ``convert_tl_checkpoint`` where it is present) and
      loaded with ``strict=True``. Compatibility mode is not enabled: its default weight
      processing would centre the unembedding and change the logits.
    * 2.16 - 3.x: a ``HookedTransformer`` (4.0 removed it; 3.x's bridge exists but ignores edits
      made in ``hook_pattern``), loaded with ``strict=False`` (the export leaves out its
      mask buffers) and a check that every weight was taken.

    Both run ``run_with_cache``/``run_with_hooks`` with the same hook names
    (``blocks.0.attn.hook_pattern`` ``[N, H, q, s]``, ``blocks.0.attn.hook_z``
    ``[N, pos, H, d_head]``, ...) and compute circeff's logits exactly. One difference:
    TransformerLens 4.3's bridge fires ``blocks.0.attn.hook_attn_scores`` with the attention
    pattern, read-only (docs/lens.md).
    """
    version = tl_version()
    if version is None:
        raise ConfigError("transformer_lens", "is not installed: pip install 'circuit-efficiency[lens]'")
    kwargs, sd = tl_source(source, model)
    # TransformerLens's constructors draw initial weights (overwritten below) from torch's
    # global generator; keep the caller's random stream as it was.
    with torch.random.fork_rng(devices=[]):
        tl = _bridge(kwargs, sd) if version[0] >= 4 else _hooked(kwargs, sd)
    return tl.eval()


def _hooked(kwargs: dict[str, Any], sd: dict[str, Tensor]):  # noqa: ANN202
    """TransformerLens 2.16 - 3.x: a ``HookedTransformer``."""
    import warnings

    from transformer_lens import HookedTransformer, HookedTransformerConfig

    with warnings.catch_warnings():
        # 3.x announces HookedTransformer's removal in 4.0; 4.x takes the bridge route instead.
        warnings.filterwarnings("ignore", "HookedTransformer is deprecated", DeprecationWarning)
        tl = HookedTransformer(HookedTransformerConfig(**kwargs))
    missing, unexpected = tl.load_state_dict(sd, strict=False)
    weights_missing = [k for k in missing if not k.endswith((".mask", ".IGNORE"))]
    if weights_missing or unexpected:
        raise ConfigError("transformer_lens", "does not match this export (missing "
                          f"{weights_missing}, unexpected {unexpected})")
    return tl


def _bridge(kwargs: dict[str, Any], sd: dict[str, Tensor]):  # noqa: ANN202
    """TransformerLens 4.x: ``TransformerBridge.boot_native`` with the export's weights."""
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    try:  # 4.x attaches boot_native to TransformerBridge when this module is imported
        import transformer_lens.model_bridge.sources.native  # noqa: F401
    except ImportError:
        pass
    cfg = TransformerBridgeConfig.from_dict(dict(kwargs))
    dropped = sorted(k for k, v in kwargs.items() if getattr(cfg, k, object()) != v)
    if dropped:  # from_dict ignores fields it does not know
        raise ConfigError("transformer_lens", f"TransformerBridgeConfig did not take {dropped}")
    cfg.init_weights = False  # every weight is loaded below
    bridge = TransformerBridge.boot_native(cfg, device="cpu", dtype=torch.float32)
    try:
        from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint
    except ImportError:
        converted = bridge_state_dict(sd, kwargs)
    else:
        converted = convert_tl_checkpoint(dict(sd), bridge.cfg)
    result = bridge.load_state_dict(converted, strict=True)
    if getattr(result, "missing_keys", None) or getattr(result, "unexpected_keys", None):
        raise ConfigError("transformer_lens", f"does not match this export ({result})")
    return bridge
