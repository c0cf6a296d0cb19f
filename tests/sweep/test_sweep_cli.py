"""`circeff sweep run|combine|status` end to end, with the pure-Python toy kind."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import given, settings

from tests.strategies.sweep import bad_toy_configs
from tests.sweep import workfns

GRID_16 = {"kind": "toy", "base": {"steps": 3},
           "grid": {"target": [1.0, 2.0, 3.0, 4.0], "seed": [0, 1], "group": ["a", "b"]}}


def _write_grid(folder: Path, spec) -> Path:
    path = folder / "grid.json"
    path.write_text(json.dumps(spec))
    return path


def test_sweep_of_16_runs_interrupted_and_resumed(tmp_path, cli, capsys):
    grid = _write_grid(tmp_path, GRID_16)
    out = tmp_path / "store"
    # Ctrl-C after 20 of 48 steps: batch 1 (4 runs, 12 steps) is done; in batch 2 two runs
    # have finished and one is at step 2, but a batch is marked done only as a whole.
    workfns.INTERRUPT_AFTER_STEPS[0] = 20
    assert cli(["sweep", "run", str(grid), "--out", str(out), "--max-batch", "4"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert cli(["sweep", "status", str(out)]) == 0
    status = capsys.readouterr().out
    assert status.strip() == "9 new, 3 resumable, 4 done", status

    workfns.INTERRUPT_AFTER_STEPS[0] = None
    workfns.CALLS.clear()
    assert cli(["sweep", "run", str(grid), "--out", str(out), "--max-batch", "4"]) == 0
    assert "16 runs: 4 already done, 12 ran (3 resumed), 0 failed, 0 diverged" in capsys.readouterr().out
    assert sum(len(c) for c in workfns.CALLS) == 12, "finished runs were skipped"
    for log in (out / "runs").glob("*/steps.log"):
        assert log.read_text().split() == ["1", "2", "3"], "no step was computed twice"

    table = pd.read_csv(out / "results.csv")
    assert table["run_id"].nunique() == 16 and len(table) == 16 * 3
    assert set(table.groupby(["target", "seed", "group"]).size()) == {3}
    assert cli(["sweep", "run", str(grid), "--out", str(out)]) == 0
    assert "16 already done, 0 ran" in capsys.readouterr().out


def test_combine_command(tmp_path, cli, capsys):
    grid = _write_grid(tmp_path, {"kind": "toy", "grid": {"target": [1.0, 2.0]}})
    assert cli(["sweep", "run", str(grid), "--out", str(tmp_path / "s")]) == 0
    (tmp_path / "s" / "results.csv").unlink()
    assert cli(["sweep", "combine", str(tmp_path / "s")]) == 0
    assert "2 finished runs, 8 rows" in capsys.readouterr().out
    assert len(pd.read_csv(tmp_path / "s" / "results.csv")) == 8


def test_failed_runs_exit_1_and_are_named(tmp_path, cli, capsys):
    grid = _write_grid(tmp_path, {"kind": "toy", "base": {"target": 1.0}, "grid": {"fail": [False, True]}})
    assert cli(["sweep", "run", str(grid), "--out", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: 1 of 2 runs failed") and "NaN at step 2" in err[0]


def test_submitit_local_from_the_cli(tmp_path, cli, capsys):
    grid = _write_grid(tmp_path, {"kind": "toy", "grid": {"target": [1.0, 2.0]}})
    assert cli(["sweep", "run", str(grid), "--out", str(tmp_path / "s"), "--executor", "submitit-local",
                "--timeout-min", "5"]) == 0
    assert "2 ran" in capsys.readouterr().out
    assert list((tmp_path / "s" / "submitit").glob("*_log.out"))


def _assert_one_line_error(capsys, code, fields, out: Path):
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err + captured.out, err
    assert any(err.startswith(f"error: {f}") for f in fields), (fields, err)
    assert not out.exists(), "a bad config must write nothing"


def test_bad_grid_files_one_line_exit_2_nothing_written(tmp_path, cli, capsys):
    cases = [
        ({"base": {"target": 1.0}}, {"kind"}),
        ({"kind": "nope"}, {"kind"}),
        ({"kind": "toy", "grid": {"target": []}}, {"grid.target"}),
        ({"kind": "toy", "grid": {"target": 3}}, {"grid.target"}),
        ({"kind": "toy", "grids": {}}, {"grids"}),
        ({"kind": "toy", "runs": []}, {"runs"}),
        ([1, 2], {"grid file"}),
    ]
    out = tmp_path / "out"
    for spec, fields in cases:
        code = cli(["sweep", "run", str(_write_grid(tmp_path, spec)), "--out", str(out)])
        _assert_one_line_error(capsys, code, fields, out)
    (tmp_path / "bad.json").write_text("{not json")
    _assert_one_line_error(capsys, cli(["sweep", "run", str(tmp_path / "bad.json"), "--out", str(out)]), {"GRID"}, out)
    _assert_one_line_error(capsys, cli(["sweep", "run", str(tmp_path / "missing.json"), "--out", str(out)]), {"GRID"}, out)
    grid = _write_grid(tmp_path, {"kind": "toy", "base": {"target": 1.0}})
    _assert_one_line_error(capsys, cli(["sweep", "run", str(grid), "--out", str(out), "--executor", "ray"]),
                           {"--executor"}, out)
    _assert_one_line_error(capsys, cli(["sweep", "run", str(grid), "--out", str(out), "--executor", "slurm"]),
                           {"--partition"}, out)


def test_hypothesis_bad_toy_configs(cli, capsys):
    tried = []

    @settings(max_examples=120)
    @given(bad_toy_configs())
    def check(case):
        fields, base = case
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out"
            grid = _write_grid(Path(tmp), {"kind": "toy", "base": base})
            _assert_one_line_error(capsys, cli(["sweep", "run", str(grid), "--out", str(out)]), fields, out)
        tried.append(base)

    check()
    assert len(tried) >= 100
