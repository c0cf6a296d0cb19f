"""Train a batch of E one-layer transformers with full-batch AdamW (the paper's Section 4 and Appendix A).

Read :func:`train` from top to bottom: build the data, start (fresh, from another run's
weights, or from this run's checkpoint), then repeat {loss and gradients of every model,
check for divergence, one AdamW step} and log metrics and checkpoints on the way.

Outputs in the run folder:

- ``config.json``: the :class:`TrainConfig`.
- ``metrics.csv``: one row per model every ``log_every`` steps (columns
  :data:`circeff.empirical.metrics.METRIC_COLUMNS`); written at every checkpoint and at the end.
  A missing value (the test metrics of a model trained on every example) is NaN in memory
  and an empty cell in the file (:mod:`circeff.empirical.metrics`).
- ``checkpoint.safetensors``: see :mod:`circeff.empirical.checkpoint`; the last one is the final state.
- ``summary.json``: per model the final metrics (null where missing or non-finite),
  divergence step, and the wall time.
- ``tensorboard/`` (with ``tensorboard=True``): the same metrics as TensorBoard event files,
  for looking at; metrics.csv stays the record the package reads.
- ``snapshots/`` (with ``snapshot_every=N``): the weights at step 0, every N steps and at the
  last step, one safetensors file per step (``step_XXXXXXXX.safetensors``, the checkpoint's
  format without the optimiser: :mod:`circeff.empirical.checkpoint`), listed in
  ``snapshots/index.csv`` with the metric rows of every model at that step (measured at that
  step even where it is not a ``log_every`` step; metrics.csv keeps its own rhythm). A snapshot
  is written before the checkpoint of the same step, and a run that starts again from its
  checkpoint at step c first deletes the snapshots after c (a kill between a snapshot and
  the next checkpoint leaves such stale ones) and rebuilds the index from the files, then
  writes those steps again, bit-identically on the CPU: the index has every step once.
  Snapshots of steps up to c stay. ``snapshot_every`` is an argument, not a config field:
  give it again when resuming (without it, no new snapshots are written).

Interrupts: SIGINT (Ctrl-C) and SIGTERM (what schedulers send) during :func:`train` finish the
step in progress, save the checkpoint and metrics.csv at that step and raise
:class:`circeff.errors.Interrupted` (a RunError; one line saying what was saved and how to
continue). Rerunning the same command continues from that step, bit-identically on the CPU.
summary.json is not written then: it marks a finished run (``train_or_reuse`` and
the allocation experiment read it so). A second signal while the steps run stops at once
(KeyboardInterrupt; the last checkpoint stays). The handlers are installed only in the main
thread (Python allows no other), not for a signal that is being ignored (a background job's SIGINT), and the
previous handlers are restored when :func:`train` returns or raises.

Without a progress bar, a line with the step, the elapsed time and an ETA goes to stderr every
``eta_every_s`` seconds (5 minutes by default), so a long run is never silent.

Divergence (a non-finite loss or gradient), per model: with ``nan_policy="freeze"`` the model
keeps the weights at which its loss was first non-finite, is excluded from updates, and its
rows say ``status=diverged`` from that step on; the other models' computations never mix with
it, so they are unaffected. If every model has diverged, the run saves and stops with a
RunError naming the step. With ``nan_policy="stop"`` the first divergence saves and stops.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import numpy as np
import torch
from torch import Tensor

from circeff.empirical.checkpoint import (
    CHECKPOINT_NAME,
    Checkpoint,
    checkpoint_path,
    load_checkpoint,
    prune_snapshots,
    save_checkpoint,
    save_snapshot,
    snapshot_files,
    write_snapshot_index,
)
from circeff.empirical.config import TrainConfig
from circeff.empirical.metrics import (METRIC_COLUMNS, TEST_COLUMNS, csv_rows, has_test_set, metric_rows,
                                       per_example_loss64)
from circeff.empirical.batched import (Incidence, build_incidence, logits_from_tables, loss_and_table_grads, uses_fold,
                                       vocabulary_tables)
from circeff.empirical.model import WEIGHT_NAMES, Params, init_params, param_norm
from circeff.empirical.optim import adamw_init, adamw_step
from circeff.empirical.tasks import Dataset, make_dataset, train_indices
from circeff.progress import bar as progress_bar
from circeff.errors import ConfigError, Interrupted, RunError
from circeff.io import ensure_dir, write_csv, write_json
from circeff.validate import integer_at_least

__all__ = ["RunResult", "StopSignals", "TrainingData", "build_training_data", "loss_and_grads", "train"]


# ---------------------------------------------------------------------------------------------
# Data: each chunk of models gets its training examples as padded [Ec, N_max] index tensors.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class TrainingData:
    """Training examples per chunk of models, and the full dataset for the metrics.

    Chunk ``c`` covers models ``chunks[c]``; ``a[c]``, ``b[c]``, ``labels[c]`` are ``[Ec, N_max]``
    (padded with example 0) and ``weights[c]`` is float64 ``1/N_e`` on real examples, 0 on padding.
    """

    chunks: tuple[slice, ...]
    a: tuple[Tensor, ...]
    b: tuple[Tensor, ...]
    labels: tuple[Tensor, ...]
    weights: tuple[Tensor, ...]
    all_a: Tensor            # [n] every example of the dataset
    all_b: Tensor
    all_labels: Tensor
    train_mask: Tensor       # [E, n] bool
    incidence: tuple[Incidence | None, ...]  # per chunk; None where the maps are not multiplied out


def build_training_data(dataset: Dataset, config: TrainConfig, device: torch.device) -> TrainingData:
    n, E, size = len(dataset), config.n_models, config.resolved_chunk_size
    subsets = [train_indices(n, r.train_size, r.data_seed) for r in config.runs]
    train_mask = np.zeros((E, n), dtype=bool)
    for e, idx in enumerate(subsets):
        train_mask[e, idx] = True
    chunks, a, b, labels, weights = [], [], [], [], []
    for start in range(0, E, size):
        sl = slice(start, min(start + size, E))
        n_max = max(len(subsets[e]) for e in range(sl.start, sl.stop))
        idx = np.zeros((sl.stop - sl.start, n_max), dtype=np.int64)
        w = np.zeros((sl.stop - sl.start, n_max), dtype=np.float64)
        for i, e in enumerate(range(sl.start, sl.stop)):
            idx[i, :len(subsets[e])] = subsets[e]
            w[i, :len(subsets[e])] = 1.0 / len(subsets[e])
        chunks.append(sl)
        a.append(torch.from_numpy(dataset.a[idx]).to(device))
        b.append(torch.from_numpy(dataset.b[idx]).to(device))
        labels.append(torch.from_numpy(dataset.labels[idx]).to(device))
        weights.append(torch.from_numpy(w).to(device))
    # Which rows each example sums depends only on the tokens: made once, used every step.
    incidence = tuple(build_incidence(a_c, b_c, config.task.p, config.model.n_heads, config.resolved_block_size)
                      if uses_fold(config.model, config.task, a_c.shape[1]) else None for a_c, b_c in zip(a, b, strict=True))
    return TrainingData(tuple(chunks), tuple(a), tuple(b), tuple(labels), tuple(weights),
                        torch.from_numpy(dataset.a.copy()).to(device), torch.from_numpy(dataset.b.copy()).to(device),
                        torch.from_numpy(dataset.labels.copy()).to(device), torch.from_numpy(train_mask).to(device),
                        incidence)


# ---------------------------------------------------------------------------------------------
# One step's work: loss and gradient of every model, chunk by chunk.
# ---------------------------------------------------------------------------------------------
def loss_and_grads(params: Params, data: TrainingData, config: TrainConfig) -> tuple[Tensor, Params]:
    """``[E]`` float64 mean training loss of every model and the gradients of the stacked weights.

    Per chunk of models (one batched computation): the vocabulary tables once, then the
    examples block by block and the tables' gradients (forward and backward written out by
    hand in :func:`~circeff.empirical.batched.loss_and_table_grads`, with the chunk's
    incidence made once in :func:`build_training_data`), and finally one autograd backward
    from the tables to the weights. Each model's slice of the gradient is that of its own loss.
    """
    grads = {n: torch.empty_like(p) for n, p in params.items()}
    losses = torch.zeros(config.n_models, dtype=torch.float64, device=params["W_E"].device)
    for c, sl in enumerate(data.chunks):
        leaf = {n: p[sl].detach().requires_grad_() for n, p in params.items()}
        tables = vocabulary_tables(leaf, config.task, fold=data.incidence[c] is not None)
        losses[sl], table_grads = loss_and_table_grads(tables.detach(), data.a[c], data.b[c], data.labels[c],
                                                       data.weights[c], config.resolved_block_size, data.incidence[c])
        torch.autograd.backward(tables.tensors(), table_grads.tensors())
        for n in WEIGHT_NAMES:
            grads[n][sl] = leaf[n].grad
    return losses, grads


@torch.no_grad()
def evaluate(params: Params, data: TrainingData, config: TrainConfig, step: int,
             diverged: list[int | None]) -> list[dict]:
    """Metric rows of every model at ``step`` (logits on every example of the dataset)."""
    rows, norms, n = [], param_norm(params), len(data.all_a)
    block = config.resolved_block_size or n
    fold = uses_fold(config.model, config.task, n)
    for sl in data.chunks:
        E_c = sl.stop - sl.start
        tables = vocabulary_tables({k: p[sl] for k, p in params.items()}, config.task, fold)
        nll, correct = [], []
        for j in range(0, n, block):
            logits = logits_from_tables(tables, data.all_a[j:j + block].expand(E_c, -1),
                                        data.all_b[j:j + block].expand(E_c, -1))
            labels = data.all_labels[j:j + block].expand(E_c, -1)
            nll.append(per_example_loss64(logits, labels))
            correct.append(logits.argmax(dim=-1) == labels)
        status = ["ok" if diverged[e] is None else "diverged" for e in range(sl.start, sl.stop)]
        rows += metric_rows(step, sl.start, torch.cat(nll, 1), torch.cat(correct, 1), data.train_mask[sl],
                            norms[sl], config.runs[sl], status)
    return rows


def _models_finite(losses: Tensor, grads: Params) -> Tensor:
    """``[E]`` bool: loss and every gradient entry finite (a sum is non-finite iff an entry is,
    barring overflow of a sum of huge finite gradients, which is divergence anyway)."""
    grad_sums = sum(g.flatten(1).sum(dim=1, dtype=torch.float64) for g in grads.values())
    return torch.isfinite(losses) & torch.isfinite(grad_sums)


# ---------------------------------------------------------------------------------------------
# Starting points
# ---------------------------------------------------------------------------------------------
def _fresh_start(config: TrainConfig, device: torch.device) -> Checkpoint:
    if config.init_from is None:
        params = init_params(config.model, config.task, [r.seed for r in config.runs], device)
    else:
        params = _weights_from_other_run(config, device)
    return Checkpoint(config, 0, params, adamw_init(params), torch.get_rng_state(), [None] * config.n_models, [])


def _weights_from_other_run(config: TrainConfig, device: torch.device) -> Params:
    src = load_checkpoint(config.init_from, device)
    for name in ("name", "p"):
        if getattr(src.config.task, name) != getattr(config.task, name):
            raise ConfigError("init_from", f"must be a run of the same task (task.{name} is "
                              f"{getattr(src.config.task, name)!r} there)", getattr(config.task, name))
    if src.config.model != config.model:
        raise ConfigError("init_from", "must be a run of the same architecture", str(src.config.model))
    index = [r.init_index if r.init_index is not None else e for e, r in enumerate(config.runs)]
    if max(index) >= src.config.n_models:
        raise ConfigError("init_index", f"must be < {src.config.n_models}, the models in {config.init_from}", max(index))
    picked = torch.tensor(index, device=device)
    return {n: src.params[n].index_select(0, picked).contiguous() for n in WEIGHT_NAMES}


def _json_number(value: object) -> object:
    """JSON has no NaN/inf: missing values and a diverged model's non-finite metrics become null in summary.json."""
    return None if isinstance(value, float) and not np.isfinite(value) else value


