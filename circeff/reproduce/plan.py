"""The plan of a long run, before it runs: the work of every stage and its estimated wall time.

Each stage's work is listed as engine batches (:class:`Work`: E models of one task trained for
some steps on their training sets) and L-BFGS settles (one iteration counted as
:data:`SETTLE_COST` model-steps of the same size: a float64 objective and the line search's
extra evaluations). From them:

* **model-steps**: sum over batches of E x steps (one model's full-batch optimiser step);
* **examples**: sum over models of training-set size x steps (example-steps);
* **FLOPs**: matrix-product FLOPs of forward and backward,
  :func:`circeff.empirical.batched.training_matmul_flops` per model-step, plus the forward pass over
  all P^2 pairs at every evaluation (every ``log_every`` steps).

:func:`calibrate` times a few steps of the real engine (loss, gradients, AdamW) on this machine,
once per distinct (model, P, training-set size) shape, and turns them into an effective FLOP
rate; the CPU estimate of a stage is its FLOPs over that rate. The GPU estimate divides the
same FLOPs by :data:`GPU_FLOPS`, a stated assumption, not a measurement.

Not counted: analysis after training (Fourier decomposition, bootstrap fits, negative
controls), the allocation stage's settles, ungrokking runs continued once because they had not
converged, and the theory and toy stages (seconds to minutes).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from circeff.empirical.config import ModelConfig, RunSpec, TrainConfig
from circeff.empirical.tasks import TaskConfig

__all__ = ["GPU_FLOPS", "GPU_NOTE", "SETTLE_COST", "Calibration", "StagePlan", "Work", "calibrate", "format_plan", "plan_stages",
           "plan_train_configs", "stage_work"]

# Assumed sustained throughput of an H100/H200 on this engine's float32 batched matmuls (the
# engine does not use bf16): about 30% of the 67 TFLOP/s FP32 (non-tensor-core) peak. An
# assumption stated here, not a measurement.
GPU_FLOPS = 20e12
GPU_NOTE = ("GPU estimate: FLOPs / 20 TFLOP/s, an assumed sustained float32 rate of one H100/H200 "
            "(about 30% of its 67 TFLOP/s FP32 peak; not measured)")


# One L-BFGS iteration of a settle, in engine model-steps of the same size: between the ratios
# measured on P1's M and G networks in the recorded full run (circeff.empirical.presets.MEASUREMENTS,
# "settle cost").
SETTLE_COST = 4.0


@dataclass(frozen=True)
class Work:
    """One engine batch (``kind`` train) or one settle ladder (``kind`` settle) of a stage."""

    stage: str
    kind: str
    model: ModelConfig
    task: TaskConfig
    sizes: tuple[int, ...]  # training-set size of each model
    steps: int              # optimiser steps (train) or L-BFGS iterations in all rungs (settle)
    log_every: int = 0      # evaluation interval (0: none)

    @property
    def n_models(self) -> int:
        return len(self.sizes)

    @property
    def model_steps(self) -> int:
        return self.n_models * self.steps

    @property
    def examples(self) -> int:
        return sum(self.sizes) * self.steps

    @property
    def mean_size(self) -> int:
        return max(1, int(round(sum(self.sizes) / max(1, self.n_models))))

    def flops(self) -> float:
        from circeff.empirical.batched import forward_matmul_flops, training_matmul_flops

        per_step = SETTLE_COST if self.kind == "settle" else 1.0
        train = sum(training_matmul_flops(self.model, self.task, n) for n in self.sizes) * self.steps * per_step
        evals = 0.0
        if self.log_every:
            n_evals = self.steps // self.log_every + 1
            evals = self.n_models * n_evals * forward_matmul_flops(self.model, self.task, self.task.n_examples)
        return float(train + evals)

    @classmethod
    def of(cls, stage: str, config: TrainConfig, steps: int | None = None) -> Work:
        return cls(stage, "train", config.model, config.task, tuple(r.train_size for r in config.runs),
                   config.steps if steps is None else steps, config.log_every)


def stage_work(config: Any, stages: Iterable[str] | None = None) -> dict[str, list[Work]]:
    """The engine batches and settles of every stage of a reproduce config (no training), or
    of ``stages`` only (``circeff experiment --plan``: the stages the command runs)."""
    import numpy as np

    from circeff.empirical.experiments.semigrokking import sizes_above

    wanted = None if stages is None else set(stages)

    def on(stage: str) -> bool:
        return wanted is None or stage in wanted

    work: dict[str, list[Work]] = {}
    if on("progress"):
        work["progress"] = [Work.of("progress", config.progress.train_config())]
    if on("efficiency"):
        eff = config.efficiency
        trained = {c: Work.of("efficiency", eff.train_config(c)) for c in ("M", "G")}
        # every trained network is settled, and the G networks again on random subsets of their data
        resettled = {"M": (), "G": tuple(d for d in eff.g_subset_sizes for _ in eff.seeds)}
        work["efficiency"] = [*trained.values(), *(replace(w, kind="settle", log_every=0, sizes=w.sizes + resettled[c],
                                                   steps=eff.settle_iterations * len(eff.alphas))
                                           for c, w in trained.items())]
    base = config.base
    if on("base"):
        work["base"] = [Work.of("base", base.train_config())]
    ung = config.ungrokking
    if on("ungrokking"):
        work["ungrokking"] = ungrokking_work("ungrokking", ung)
    if on("semigrokking"):
        semi = config.semigrokking
        sizes = semi.sizes
        if not sizes:
            # sized from the measured D_crit at run time; planned at the geometric middle of the
            # ungrokking grid (the grid is chosen to straddle D_crit)
            guess = float(np.exp(np.mean(np.log(ung.sizes))))
            sizes = sizes_above(guess, semi.n_sizes, semi.low_factor, semi.high_factor, semi.task_config.n_examples)
        work["semigrokking"] = [Work.of("semigrokking", semi.train_config(tuple(sizes)))]
    if on("fig10"):
        f10 = config.fig10
        work["fig10"] = [Work("fig10", "train", base.model, base.task_config,
                              tuple(d for d in f10.sizes for _ in f10.seed_indices), f10.steps, f10.log_every)]
    fig8 = getattr(config, "figure8", None)
    if fig8 is not None and on("figure8"):
        work["figure8"] = [w for task in fig8.tasks for w in fig8_work(fig8, task)]
    return work


def fig8_work(fig8: Any, task: str) -> list[Work]:
    """A Figure 8 task's work: its base networks, then one ungrokking batch per weight decay."""
    ung = fig8.ungrokking_for(task)
    base = ung.base
    return [Work.of("figure8", base.train_config()), *ungrokking_work("figure8", ung)]


