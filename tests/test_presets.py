"""One presets table: every name means one thing, derived sizes follow P, and the CLI lists it."""

from __future__ import annotations

import json

import pytest

from circeff.cli.main import run
from circeff.empirical import presets
from circeff.reproduce import reproduce_config


def _training(config):
    return config.base.training if hasattr(config, "base") else config.training


@pytest.mark.parametrize("scale", presets.SCALES)
def test_a_scale_means_one_P_model_and_lr_in_every_experiment(scale):
    seen = {(_training(presets.get(e, scale)).p, _training(presets.get(e, scale)).model,
             _training(presets.get(e, scale)).lr) for e in presets.EXPERIMENTS}
    assert len(seen) == 1, seen


def test_reproduce_uses_the_table_unchanged():
    # no per-call overrides: reproduce --quick / --full / paper are the table's entries
    for (preset, scale), which in (("cpu", "quick"), "quick"), (("cpu", "full"), "full"), (("paper", "full"), "paper"):
        cfg = reproduce_config(preset, scale)
        for name in presets.EXPERIMENTS:
            assert getattr(cfg, name) == presets.get(name, which), (preset, scale, name)


def test_sizes_given_as_fractions_follow_P():
    assert presets.sizes_of(113, (0.4, 0.53, 0.67, 0.8)) == presets.get("efficiency", "paper").g_train_sizes
    assert presets.sizes_of(31, (0.8,)) == (769,)


def test_cli_lists_every_preset_with_its_values(tmp_path, capsys):
    assert run(["presets", "--json", str(tmp_path / "p.json")]) == 0
    out = capsys.readouterr().out
    rows = json.loads((tmp_path / "p.json").read_text())
    assert {(r["experiment"], r["preset"]) for r in rows} == set(presets.PRESETS)
    for r in rows:
        assert r["experiment"] in out and str(r["p"]) in out
    quick = next(r for r in rows if (r["experiment"], r["preset"]) == ("efficiency", "quick"))
    assert (quick["p"], quick["d_model"], quick["d_mlp"], quick["lr"]) == (23, 64, 256, 3e-3)


def test_experiment_help_shows_what_each_preset_sets(capsys):
    assert run(["experiment", "efficiency", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())  # rich wraps inside a box
    assert "P = 23" in text and "P = 113" in text


@pytest.mark.parametrize("experiment", presets.EXPERIMENTS)
def test_an_experiment_config_built_from_its_defaults_is_the_quick_preset(experiment):
    # no unnamed fourth preset: what a config is without arguments is the quick scale's
    quick = presets.get(experiment, "quick")
    assert type(quick)() == quick
    assert presets.get(experiment, "full") != quick
