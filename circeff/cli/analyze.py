"""`circeff analyze` commands (placeholder until the circuit-analysis issue lands)."""

import typer

app = typer.Typer(help="analyze commands.", no_args_is_help=True)