def ungrokking_work(stage: str, ung: Any) -> list[Work]:
    """One batch per weight decay over the coarse D' grid and the refinement around D_crit, the
    control batches (the full training set) and the budget-convergence batch.

    The refinement's D' depend on the coarse grid's first D_crit estimate, known only at run
    time; it is planned at the grid's geometric middle (the grid is chosen to straddle D_crit),
    so its count, not its sizes, is what the plan gets right. Unconverged runs continued once
    are not planned.
    """
    import numpy as np

    from circeff.empirical.experiments.ungrokking import refine_sizes

    base = ung.base
    middle = float(np.exp(np.mean(np.log(ung.sizes))))
    sizes = ung.sizes + refine_sizes(middle, ung)
    work = [Work(stage, "train", base.model, base.task_config, tuple(d for d in sizes for _ in base.seeds),
                 ung.steps_for(wd), ung.log_every) for wd in ung.weight_decays]
    if ung.control:   # each base continued on its full training set, every weight decay
        work += [Work(stage, "train", base.model, base.task_config, tuple(base.train_size for _ in base.seeds),
                      ung.steps_for(wd), ung.log_every) for wd in ung.weight_decays]
    if ung.convergence_multiples:   # one batch to the largest budget, around the (planned) middle
        lo, hi = ung.budget_window
        near = tuple(int(round(x)) for x in np.geomspace(lo * middle, hi * middle, ung.convergence_sizes))
        work.append(Work(stage, "train", base.model, base.task_config, tuple(d for d in near for _ in base.seeds),
                         ung.convergence_steps(max(ung.convergence_efolds)), ung.log_every))
    return work


