"""The command line on ordinary and shared machines.

- ``--help``, ``--version``, ``presets`` and the theory commands answer without importing torch
  (checked in a fresh interpreter, where ``sys.modules`` says what was imported);
- the presets' words they show are the presets' own (the generated table equals
  :func:`circeff.empirical.presets.cli_table`);
- off a terminal, progress is whole lines, not redrawn bars;
- busy cores are detected and the warning says what to do.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import pytest

from circeff.cli.common import busy_cores
from circeff.cli.main import run

HEAVY = ("torch", "pandas", "matplotlib")


def _imported_after(code: str) -> list[str]:
    """The heavy modules a fresh interpreter has imported after running ``code``."""
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import sys
        print("HEAVY=" + ",".join(m for m in {HEAVY!r} if m in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    line = [x for x in done.stdout.splitlines() if x.startswith("HEAVY=")][-1]
    return [m for m in line.removeprefix("HEAVY=").split(",") if m]


def test_importing_the_cli_leaves_torch_out():
    assert _imported_after("import circeff, circeff.cli.main") == []


# argv that must answer without torch; each run in-process in one fresh interpreter
NO_TORCH_ARGV = [["--help"], ["--version"], ["presets"], ["train", "--help"], ["reproduce", "--help"],
                 ["experiment", "--help"], ["experiment", "efficiency", "--help"], ["experiment", "fig10", "--help"],
                 ["sweep", "run", "--help"], ["analyze", "--help"], ["export", "--help"], ["toy", "--help"],
                 ["theory", "claims"], ["theory", "optimum", "--p", "1,2", "--q", "1.5"]]


def test_help_version_presets_and_theory_do_not_import_torch():
    code = f"""
        import contextlib, io
        from circeff.cli.main import run
        for argv in {NO_TORCH_ARGV!r}:
            with contextlib.redirect_stdout(io.StringIO()):
                assert run(argv) == 0, argv
    """
    assert "torch" not in _imported_after(code)


def test_the_probe_sees_torch_when_a_command_imports_it():
    """The check above can fail: a command that trains does import torch."""
    assert "torch" in _imported_after("import circeff.empirical.train")


def test_the_cli_table_is_the_presets_own_words():
    from circeff.cli.table import table
    from circeff.empirical.presets import cli_table

    live = json.loads(json.dumps(cli_table(), sort_keys=True))
    assert table() == live, ("circeff/cli/presets_table.json is out of date with circeff.empirical.presets: "
                             "run `python -m circeff.cli.table` and commit the file")


def test_the_sweep_help_names_every_executor():
    from circeff.cli.sweep import EXECUTORS_HELP
    from circeff.sweep.executors import EXECUTOR_NAMES

    assert tuple(EXECUTORS_HELP.split(", ")) == tuple(EXECUTOR_NAMES)


# ---- progress off a terminal -----------------------------------------------------------------
def test_progress_off_a_terminal_is_whole_lines(monkeypatch):
    from circeff.progress import bar

    monkeypatch.setenv("CIRCEFF_PROGRESS_EVERY", "0")
    sink = io.StringIO()  # not a terminal
    with bar(total=5, desc="train", unit="step", file=sink) as b:
        for _ in range(5):
            b.update(1)
    text = sink.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) >= 5 and all(line.startswith("train:") for line in lines)
    assert "5/5" in lines[-1]


def test_progress_lines_wait_for_their_interval(monkeypatch):
    from circeff.progress import bar

    monkeypatch.setenv("CIRCEFF_PROGRESS_EVERY", "3600")
    sink = io.StringIO()
    with bar(total=1000, desc="train", file=sink, ascii=False, mininterval=0) as b:
        assert b.mininterval == 3600  # the caller's interval gives way off a terminal
        for _ in range(1000):
            b.update(1)
            b.set_postfix(train_acc=0.5)  # a training loop sets its accuracies every few steps
    # the first line, then none for an hour, then the closing line
    assert len(sink.getvalue().splitlines()) <= 3


# ---- busy cores -------------------------------------------------------------------------------
@pytest.mark.parametrize("load, busy", [(0.5, False), (2.0, False), (2.1, True), (7.0, True)])
def test_busy_cores_are_load_above_the_cores(monkeypatch, load, busy):
    monkeypatch.setattr("os.getloadavg", lambda: (load, load, load))
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    message = busy_cores()
    assert (message is not None) == busy
    if busy:
        assert f"load {load:.1f} on 2 cores" in message and "--threads 1" in message


def test_busy_warning_with_one_thread_does_not_advise_one_thread(monkeypatch):
    monkeypatch.setattr("os.getloadavg", lambda: (5.0, 5.0, 5.0))
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert "--threads 1" not in busy_cores(threads=1)


def test_plan_beside_a_busy_process_warns(monkeypatch, capsys):
    monkeypatch.setattr("os.getloadavg", lambda: (3.0, 3.0, 3.0))
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert run(["reproduce", "--scale", "tiny", "--plan"]) == 0
    err = capsys.readouterr().err
    assert "oversubscribed (1-minute load 3.0 on 2 cores)" in err


def test_every_command_that_trains_takes_threads():
    from circeff.cli.main import _invoked_params

    training = [["train"], ["reproduce"], ["sweep", "run"], ["experiment", "efficiency"],
                ["experiment", "progress"], ["experiment", "ungrokking"], ["experiment", "semigrokking"],
                ["experiment", "semigrokking-pilot"], ["experiment", "fig10"], ["experiment", "allocation"]]
    missing = [argv for argv in training
               if "--threads" not in {o for p in _invoked_params(argv) for o in p.opts}]
    assert missing == []
