"""Fixtures of the sweep tests: the pure-Python toy kind and the `circeff sweep` CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from circeff.sweep.grid import register_kind
from tests.sweep import workfns

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def toy_kind(monkeypatch):
    """Register the toy kind, reset its counters, and let subprocesses import tests.sweep."""
    register_kind(workfns.toy_kind())
    workfns.INTERRUPT_AFTER_STEPS[0] = None
    workfns.STEPS_DONE[0] = 0
    workfns.CALLS.clear()
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO_ROOT), path) if p))
    return workfns.toy_kind()


@pytest.fixture()
def cli():
    """`run(argv)` of the circeff CLI, with the sweep sub-app registered if main.py lacks it."""
    from circeff.cli import main
    from circeff.cli import sweep as sweep_cli

    if not any(group.name == "sweep" for group in main.app.registered_groups):
        main.app.add_typer(sweep_cli.app, name="sweep")
    return main.run
