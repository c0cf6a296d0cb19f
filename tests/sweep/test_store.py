"""The result store: hash-keyed run folders, status from files, one combined table."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import given

from circeff.errors import RunError
from circeff.sweep.store import (
    RunStatus,
    RunStore,
    combine,
    config_hash,
    config_to_dict,
    load_results,
    mark_done,
)
from tests.strategies.sweep import toy_configs
from tests.sweep.workfns import ToyRunConfig


@given(toy_configs())
def test_hash_is_a_function_of_the_full_config(cfg):
    same = ToyRunConfig(**config_to_dict(cfg))
    assert config_hash(same) == config_hash(cfg)
    assert config_hash(config_to_dict(cfg)) == config_hash(cfg)  # a dict hashes like its dataclass
    other = ToyRunConfig(**{**config_to_dict(cfg), "seed": cfg.seed + 1})
    assert config_hash(other) != config_hash(cfg)


def test_hash_is_stable_across_versions():
    # Pinned: changing the canonical form would orphan every store written before.
    assert config_hash({"b": [1, 2], "a": 0.1}) == config_hash({"a": 0.1, "b": (1, 2)})
    assert config_hash({"a": 1}) == "015abd7f5cc57a2d"  # sha256 of '{"a":1}', first 16 hex digits


def test_status_follows_the_files(tmp_path):
    store = RunStore(tmp_path / "s")
    cfg = ToyRunConfig(target=2.0)
    assert store.status(cfg) is RunStatus.NEW
    assert not (tmp_path / "s").exists(), "asking for a status must write nothing"
    run_dir = store.prepare(cfg)
    assert run_dir.name == config_hash(cfg)
    assert json.loads((run_dir / "config.json").read_text()) == config_to_dict(cfg)
    assert store.status(cfg) is RunStatus.NEW
    (run_dir / "checkpoint.json").write_text("{}")
    assert store.status(cfg) is RunStatus.RESUMABLE
    mark_done(run_dir, {"final_x": 1.5})
    assert store.status(cfg) is RunStatus.DONE
    assert store.counts() == {"new": 0, "resumable": 0, "done": 1}
    assert not list(run_dir.glob(".*.tmp")), "atomic writes leave no temporary files"


def test_tampered_config_is_a_clear_error(tmp_path, cli, capsys):
    store = RunStore(tmp_path)
    run_dir = store.prepare(ToyRunConfig(target=2.0))
    (run_dir / "config.json").write_text(json.dumps(config_to_dict(ToyRunConfig(target=3.0))))
    with pytest.raises(RunError, match="hashes to"):
        store.verify()
    with pytest.raises(RunError, match="hashes to"):
        store.prepare(ToyRunConfig(target=2.0))
    assert cli(["sweep", "combine", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hashes to" in err and "Traceback" not in err


def test_combine_writes_one_table_pandas_loads(tmp_path):
    store = RunStore(tmp_path)
    for seed in range(3):
        cfg = ToyRunConfig(target=1.0, seed=seed, steps=2)
        run_dir = store.prepare(cfg)
        pd.DataFrame({"step": [1, 2], "x": [seed + 0.5, seed + 0.75]}).to_csv(run_dir / "metrics.csv", index=False)
        if seed < 2:
            mark_done(run_dir)
    table = combine(tmp_path)
    loaded = pd.read_csv(tmp_path / "results.csv")
    assert len(loaded) == 4 and loaded["run_id"].nunique() == 2, "unfinished runs are left out"
    assert {"step", "x", "target", "rate", "seed", "steps", "group"} <= set(loaded.columns)
    pd.testing.assert_frame_equal(loaded, table.reset_index(drop=True), check_dtype=False)
    pd.testing.assert_frame_equal(load_results(tmp_path), loaded, check_dtype=False)


def test_combine_of_empty_store_loads(tmp_path):
    combine(tmp_path)
    assert pd.read_csv(tmp_path / "results.csv").empty


def test_a_second_sweep_on_a_busy_store_is_refused(tmp_path):
    store = RunStore(tmp_path)
    with store.lock():
        with pytest.raises(RunError, match="in use by another sweep"):
            with RunStore(tmp_path).lock():
                pass
    with RunStore(tmp_path).lock():  # released when the holder ends
        pass
