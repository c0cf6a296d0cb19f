"""docs/tutorial.md is executed: its Python blocks run in order in one namespace, as a reader
pasting them into one session would. Any block that raises fails this test, naming the block."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(text: str) -> list[str]:
    return BLOCK.findall(text)


def test_the_tutorial_has_the_six_steps():
    blocks = python_blocks(TUTORIAL.read_text())
    assert len(blocks) == 6
    for needed in ("run_claims", "minimise", "simulate_one", "train(", "analyse_params", "savefig"):
        assert any(needed in b for b in blocks), needed


def run_blocks(blocks: list[str]) -> list[float]:
    namespace: dict = {"__name__": "__tutorial__"}
    seconds = []
    for i, code in enumerate(blocks, 1):
        t0 = time.perf_counter()
        try:
            exec(compile(code, f"{TUTORIAL.name} block {i}", "exec"), namespace)  # noqa: S102
        except Exception as exc:  # noqa: BLE001 - report which block failed
            pytest.fail(f"{TUTORIAL.name} block {i} failed: {type(exc).__name__}: {exc}")
        seconds.append(time.perf_counter() - t0)
    return seconds


def test_every_tutorial_block_runs_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    seconds = run_blocks(python_blocks(TUTORIAL.read_text()))
    assert (tmp_path / "tutorial-out" / "accuracy.png").is_file()
    with capsys.disabled():
        print(f"\ntutorial blocks: {', '.join(f'{s:.1f}' for s in seconds)} s (total {sum(seconds):.1f} s)")


def test_a_broken_block_fails_the_test(tmp_path, monkeypatch):
    """Negative control: a block that raises is reported, not skipped."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(pytest.fail.Exception, match="block 2 failed: NameError"):
        run_blocks(["x = 1", "print(undefined_name)"])
