"""`python -m tests.sweep.cli_entry ARGS` = `circeff ARGS`, with `sweep` registered (for subprocess tests)."""

import sys

from circeff.cli import main
from circeff.cli import sweep as sweep_cli

if not any(group.name == "sweep" for group in main.app.registered_groups):
    main.app.add_typer(sweep_cli.app, name="sweep")

if __name__ == "__main__":
    sys.exit(main.run(sys.argv[1:]))
