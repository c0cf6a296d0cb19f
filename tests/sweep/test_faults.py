"""Faults around the store: unwritable and full out folders give one clear line, then resume."""

from __future__ import annotations

import errno
import json
import os

import pandas as pd
import pytest

import circeff.io

GRID = {"kind": "toy", "grid": {"target": [1.0, 2.0, 3.0]}}


def _grid(tmp_path):
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(GRID))
    return path


def _one_line(capsys, *needles):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("error: ") and all(n in err for n in needles), err
    return err


@pytest.mark.parametrize("where", ["parent_is_file", "dev_null"])
def test_unwritable_out_folder_is_one_line(tmp_path, cli, capsys, where):
    (tmp_path / "a_file").write_text("x")
    out = tmp_path / "a_file" / "store" if where == "parent_is_file" else "/dev/null/store"
    assert cli(["sweep", "run", str(_grid(tmp_path)), "--out", str(out)]) == 1
    _one_line(capsys, str(out), "cannot create")


def test_out_that_is_a_file_is_one_line(tmp_path, cli, capsys):
    (tmp_path / "a_file").write_text("x")
    assert cli(["sweep", "run", str(_grid(tmp_path)), "--out", str(tmp_path / "a_file")]) == 2
    _one_line(capsys, "--out")
    assert (tmp_path / "a_file").read_text() == "x"


def _fill_disk_after(monkeypatch, n_ok):
    """fsync fails with ENOSPC after n_ok successful calls, as on a full disk."""
    calls = [0]
    real = os.fsync

    def fsync(fd):
        calls[0] += 1
        if calls[0] > n_ok:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(circeff.io.os, "fsync", fsync)


@pytest.mark.parametrize("n_ok", [0, 7])  # full from the start / fills in the middle of a run
def test_full_disk_is_one_line_and_the_sweep_resumes(tmp_path, cli, capsys, monkeypatch, n_ok):
    out = tmp_path / "store"
    with monkeypatch.context() as m:
        _fill_disk_after(m, n_ok)
        assert cli(["sweep", "run", str(_grid(tmp_path)), "--out", str(out)]) == 1
        _one_line(capsys, "No space left on device")
    assert not list(tmp_path.rglob(".*.tmp")), "a failed atomic write leaves no temporary file"
    assert cli(["sweep", "run", str(_grid(tmp_path)), "--out", str(out)]) == 0  # space freed: resume
    table = pd.read_csv(out / "results.csv")
    assert table["run_id"].nunique() == 3 and len(table) == 3 * 4
