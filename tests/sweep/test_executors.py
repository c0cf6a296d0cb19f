"""One executor interface: in-process batches, a process pool, submitit (local subprocesses)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from circeff.sweep.executors import (
    InProcessExecutor,
    PoolExecutor,
    RunTask,
    SubmititExecutor,
    group_tasks,
    make_executor,
)
from circeff.errors import ConfigError, RunError
from circeff.sweep.runner import plan, run_sweep
from circeff.sweep.store import RunStatus, RunStore, combine
from tests.sweep import workfns
from tests.sweep.workfns import ToyRunConfig, toy_batch


def _configs(n, **kw):
    return [ToyRunConfig(target=float(i), group="ab"[i % 2], **kw) for i in range(n)]


def test_inprocess_puts_compatible_runs_in_one_batch(tmp_path):
    report = run_sweep(_configs(6), tmp_path, InProcessExecutor(toy_batch, group_key=lambda c: c.group))
    assert sorted(len(call) for call in workfns.CALLS) == [3, 3], "one engine batch per group"
    assert all(r.ok for r in report.results) and report.total == 6
    assert RunStore(tmp_path).counts()["done"] == 6
    workfns.CALLS.clear()
    run_sweep(_configs(6), tmp_path, InProcessExecutor(toy_batch, group_key=lambda c: c.group, max_batch=2))
    assert workfns.CALLS == [], "finished runs are skipped"


def test_max_batch_splits_groups():
    tasks = [RunTask(c, Path(f"/x/{i}")) for i, c in enumerate(_configs(7))]  # 4 in group a, 3 in b
    groups = group_tasks(tasks, lambda c: c.group, max_batch=2)
    assert [len(g) for g in groups] == [2, 2, 2, 1]
    assert all(len({t.config.group for t in g}) == 1 for g in groups)
    assert sorted(t.out_dir for g in groups for t in g) == sorted(t.out_dir for t in tasks)
    assert [len(g) for g in group_tasks(tasks, None)] == [1] * 7


def test_a_failed_run_is_marked_and_its_batch_goes_on(tmp_path):
    configs = [ToyRunConfig(target=1.0), ToyRunConfig(target=2.0, fail=True), ToyRunConfig(target=3.0)]
    report = run_sweep(configs, tmp_path, InProcessExecutor(toy_batch, group_key=lambda c: c.group))
    assert [r.ok for r in report.results] == [True, False, True]
    bad = report.results[1]
    assert "NaN at step 2" in bad.error and "\n" not in bad.error
    assert json.loads((bad.out_dir / "failed.json").read_text())["error"] == bad.error
    assert RunStore(tmp_path).status(configs[1]) is RunStatus.NEW, "a failed run is retried by a rerun"
    assert combine(tmp_path)["run_id"].nunique() == 2


def test_process_pool_runs_every_group(tmp_path):
    report = run_sweep(_configs(4), tmp_path, PoolExecutor(toy_batch, group_key=lambda c: c.group, max_workers=2))
    assert all(r.ok for r in report.results)
    assert len(combine(tmp_path)) == 4 * 4


def test_submitit_local_runs_jobs_in_real_subprocesses(tmp_path):
    pytest.importorskip("submitit")
    configs = _configs(3) + [ToyRunConfig(target=9.0, group="c", crash=True)]
    executor = SubmititExecutor(toy_batch, folder=tmp_path / "jobs", cluster="local",
                                group_key=lambda c: c.group, timeout_min=5)
    report = run_sweep(configs, tmp_path / "store", executor)
    ok = {r.run_id: r for r in report.results}
    assert [r.ok for r in report.results] == [True, True, True, False]
    crashed = report.results[3]
    assert crashed.error.startswith("job ") and "\n" not in crashed.error
    assert workfns.CALLS == [], "the work ran in other processes, not in this one"
    assert len(list((tmp_path / "jobs").glob("*_log.out"))) >= 3, "submitit wrote job logs"
    table = combine(tmp_path / "store")
    assert table["run_id"].nunique() == 3 and set(ok) >= set(table["run_id"])


def test_slurm_without_sbatch_or_partition_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="--partition"):
        make_executor("slurm", toy_batch, folder=tmp_path)
    monkeypatch.setenv("PATH", "/nonexistent")
    executor = make_executor("slurm", toy_batch, folder=tmp_path, partition="gpu")
    with pytest.raises(RunError, match="sbatch"):
        executor.run(plan(RunStore(tmp_path / "s"), _configs(1))[0])
    with pytest.raises(ConfigError, match="--executor"):
        make_executor("ray", toy_batch)
