"""Errors that the command line turns into one clean line (no traceback)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A bad value for a named field.

    The message always names the field and what is allowed, so that the CLI can
    print it as a single line: ``error: --q: must be > 0 (got -1.0)``.
    """

    def __init__(self, field: str, allowed: str, got: object = None) -> None:
        self.field = field
        self.allowed = allowed
        self.got = got
        detail = f"{field}: {allowed}"
        if got is not None:
            detail += f" (got {got!r})"
        super().__init__(detail)


class RunError(RuntimeError):
    """A run that cannot continue (corrupt checkpoint, divergence, unwritable folder)."""
