"""``circeff presets``: every named setting, with the values it sets and its recorded cost."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

__all__ = ["presets"]

COLUMNS = ("experiment", "preset", "p", "d_model", "n_heads", "d_head", "d_mlp", "lr", "weight_decay", "steps",
           "seeds", "measured_s")


def presets(
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the table as JSON here."),
) -> None:
    """List every preset (experiment x scale, and circeff train's): P, model widths, lr, weight
    decay, steps, seeds, the measured wall time of the recorded run where there is one, and the
    measurements the settings rest on."""
    from rich.console import Console
    from rich.table import Table

    from circeff.cli.table import table as cli_table

    data = cli_table()  # generated from circeff.empirical.presets (no torch import here)
    rows = data["rows"]
    table = Table(*COLUMNS, title="circeff presets (measured_s: seconds in the recorded run on 2 CPU cores; "
                                  "- = not run here)")
    for r in rows:
        cells = [r[c] for c in COLUMNS]
        cells[-1] = "-" if r["measured_s"] is None else f"{r['measured_s']:.0f}"
        table.add_row(*(f"{c:g}" if isinstance(c, float) else str(c) for c in cells))
    console = Console(width=160)
    console.print(table)
    for line in data["recorded_runs"]:
        print(line)
    print(f"full scale: {data['full_estimate']} (`circeff reproduce --full --plan` recomputes it here)")
    measured = Table("about", "measurement", "what", "value", "date / machine",
                     title="measurements the settings rest on (circeff.empirical.presets.MEASUREMENTS)")
    for m in data["measurements"]:
        measured.add_row(*m)
    console.print(measured)
    if json_path is not None:
        from circeff.io import write_json

        write_json(json_path, rows)
