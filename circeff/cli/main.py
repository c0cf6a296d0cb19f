"""Entry point of the ``circeff`` command.

Every failure a user can cause (a bad value, a missing file, a corrupt checkpoint)
ends as one line on stderr and a non-zero exit code, never a traceback:
exit code 2 for bad input, 1 for a run that could not finish.
"""

from __future__ import annotations

import sys

import typer

try:  # typer >= 0.22 vendors click under typer._click; older typer uses click itself
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - depends on the installed typer
    import click.exceptions as click_exc

from circeff.cli import analyze as analyze_cli
from circeff.cli import experiment as experiment_cli
from circeff.cli import reproduce as reproduce_cli
from circeff.cli import sweep as sweep_cli
from circeff.cli import theory as theory_cli
from circeff.cli import toy as toy_cli
from circeff.cli import train as train_cli
from circeff.errors import ConfigError, RunError

app = typer.Typer(
    name="circeff",
    help="Check, simulate and measure 'Explaining grokking through circuit efficiency'.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(theory_cli.app, name="theory")
app.add_typer(toy_cli.app, name="toy")
app.command("train")(train_cli.train)
app.add_typer(sweep_cli.app, name="sweep")
app.add_typer(analyze_cli.app, name="analyze")
app.add_typer(experiment_cli.app, name="experiment")
app.command("reproduce")(reproduce_cli.reproduce)
app.command("presets")(__import__("circeff.cli.presets", fromlist=["presets"]).presets)


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def run(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code (used by ``main`` and by tests)."""
    try:
        result = app(args=argv, prog_name="circeff", standalone_mode=False)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    except click_exc.NoArgsIsHelpError as exc:
        print(exc.format_message())
        return 0
    except click_exc.ClickException as exc:
        # click names the parameter itself, e.g. "Invalid value for '--q': ..."; fold to one line.
        return _fail(" ".join(exc.format_message().split()), 2)
    except typer.Abort:
        return _fail("interrupted", 130)
    except RunError as exc:
        return _fail(str(exc), 1)
    except KeyboardInterrupt:
        return _fail("interrupted; rerun the same command (circeff train: add --resume) to continue from the last checkpoint", 130)
    if result == 130:  # typer turns Ctrl-C into a bare exit code 130; say what it means
        return _fail("interrupted; rerun the same command (circeff train: add --resume) to continue from the last checkpoint", 130)
    return int(result or 0)


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
