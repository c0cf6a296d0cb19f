"""Figure 8: ungrokking per task, bases checked on held-out pairs, P2/P3 per task."""

from __future__ import annotations

from dataclasses import replace

import pytest

from circeff.empirical.experiments.figure8 import OTHER_TASKS, Figure8Config, run_figure8, write_figure8, task_p
from circeff.empirical.tasks import TASKS
from circeff.reproduce.config import reproduce_config


def _tiny(**kw) -> Figure8Config:
    ung = reproduce_config("cpu", "tiny").ungrokking
    ung = replace(ung, base=replace(ung.base, training=replace(ung.base.training, steps=40)), sizes=(10, 30, 60),
                  decay_budget=20.0, n_boot=20)
    return Figure8Config(ung, **kw)


def test_the_nine_other_tasks_and_their_moduli():
    assert set(OTHER_TASKS) == set(TASKS) - {"add"} and len(OTHER_TASKS) == 9
    assert task_p("perm", 31) == 24 and task_p("perm", 23) == 6 and task_p("perm", 120) == 120
    assert task_p("sub", 31) == 31


def test_each_task_gets_its_own_bases_with_a_held_out_set():
    cfg = _tiny(tasks=("sub", "perm"), base_train_frac=0.8)
    sub, perm = cfg.ungrokking_for("sub"), cfg.ungrokking_for("perm")
    assert (sub.base.task, sub.base.p, perm.base.task, perm.base.p) == ("sub", 11, "perm", 6)
    assert sub.base.train_size < sub.base.training.n_examples  # pairs held out to check generalisation
    assert sub.sizes == (10, 30, 60)
    # the same fractions of the pairs: 36 permutation pairs against addition's 121
    assert perm.sizes == tuple(max(2, round(d * 36 / 121)) for d in (10, 30, 60))
    assert all(d < perm.base.train_size for d in perm.sizes)


def test_bases_that_did_not_generalise_are_not_continued(tmp_path):
    # 40 steps at P = 11: the held-out accuracy stays far below 0.99, so the rule must say no
    r = run_figure8(_tiny(tasks=("sub",)), tmp_path, progress=False)
    write_figure8(r)
    row = r.rows.iloc[0]
    assert not row["generalised"] and row["base_held_out_acc_min"] < 0.99 and "did not generalise" in row["note"]
    assert r.verdicts == {} and not (tmp_path / "sub" / "ungrokking.csv").exists()


@pytest.mark.slow
def test_generalised_tasks_get_dcrit_p2_p3_and_the_figure(tmp_path):
    r = run_figure8(_tiny(tasks=("sub", "mul"), generalised_acc=0.0), tmp_path, progress=False)
    write_figure8(r)
    assert set(r.verdicts) == {"sub", "mul"} and all(set(v) == {"P2", "P3"} for v in r.verdicts.values())
    assert (tmp_path / "figure8.png").is_file() and (tmp_path / "figure8.csv").is_file()
    assert r.rows["generalised"].all()
    # the trig share is addition's: the rules must not reject other tasks' bases as "not G-only"
    assert all("G-only" not in v.reason for vs in r.verdicts.values() for v in vs.values())
    # one decision per task: the task's own ungrokking.json says what figure8.json says
    import json

    for task, vs in r.verdicts.items():
        own = json.loads((tmp_path / task / "ungrokking.json").read_text())
        assert own["P2"]["reason"] == vs["P2"].reason and own["P3"]["reason"] == vs["P3"].reason


def test_other_tasks_are_not_held_to_the_trig_share_check():
    import numpy as np
    import pandas as pd

    from circeff.analysis.verdicts import p3
    from circeff.empirical.experiments.ungrokking import verdict_table

    # a clean P3 design (D_crit flat across three weight decays spanning 4x), bases without a
    # trig share (NaN: another task); the same table with the column is rejected as "not G-only"
    rows = [{"D": d, "seed": s, "weight_decay": wd, "final_test_acc": 1.0 / (1.0 + (100.0 / d) ** 8),
             "converged": True, "status": "ok", "base_trig_share": np.nan}
            for d in np.geomspace(40, 400, 9) for s in (0, 1) for wd in (2.0, 4.0, 8.0)]
    table = pd.DataFrame(rows)
    assert not p3(table, 1 / 31).holds and "G-only" in p3(table, 1 / 31).reason
    assert not p3(verdict_table(table), 1 / 31).holds  # the column kept (addition's bases)
    assert p3(verdict_table(table, trig_share=False), 1 / 31).holds
