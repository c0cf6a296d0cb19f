"""`circeff reproduce` at the hidden tiny scale: report, summary, verdict keys, resume, out-folder rules."""

from __future__ import annotations

import json

import pytest
import torch

from circeff.analysis.stats import to_plain
from circeff.cli.main import run
from circeff.reproduce import STAGES, VERDICT_KEYS, prepare_out, reproduce_config

TINY = ["reproduce", "--scale", "tiny", "--no-progress", "--threads", "1"]


@pytest.fixture(scope="module")
def tiny_out(tmp_path_factory):
    before = torch.get_num_threads()
    out = tmp_path_factory.mktemp("reproduce")
    code = run([*TINY, "--out", str(out)])
    torch.set_num_threads(before)
    assert code == 0
    return out


def test_reproduce_writes_report_and_summary_with_all_six_verdicts(tiny_out):
    summary = json.loads((tiny_out / "summary.json").read_text())
    assert tuple(summary["verdicts"]) == VERDICT_KEYS
    assert summary["stage_verdicts"] == {}  # only Figure 8 (full scale) adds verdicts of its own
    v = summary["verdicts"]
    # what the rules conclude at tiny scale, and why (P = 11 cannot make G-only networks)
    assert v["P1"]["holds"] is False and "trig share at most" in v["P1"]["reason"]
    assert v["P2"]["holds"] is False and "not G-only" in v["P2"]["reason"]
    assert v["P3"]["holds"] is False and "needs 3 spanning x4" in v["P3"]["reason"]
    assert v["fig10a"]["holds"] is False and "fewer than 3 networks at D" in v["fig10a"]["reason"]
    # the allocation stage measures its own circuits (disjoint pairs, settled Figure 10 networks),
    # so it runs at tiny scale; the reason names the account the data support (or neither)
    assert v["allocation"]["outcome"] in ("holds", "does not hold", "undecided")
    assert "the data support" in v["allocation"]["reason"] and v["allocation"]["supported_account"]
    assert v["P4"]["holds"] is False and "the rule needs at least 2" in v["P4"]["reason"]
    semi = reproduce_config("cpu", "tiny").semigrokking
    # sizes by rule from D_crit (clipped below the P^2 pairs at this tiny P)
    low = min(semi.low_factor * v["P4"]["D_crit"], semi.n_examples - 1) / v["P4"]["D_crit"]
    assert v["P4"]["sizes_over_D_crit"][0] == pytest.approx(low, abs=0.02)
    # the P2 rule reads the refined grid: five D' around the coarse grid's first D_crit
    assert len(v["P2"]["refined_sizes"]) >= 3
    # controls measured on this run's own designs, with their cost
    c = summary["controls"]
    assert set(c) == {"P2", "P3", "P4", "fig10a"}  # P1 failed: no design to draw from
    for key, entry in c.items():
        assert entry["n"] == summary["controls_n"] == 10 and entry["seconds"] >= 0, key
        assert entry["false_accept"]["k"] <= entry["n"] and entry["design"]["key"] == key
    # P2 and P3 can never hold on the tiny design, so their false reject is 100%
    assert c["P2"]["false_reject"]["value"] == 1.0 and c["P3"]["false_reject"]["value"] == 1.0
    assert set(summary["settings"]) == {"progress", "efficiency", "base", "ungrokking", "semigrokking", "fig10"}
    assert summary["settings"]["efficiency"]["P"] == 11 and summary["settings"]["efficiency"]["d_model"] == 16
    assert set(summary["timings"]["stages"]) == set(STAGES)
    assert summary["config"]["scale"] == "tiny"
    report = (tiny_out / "report.md").read_text()
    for key in VERDICT_KEYS:
        assert f"## {key}:" in report
    assert "## Controls: how often each rule errs on this run's own design" in report
    assert "## Settings of this run" in report and "L-BFGS" in report and "label-centred" in report
    # every figure is embedded by a relative path that exists
    import re

    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert len(links) >= 6  # P1 and allocation figures need a P1 fit, impossible at tiny scale
    for link in links:
        assert not link.startswith("/") and (tiny_out / link).is_file(), link
    for stage in STAGES:
        assert (tiny_out / stage).is_dir()


def test_reproduce_rerun_skips_finished_stages(tiny_out, capsys):
    before = json.loads((tiny_out / "summary.json").read_text())
    assert run([*TINY, "--out", str(tiny_out)]) == 0
    after = json.loads((tiny_out / "summary.json").read_text())
    for name, t in after["timings"]["stages"].items():
        if before["timings"]["stages"][name]["status"] == "done":
            assert t["skipped"], name
    assert {k: v["holds"] for k, v in after["verdicts"].items()} == {k: v["holds"] for k, v in before["verdicts"].items()}


