"""`circeff theory` commands (to be filled in by the theory issue)."""

import typer

app = typer.Typer(help="theory commands.", no_args_is_help=True)
