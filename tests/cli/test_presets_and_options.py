"""One meaning per preset name and one option name per idea in every command; one resume rule;
every experiment command builds and checks only the stages it runs. Nothing here trains: the
functions that would train are replaced by ones that record the config they were given."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from circeff.cli.main import app, run
from circeff.empirical import presets
from circeff.reproduce.config import PRESET_NAMES, experiment_config, named_config, reproduce_config

ROOT = Path(__file__).resolve().parents[2]


class Recorded(Exception):
    """Raised in place of training, carrying the config a command built."""


@pytest.fixture
def record(monkeypatch):
    """Replace every trainer the commands call by one that raises :class:`Recorded`."""
    def stop(config, *args, **kwargs):
        raise Recorded(config)

    monkeypatch.setattr("circeff.reproduce.run_reproduce", stop)
    monkeypatch.setattr("circeff.empirical.train.train", stop)
    monkeypatch.setattr("circeff.empirical.experiments.efficiency.run_efficiency", stop)
    monkeypatch.setattr("circeff.empirical.experiments.progress.run_progress", stop)

    def config_of(argv: list[str]):
        with pytest.raises(Recorded) as got:
            run(argv)
        return got.value.args[0]

    return config_of


def _commands():
    """(path, click command) of every leaf command."""
    import typer

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from walk(sub, (*path, name))
        else:
            yield path, cmd

    return list(walk(typer.main.get_command(app), ()))


def _options(cmd) -> dict[str, object]:
    return {o: p for p in cmd.params if getattr(p, "param_type_name", "") == "option" for o in p.opts}


TRAINING_COMMANDS = [("train",), ("reproduce",), ("sweep", "run"), *[("experiment", e) for e in
                     ("efficiency", "progress", "ungrokking", "semigrokking", "fig10", "allocation")]]
PRESET_COMMANDS = [("train",), ("reproduce",), *[("experiment", e) for e in
                   ("efficiency", "progress", "ungrokking", "semigrokking", "fig10", "allocation")]]


# ---- reproduce --quick / --full: the same config as before the names were unified --------------
def _numbers(cfg) -> dict:
    """P, widths, lr, steps, seeds and sizes of every stage (the numbers a run rests on)."""
    def training(x):
        return x.base.training if hasattr(x, "base") else x.training

    out = {}
    for name in ("progress", "efficiency", "ungrokking", "semigrokking", "fig10", "allocation"):
        c = getattr(cfg, name)
        t, m = training(c), training(c).model
        row = {"p": t.p, "model": [m.d_model, m.n_heads, m.d_head, m.d_mlp], "lr": t.lr, "wd": t.weight_decay,
               "steps": t.steps, "seeds": list(t.seeds)}
        for f in ("sizes", "m_train_sizes", "g_train_sizes", "g_subset_sizes", "weight_decays", "decay_budget",
                  "train_frac"):
            if hasattr(c, f):
                v = getattr(c, f)
                row[f] = list(v) if isinstance(v, tuple) else v
        if hasattr(c, "base"):
            row["base_train_frac"] = c.base.train_frac
        if name == "allocation":
            d = c.disjoint
            row.update(sizes=list(d.sizes), g_only_sizes=list(d.g_only_sizes), m_seeds=list(d.seeds),
                       m_steps=d.m_steps, m_lr=d.m_lr)
        out[name] = row
    if cfg.figure8 is not None:
        out["figure8"] = {"tasks": list(cfg.figure8.tasks), "seeds": list(cfg.figure8.ungrokking.base.seeds)}
    return out


@pytest.mark.parametrize("scale", ["quick", "full"])
def test_quick_and_full_keep_every_number_they_had(scale, record, tmp_path):
    # the snapshot was written from the commit before presets got one set of names
    expected = json.loads((Path(__file__).parent / "reproduce_numbers.json").read_text())[scale]
    flag_config = record(["reproduce", f"--{scale}", "--out", str(tmp_path / "a")])
    preset_config = record(["reproduce", "--preset", scale, "--out", str(tmp_path / "b")])
    assert _numbers(flag_config) == expected
    assert flag_config == preset_config == named_config(scale) == reproduce_config("cpu", scale)
    # the recorded labels stay what they were
    assert (flag_config.preset, flag_config.scale) == ("cpu", scale)


def test_every_recorded_config_has_the_name_a_user_types():
    from circeff.reproduce.config import preset_name

    for name in ("quick", "full", "paper"):
        config = named_config(name)
        assert preset_name(config.preset, config.scale) == name
    smoke = named_config("paper", smoke=True)
    assert preset_name(smoke.preset, smoke.scale) == "paper --smoke"


def test_reproduce_defaults_to_quick_and_paper_is_the_papers_run(record, tmp_path):
    assert record(["reproduce", "--out", str(tmp_path / "a")]) == reproduce_config("cpu", "quick")
    assert record(["reproduce", "--preset", "paper", "--out", str(tmp_path / "b")]) == reproduce_config("paper", "full")
    smoke = record(["reproduce", "--preset", "paper", "--smoke", "--out", str(tmp_path / "c")])
    assert smoke == reproduce_config("paper", "quick")


@pytest.mark.parametrize(("argv", "flag"), [
    (["--preset", "cpu"], "--preset"),
    (["--preset", "paper", "--full"], "--preset"),
    (["--preset", "paper", "--quick"], "--preset"),
    (["--preset", "full", "--smoke"], "--smoke"),
])
def test_reproduce_preset_contradictions_are_one_line(argv, flag, capsys, tmp_path):
    assert run(["reproduce", "--plan", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {flag}:") and err.count("\n") == 1


# ---- --preset: quick, full, paper in every command ------------------------------------------------
@pytest.mark.parametrize("path", PRESET_COMMANDS, ids=" ".join)
def test_every_preset_option_takes_quick_full_paper_and_its_help_shows_their_values(path, capsys):
    assert run([*path, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    for name in PRESET_NAMES:
        assert f"{name}" in text
    quick, paper = presets.QUICK, presets.PAPER
    for stated in (f"P = {quick.p}", f"P = {paper.p}", f"lr {presets.number(quick.lr)}",
                   f"d_model {quick.model.d_model}"):
        assert stated in text, (stated, text)


@pytest.mark.parametrize("path", PRESET_COMMANDS, ids=" ".join)
def test_cpu_is_refused_in_one_line_naming_the_names(path, capsys, tmp_path):
    argv = [*path, "--preset", "cpu", *([] if path == ("reproduce",) else ["--out", str(tmp_path / "o")]),
            *(["--plan"] if path == ("reproduce",) else [])]
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --preset:") and "quick, full, paper" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_every_experiment_defaults_to_quick():
    for path, cmd in _commands():
        # the semi-grokking pilot is one fixed design (presets.SEMIGROKKING_PILOT), not a scale
        if path[0] == "experiment" and path[-1] != "semigrokking-pilot":
            assert _options(cmd)["--preset"].default == "quick", path


def test_train_presets_are_the_scales_and_full_is_the_former_cpu_preset():
    from circeff.empirical.config import ModelConfig, Training

    assert tuple(presets.TRAIN_PRESETS) == presets.SCALES
    full, paper, quick = (presets.get_preset(n) for n in ("full", "paper", "quick"))
    assert full.training == Training(p=59, steps=3000, seeds=(0, 1, 2, 3), log_every=50, checkpoint_every=500)
    assert full.train_frac == 0.5 and full.model == ModelConfig()
    assert paper.training == Training(p=113, steps=40_000, seeds=(0,), log_every=100, checkpoint_every=1000)
    assert paper.train_frac == 0.3
    q = presets.get("ungrokking", "quick").base.training
    assert (quick.p, quick.model, quick.lr, quick.steps) == (q.p, q.model, q.lr, q.steps)


def test_train_takes_the_presets_model_and_new_widths(record, tmp_path):
    quick = record(["train", "--preset", "quick", "--out", str(tmp_path / "q")])
    q = presets.TRAIN_PRESETS["quick"].training
    assert (quick.task.p, quick.model, quick.lr, quick.steps) == (q.p, q.model, q.lr, q.steps)
    narrow = record(["train", "--preset", "quick", "--d-model", "32", "--n-heads", "2", "--d-mlp", "64",
                     "--out", str(tmp_path / "n")])
    m = narrow.model
    assert (m.d_model, m.n_heads, m.d_head, m.d_mlp) == (32, 2, 16, 64)
    default = record(["train", "--out", str(tmp_path / "d")])
    assert default.task.p == 59 and default.model == presets.TRAIN_PRESETS["full"].model  # the former cpu preset


# ---- one option name per idea --------------------------------------------------------------------
OLD_NAMES = {"--weight-decay", "--train-size", "--m-train-sizes", "--g-train-sizes", "--train-weight-decay", "--seed"}


@pytest.mark.parametrize("path", TRAINING_COMMANDS, ids=" ".join)
def test_one_name_per_idea_and_one_resume_rule(path):
    cmd = dict(_commands())[path]
    visible = {o for p in cmd.params if not getattr(p, "hidden", False) for o in getattr(p, "opts", ())}
    assert not visible & OLD_NAMES, path
    resume = _options(cmd)["--resume"]
    assert resume.default is True and "--no-resume" in resume.secondary_opts, path


@pytest.mark.parametrize(("new", "old"), [
    (["experiment", "efficiency", "--m-sizes", "40,80", "--g-sizes", "400,500", "--weight-decays", "0.5"],
     ["experiment", "efficiency", "--m-train-sizes", "40,80", "--g-train-sizes", "400,500", "--train-weight-decay",
      "0.5"]),
    (["experiment", "progress", "--seeds", "3", "--weight-decays", "0.5"],
     ["experiment", "progress", "--seed", "3", "--weight-decay", "0.5"]),
    (["experiment", "semigrokking", "--weight-decays", "1.5"], ["experiment", "semigrok", "--weight-decay", "1.5"]),
    (["train", "--weight-decays", "0.3,1", "--sizes", "100,200"], ["train", "--weight-decay", "0.3,1", "--train-size",
                                                                   "100,200"]),
])
def test_old_spellings_still_work_and_mean_the_same(new, old, record, tmp_path):
    assert record([*new, "--out", str(tmp_path / "a")]) == record([*old, "--out", str(tmp_path / "a")])


@pytest.mark.parametrize("argv", [
    ["experiment", "efficiency", "--weight-decays", "0.5,1"],
    ["experiment", "progress", "--weight-decays", "0.5,1"],
    ["experiment", "semigrokking", "--weight-decays", "1,2"],
    ["experiment", "progress", "--seeds", "0,1"],
])
def test_a_command_that_takes_one_value_says_so_in_one_line(argv, capsys, tmp_path):
    flag = next(a for a in argv if a.startswith("--"))
    assert run([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {flag}:") and "one" in err and err.count("\n") == 1


# ---- one resume rule -----------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["train"], ["reproduce"], ["experiment", "efficiency"], ["experiment", "progress"], ["experiment", "ungrokking"],
    ["experiment", "semigrokking"], ["experiment", "fig10"], ["experiment", "allocation"]])
def test_no_resume_refuses_a_folder_that_holds_files_in_one_line(argv, capsys, tmp_path, record):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{}")
    assert run([*argv, "--out", str(out), "--no-resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out:") and "another --out" in err and err.count("\n") == 1
    # the same command without --no-resume goes on to the run (here: recorded, not trained)
    record([*argv, "--out", str(out)])


# ---- an experiment checks only the stages it runs -------------------------------------------------
UNGROK = ["experiment", "ungrokking", "--p", "59", "--train-frac", "0.5", "--sizes", "79,176,265,391,870"]


def test_ungrok_of_sizes_below_the_bases_is_accepted(record, tmp_path):
    # Figure 10's preset sizes scaled to P = 59 reach 2106 > 1740 pairs, but ungrok does not run Figure 10
    config = record([*UNGROK, "--out", str(tmp_path / "x")])
    assert config.ungrokking.sizes == (79, 176, 265, 391, 870) and config.base.p == 59
    assert config.base.train_size == 1740
    assert config == experiment_config("quick", p=59, train_frac=0.5, ungrokking_sizes=(79, 176, 265, 391, 870),
                                       stages=("base", "ungrokking"))


def test_ungrok_reads_D_crit_at_the_budget_multiples_it_is_given(record, tmp_path):
    config = record(["experiment", "ungrokking", "--preset", "full", "--weight-decays", "4,8,16", "--decay-budget",
                     "81000", "--budget-multiples", "3,1", "--out", str(tmp_path / "x")])
    ung = config.ungrokking
    assert ung.convergence_multiples == (1.0, 3.0) and ung.decay_budget == 81000 and ung.weight_decays == (4, 8, 16)
    assert ung.convergence_efolds == pytest.approx((81.0, 243.0)) and ung.convergence_weight_decay == 16
    # the preset's multiples where none are given
    assert record(["experiment", "ungrokking", "--preset", "full", "--out", str(tmp_path / "y")]
                  ).ungrokking.convergence_multiples == presets.get("ungrokking", "full").convergence_multiples


def test_a_stage_the_command_runs_names_the_preset_value_not_a_flag(capsys, tmp_path):
    assert run(["experiment", "fig10", "--p", "59", "--train-frac", "0.5", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not err.startswith("error: --sizes")
    assert err.startswith("error: fig10 sizes (the quick preset's, scaled to P = 59; no option you gave): must be < 1740")
    # the value the user typed is still named by its flag
    assert run(["experiment", "fig10", "--p", "59", "--train-frac", "0.5", "--sizes", "100,200,3000",
                "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.startswith("error: --sizes: must be < 1740")
    assert not (tmp_path / "x").exists()


def test_every_command_runs_the_same_config_it_did_for_valid_options():
    # stages= only changes what is checked: a config that was valid is built exactly as before
    from circeff.cli.experiment import STAGE_OF, stages_of

    kwargs = dict(p=17, seeds=(0, 1), ungrokking_sizes=(20, 40, 80), fig10_sizes=(10, 30, 60))
    whole = experiment_config("quick", **kwargs)
    for stages in map(stages_of, STAGE_OF):
        if "figure8" not in stages:
            assert experiment_config("quick", stages=stages, **kwargs) == whole


# ---- the quick scale's numbers are stated once ---------------------------------------------------
def test_the_quick_scale_is_stated_in_the_presets_module_only():
    mine = [*ROOT.glob("circeff/cli/*.py"), *(ROOT / "circeff" / "reproduce" / n for n in ("config.py", "plan.py",
                                                                                        "outdir.py"))]
    for path in mine:
        assert not re.search(r"\b(3e-3|0\.003)\b", path.read_text()), path


def test_presets_comments_hold_no_dated_measurements():
    comments = [line for line in (ROOT / "empirical" / "presets.py").read_text().splitlines()
                if line.lstrip().startswith("#")]
    for line in comments:
        assert not re.search(r"\d{4}-\d{2}-\d{2}|\(measured|\d+(\.\d+)? s\b", line), line
    assert all(m.what and m.value is not None for m in presets.MEASUREMENTS)
    assert {"quick", "full"} <= set(presets.RECORDED_RUNS)
    # the text `circeff presets` prints is made from them
    assert f"{presets.RECORDED_RUNS['full'].total_s:g} s" in presets.FULL_ESTIMATE


def test_experiment_efficiency_writes_what_the_run_computed(monkeypatch, tmp_path, capsys):
    # the run only computes; the command must write the table, the JSON and the figures
    import types

    import pandas as pd

    import circeff.empirical.experiments.efficiency as eff

    result = types.SimpleNamespace(rows=pd.DataFrame({"circuit": ["G", "M"], "accepted": [True, True]}))
    written = []
    monkeypatch.setattr(eff, "run_efficiency", lambda config, out, **kwargs: result)
    monkeypatch.setattr(eff, "write_efficiency", written.append)
    monkeypatch.setattr(eff, "describe", lambda r: ["described"])
    assert run(["experiment", "efficiency", "--out", str(tmp_path / "e"), "--no-progress"]) == 0
    assert written == [result] and "described" in capsys.readouterr().out


def test_every_experiment_preset_keeps_every_setting_it_had():
    # experiment_presets.json: every (experiment, scale) of empirical.presets as the commit before
    # the experiments' defaults became the quick preset wrote it (names as they are now), so a
    # preset that leaned on a changed default shows up here
    import dataclasses

    from circeff.analysis.stats import to_plain
    from circeff.empirical import presets

    expected = json.loads((Path(__file__).parent / "experiment_presets.json").read_text())
    got = {f"{e}/{s}": to_plain(dataclasses.asdict(c)) for (e, s), c in presets.PRESETS.items() if e != "train"}
    assert got == expected


@pytest.fixture
def reproduce_kwargs(monkeypatch):
    """What an experiment command passes to run_reproduce besides the config (it raises Recorded)."""
    seen: dict = {}

    def stop(config, out, **kwargs):
        seen.update(kwargs)
        raise Recorded(config)

    monkeypatch.setattr("circeff.reproduce.run_reproduce", stop)
    return seen


@pytest.mark.parametrize("experiment", ["ungrokking", "semigrokking", "fig10", "allocation"])
def test_an_experiment_takes_float_check_as_reproduce_does(experiment, reproduce_kwargs, tmp_path):
    seen = reproduce_kwargs
    for argv, expected in (([], False), (["--float-check"], True)):
        with pytest.raises(Recorded):
            run(["experiment", experiment, "--out", str(tmp_path / f"o{expected}"), *argv])
        assert seen["float_check"] is expected and seen["command"].endswith("--float-check") is expected


def test_the_recorded_command_holds_every_design_option_so_it_reproduces_the_run(reproduce_kwargs, tmp_path):
    seen = reproduce_kwargs
    out = tmp_path / "u"
    with pytest.raises(Recorded):
        run(["experiment", "ungrokking", "--preset", "full", "--weight-decays", "4,8,16", "--decay-budget", "81000",
             "--budget-multiples", "1,3", "--threads", "1", "--no-progress", "--out", str(out)])
    assert seen["command"] == (f"circeff experiment ungrokking --preset full --weight-decays 4,8,16 --decay-budget "
                               f"81000.0 --budget-multiples 1,3 --out {out}")
    with pytest.raises(Recorded):
        run(["experiment", "semigrokking", "--seeds", "0,1", "--out", str(out)])
    assert seen["command"] == f"circeff experiment semigrokking --preset quick --seeds 0,1 --out {out}"
