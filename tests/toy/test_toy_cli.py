"""`circeff toy ...` end to end: files, JSON keys, and one-line errors for bad input."""

from __future__ import annotations

import math

import pytest

from circeff.cli.main import run
from circeff.io import read_json


def test_toy_cli_run_writes_the_documented_json(tmp_path, capsys):
    path = tmp_path / "run.json"
    code = run(["toy", "run", "--n-classes", "113", "--p-g", "1", "--p-m", "2", "--kappa", "1.2",
                "--q", "2", "--alpha", "0.005", "--lr", "0.01", "--steps", "20000", "--w-g2", "0.005",
                "--w-m2", "1", "--json", str(path)])
    assert code == 0
    rec = read_json(path)
    keys = ("steps", "train_loss", "test_loss", "w_G", "w_M")
    assert len({len(rec[k]) for k in keys}) == 1
    assert rec["steps"][0] == 0 and rec["steps"][-1] == 20000
    assert rec["grokking_step"] is not None and rec["grokking_step"] > 10 * rec["fit_step"]
    assert f"grokking_step={rec['grokking_step']}" in capsys.readouterr().out


def test_toy_cli_run_grokking_step_is_null_when_test_loss_never_falls(tmp_path):
    path = tmp_path / "b.json"
    assert run(["toy", "run", "--p-g", "4", "--steps", "20000", "--json", str(path)]) == 0
    assert read_json(path)["grokking_step"] is None


def test_toy_cli_figure2_writes_png_and_json(tmp_path):
    assert run(["toy", "figure2", "--out", str(tmp_path), "--steps", "20000"]) == 0
    data = read_json(tmp_path / "fig2.json")
    assert set(data["panels"]) == {"a", "b", "c"}
    assert (tmp_path / "fig2.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_toy_cli_phase_writes_heatmaps_json_and_csv(tmp_path):
    assert run(["toy", "phase", "--out", str(tmp_path), "--n-p", "3", "--n-w", "2", "--steps", "20000",
                "--no-progress"]) == 0
    data = read_json(tmp_path / "phase.json")
    assert len(data["final_test_loss"]) == 3 and len(data["final_test_loss"][0]) == 2
    assert (tmp_path / "phase.png").exists()
    assert len((tmp_path / "phase.csv").read_text().splitlines()) == 1 + 6


def test_toy_cli_ungrok_and_semigrok_write_figures(tmp_path):
    assert run(["toy", "ungrok", "--out", str(tmp_path), "--pretrain-steps", "20000", "--steps", "20000",
                "--d-ratios", "0.25,4"]) == 0
    ung = read_json(tmp_path / "ungrok.json")
    assert ung["runs"][0]["final_test_loss"] > ung["runs"][0]["start_test_loss"]
    assert run(["toy", "semigrok", "--out", str(tmp_path), "--steps", "20000", "--d-ratios", "0.9,1.1"]) == 0
    assert (tmp_path / "semigrok.png").exists() and (tmp_path / "ungrok.png").exists()
    assert math.isclose(read_json(tmp_path / "semigrok.json")["D_crit"], 1000.0)


BAD_CLI = [
    (["toy", "run", "--p-g", "0"], "--p-g"),
    (["toy", "run", "--p-m", "-1"], "--p-m"),
    (["toy", "run", "--lr", "0"], "--lr"),
    (["toy", "run", "--steps", "0"], "--steps"),
    (["toy", "run", "--kappa", "0"], "--kappa"),
    (["toy", "run", "--q", "-2"], "--q"),
    (["toy", "run", "--kappa", "3"], "--kappa"),      # kappa > q: singular gradient at w = 0
    (["toy", "run", "--n-classes", "1"], "--n-classes"),
    (["toy", "run", "--alpha", "-1"], "--alpha"),
    (["toy", "run", "--w-g2", "nan"], "--w-g2"),
    (["toy", "run", "--lr", "abc"], "--lr"),
    (["toy", "phase", "--out", "X", "--n-p", "0"], "--n-p"),
    (["toy", "phase", "--out", "X", "--p-ratio-min", "-1"], "--p-ratio-min"),
    (["toy", "ungrok", "--out", "X", "--beta", "0"], "--beta"),
    (["toy", "ungrok", "--out", "X", "--d-ratios", "0.5,x"], "--d-ratios"),
    (["toy", "ungrok", "--out", "X", "--d-ratios", "0.5,-1"], "--d-ratios"),
    (["toy", "semigrok", "--out", "X", "--q-mixture", "1"], "--q-mixture"),
    (["toy", "semigrok", "--out", "X", "--q-sharp", "3"], "--q-sharp"),
]


@pytest.mark.parametrize(("argv", "option"), BAD_CLI)
def test_toy_cli_bad_input_is_one_line_naming_the_option(argv, option, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    assert option in err
    assert not (tmp_path / "X").exists()


def test_toy_cli_divergence_is_reported_with_the_step(capsys, tmp_path):
    path = tmp_path / "never.json"
    assert run(["toy", "run", "--lr", "200", "--w-g2", "1", "--steps", "500", "--json", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "diverged" in err and "at step" in err
    assert not path.exists()


@pytest.mark.slow
def test_toy_cli_default_scale_commands(tmp_path):
    """The commands at their default sizes (as in the README); about half a minute."""
    assert run(["toy", "figure2", "--out", str(tmp_path)]) == 0
    panels = read_json(tmp_path / "fig2.json")["panels"]
    assert panels["a"]["grokking_step"] > 50 * panels["a"]["fit_step"]
    assert panels["b"]["grokking_step"] is None
    assert panels["c"]["grokking_step"] <= 2 * panels["c"]["fit_step"]
    assert run(["toy", "phase", "--out", str(tmp_path), "--no-progress"]) == 0
    phase = read_json(tmp_path / "phase.json")
    p_ratio = phase["p_ratio"]
    for i, pr in enumerate(p_ratio):   # below the diagonal every cell groks, well above none does
        if pr < 1.0:
            assert all(g is not None for g in phase["grokking_step"][i])
        if pr > 1.5:
            assert all(g is None for g in phase["grokking_step"][i])
    assert run(["toy", "ungrok", "--out", str(tmp_path)]) == 0
    assert run(["toy", "semigrok", "--out", str(tmp_path)]) == 0
