"""Bad input across every command: exit code 2, one line, naming the flag the user typed.

A row is (argv, exit code, name): ``name`` is the flag (``--steps``) or, for a positional
argument, its metavar (``RUN_DIR``) that the one-line message must start with. Paths use
``{tmp}`` (a fresh folder), ``{file}`` (an existing file), ``{empty}`` (an empty folder),
``{run}`` (a folder that holds a run's files) and ``{grid}`` (a valid one-run sweep grid). A path the file system refuses to write is a run that
fails (exit code 1), still one line naming the flag and no traceback.
"""

from __future__ import annotations

import json

import pytest

from circeff.cli.main import run

HUGE = "99999999999999999999"


def _theory_p_flag() -> str:
    """`theory optimum` takes the norms as --P today; --p once it follows every other command."""
    from circeff.cli.main import _invoked_params

    opts = {o for param in _invoked_params(["theory", "optimum"]) for o in param.opts}
    return "--p" if "--p" in opts else "--P"


P_FLAG = _theory_p_flag()

BAD_INPUTS = [
    # circeff train
    (["train", "--out", "{tmp}/o", "--steps", HUGE], 2, "--steps"),
    (["train", "--out", "{tmp}/o", "--steps", "x"], 2, "--steps"),
    (["train", "--out", "{tmp}/o", "--train-frac", "1.5"], 2, "--train-frac"),
    (["train", "--out", "{tmp}/o", "--train-frac", "0.5", "--sizes", "10"], 2, "--train-frac"),
    (["train", "--out", "{tmp}/o", "--seeds", "a,b"], 2, "--seeds"),
    (["train", "--out", "{tmp}/o", "--seeds", "-1"], 2, "--seeds"),
    (["train", "--out", "{tmp}/o", "--weight-decays", "-1"], 2, "--weight-decays"),
    (["train", "--out", "{tmp}/o", "--weight-decay", "-1"], 2, "--weight-decay"),  # the old spelling
    (["train", "--out", "{tmp}/o", "--sizes", "0,x"], 2, "--sizes"),
    (["train", "--out", "{tmp}/o", "--preset", "cpu"], 2, "--preset"),
    (["train", "--out", "{tmp}/o", "--n-heads", "3"], 2, "--n-heads"),
    (["train", "--out", "{tmp}/o", "--d-model", "30"], 2, "--d-model"),
    (["train", "--out", "{tmp}/o", "--task", "pow"], 2, "--task"),
    (["train", "--out", "{tmp}/o", "--p", "1"], 2, "--p"),
    (["train", "--out", "{tmp}/o", "--lr", "0"], 2, "--lr"),
    (["train", "--out", "{tmp}/o", "--device", "tpu"], 2, "--device"),
    (["train", "--out", "{file}", "--steps", "1"], 2, "--out"),
    (["train", "--out", "{run}", "--no-resume"], 2, "--out"),
    (["train", "--steps", "1"], 2, "--out"),
    (["train", "--out", "{tmp}/o", "--stepz", "3"], 2, "--stepz"),
    # circeff toy
    (["toy", "run", "--steps", HUGE], 2, "--steps"),
    (["toy", "run", "--q", "-1", "--steps", "10"], 2, "--q"),
    (["toy", "run", "--p-g", "0", "--steps", "10"], 2, "--p-g"),
    (["toy", "run", "--steps", "10", "--json", "/proc/nope.json"], 1, "--json"),
    (["toy", "run", "--steps", "10", "--json", "{empty}"], 2, "--json"),
    (["toy", "figure2", "--out", "{file}", "--steps", "10"], 2, "--out"),
    (["toy", "phase", "--out", "{tmp}/ph", "--n-p", "0"], 2, "--n-p"),
    # circeff analyze / export
    (["analyze", "fourier", "{empty}"], 2, "RUN_DIR"),
    (["analyze", "fourier", "{empty}", "--model", "x"], 2, "--model"),
    (["export", "{empty}", "{tmp}/x"], 2, "RUN_DIR"),
    (["export", "{empty}", "{tmp}/x", "--to", "onnx"], 2, "--to"),
    (["export", "{empty}", "{file}"], 2, "RUN_DIR"),  # RUN_DIR is checked first
    (["toy", "figure2", "--out=/proc/fig", "--steps", "10"], 1, "--out"),
    # circeff theory
    (["theory", "optimum", P_FLAG, "1,0"], 2, P_FLAG),
    (["theory", "optimum", P_FLAG, "1,2", "--q", "0"], 2, "--q"),
    (["theory", "check", "--claims", "nope"], 2, "--claims"),
    # circeff sweep / reproduce / experiment
    (["sweep", "run", "{file}", "--out", "{tmp}/s"], 2, "GRID"),
    (["sweep", "run", "{grid}", "--out", "{file}"], 2, "--out"),
    (["sweep", "run", "{grid}", "--out", "{tmp}/s", "--executor", "cloud"], 2, "--executor"),
    (["reproduce", "--out", "{tmp}/r", "--quick", "--full"], 2, "--quick"),
    (["reproduce", "--out", "{tmp}/r", "--threads", "0"], 2, "--threads"),
    (["experiment", "progress", "--out", "{tmp}/e", "--steps", "-1"], 2, "--steps"),
    (["--versio"], 2, "--versio"),
    # circeff experiment ungrok / semigrok / fig10 / allocation, reproduce and sweep --plan
    (["experiment", "ungrokking", "--out", "{tmp}/o", "--preset", "huge"], 2, "--preset"),
    (["experiment", "ungrokking", "--out", "{tmp}/o", "--p", "1"], 2, "--p"),
    (["experiment", "ungrokking", "--out", "{tmp}/o", "--sizes", "a,b"], 2, "--sizes"),
    (["experiment", "ungrokking", "--out", "{tmp}/o", "--weight-decays", "-1,2"], 2, "--weight-decays"),
    (["experiment", "ungrokking", "--out", "{tmp}/o", "--train-frac", "2"], 2, "--train-frac"),
    (["experiment", "ungrokking", "--out", "{tmp}/o", "--base-steps", "0"], 2, "--base-steps"),
    (["experiment", "ungrokking", "--out", "{tmp}/o", "--d-model", "30"], 2, "--d-model"),
    (["experiment", "ungrokking", "--out", "{tmp}/o", "--d-mlp", "0"], 2, "--d-mlp"),
    (["experiment", "ungrokking", "--out", "{tmp}/o", "--lr", "0"], 2, "--lr"),
    (["experiment", "ungrokking", "--out", "{tmp}/o", "--task", "pow"], 2, "--task"),
    (["experiment", "fig10", "--out", "{tmp}/o", "--decay-budget", "-1"], 2, "--decay-budget"),
    (["experiment", "ungrokking", "--out", "{tmp}/o", "--budget-multiples", "3"], 2, "--budget-multiples"),
    (["experiment", "ungrokking", "--out", "{tmp}/o", "--budget-multiples", "1,-3"], 2, "--budget-multiples"),
    (["experiment", "semigrokking", "--out", "{tmp}/o", "--steps", "0"], 2, "--steps"),
    (["experiment", "allocation", "--out", "{tmp}/o", "--seeds", "0"], 2, "--seeds"),
    (["reproduce", "--plan", "--preset", "gpu"], 2, "--preset"),
    (["reproduce", "--plan", "--preset", "cpu"], 2, "--preset"),
    (["reproduce", "--plan", "--preset", "paper", "--full"], 2, "--preset"),
    (["reproduce", "--out", "{run}", "--no-resume"], 2, "--out"),
    (["experiment", "efficiency", "--out", "{tmp}/o", "--weight-decays", "1,2"], 2, "--weight-decays"),
    (["experiment", "progress", "--out", "{tmp}/o", "--seeds", "0,1"], 2, "--seeds"),
    (["experiment", "fig10", "--out", "{run}", "--no-resume"], 2, "--out"),
    (["sweep", "run", "{grid}", "--out", "{run}", "--no-resume"], 2, "--out"),
    (["reproduce", "--out", "{tmp}/o", "--json", "{tmp}/p.json"], 2, "--json"),
    (["sweep", "status", "{empty}"], 2, "OUT"),
    (["sweep", "combine", "{empty}"], 2, "OUT"),
    # slips that were once accepted silently
    (["experiment", "efficiency", "--out", "{tmp}/o", "--seeds", "0,0"], 2, "--seeds"),
    (["experiment", "ungrokking", "--out", "{tmp}/o", "--seeds", "1,2,1"], 2, "--seeds"),
    (["reproduce", "--plan", "--out", "{tmp}/o"], 2, "--out"),
    (["experiment", "fig10", "--plan", "--out", "{tmp}/o"], 2, "--out"),
    (["sweep", "run", "{grid}", "--plan", "--out", "{tmp}/o"], 2, "--out"),
    (["presets", "--json", "/proc/x.json"], 1, "--json"),
    (["experiment", "efficiency", "--out", "{tmp}/o", "--threads", "0"], 2, "--threads"),
    (["sweep", "run", "{grid}", "--out", "{tmp}/o", "--threads", "-2"], 2, "--threads"),
]