@dataclass(frozen=True)
class Calibration:
    """Measured ms per model-step of one (model, P, training-set size) shape on this machine."""

    model: ModelConfig
    p: int
    n: int
    ms_per_model_step: float
    flops_per_model_step: float

    @property
    def flop_rate(self) -> float:
        return self.flops_per_model_step / (self.ms_per_model_step / 1e3)


def _time_shape(model: ModelConfig, task: TaskConfig, n: int, *, device: str = "cpu",
                max_s: float = 1.5, max_steps: int = 30) -> float:
    """Seconds per model-step of the real engine (four models, the CPU engine's chunk: loss,
    gradients and AdamW); the median of up to ``max_steps`` steps after a warm-up."""
    import torch

    from circeff.empirical.model import init_params
    from circeff.empirical.optim import adamw_init, adamw_step
    from circeff.empirical.tasks import make_dataset
    from circeff.empirical.train import build_training_data, loss_and_grads

    e = 4
    config = TrainConfig(task=task, runs=tuple(RunSpec(seed=s, train_size=n) for s in range(e)), model=model,
                         device=device)
    batch = build_training_data(make_dataset(task), config, torch.device(device))
    params = init_params(model, task, range(e), torch.device(device))
    state = adamw_init(params)
    wd = torch.ones(e, dtype=torch.float64, device=device)

    def step() -> None:
        _, grads = loss_and_grads(params, batch, config)
        adamw_step(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.98, eps=1e-8, weight_decay=wd)

    step()  # warm-up
    times: list[float] = []
    while len(times) < max_steps and sum(times) < max_s:
        t0 = time.perf_counter()
        step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] / e


def calibrate(works: Iterable[Work], *, budget_s: float = 20.0, device: str = "cpu") -> dict[tuple, Calibration]:
    """Time each distinct shape of ``works`` (largest work first) within about ``budget_s``.

    Shapes are (model, P, training size rounded to a power of two); once the budget is spent
    the remaining shapes use the FLOP rate of the nearest measured one (:func:`rate_for`)."""
    from circeff.empirical.batched import training_matmul_flops

    shapes: dict[tuple, tuple[ModelConfig, TaskConfig, int, float]] = {}
    for w in works:
        key = _key(w)
        weight = shapes.get(key, (None, None, 0, 0.0))[3] + w.flops()
        shapes[key] = (w.model, w.task, w.mean_size, weight)
    out: dict[tuple, Calibration] = {}
    started = time.perf_counter()
    for key, (model, task, n, _) in sorted(shapes.items(), key=lambda kv: -kv[1][3]):
        if out and time.perf_counter() - started > budget_s:
            break
        n = min(n, task.n_examples)
        s = _time_shape(model, task, n, device=device)
        out[key] = Calibration(model, task.p, n, 1e3 * s, float(training_matmul_flops(model, task, n)))
    return out


def _key(w: Work) -> tuple:
    # the operations cost the same per example (same model and vocabulary): the task's name is no part
    return (w.model, w.task.p, 2 ** round(math.log2(w.mean_size)))


def rate_for(w: Work, calibrations: dict[tuple, Calibration]) -> float:
    """FLOP rate for ``w``: its own shape's, else that of the measured shape nearest in size."""
    if _key(w) in calibrations:
        return calibrations[_key(w)].flop_rate
    same = [c for k, c in calibrations.items() if k[0] == w.model and k[1] == w.task.p] or list(calibrations.values())
    return min(same, key=lambda c: abs(math.log(c.n / w.mean_size))).flop_rate


@dataclass
class StagePlan:
    stage: str
    batches: int
    model_steps: int
    examples: int
    flops: float
    ms_per_model_step: float
    cpu_s: float
    gpu_s: float
    shapes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_stages(work: dict[str, list[Work]], calibrations: dict[tuple, Calibration]) -> list[StagePlan]:
    plans = []
    for stage, works in work.items():
        flops = sum(w.flops() for w in works)
        cpu_s = sum(w.flops() / rate_for(w, calibrations) for w in works)
        model_steps = sum(w.model_steps for w in works)
        shapes = sorted({f"P={w.task.p} {w.task.name} d_model {w.model.d_model} d_mlp {w.model.d_mlp}" for w in works})
        plans.append(StagePlan(stage, len(works), model_steps, sum(w.examples for w in works), flops,
                               1e3 * cpu_s / max(1, model_steps), cpu_s, flops / GPU_FLOPS, shapes))
    return plans


