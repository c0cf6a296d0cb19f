"""The `circeff` command-line tool. Each sub-command group lives in its own module."""
