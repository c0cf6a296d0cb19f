"""`circeff experiment ungrok|semigrok|fig10|allocation`: reproduce's stages, one experiment at a time."""

from __future__ import annotations

import json

import pytest

from circeff.cli.main import run
from circeff.reproduce.config import experiment_config


def test_shared_options_change_every_stage_and_the_rest_only_their_own():
    c = experiment_config("tiny", p=13, d_model=32, d_mlp=64, lr=5e-3, seeds=(3, 4), base_steps=20,
                          ungrokking_sizes=(20, 40, 80), weight_decays=(1.0, 3.0), fig10_sizes=(15, 30, 60))
    trainings = [c.progress.training, c.efficiency.training, c.base.training, c.semigrokking.training]
    for t in trainings:
        assert (t.p, t.model.d_model, t.model.d_head * t.model.n_heads, t.model.d_mlp, t.lr) == (13, 32, 32, 64, 5e-3)
    assert c.base.seeds == (3, 4) and c.semigrokking.training.seeds == (3, 4)
    assert c.base.steps == 20 and c.semigrokking.training.steps != 20  # --base-steps: the base networks only
    assert c.ungrokking.sizes == (20, 40, 80) and c.fig10.sizes == (15, 30, 60) and c.ungrokking.weight_decays == (1.0, 3.0)
    assert c.fig10.base == c.ungrokking.base  # one set of base networks, as in reproduce


def test_ungrok_command_writes_reproduce_stages_and_dcrit_per_weight_decay(tmp_path, capsys):
    out = tmp_path / "u"
    code = run(["experiment", "ungrokking", "--preset", "tiny", "--out", str(out), "--sizes", "10,40,100",
                "--weight-decays", "1,2", "--json", str(tmp_path / "u.json"), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    data = json.loads((tmp_path / "u.json").read_text())
    assert set(data["D_crit"]["by_weight_decay"]) == {"1", "2"}
    for iv in [data["D_crit"]["pooled"], *data["D_crit"]["by_weight_decay"].values()]:
        assert set(iv) == {"value", "lo", "hi", "level", "method"} and iv["lo"] <= iv["value"] <= iv["hi"]
    assert set(data["verdicts"]) == {"P2", "P3"}
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["stages"]) == ["base", "ungrokking"]
    assert (out / "ungrokking" / "ungrokking.png").is_file() and (out / "report.md").is_file()
    # rerunning resumes: both stages are restored from their done markers
    assert run(["experiment", "ungrokking", "--preset", "tiny", "--out", str(out), "--sizes", "10,40,100",
                "--weight-decays", "1,2", "--no-progress"]) == 0
    again = json.loads((out / "summary.json").read_text())
    assert all(s["skipped"] for s in again["timings"]["stages"].values())


@pytest.mark.slow
@pytest.mark.parametrize(("experiment", "stage", "keys"), [("fig10", "fig10", {"fig10a"}), ("semigrokking", "semigrokking", {"P4"})])
def test_other_commands_run_their_stage(tmp_path, experiment, stage, keys):
    out = tmp_path / experiment
    assert run(["experiment", experiment, "--preset", "tiny", "--out", str(out), "--json", str(tmp_path / "r.json"),
                "--no-progress"]) == 0
    data = json.loads((tmp_path / "r.json").read_text())
    assert set(data["verdicts"]) == keys and stage in json.loads((out / "summary.json").read_text())["stages"]


def test_a_new_p_carries_every_preset_size_as_the_same_fraction_of_the_pairs():
    small = experiment_config("quick", p=17)
    quick = experiment_config("quick")
    ratio = (17 / quick.base.p) ** 2
    assert small.ungrokking.sizes == tuple(sorted({max(2, round(d * ratio)) for d in quick.ungrokking.sizes}))
    assert max(small.fig10.sizes) < small.base.train_size and small.efficiency.p == 17