def _resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", "cuda is not available on this machine; use cpu", name)
    return torch.device(name)


# ---------------------------------------------------------------------------------------------
# Telling the user: an ETA line when there is no progress bar, TensorBoard when asked
# ---------------------------------------------------------------------------------------------
def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass
class EtaLog:
    """One line ``train: step s/S (x%), elapsed h:mm:ss, ETA h:mm:ss`` every ``every_s`` seconds."""

    total: int
    start_step: int
    every_s: float
    enabled: bool = True
    t0: float = field(default_factory=time.perf_counter)
    last: float = field(default_factory=time.perf_counter)

    def update(self, step: int) -> None:
        now = time.perf_counter()
        if not self.enabled or now - self.last < self.every_s or step <= self.start_step:
            return
        self.last = now
        elapsed = now - self.t0
        eta = elapsed / (step - self.start_step) * (self.total - step)
        print(f"train: step {step}/{self.total} ({100 * step / self.total:.0f}%), elapsed {_clock(elapsed)}, "
              f"ETA {_clock(eta)}", file=sys.stderr, flush=True)


TENSORBOARD_DIR = "tensorboard"
_TB_SCALARS = ("train_loss", "test_loss", "train_acc", "test_acc", "param_norm")


def _require_tensorboard() -> None:
    try:
        import torch.utils.tensorboard  # noqa: F401  (imports the tensorboard package)
    except ImportError:
        raise ConfigError("tensorboard", "needs the tensorboard package: "
                          "pip install 'circuit-efficiency[tensorboard]'") from None


