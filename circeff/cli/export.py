"""``circeff export RUN_DIR --model I --to FORMAT OUT``: one trained model for other tools.

Two formats (``--to``):

* ``transformer-lens`` (default): ``OUT/config.json`` (keyword arguments of TransformerLens's
  ``HookedTransformerConfig``) and ``OUT/state_dict.pt`` (a ``HookedTransformer`` state dict of
  plain tensors, readable with ``torch.load(path, weights_only=True)``). TransformerLens
  2.16 - 3.x load it as a ``HookedTransformer``, 4.x as a ``TransformerBridge``
  (:func:`circeff.empirical.lens.hooked_transformer` picks the route).
* ``hub``: a Hugging Face Hub model folder, written offline (nothing is uploaded):
  ``OUT/config.json`` (architecture, task, tokens, training, results), ``OUT/model.safetensors``
  (the weights, safetensors: no pickle) and ``OUT/README.md`` (a model card). Read it back with
  ``circeff.load_model(OUT)`` or, with huggingface_hub, ``HubTransformer.from_pretrained(OUT)``
  (:mod:`circeff.empirical.hub`).

Writing needs only torch (and safetensors, a dependency). Tokens: ``a``, ``b`` in 0..P-1, the
operation token P, ``=`` token P+1; the answer is read at the last position.
"""

from __future__ import annotations

from pathlib import Path

import typer

FORMATS = ("transformer-lens", "hub")


def export(
    run_dir: Path = typer.Argument(..., help="Run folder of circeff train (holds its checkpoint)."),
    out: Path = typer.Argument(..., help="Folder for the exported files."),
    model: int = typer.Option(0, "--model", help="Which model of the batch (0-based)."),
    to: str = typer.Option("transformer-lens", "--to", help=(
        "Target format: transformer-lens (config.json + state_dict.pt, a HookedTransformer "
        "state dict; TransformerLens 2.16+ incl. 4.x) or hub (config.json + model.safetensors + "
        "README.md model card, a Hugging Face Hub folder written offline).")),
) -> None:
    """Export one trained model: TransformerLens config + state dict (default), or a Hugging Face
    Hub folder (config.json, model.safetensors, README.md model card; nothing is uploaded)."""
    from circeff.errors import ConfigError

    if to not in FORMATS:
        raise ConfigError("--to", f"must be one of {', '.join(FORMATS)}", to)
    if to == "hub":
        from circeff.empirical.hub import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, export_hub

        target = export_hub(run_dir, model, out)
        files = (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME)
    else:
        from circeff.empirical.lens import CONFIG_NAME, STATE_DICT_NAME, export_transformer_lens

        target = export_transformer_lens(run_dir, model, out)
        files = (CONFIG_NAME, STATE_DICT_NAME)
    typer.echo(f"model {model} of {run_dir} -> {', '.join(str(target / f) for f in files)}")
