"""Entry point of the ``circeff`` command.

Every failure a user can cause (a bad value, a missing file, a corrupt checkpoint)
ends as one line on stderr and a non-zero exit code, never a traceback:
exit code 2 for bad input, 1 for a run that could not finish.

One naming scheme for every command, applied here rather than in each command: the line
starts with what the user typed, ``error: --train-frac: must be in (0, 1] (got 1.5)``. A
config field (``train_frac``) becomes the flag of the invoked command that sets it, a path
error names the flag or argument whose value holds the path (``--json``, ``OUT``), and
click's own parse errors are put in the same form (``--steps: must be an integer``).
"""

from __future__ import annotations

import sys

import typer

try:  # typer >= 0.22 vendors click under typer._click; older typer uses click itself
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - depends on the installed typer
    import click.exceptions as click_exc

from circeff.cli import analyze as analyze_cli
from circeff.cli import export as export_cli
from circeff.cli import experiment as experiment_cli
from circeff.cli import presets as presets_cli
from circeff.cli import reproduce as reproduce_cli
from circeff.cli import sweep as sweep_cli
from circeff.cli import theory as theory_cli
from circeff.cli import toy as toy_cli
from circeff.cli import train as train_cli
from circeff.errors import ConfigError, Interrupted, PathError, RunError, WriteError

app = typer.Typer(
    name="circeff",
    help="Check, simulate and measure 'Explaining grokking through circuit efficiency'.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion, as typer apps offer
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"circeff {package_version()}")
        raise typer.Exit()


def package_version() -> str:
    """The installed distribution's version (pyproject.toml), else the package's own."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("circuit-efficiency")
    except PackageNotFoundError:
        from circeff import __version__

        return __version__


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Check, simulate and measure 'Explaining grokking through circuit efficiency'."""


app.add_typer(theory_cli.app, name="theory")
app.add_typer(toy_cli.app, name="toy")
app.command("train")(train_cli.train)
app.add_typer(sweep_cli.app, name="sweep")
app.add_typer(analyze_cli.app, name="analyze")
app.add_typer(experiment_cli.app, name="experiment")
app.command("reproduce")(reproduce_cli.reproduce)
app.command("export")(export_cli.export)
app.command("presets")(presets_cli.presets)


def _fail(message: str, code: int) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return code


def _invoked(argv: list[str]) -> tuple[list, int]:
    """The click parameters of the (sub)command that ``argv`` invokes, and where its own
    arguments start in ``argv``."""
    command, start = typer.main.get_command(app), 0
    for i, token in enumerate(argv):
        sub = getattr(command, "commands", {}).get(token)
        if sub is None:
            if not token.startswith("-"):
                break
            continue
        command, start = sub, i + 1
    return list(command.params), start


def _invoked_params(argv: list[str]) -> list:
    return _invoked(argv)[0]


def _given_values(argv: list[str]) -> dict[str, str]:
    """value -> the flag (``--out``) or argument metavar (``OUT``) it was given to."""
    params, start = _invoked(argv)
    takes_value = {o for p in params if getattr(p, "param_type_name", "") == "option" and not p.is_flag
                   for o in p.opts}
    arguments = iter([p for p in params if getattr(p, "param_type_name", "") == "argument"])
    values: dict[str, str] = {}
    tokens = argv[start:]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("--") and "=" in token:
            flag, value = token.split("=", 1)
            values.setdefault(value, flag)
        elif token in takes_value and i + 1 < len(tokens):
            values.setdefault(tokens[i + 1], token)
            i += 1
        elif not token.startswith("-"):
            param = next(arguments, None)
            if param is not None:
                values.setdefault(token, _display_name(param))
        i += 1
    return values


def _display_name(param) -> str:  # noqa: ANN001 - a click Parameter
    """What the user typed for ``param``: its long flag, or an argument's metavar (RUN_DIR)."""
    if getattr(param, "param_type_name", "") == "argument":
        return str(param.name).upper()
    longs = [o for o in param.opts if o.startswith("--")]
    return (longs or param.opts)[0]


def flag_for_field(field: str, argv: list[str]) -> str:
    """The one naming scheme of error fields: the flag the user typed.

    A config field (``train_frac``, ``task.p``, ``P_G``) is matched to the invoked command's
    parameter of the same name (``--train-frac``, ``--p``, ``--p-g``); a field that already is a
    flag, or that no parameter matches, stays as it is.
    """
    if field.startswith("-"):
        return field
    # only flags the user typed: a field read from a file (a grid's ``timeout_min``) keeps its
    # name even when the command also has an option of that name
    typed = {token.split("=", 1)[0] for token in argv if token.startswith("-")}
    params = [p for p in _invoked_params(argv)
              if getattr(p, "param_type_name", "") != "option" or typed & set(p.opts)]
    last = field.rsplit(".", 1)[-1]
    # a list flag names its elements' field in the singular (--seeds: seed)
    candidates = [field, last, last + "s"]
    for cand in candidates:
        key = cand.lower().replace("-", "_")
        for param in params:
            names = {param.name} | {o.lstrip("-").replace("-", "_") for o in param.opts}
            if key in names:
                return _display_name(param)
    return field