def _fill(argv: list[str], tmp_path) -> list[str]:
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "empty").mkdir(exist_ok=True)
    (tmp_path / "run").mkdir(exist_ok=True)
    (tmp_path / "run" / "config.json").write_text("{}")
    grid = {"kind": "train", "base": {"task": "add", "p": 7, "steps": 2, "train_frac": 0.5}, "grid": {"seed": [0]}}
    (tmp_path / "grid.json").write_text(json.dumps(grid))
    names = {"{tmp}": str(tmp_path), "{file}": str(tmp_path / "a_file"), "{empty}": str(tmp_path / "empty"),
             "{grid}": str(tmp_path / "grid.json"), "{run}": str(tmp_path / "run")}
    out = []
    for arg in argv:
        for key, value in names.items():
            arg = arg.replace(key, value)
        out.append(arg)
    return out


@pytest.mark.parametrize(("argv", "code", "name"), BAD_INPUTS, ids=[" ".join(a[:3]) for a, _, _ in BAD_INPUTS])
def test_bad_input_exit_code_one_line_naming_the_flag(tmp_path, capsys, argv, code, name):
    got = run(_fill(argv, tmp_path))
    captured = capsys.readouterr()
    err = captured.err
    assert got == code, err
    assert "Traceback" not in err + captured.out
    assert err.count("\n") == 1 and err.startswith(f"error: {name}:"), err
    assert not (tmp_path / "o").exists(), "bad input wrote nothing"


def test_the_table_is_broad():
    commands = {tuple(a[:2]) if a[0] in {"toy", "analyze", "theory", "sweep", "experiment"} else (a[0],)
                for a, _, _ in BAD_INPUTS}
    assert len(BAD_INPUTS) >= 20 and len(commands) >= 10


def test_version_and_python_m(capsys):
    import subprocess
    import sys

    from importlib.metadata import version

    __version__ = version("circuit-efficiency")
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"circeff {__version__}"
    done = subprocess.run([sys.executable, "-m", "circeff", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"circeff {__version__}", done.stderr


def test_shell_completion_is_offered(capsys):
    assert run(["--show-completion", "bash"]) == 0
    assert "_circeff_completion" in capsys.readouterr().out
