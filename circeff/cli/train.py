"""``circeff train``: train a batch of 1-layer transformers (one model per seed x weight decay x D).

Options left out come from ``--preset`` (``quick``, ``full`` (the default) or ``paper``; its
``--help`` lists what each sets, from :data:`circeff.empirical.presets.TRAIN_PRESETS`).
Lists (``--seeds``, ``--weight-decays``, ``--train-frac``, ``--sizes``) are comma-separated;
the batch holds one model per combination. Results go to ``--out``: metrics.csv, config.json,
checkpoint.safetensors, summary.json (and tensorboard/ with ``--tensorboard``). Rerunning the
same command continues from the last checkpoint (``--no-resume`` starts afresh and refuses an
``--out`` that holds files).
"""

from __future__ import annotations

import math

from pathlib import Path
from typing import Optional

import typer

from circeff.cli.common import RESUME_RULE, check_resumable_out, resume_option, spelling
from circeff.empirical.config import TrainConfig
from circeff.empirical.presets import get_preset, train_preset_help
from circeff.empirical.tasks import TaskConfig
from circeff.errors import ConfigError
from circeff.validate import parse_float_list, parse_int_list

# A bound far beyond any run (40 000 steps is the paper's) that still fits every counter.
MAX_STEPS = 10**9


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
    train_frac: Optional[str] = typer.Option(None, "--train-frac", help="Training fraction(s) in (0, 1]."),
    train_size: Optional[str] = typer.Option(None, "--sizes", help="Training-set size(s) D, e.g. 200,400 "
                                             "(instead of --train-frac)."),
    old_train_size: Optional[str] = typer.Option(None, "--train-size", hidden=True),
    steps: Optional[int] = typer.Option(None, "--steps", min=0, max=MAX_STEPS, help="Full-batch AdamW steps."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Model seeds, e.g. 0,1,2,3."),
    weight_decay: Optional[str] = typer.Option(None, "--weight-decays", help="Weight decay(s), e.g. 1.0 or 0.3,1.0."),
    old_weight_decay: Optional[str] = typer.Option(None, "--weight-decay", hidden=True),
    lr: Optional[float] = typer.Option(None, "--lr", help="AdamW learning rate."),
    data_seed: int = typer.Option(0, "--data-seed", help="Seed of the train/test split (separate from model seeds)."),
    random_labels: bool = typer.Option(False, "--random-labels", help="Uniformly random labels (memorisation only)."),
    label_seed: int = typer.Option(0, "--label-seed", help="Seed of the random labels."),
    log_every: Optional[int] = typer.Option(None, "--log-every", help="Metrics every this many steps."),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", help="Checkpoint every this many steps."),
    chunk_size: Optional[int] = typer.Option(None, "--chunk-size", help="Models per forward/backward chunk."),
    block_size: Optional[int] = typer.Option(None, "--block-size", help="Examples per block (CPU caches)."),
    nan_policy: str = typer.Option("freeze", "--nan-policy", help="freeze (diverged models stop, others go on) or stop."),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="Start from this run's final weights."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    resume: bool = resume_option(),
    progress: bool = typer.Option(True, "--progress/--no-progress",
                                  help="Show a progress bar (without it: an ETA line every 5 minutes)."),
    tensorboard: bool = typer.Option(False, "--tensorboard", help="Also write TensorBoard event files to "
                                     "--out/tensorboard (needs the [tensorboard] extra)."),
) -> None:
    """Train batched 1-layer transformers on a binary-operation task (the paper's Section 4, Appendix A)."""
    from circeff.empirical.train import train as run_training  # torch is imported only when needed
    from circeff.reproduce.config import model_with_widths

    base = get_preset(preset)
    train_size, sizes_flag = spelling(train_size, "--sizes", old_train_size, "--train-size")
    weight_decay, wd_flag = spelling(weight_decay, "--weight-decays", old_weight_decay, "--weight-decay")
    task_cfg = TaskConfig(name=task if task is not None else base.task, p=p if p is not None else base.p,
                          random_labels=random_labels, label_seed=label_seed)
    seed_list = parse_int_list("--seeds", seeds) if seeds is not None else base.seeds
    wds = parse_float_list(wd_flag, weight_decay) if weight_decay is not None else (base.weight_decay,)
    if train_frac is not None and train_size is not None:
        raise ConfigError("--train-frac", f"give --train-frac or {sizes_flag}, not both", f"{train_frac} and {train_size}")
    sizes = parse_int_list(sizes_flag, train_size) if train_size is not None else None
    fracs = None if sizes is not None else (parse_float_list("--train-frac", train_frac) if train_frac is not None
                                            else (base.train_frac,))
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

    from circeff.empirical.checkpoint import has_checkpoint

    # the user's choice of folder, not a failed run: bad input (exit 2) naming --out
    check_resumable_out(out, resume)
    if resume and not has_checkpoint(out) and (out / "config.json").is_file():
        # a run killed before its first checkpoint: its config is there, its steps are not
        typer.echo(f"{out}: no checkpoint yet, starting the run from step 0", err=True)

    result = run_training(config, out, resume=resume, progress=progress, tensorboard=tensorboard)

    typer.echo(f"{config.n_models} model(s), {result.step} steps, {result.wall_time_s:.1f} s -> {out}")
    from circeff.empirical.metrics import milestones  # imports torch: only once something trained

    print_milestones(milestones(result.rows))


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
