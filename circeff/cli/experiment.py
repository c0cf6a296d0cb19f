"""`circeff experiment` commands (placeholder until the circuit-analysis issue lands)."""

import typer

app = typer.Typer(help="experiment commands.", no_args_is_help=True)
