"""`circeff train` under bad input and bad folders: one line, the right exit code, nothing written."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import circeff.io

BASE = ["--task", "add", "--p", "7", "--steps", "2", "--seeds", "0", "--no-progress"]

_not_int = st.sampled_from(["x", "1.5", "", "1e3", "nan", "0x10", "--", "two"])
_not_float = st.sampled_from(["x", "", "one", "1,,2", "--"])
BAD_OPTIONS = {
    "--p": st.one_of(_not_int, st.integers(max_value=1).map(str), st.integers(min_value=10**4, max_value=10**9).map(str)),
    "--steps": st.one_of(_not_int, st.integers(max_value=-1).map(str)),
    "--lr": st.one_of(_not_float, st.floats(max_value=0.0, allow_nan=False, allow_infinity=False).map(repr),
                      st.sampled_from(["inf", "nan"])),
    "--seeds": st.one_of(st.sampled_from(["", "a,b", "1,,2", "0.5", ","]), st.integers(max_value=-1).map(str)),
    "--weight-decays": st.one_of(st.sampled_from(["", "a", "1,,2", "nan", "inf"]),
                                st.floats(max_value=-1e-6, allow_nan=False, allow_infinity=False).map(repr)),
    "--train-frac": st.one_of(st.sampled_from(["", "x", "nan"]), st.floats(max_value=0.0, allow_nan=False,
                              allow_infinity=False).map(repr), st.floats(min_value=1.001, max_value=1e9).map(repr)),
    "--sizes": st.one_of(st.sampled_from(["", "x", "0"]), st.integers(min_value=50, max_value=10**9).map(str)),
    "--task": st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(
        lambda t: t not in {"add", "sub", "mul", "div", "perm", "x3_xy", "div_or_sub", "x2_xy_y2", "x2_plus_y2"}),
    "--nan-policy": st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6).filter(lambda t: t not in {"freeze", "stop"}),
    "--device": st.sampled_from(["tpu", "gpu", "cpux", "", "cuda"]),
    "--log-every": st.one_of(_not_int, st.integers(max_value=0).map(str)),
    "--checkpoint-every": st.one_of(_not_int, st.integers(max_value=0).map(str)),
    "--chunk-size": st.one_of(_not_int, st.integers(max_value=0).map(str)),
    "--preset": st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6).filter(lambda t: t not in {"quick", "full", "paper"}),
    "--label-seed": st.one_of(_not_int, st.integers(max_value=-1).map(str)),
    "--data-seed": st.one_of(_not_int, st.integers(max_value=-1).map(str)),
}


@st.composite
def bad_train_argv(draw):
    """(names the error may use, argv) with exactly one bad option or one contradiction."""
    if draw(st.integers(0, 9)) == 0:
        return {"--train-frac", "--sizes"}, [*BASE, "--train-frac", "0.5", "--sizes", "10"]
    option = draw(st.sampled_from(sorted(BAD_OPTIONS)))
    value = draw(BAD_OPTIONS[option])
    return {option}, [*BASE, option, value]


def test_hypothesis_bad_train_options_one_line_exit_2_nothing_written(capsys):
    from circeff.cli.main import run

    tried = []

    @settings(max_examples=150)
    @given(bad_train_argv())
    def check(case):
        names, argv = case
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out"
            code = run(["train", "--out", str(out), *argv])
            captured = capsys.readouterr()
            err = captured.err
            assert code == 2, (argv, err, captured.out)
            assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
            # one naming scheme: the error names the flag the user typed, first
            assert any(err.startswith(f"error: {n}:") or f"'{n}'" in err for n in names), (names, err)
            assert not out.exists(), f"{argv} wrote {list(out.rglob('*'))}"
        tried.append(argv)

    check()
    assert len(tried) >= 100
    print(f"bad circeff train option sets tried: {len(tried)}")


@pytest.mark.parametrize("where", ["parent_is_file", "dev_null"])
def test_train_into_unwritable_folder_is_one_line(tmp_path, capsys, where):
    from circeff.cli.main import run

    (tmp_path / "a_file").write_text("x")
    out = tmp_path / "a_file" / "run" if where == "parent_is_file" else Path("/dev/null/run")
    code = run(["train", "--out", str(out), *BASE])
    err = capsys.readouterr().err
    assert code in (1, 2) and err.count("\n") == 1 and err.startswith("error: ") and str(out) in err, err


def test_train_into_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    from circeff.cli.main import run

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(circeff.io.os, "fsync", full)
    code = run(["train", "--out", str(tmp_path / "run"), *BASE])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "No space left on device" in err, err
    assert not list(tmp_path.rglob(".*.tmp")), "no half-written temporary files"
