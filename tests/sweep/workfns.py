"""Pure-Python work for the sweep tests: a tiny 'training' that checkpoints and resumes.

Module-level so that process pools and submitit subprocesses can import it by name.
Each run integrates x_{t+1} = x_t + (target - x_t) * rate for `steps` steps, writes one
metrics row per step, a checkpoint after each step, and logs each computed step to
steps.log so tests can see that a resumed run does not redo finished steps.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from circeff import validate
from circeff.errors import ConfigError
from circeff.io import read_json, write_csv, write_json
from circeff.sweep.executors import RunTask
from circeff.sweep.grid import SweepKind, config_from_mapping

# Set by tests (in-process only): raise KeyboardInterrupt after this many steps in total.
INTERRUPT_AFTER_STEPS: list[int | None] = [None]
STEPS_DONE = [0]
CALLS: list[list[str]] = []   # run ids of every batch call (in-process only)


@dataclasses.dataclass(frozen=True)
class ToyRunConfig:
    target: float
    rate: float = 0.5
    steps: int = 4
    seed: int = 0
    group: str = "a"
    fail: bool = False            # this run returns an error (others of its batch go on)
    crash: bool = False           # the whole process dies (os._exit) - for pool/submitit

    def __post_init__(self) -> None:
        validate.in_range("target", self.target, -1e6, 1e6)
        validate.in_range("rate", self.rate, 0.0, 1.0, lo_open=True)
        validate.integer_at_least("steps", self.steps, 1)
        validate.integer_at_least("seed", self.seed, 0)
        if not isinstance(self.group, str) or not self.group:
            raise ConfigError("group", "must be a non-empty string", self.group)
        for name in ("fail", "crash"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, "must be true or false", getattr(self, name))


def _run_one(task: RunTask) -> dict:
    cfg: ToyRunConfig = task.config
    out = Path(task.out_dir)
    ckpt = out / "checkpoint.json"
    if task.resume and ckpt.exists():
        state = read_json(ckpt)
    else:
        state = {"step": 0, "x": float(cfg.seed), "rows": []}
    while state["step"] < cfg.steps:
        if INTERRUPT_AFTER_STEPS[0] is not None and STEPS_DONE[0] >= INTERRUPT_AFTER_STEPS[0]:
            raise KeyboardInterrupt
        x = state["x"] + (cfg.target - state["x"]) * cfg.rate
        state = {"step": state["step"] + 1, "x": x,
                 "rows": state["rows"] + [{"step": state["step"] + 1, "x": x}]}
        with open(out / "steps.log", "a") as fh:
            fh.write(f"{state['step']}\n")
        write_json(ckpt, state)
        STEPS_DONE[0] += 1
    write_csv(out / "metrics.csv", state["rows"], fieldnames=["step", "x"])
    return {"final_x": state["x"]}


def toy_batch(tasks: Sequence[RunTask]) -> list:
    CALLS.append([t.run_id for t in tasks])
    values: list = []
    for task in tasks:
        if task.config.crash:
            os._exit(3)
        if task.config.fail:
            values.append(FloatingPointError(f"loss is NaN at step 2 (run {task.run_id})"))
            continue
        values.append(_run_one(task))
    return values


def toy_kind() -> SweepKind:
    return SweepKind("toy", lambda d: config_from_mapping(ToyRunConfig, d), toy_batch,
                     group_key=lambda c: c.group)
