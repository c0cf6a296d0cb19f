"""Errors that the command line turns into one clean line (no traceback).

Exit codes: a :class:`ConfigError` (bad input: a value out of range, a path that cannot be
used) exits with 2, a :class:`RunError` (a run that started and could not finish) with 1.
"""

from __future__ import annotations

import os


class ConfigError(ValueError):
    """A bad value for a named field.

    The message always names the field and what is allowed, so that the CLI can
    print it as a single line: ``error: --q: must be > 0 (got -1.0)``. Library code may name
    the field as its config does (``train_frac``); the CLI renames it to the flag the user
    typed (``--train-frac``) in one place, :func:`circeff.cli.main.run`.
    """

    def __init__(self, field: str, allowed: str, got: object = None) -> None:
        self.field = field
        self.allowed = allowed
        self.got = got
        detail = f"{field}: {allowed}"
        if got is not None:
            detail += f" (got {got!r})"
        super().__init__(detail)

    def renamed(self, field: str) -> ConfigError:
        """The same error under another field name (same class)."""
        clone = self.__class__.__new__(self.__class__)
        clone.__dict__.update(self.__dict__)
        ConfigError.__init__(clone, field, self.allowed, self.got)
        return clone


class PathError(ConfigError):
    """A path the user gave that cannot be used (a file where a folder must be, no permission).

    ``field`` starts as the path itself; the CLI replaces it by the flag whose value holds
    that path, so ``--out /etc/passwd`` reads ``error: --out: ...``.
    """

    def __init__(self, path: str | os.PathLike[str], allowed: str, got: object = None) -> None:
        self.path = str(path)
        super().__init__(str(path), allowed, got)


class RunError(RuntimeError):
    """A run that cannot continue (corrupt checkpoint, divergence, a full disk)."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM after it saved its state.

    The message is one line that says what was saved and how to continue: ``interrupted by
    SIGINT at step 141: saved checkpoint.safetensors and metrics.csv (141 steps) in runs/p23;
    rerun the same command to continue from step 141``. The attributes carry the same facts
    for code: ``step`` (the steps done and saved), ``signal_name`` (``SIGINT``, ``SIGTERM``),
    ``saved`` (the file names written) and ``out_dir``.

    It is a KeyboardInterrupt, not a RunError, so that nothing on the way up that records a
    failed piece of work and goes on (a reproduce stage, a sweep executor, Figure 8's task
    loop) mistakes the stop for a failure: the whole command stops. The command line prints the
    message and exits with 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
    """

    # the latest stop raised in this process: typer turns a KeyboardInterrupt into a bare exit
    # code 130, so the command line reads the message (and the signal) here
    last: Interrupted | None = None

    def __init__(self, message: str, *, step: int, signal_name: str, saved: tuple[str, ...] = (),
                 out_dir: str | os.PathLike[str] | None = None) -> None:
        self.step = step
        self.signal_name = signal_name
        self.saved = tuple(saved)
        self.out_dir = None if out_dir is None else str(out_dir)
        super().__init__(message)
        Interrupted.last = self

    @property
    def exit_code(self) -> int:
        import signal

        number = getattr(signal, self.signal_name, None)
        return 128 + int(number) if number is not None else 130


class WriteError(RunError):
    """The file system refused a write (no permission, no space, a read-only mount).

    Carries ``path`` so that the CLI can name the flag that gave it (``--json: ...``).
    """

    def __init__(self, path: str | os.PathLike[str], message: str) -> None:
        self.path = str(path)
        self.message = message
        super().__init__(message)

    def renamed(self, flag: str) -> WriteError:
        return WriteError(self.path, f"{flag}: {self.message}")