def plan_train_configs(stage: str, configs: Sequence[TrainConfig]) -> list[Work]:
    return [Work.of(stage, c) for c in configs]


def _hms(s: float) -> str:
    s = float(s)
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def format_plan(title: str, plans: list[StagePlan], calibrations: dict[tuple, Calibration],
                calibration_s: float, *, gpu: bool) -> list[str]:
    """The plan as printed lines: calibration, a row per stage, the total."""
    import torch

    lines = [title, f"calibration ({calibration_s:.1f} s, torch threads {torch.get_num_threads()}): real engine "
                    "steps, four models, loss + gradients + AdamW:"]
    for c in calibrations.values():
        lines.append(f"  P = {c.p}, d_model {c.model.d_model}, d_mlp {c.model.d_mlp}, N = {c.n}: "
                     f"{c.ms_per_model_step:.2f} ms per model-step ({c.flop_rate / 1e9:.1f} GFLOP/s)")
    head = f"{'stage':<10} {'batches':>7} {'model-steps':>12} {'examples':>14} {'TFLOP':>9} {'ms/step':>8} {'CPU est.':>10}"
    lines.append(head + (f" {'GPU est.':>10}" if gpu else ""))
    for p in plans:
        row = (f"{p.stage:<10} {p.batches:>7} {p.model_steps:>12,} {p.examples:>14,} {p.flops / 1e12:>9.2f} "
               f"{p.ms_per_model_step:>8.2f} {_hms(p.cpu_s):>10}")
        lines.append(row + (f" {_hms(p.gpu_s):>10}" if gpu else ""))
    total_cpu, total_gpu = sum(p.cpu_s for p in plans), sum(p.gpu_s for p in plans)
    lines.append(f"{'total':<10} {sum(p.batches for p in plans):>7} {sum(p.model_steps for p in plans):>12,} "
                 f"{sum(p.examples for p in plans):>14,} {sum(p.flops for p in plans) / 1e12:>9.2f} {'':>8} "
                 f"{_hms(total_cpu):>10}" + (f" {_hms(total_gpu):>10}" if gpu else ""))
    lines.append("estimated wall time on this machine (an estimate from the calibration, not a measurement); "
                 "not included: analysis after training, the allocation stage's settles, unconverged "
                 "ungrokking runs continued once (and reproduce's theory and toy stages)")
    if gpu:
        lines.append(GPU_NOTE)
    return lines


def run_plan(title: str, work: dict[str, list[Work]], *, gpu: bool, budget_s: float = 20.0,
             device: str = "cpu") -> tuple[list[str], dict[str, Any]]:
    """Calibrate, plan and format: (printed lines, the same as a JSON-able dict)."""
    t0 = time.perf_counter()
    cal = calibrate([w for ws in work.values() for w in ws], budget_s=budget_s, device=device)
    spent = time.perf_counter() - t0
    plans = plan_stages(work, cal)
    lines = format_plan(title, plans, cal, spent, gpu=gpu)
    data = {"title": title, "calibration_s": round(spent, 2),
            "calibration": [{"p": c.p, "d_model": c.model.d_model, "d_mlp": c.model.d_mlp, "n": c.n,
                             "ms_per_model_step": c.ms_per_model_step, "gflop_per_s": c.flop_rate / 1e9}
                            for c in cal.values()],
            "stages": [p.to_dict() for p in plans],
            "total": {"model_steps": sum(p.model_steps for p in plans), "examples": sum(p.examples for p in plans),
                      "flops": sum(p.flops for p in plans), "cpu_s": sum(p.cpu_s for p in plans),
                      "gpu_s": sum(p.gpu_s for p in plans)},
            "gpu_flops_assumed": GPU_FLOPS if gpu else None, "estimate": True}
    return lines, data
