"""``circeff train``: train a batch of 1-layer transformers (one model per seed x weight decay x D).

Options left out come from ``--preset`` (``quick``, ``full`` (the default) or ``paper``; its
``--help`` lists what each sets, from :data:`circeff.empirical.presets.TRAIN_PRESETS`, read
through :mod:`circeff.cli.table` so that ``--help`` imports no torch).
Lists (``--seeds``, ``--weight-decays``, ``--train-frac``, ``--sizes``) are comma-separated;
the batch holds one model per combination, so a value given twice is refused (it would train
the same model twice), and every D must be at least P. Results go to ``--out``: metrics.csv,
config.json, checkpoint.safetensors, summary.json (and tensorboard/ with ``--tensorboard``,
snapshots/ with ``--snapshot-every``). Rerunning the same command continues from the last
checkpoint (``--no-resume`` starts afresh and refuses an ``--out`` that holds files); Ctrl-C
(SIGINT) or SIGTERM saves a checkpoint at the step reached first.

Module level imports only typer, the standard library and the light circeff modules; torch and
the engine are imported inside :func:`train`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from circeff.cli.common import (RESUME_RULE, THREADS_HELP, apply_threads, check_resumable_out, resume_option,
                                spelling, warn_if_busy)
from circeff.cli.table import train_preset_help
from circeff.errors import ConfigError
from circeff.validate import distinct, integer_at_least, parse_float_list, parse_int_list

# A bound far beyond any run (40 000 steps is the paper's) that still fits every counter.
MAX_STEPS = 10**9

SIZE_RULE = "every D must be at least P (fewer training pairs than P cannot pin down the operation)"


def train(
    out: Path = typer.Option(..., "--out", help="Run folder (metrics.csv, config.json, checkpoint.safetensors). "
                             + RESUME_RULE),
    preset: str = typer.Option("full", "--preset", help="Defaults for every option left out: "
                               + train_preset_help() + "."),
    task: Optional[str] = typer.Option(None, "--task", help="add, sub, mul, div, x2_plus_y2, x2_xy_y2, "
                                       "x2_xy_y2_x, x3_xy, div_or_sub, perm."),
    p: Optional[int] = typer.Option(None, "--p", help="Modulus P (group size n! for perm)."),
    d_model: Optional[int] = typer.Option(None, "--d-model", help="Residual width; the heads share it evenly."),
    d_mlp: Optional[int] = typer.Option(None, "--d-mlp", help="MLP width."),
    n_heads: Optional[int] = typer.Option(None, "--n-heads", help="Attention heads (d_model must be a multiple)."),
    train_frac: Optional[str] = typer.Option(None, "--train-frac", help="Training fraction(s) in (0, 1]; D = "
                                             "round(frac x examples), and " + SIZE_RULE + "."),
    train_size: Optional[str] = typer.Option(None, "--sizes", help="Training-set size(s) D, e.g. 200,400 "
                                             "(instead of --train-frac), each in [P, examples]."),
    old_train_size: Optional[str] = typer.Option(None, "--train-size", hidden=True),
    steps: Optional[int] = typer.Option(None, "--steps", min=0, max=MAX_STEPS, help="Full-batch AdamW steps."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Model seeds, e.g. 0,1,2,3 (each once)."),
    weight_decay: Optional[str] = typer.Option(None, "--weight-decays", help="Weight decay(s), e.g. 1.0 or 0.3,1.0."),
    old_weight_decay: Optional[str] = typer.Option(None, "--weight-decay", hidden=True),
    lr: Optional[float] = typer.Option(None, "--lr", help="AdamW learning rate."),
    data_seed: int = typer.Option(0, "--data-seed", help="Seed of the train/test split (separate from model seeds)."),
    random_labels: bool = typer.Option(False, "--random-labels", help="Uniformly random labels (memorisation only)."),
    label_seed: int = typer.Option(0, "--label-seed", help="Seed of the random labels."),
    log_every: Optional[int] = typer.Option(None, "--log-every", help="Metrics every this many steps."),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", help="Checkpoint every this many "
                                                   "steps (and at the last step, and on Ctrl-C or SIGTERM)."),
    snapshot_every: Optional[int] = typer.Option(None, "--snapshot-every", help="Keep the weights every N steps "
                                                 "(and at step 0 and the last step) in --out/snapshots/, listed "
                                                 "with every model's metrics in snapshots/index.csv; N above "
                                                 "--steps keeps step 0 and the last step. Give it again when "
                                                 "resuming. Read by circeff analyze progress / fourier --step."),
    chunk_size: Optional[int] = typer.Option(None, "--chunk-size", help="Models per forward/backward chunk."),
    block_size: Optional[int] = typer.Option(None, "--block-size", help="Examples per block (CPU caches)."),
    nan_policy: str = typer.Option("freeze", "--nan-policy", help="freeze (diverged models stop, others go on) or stop."),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="Start from this run's final weights."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP + "."),
    resume: bool = resume_option(),
    progress: bool = typer.Option(True, "--progress/--no-progress",
                                  help="Show a progress bar (without it: an ETA line every 5 minutes)."),
    tensorboard: bool = typer.Option(False, "--tensorboard", help="Also write TensorBoard event files to "
                                     "--out/tensorboard (needs the [tensorboard] extra)."),
) -> None:
    """Train batched 1-layer transformers on a binary-operation task (the paper's Section 4, Appendix A).

    Ctrl-C (SIGINT) or SIGTERM finishes the step in progress, saves checkpoint.safetensors and
    metrics.csv at that step and stops with exit code 1; the same command continues from there.
    """
    apply_threads(threads)  # first: checked before any work, and torch's threads are set before it works
    from circeff.empirical.config import TrainConfig  # torch is imported only when a command runs
    from circeff.empirical.presets import get_preset
    from circeff.empirical.tasks import TaskConfig
    from circeff.reproduce.config import model_with_widths

    base = get_preset(preset)
    train_size, sizes_flag = spelling(train_size, "--sizes", old_train_size, "--train-size")
    weight_decay, wd_flag = spelling(weight_decay, "--weight-decays", old_weight_decay, "--weight-decay")
    task_cfg = TaskConfig(name=task if task is not None else base.task, p=p if p is not None else base.p,
                          random_labels=random_labels, label_seed=label_seed)
    seed_list = distinct("--seeds", parse_int_list("--seeds", seeds)) if seeds is not None else base.seeds
    wds = (distinct(wd_flag, parse_float_list(wd_flag, weight_decay)) if weight_decay is not None
           else (base.weight_decay,))
    if train_frac is not None and train_size is not None:
        raise ConfigError("--train-frac", f"give --train-frac or {sizes_flag}, not both", f"{train_frac} and {train_size}")
    sizes = distinct(sizes_flag, parse_int_list(sizes_flag, train_size)) if train_size is not None else None
    fracs = None if sizes is not None else (distinct("--train-frac", parse_float_list("--train-frac", train_frac))
                                            if train_frac is not None else (base.train_frac,))
    check_train_sizes(task_cfg, fracs, sizes, sizes_flag)
    if snapshot_every is not None:
        integer_at_least("--snapshot-every", snapshot_every, 1)
    if init_from is not None:
        from circeff.empirical.checkpoint import has_checkpoint

        if not (has_checkpoint(init_from) or init_from.is_file()):
            raise ConfigError("--init-from", "must be a run folder holding checkpoint.safetensors (a circeff train "
                              "run) or a checkpoint file", str(init_from))
    model = model_with_widths(base.model, d_model, d_mlp, n_heads)
    if device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            raise ConfigError("--device", "cuda is not available on this machine; use cpu", device)
    config = TrainConfig.grid(
        task_cfg, seed_list, weight_decays=wds, train_fracs=fracs, train_sizes=sizes, data_seed=data_seed,
        model=model, steps=steps if steps is not None else base.steps, lr=lr if lr is not None else base.lr,
        log_every=log_every if log_every is not None else base.log_every,
        checkpoint_every=checkpoint_every if checkpoint_every is not None else base.checkpoint_every,
        device=device, chunk_size=chunk_size, block_size=block_size, nan_policy=nan_policy,
        init_from=str(init_from) if init_from is not None else None)

    from circeff.empirical.checkpoint import checkpoint_step, has_checkpoint
    from circeff.empirical.train import train as run_training

    # the user's choice of folder, not a failed run: bad input (exit 2) naming --out
    check_resumable_out(out, resume)
    if resume and not has_checkpoint(out) and (out / "config.json").is_file():
        # a run killed before its first checkpoint: its config is there, its steps are not
        typer.echo(f"{out}: no checkpoint yet, starting the run from step 0", err=True)
    elif resume and has_checkpoint(out):
        at = checkpoint_step(out)
        if at is not None and at < config.steps:
            typer.echo(f"{out}: found a checkpoint at step {at} of {config.steps}; continuing from it", err=True)

    warn_if_busy(threads)
    result = run_training(config, out, resume=resume, progress=progress, tensorboard=tensorboard,
                          snapshot_every=snapshot_every)

    typer.echo(f"{config.n_models} model(s), {result.step} steps, {result.wall_time_s:.1f} s -> {out}")
    from circeff.empirical.metrics import milestones  # imports torch: only once something trained

    print_milestones(milestones(result.rows))


def min_train_frac(p: int, n: int) -> float:
    """The smallest fraction, rounded up to 3 significant digits, whose D = round(frac * n) is >= p."""
    exact = p / n
    digits = 2 - math.floor(math.log10(exact))
    return math.ceil(exact * 10**digits) / 10**digits


def check_train_sizes(task, fracs, sizes, sizes_flag: str = "--sizes") -> None:  # noqa: ANN001 - TaskConfig, lists
    """Every D at least P (and at most the examples there are), as a ConfigError naming the flag.

    ``round(frac * n)`` below P (``--train-frac 0.0001`` gives D = 1) trains on fewer pairs
    than there are residues; such a run cannot learn the operation and says nothing about
    grokking, so it is refused before any work rather than trained.
    """
    from circeff.empirical.config import resolve_train_size

    P, n = task.p, task.n_examples
    seen: dict[int, float] = {}
    for frac in fracs or ():
        d = resolve_train_size(task, frac, None)  # refuses a fraction outside (0, 1]
        if d < P:
            raise ConfigError("--train-frac", f"gives D = {d} training pairs at P = {P}; must give at least P = {P} "
                              f"(--train-frac >= {min_train_frac(P, n):g})", frac)
        if d in seen:  # two fractions, one D: the same models twice
            raise ConfigError("--train-frac", f"must give a different D for every fraction ({seen[d]:g} and "
                              f"{frac:g} both give D = {d} at P = {P})", ",".join(f"{f:g}" for f in fracs))
        seen[d] = frac
    for size in sizes or ():
        if size < P:
            raise ConfigError(sizes_flag, f"must be in [{P}, {n}]: D training pairs, at least P = {P} and at most "
                              f"the {n} examples of {task.name}", size)


def _step(value: object) -> str:
    return "not yet" if value is None else str(value)


def _acc(value: object) -> str:
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return "-" if missing else f"{value:.3f}"


def print_milestones(rows: list[dict]) -> None:
    """One table row per model: final accuracies and the steps it memorised and generalised at."""
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for name in ("model", "seed", "wd", "D", "train_acc", "test_acc", "memorised at", "generalised at", "status"):
        table.add_column(name, justify="left" if name == "status" else "right")
    for m in rows:
        table.add_row(str(m["model"]), str(m["seed"]), f"{m['weight_decay']:g}", str(m["train_size"]),
                      _acc(m["final_train_acc"]), _acc(m["final_test_acc"]), _step(m["memorised_at"]),
                      _step(m["generalised_at"]), m["status"])
    Console(width=200, soft_wrap=True).print(table)
