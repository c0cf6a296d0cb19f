"""`circeff toy` commands (to be filled in by the toy issue)."""

import typer

app = typer.Typer(help="toy commands.", no_args_is_help=True)
