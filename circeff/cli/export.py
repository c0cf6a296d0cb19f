"""``circeff export RUN_DIR --model I --to transformer-lens OUT``: one trained model for other tools.

Writes ``OUT/config.json`` (keyword arguments of TransformerLens's ``HookedTransformerConfig``)
and ``OUT/state_dict.pt`` (a ``HookedTransformer`` state dict of plain tensors, readable with
``torch.load(path, weights_only=True)``). Writing needs only torch; loading into
TransformerLens needs the ``[lens]`` extra. Tokens: ``a``, ``b`` in 0..P-1, the operation
token P, ``=`` token P+1; the answer is read at the last position.
"""

from __future__ import annotations

from pathlib import Path

import typer

FORMATS = ("transformer-lens",)


def export(
    run_dir: Path = typer.Argument(..., help="Run folder of circeff train (holds its checkpoint)."),
    out: Path = typer.Argument(..., help="Folder for config.json and state_dict.pt."),
    model: int = typer.Option(0, "--model", help="Which model of the batch (0-based)."),
    to: str = typer.Option("transformer-lens", "--to", help="Target format: transformer-lens."),
) -> None:
    """Export one trained model (default: TransformerLens config + state dict)."""
    from circeff.errors import ConfigError

    if to not in FORMATS:
        raise ConfigError("--to", f"must be one of {', '.join(FORMATS)}", to)
    from circeff.empirical.lens import STATE_DICT_NAME, export_transformer_lens

    target = export_transformer_lens(run_dir, model, out)
    typer.echo(f"model {model} of {run_dir} -> {target / 'config.json'}, {target / STATE_DICT_NAME}")