def _tensorboard_writer(out: Path, purge_step: int | None):  # noqa: ANN202 - SummaryWriter when installed
    from torch.utils.tensorboard import SummaryWriter

    # purge_step: on resume, events after the checkpoint (written before a kill) are dropped.
    return SummaryWriter(log_dir=str(out / TENSORBOARD_DIR), purge_step=purge_step)


def _log_tensorboard(writer, rows: list[dict]) -> None:  # noqa: ANN001
    for row in rows:
        tested = has_test_set(row)
        for name in _TB_SCALARS:
            if tested or name not in TEST_COLUMNS:  # a missing value is no point (a diverged model's NaN is)
                writer.add_scalar(f"model_{row['model']}/{name}", float(row[name]), row["step"])


# ---------------------------------------------------------------------------------------------
# Interrupts: SIGINT / SIGTERM end the step in progress, then the run saves and stops
# ---------------------------------------------------------------------------------------------
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name))


class StopSignals:
    """Catch SIGINT and SIGTERM while :func:`train` runs (a context manager).

    The first signal only records itself (``received``); the loop checks it between steps.
    A second one while the steps run raises KeyboardInterrupt at once; while the state is
    being saved for the stop (``saving``) it is ignored, so that the stop's own save is never
    cut in half (a second signal during a periodic save may leave the checkpoint and
    metrics.csv a step apart, which the next start repairs). Installed only in the main thread,
    and not for a signal whose handler is SIG_IGN (a background job of a non-interactive shell
    keeps ignoring SIGINT); the previous handlers come back on exit. A signal that arrives after
    the last step is raised as :class:`circeff.errors.Interrupted` once the run has saved.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.saving = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in _STOP_SIGNALS:
            previous = signal.getsignal(sig)
            if previous is signal.SIG_IGN:
                continue
            try:
                signal.signal(sig, self._handle)
            except (ValueError, OSError):  # pragma: no cover - not allowed here (embedded interpreters)
                continue
            self._previous[sig] = previous
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        if self.received is not None and not self.saving:
            raise KeyboardInterrupt  # a second signal: stop now, the last checkpoint stays
        if self.received is None:
            self.received = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            # None: a handler not installed from Python; the default is the closest we can restore
            signal.signal(sig, signal.SIG_DFL if previous is None else previous)
        self._previous.clear()


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class RunResult:
    """What :func:`train` returns: the metric rows (as in metrics.csv, with NaN where a value is
    missing) and where things are."""

    config: TrainConfig
    out_dir: Path
    step: int
    rows: tuple[dict, ...]
    diverged: tuple[int | None, ...]
    wall_time_s: float

    @property
    def checkpoint(self) -> Path:
        return self.out_dir / CHECKPOINT_NAME

    def final_rows(self) -> list[dict]:
        """The last row of every model."""
        last = {}
        for row in self.rows:
            last[row["model"]] = row
        return [last[k] for k in sorted(last)]


def train(config: TrainConfig, out_dir: str | Path, resume: bool = False, progress: bool = True, *,
          tensorboard: bool = False, eta_every_s: float = 300.0, snapshot_every: int | None = None,
          on_step: Callable[[int], None] | None = None) -> RunResult:
    """Train ``config.n_models`` models together; write metrics, checkpoints and a summary.

    Args:
        config: the run.
        out_dir: run folder (created).
        resume: continue from ``out_dir/checkpoint.safetensors`` (or an earlier version's
            ``checkpoint.pt``); bit-identical to an uninterrupted run on the CPU (on CUDA the
            backward of the gathers adds with atomics, so a resumed run agrees to float
            rounding). A folder that holds a checkpoint is never overwritten without
            ``resume``; without a checkpoint, ``resume`` starts at step 0.
        progress: show a progress bar (step, mean train and test accuracy) on stderr; without
            it, one ETA line every ``eta_every_s`` seconds.
        tensorboard: also write the metrics as TensorBoard events in ``out_dir/tensorboard``
            (needs the ``tensorboard`` package).
        snapshot_every: keep the weights at step 0, every ``snapshot_every`` steps and at the
            last step in ``out_dir/snapshots/`` (see the module docstring); a positive integer,
            larger than ``config.steps`` keeps step 0 and the last step only. ``None``: no
            snapshots (those already there, up to the checkpoint, stay).
        on_step: called with the step number after every step, once that step's metrics,
            snapshot and checkpoint are written. For tests and tools: a hook that sends SIGINT
            simulates Ctrl-C at that step, one that raises simulates a kill (nothing more is
            saved).

    Raises:
        ConfigError: a device that is not there, an unusable ``init_from``, a
            ``snapshot_every`` that is not a positive integer.
        Interrupted: SIGINT or SIGTERM arrived; the checkpoint and metrics.csv were saved at
            the step reached (the message says which, and how to continue).
        RunError: corrupt or mismatched checkpoint; all models diverged (``nan_policy=freeze``)
            or any model diverged (``nan_policy=stop``).
    """
    if snapshot_every is not None:
        integer_at_least("snapshot_every", snapshot_every, 1)
    with StopSignals() as stop:
        result = _train(config, out_dir, resume, progress, tensorboard, eta_every_s, snapshot_every, on_step,
                        stop)
    if stop.received is not None:
        # the signal came after the last step: the run is complete and saved, but the command
        # that called it (a stage, a sweep) must stop all the same
        raise Interrupted(
            f"interrupted by {stop.name} after the last step ({result.step}): the run finished and saved "
            f"everything in {result.out_dir}; {_continue_hint(resume, 'continue with the rest')}",
            step=result.step, signal_name=stop.name, saved=(CHECKPOINT_NAME, "metrics.csv", "summary.json"),
            out_dir=result.out_dir)
    return result


def _continue_hint(resume: bool, what: str) -> str:
    """How the same work goes on: the same command, unless it refused an out folder with files."""
    if resume:
        return f"rerun the same command to {what}"
    return f"rerun the same command without --no-resume to {what}"


def _train(config: TrainConfig, out_dir: str | Path, resume: bool, progress: bool, tensorboard: bool,
           eta_every_s: float, snapshot_every: int | None, on_step: Callable[[int], None] | None,
           stop: StopSignals) -> RunResult:
    t0 = time.perf_counter()
    device = _resolve_device(config.device)
    if tensorboard:
        _require_tensorboard()  # before anything is written
    out = ensure_dir(out_dir)
    ckpt_file = out / CHECKPOINT_NAME
    data = build_training_data(make_dataset(config.task), config, device)

    existing = checkpoint_path(out)  # this version's checkpoint, or an earlier version's
    if existing.is_file() and not resume:
        raise RunError(f"{out} already holds a run ({existing.name}); rerun without --no-resume to continue it, or use another --out")
    if resume and existing.is_file():
        state = load_checkpoint(existing, device, expected=config)
        state.config = config
        torch.set_rng_state(state.rng_state)
    else:
        state = _fresh_start(config, device)
    start_step = state.step
    # Snapshots after the step this run starts from are stale (a kill between a snapshot and
    # the next checkpoint): they go, and the steps are written again below.
    snapshots = {step: (name, rows) for step, name, rows in
                 prune_snapshots(out, start_step if existing.is_file() and resume else -1)}
    write_json(out / "config.json", config.to_dict())
    writer = _tensorboard_writer(out, state.step if state.step else None) if tensorboard else None
    logged = len(state.rows) if state.step else 0  # rows already sent to TensorBoard

    def save() -> None:
        nonlocal logged
        state.rng_state = torch.get_rng_state()
        save_checkpoint(ckpt_file, state)
        write_csv(out / "metrics.csv", csv_rows(state.rows), fieldnames=METRIC_COLUMNS)
        if writer is not None:
            _log_tensorboard(writer, state.rows[logged:])
            logged = len(state.rows)
            writer.flush()

    def snapshot_due(step: int) -> bool:
        return snapshot_every is not None and (step % snapshot_every == 0 or step == config.steps)

    def take_snapshot() -> None:
        """The weights and this step's metric rows (measured now if the step was not logged)."""
        last = state.rows[-config.n_models:]
        rows = (last if len(last) == config.n_models and all(r["step"] == state.step for r in last)
                else evaluate(state.params, data, config, state.step, state.diverged))
        rows = [dict(r) for r in rows]  # the snapshot keeps the status it was written with
        path = save_snapshot(out, config, state.params, state.step, rows)
        snapshots[state.step] = (path.name, rows)
        write_snapshot_index(out, [(step, name, rs) for step, (name, rs) in snapshots.items()])

    weight_decay = torch.tensor([r.weight_decay for r in config.runs], dtype=torch.float64, device=device)
    active = torch.tensor([d is None for d in state.diverged], device=device)
    bar = progress_bar(total=config.steps, initial=min(state.step, config.steps), desc="train", unit="step",
                       disable=not progress, dynamic_ncols=True)
    eta = EtaLog(config.steps, state.step, eta_every_s, enabled=not progress)
    try:
        if state.step == 0 and not state.rows:
            state.rows += evaluate(state.params, data, config, 0, state.diverged)
        # the step this run starts from (0, or a checkpoint's), unless kept already
        if snapshot_due(state.step) and state.step not in snapshot_files(out):
            take_snapshot()

        while state.step < config.steps:
            if stop.received is not None:
                stop.saving = True
                save()
                raise _interrupted(stop, state.step, out, resume)
            losses, grads = loss_and_grads(state.params, data, config)

            newly_diverged = active & ~_models_finite(losses, grads)
            if newly_diverged.any():
                for e in newly_diverged.nonzero().flatten().tolist():
                    state.diverged[e] = state.step
                    for row in state.rows:  # the row of this step was logged before the check
                        if row["model"] == e and row["step"] >= state.step:
                            row["status"] = "diverged"
                active &= ~newly_diverged
                if config.nan_policy == "stop" or not active.any():
                    save()
                    first = newly_diverged.nonzero().flatten()[0].item()
                    run = config.runs[first]
                    raise RunError(
                        f"non-finite loss at step {state.step} in model {first} (seed {run.seed}, "
                        f"weight_decay {run.weight_decay}); {int((~active).sum())} of {config.n_models} models "
                        f"diverged; saved checkpoint and metrics at step {state.step} in {out}")
            all_active = bool(active.all())
            if not all_active:
                # Frozen models are still computed (the chunks keep their shapes, so the others'
                # float rounding does not change); their gradients are dropped here.
                for g in grads.values():
                    g[~active] = 0.0

            adamw_step(state.params, grads, state.optimizer, lr=config.lr, beta1=config.beta1,
                       beta2=config.beta2, eps=config.eps, weight_decay=weight_decay,
                       active=None if all_active else active)
            state.step += 1
            bar.update(1)
            eta.update(state.step)

            if state.step % config.log_every == 0 or state.step == config.steps:
                state.rows += evaluate(state.params, data, config, state.step, state.diverged)
                last = state.rows[-config.n_models:]
                tested = [r["test_acc"] for r in last if has_test_set(r)]
                bar.set_postfix(train_acc=f"{np.mean([r['train_acc'] for r in last]):.3f}",
                                test_acc=f"{np.mean(tested):.3f}" if tested else "-")
            # the snapshot before the checkpoint: a kill between them leaves a snapshot after
            # the checkpoint, which the next start deletes and writes again
            if snapshot_due(state.step):
                take_snapshot()
            if state.step % config.checkpoint_every == 0 or state.step == config.steps:
                save()
            if on_step is not None:
                on_step(state.step)
        bar.close()

        if not ckpt_file.exists():  # steps == 0: still leave a complete run folder
            save()
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    wall = time.perf_counter() - t0
    result = RunResult(config, out, state.step, tuple(state.rows), tuple(state.diverged), wall)
    write_json(out / "summary.json", {
        "step": state.step,
        "wall_time_s": round(wall, 3),
        "models": [{**{k: _json_number(v) for k, v in row.items()}, "diverged_at": state.diverged[row["model"]]}
                   for row in result.final_rows()],
    })
    return result


def _interrupted(stop: StopSignals, step: int, out: Path, resume: bool = True) -> Interrupted:
    """The one-line error of a run that saved its state at ``step`` and stopped."""
    saved = (CHECKPOINT_NAME, "metrics.csv")
    return Interrupted(
        f"interrupted by {stop.name} at step {step}: saved {saved[0]} and {saved[1]} ({step} steps) in {out}; "
        + _continue_hint(resume, f"continue from step {step}"),
        step=step, signal_name=stop.name, saved=saved, out_dir=out)