def test_reproduce_refuses_a_folder_of_another_config_in_one_line(tiny_out, capsys):
    code = run([*TINY, "--preset", "paper", "--out", str(tiny_out)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "different reproduce config" in err and "--force" in err


def test_reproduce_force_replaces_a_folder_of_another_config(tmp_path):
    (tmp_path / "efficiency").mkdir()
    (tmp_path / "efficiency" / "stage.json").write_text("{}")
    (tmp_path / "reproduce_config.json").write_text(json.dumps({"preset": "paper"}))
    (tmp_path / "keep.txt").write_text("not ours")
    cfg = reproduce_config("cpu", "tiny")
    with pytest.raises(Exception, match="different reproduce config"):
        prepare_out(tmp_path, cfg, force=False)
    prepare_out(tmp_path, cfg, force=True)
    assert not (tmp_path / "efficiency").exists()
    assert (tmp_path / "keep.txt").is_file()  # only what reproduce writes is deleted
    assert json.loads((tmp_path / "reproduce_config.json").read_text())["scale"] == "tiny"


def test_reproduce_refuses_a_foreign_non_empty_folder(tmp_path, capsys):
    (tmp_path / "something.txt").write_text("x")
    assert run([*TINY, "--out", str(tmp_path)]) == 1
    assert "holds no circeff reproduce results" in capsys.readouterr().err


@pytest.mark.parametrize("args, option", [
    (["--quick", "--full"], "--quick"),
    (["--preset", "gpu"], "--preset"),
    (["--device", "tpu"], "--device"),
    (["--threads", "0"], "--threads"),
])
def test_reproduce_bad_input_is_one_line_exit_2(tmp_path, capsys, args, option):
    assert run(["reproduce", "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and option in err


def test_reproduce_configs_share_one_P_and_one_base():
    for preset, scale in (("cpu", "quick"), ("cpu", "full"), ("paper", "full"), ("paper", "quick")):
        cfg = reproduce_config(preset, scale)
        assert cfg.efficiency.p == cfg.base.p == cfg.semigrokking.p
        assert cfg.fig10.base == cfg.ungrokking.base
    assert reproduce_config("paper", "full").base.p == 113


def test_summary_verdicts_carry_their_named_numbers_and_the_report_shows_them(tiny_out):
    # the fields the docs and readers rely on: renaming one in a stage breaks this test
    summary = json.loads((tiny_out / "summary.json").read_text())
    p2, p3, fig10a = (summary["verdicts"][k] for k in ("P2", "P3", "fig10a"))
    assert {"jump", "D_crit", "delta_bic", "n_in_band", "n_excluded", "excluded", "refined_sizes"} <= set(p2)
    assert p2["rule"]["min_delta_bic"] == 10 and p2["rule"]["min_in_band"] == 3
    assert {"slope", "D_crit_by_weight_decay", "steps_per_weight_decay"} <= set(p3)
    assert p3["rule"]["tolerance"] == 0.1 and p3["rule"]["min_wd_ratio"] == 4
    assert {"spearman", "median_by_D"} <= set(fig10a) and fig10a["rule"]["min_seeds_per_D"] == 3
    report = (tiny_out / "report.md").read_text()
    assert "| jump |" in report and "| rule: min_delta_bic | 10 |" in report and "**median_by_D**" in report


def test_report_renders_any_verdict_field_by_its_name():
    # the report knows no verdict's fields: a new or renamed number shows under its own name
    from circeff.analysis.verdicts import Verdict
    from circeff.report import write_report
    from circeff.reproduce.results import StageResult

    v = Verdict("P2", True, "because", {"renamed_jump": 0.75, "D_crit_new": {"value": 80.0, "lo": 60.0, "hi": None, "level": 0.95,
                                                         "method": "bootstrap"}},
                {"min_jump": 0.5})
    summary = {"preset": "cpu", "scale": "tiny", "timings": {"total_s": 1.0, "stages_s": 1.0},
               "environment": {"finished": "now", "platform": "here"}}
    text = write_report(summary, [StageResult("ungrokking", verdicts=[v])], [v])
    assert "| renamed_jump | 0.75 |" in text and "| D_crit_new | 80 [60, inf] |" in text
    assert "n/a" not in text and "—" not in text


def test_float_check_trains_the_stages_again_and_labels_every_verdict_from_the_second_order(tmp_path):
    from circeff.reproduce import run_reproduce

    out = tmp_path / "fc"
    summary = run_reproduce(reproduce_config("cpu", "tiny"), out, progress=False, stages=("base", "fig10"),
                            float_check=True)
    fo = summary["float_order"]
    assert fo["run"] is True and fo["block_size"] == 256 and set(fo["outcomes"]) == {"fig10a"}
    assert (out / "float-order" / "fig10" / "done.json").is_file() and (out / "fig10" / "done.json").is_file()
    check = summary["verdicts"]["fig10a"]["robustness"]["checks"]["float_order"]
    assert check["passed"] is (fo["outcomes"]["fig10a"] == summary["verdicts"]["fig10a"]["outcome"])
    assert check["detail"] == f"second order: {fo['outcomes']['fig10a']}"
    # called again, every stage is restored: this call takes little, but the record of what the
    # second run cost stays
    again = run_reproduce(reproduce_config("cpu", "tiny"), out, progress=False, stages=("base", "fig10"),
                          float_check=True)["float_order"]
    assert fo["stages_s"] > 0 and again["stages_s"] == fo["stages_s"] and again["seconds"] < fo["stages_s"]
    assert f"The float-order second run (`float-order/`, CPU block size 256) took {fo['stages_s']:.1f} s" in \
        (out / "report.md").read_text()
    # without it the check is not run, and the verdict cannot be robust
    plain = run_reproduce(reproduce_config("cpu", "tiny"), tmp_path / "plain", progress=False,
                          stages=("base", "fig10"))
    entry = plain["verdicts"]["fig10a"]["robustness"]
    assert plain["float_order"] == {"run": False} and entry["checks"]["float_order"]["passed"] is None
    assert entry["label"] == "fragile" and "float_order" in entry["not_passed"]


def test_reproduce_keeps_a_folder_whose_config_differs_only_in_a_decision_rule(tmp_path):
    cfg = reproduce_config("cpu", "tiny")
    prepare_out(tmp_path, cfg, force=False)
    saved = json.loads((tmp_path / "reproduce_config.json").read_text())
    saved["semigrokking"]["rule"]["min_power"] = 0.5  # an older rule
    saved["controls_n"] = 7
    (tmp_path / "reproduce_config.json").write_text(json.dumps(saved))
    (tmp_path / "efficiency").mkdir()
    (tmp_path / "efficiency" / "done.json").write_text("{}")
    prepare_out(tmp_path, cfg, force=False)  # no error: only the rule differs
    assert (tmp_path / "efficiency" / "done.json").is_file()  # its networks are kept
    assert json.loads((tmp_path / "reproduce_config.json").read_text()) == json.loads(json.dumps(
        to_plain(cfg.to_dict())))
    saved["semigrokking"]["n_sizes"] = 99  # a training setting is another config
    (tmp_path / "reproduce_config.json").write_text(json.dumps(saved))
    with pytest.raises(Exception, match="different reproduce config"):
        prepare_out(tmp_path, cfg, force=False)


def test_reproduce_decides_again_when_the_rules_code_changed(tiny_out, tmp_path, monkeypatch):
    import shutil

    import circeff.reproduce as R

    out = tmp_path / "run"
    shutil.copytree(tiny_out, out)
    before = json.loads((out / "summary.json").read_text())["timings"]["stages"]
    checkpoints = {p: p.stat().st_mtime_ns for p in out.rglob("checkpoint.safetensors")}
    torch_threads = torch.get_num_threads()
    # negative control: the same rules restore every finished stage
    same = R.run_reproduce(reproduce_config("cpu", "tiny"), out, progress=False)["timings"]["stages"]
    assert all(t["skipped"] for n, t in same.items() if before[n]["status"] == "done")
    monkeypatch.setattr(R, "RULES_VERSION", R.RULES_VERSION + 1)
    after = R.run_reproduce(reproduce_config("cpu", "tiny"), out, progress=False)["timings"]["stages"]
    torch.set_num_threads(torch_threads)
    assert checkpoints and all(p.stat().st_mtime_ns == t for p, t in checkpoints.items())  # nothing retrained
    for name, t in after.items():
        if before[name]["status"] == "done":
            assert not t["skipped"] and t["earlier_s"] == pytest.approx(before[name]["seconds"]), name


def test_reproduce_decides_again_under_a_new_rule_on_the_networks_it_trained(tiny_out, tmp_path):
    import dataclasses
    import shutil

    from circeff.reproduce import run_reproduce

    out = tmp_path / "run"
    shutil.copytree(tiny_out, out)
    before = json.loads((out / "summary.json").read_text())["timings"]["stages"]
    checkpoints = {p: p.stat().st_mtime_ns for p in out.rglob("checkpoint.safetensors")}
    cfg = reproduce_config("cpu", "tiny")
    newer = dataclasses.replace(cfg, semigrokking=dataclasses.replace(
        cfg.semigrokking, rule=dataclasses.replace(cfg.semigrokking.rule, min_power=0.5)))
    torch_threads = torch.get_num_threads()
    summary = run_reproduce(newer, out, progress=False)
    torch.set_num_threads(torch_threads)
    after = summary["timings"]["stages"]
    assert checkpoints and all(p.stat().st_mtime_ns == t for p, t in checkpoints.items())  # nothing retrained
    for name, t in after.items():
        assert not t["skipped"], name  # every stage decided again (its done marker names the older rule)
        # a finished stage's earlier time counts; a failed one (P1 at this scale) left none to reuse
        finished = before[name]["status"] == "done"
        assert t["earlier_s"] == pytest.approx(before[name]["seconds"] if finished else 0.0), name
    assert sum(t["earlier_s"] > 0 for t in after.values()) >= 4
    assert summary["timings"]["stages_s"] == pytest.approx(sum(t["seconds"] + t["earlier_s"] for t in after.values()),
                                                           abs=0.05)
    assert summary["verdicts"]["P4"]["rule"]["min_power"] == 0.5
    assert "decided again" in (out / "report.md").read_text()