def flag_for_path(path: str, argv: list[str]) -> str | None:
    """The flag (or argument) whose value is ``path`` or a folder above it, if any."""
    from pathlib import Path

    target = Path(path).absolute()
    # the value equal to the path, else the one naming the nearest folder above it
    matches = [(len(Path(value).absolute().parts), flag) for value, flag in _given_values(argv).items()
               if Path(value).absolute() == target or Path(value).absolute() in target.parents]
    return max(matches)[1] if matches else None


def _click_message(exc: Exception, argv: list[str]) -> str:
    """click's parse errors in the same scheme as ours: ``--steps: 'x' is not a valid integer``."""
    param = getattr(exc, "param", None)
    if isinstance(exc, click_exc.MissingParameter) and param is not None:
        return f"{_display_name(param)}: is required"
    if isinstance(exc, click_exc.BadParameter) and param is not None:
        flag = _display_name(param)
        given = [argv[i + 1] for i in range(len(argv) - 1) if argv[i] in param.opts]
        got = f" (got {given[-1]!r})" if given and given[-1] not in exc.message else ""
        lo, hi = getattr(param, "min", None), getattr(param, "max", None)
        if (lo is not None or hi is not None) and "valid" not in exc.message:
            # a bounded option: state the whole allowed range, not only the side that was crossed
            return f"{flag}: must be in [{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]{got}"
        message = exc.message.rstrip(".")
        for typer_says, we_say in (("Input should be a valid integer", "must be an integer"),
                                   ("Input should be a valid number", "must be a number"),
                                   ("Input should be a valid boolean", "must be true or false")):
            if message.startswith(typer_says):
                message = we_say
        return f"{flag}: {message}{got}"
    if isinstance(exc, click_exc.NoSuchOption):
        hint = f" (did you mean {', '.join(exc.possibilities)}?)" if exc.possibilities else ""
        return f"{exc.option_name}: no such option{hint}"
    return exc.format_message()


def _safely(make, fallback):  # noqa: ANN001, ANN202
    """Renaming a field must never turn a clean error into a traceback."""
    try:
        return make()
    except Exception:  # noqa: BLE001
        return fallback


def run(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code (used by ``main`` and by tests)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    Interrupted.last = None
    try:
        result = app(args=argv, prog_name="circeff", standalone_mode=False)
    except PathError as exc:
        return _fail(_safely(lambda: str(exc.renamed(flag_for_path(exc.path, argv) or exc.field)), str(exc)), 2)
    except ConfigError as exc:
        return _fail(_safely(lambda: str(exc.renamed(flag_for_field(exc.field, argv))), str(exc)), 2)
    except WriteError as exc:
        flag = _safely(lambda: flag_for_path(exc.path, argv), None)
        return _fail(str(exc.renamed(flag) if flag else exc), 1)
    except SystemExit as exc:  # typer's --show-completion / --install-completion exit by themselves
        return exc.code if isinstance(exc.code, int) else 0
    except click_exc.NoArgsIsHelpError as exc:
        print(exc.format_message())
        return 0
    except click_exc.ClickException as exc:
        return _fail(_safely(lambda: _click_message(exc, argv), exc.format_message()), 2)
    except typer.Abort as exc:  # click turns a KeyboardInterrupt into Abort; the stop is its cause
        return _stopped(Interrupted.last or exc.__cause__ or exc.__context__)
    except RunError as exc:
        return _fail(str(exc), 1)
    except KeyboardInterrupt as exc:
        return _stopped(Interrupted.last or exc)
    if result == 130:  # typer turns Ctrl-C into a bare exit code 130; say what it means
        return _stopped(Interrupted.last)
    return int(result or 0)


# Said when a stop reaches the command outside a training loop (a training loop saves its own
# checkpoint and says so itself, as a RunError).
INTERRUPTED = ("interrupted; what was saved before the stop is kept (finished stages and runs, the checkpoints "
               "written so far); rerun the same command to continue from there")


def _stopped(exc: BaseException | None) -> int:
    """A stop's one line: a training loop's own (what it saved, 130 or 143), else the general one."""
    if isinstance(exc, Interrupted):
        return _fail(str(exc), exc.exit_code)
    return _fail(INTERRUPTED, 130)


def _stop_on_sigterm() -> None:
    """SIGTERM (a scheduler's or ``kill``'s stop) ends the command as Ctrl-C does: the training
    loop saves and says what it kept, instead of the process vanishing mid-write."""
    import signal

    def stop(signum, frame):  # noqa: ANN001, ARG001
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (an embedding program): leave signals alone
        pass


def main() -> None:
    _stop_on_sigterm()
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
