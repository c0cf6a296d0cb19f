"""``circeff experiment``: one measured experiment at a preset of :mod:`circeff.empirical.presets`.

- ``circeff experiment efficiency [--preset quick|full|paper] --out DIR``: prediction P1
  (:mod:`circeff.empirical.experiments.efficiency`); options override the preset.
- ``circeff experiment progress [--preset quick|full|paper] --out DIR``: a grokking run with
  weight snapshots and Figure 9 (:mod:`circeff.empirical.experiments.progress`).

Both resume by default: rerunning the same command skips finished training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from circeff.empirical import presets
from circeff.empirical.config import with_overrides
from circeff.validate import parse_float_list, parse_int_list



def _preset_help(experiment: str) -> str:
    """``--preset`` help that shows what each preset sets (from the presets table)."""
    return "; ".join(f"{scale}: {presets.describe(presets.get(experiment, scale))}" for scale in presets.SCALES) + "."


app = typer.Typer(help="Run experiments: P1 efficiency, Figure 9 progress.", no_args_is_help=True)


@app.command("efficiency")
def efficiency(
    out: Path = typer.Option(..., "--out", help="Output folder (efficiency.csv, efficiency.json, figures, runs)."),
    preset: str = typer.Option("full", "--preset", help=_preset_help("efficiency")),
    p: Optional[int] = typer.Option(None, "--p", help="Modulus P."),
    m_train_sizes: Optional[str] = typer.Option(None, "--m-train-sizes", help="D of the random-label (M) networks, e.g. 40,80,160."),
    g_train_sizes: Optional[str] = typer.Option(None, "--g-train-sizes", help="D of the generalising (G) networks."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Model seeds, two or more."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Stage 1: full-batch AdamW steps."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Stage 1: AdamW learning rate."),
    train_weight_decay: Optional[float] = typer.Option(None, "--train-weight-decay", help="Stage 1: AdamW weight decay."),
    alphas: Optional[str] = typer.Option(None, "--alphas", help="Stage 2: L2 coefficients of the settle ladder, two or more, e.g. 1e-4,1e-3,1e-2."),
    settle_iterations: Optional[int] = typer.Option(None, "--settle-iterations", help="Stage 2: L-BFGS iterations per network and rung."),
    trig_share_threshold: Optional[float] = typer.Option(None, "--trig-share-threshold", help="Accept G networks above this trig share."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Reuse finished or interrupted training in --out."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """P1: efficiency of the memorising and the generalising circuit against D."""
    from circeff.empirical.experiments.efficiency import describe, run_efficiency

    config = with_overrides(
        presets.get("efficiency", preset), p=p,
        m_train_sizes=parse_int_list("m_train_sizes", m_train_sizes) if m_train_sizes is not None else None,
        g_train_sizes=parse_int_list("g_train_sizes", g_train_sizes) if g_train_sizes is not None else None,
        alphas=parse_float_list("alphas", alphas) if alphas is not None else None,
        seeds=parse_int_list("seeds", seeds) if seeds is not None else None,
        steps=steps, lr=lr, weight_decay=train_weight_decay, settle_iterations=settle_iterations,
        trig_share_threshold=trig_share_threshold, device=device)
    _check_device(config.device)
    result = run_efficiency(config, out, progress=progress, resume=resume)
    by_circuit = result.rows.groupby("circuit")["accepted"]
    accepted = ", ".join(f"{c}: {int(flags.sum())}/{len(flags)} accepted" for c, flags in by_circuit)
    typer.echo(f"{len(result.rows)} (network, alpha) points ({accepted}) -> {out}")
    for line in describe(result):
        typer.echo(line)


@app.command("progress")
def progress(
    out: Path = typer.Option(..., "--out", help="Run folder (checkpoint, snapshots/, progress.csv, fig9.png)."),
    preset: str = typer.Option("quick", "--preset", help=_preset_help("progress")),
    p: Optional[int] = typer.Option(None, "--p", help="Modulus P."),
    train_frac: Optional[float] = typer.Option(None, "--train-frac", help="Training fraction in (0, 1]."),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay", help="Weight decay."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Full-batch AdamW steps."),
    snapshot_every: Optional[int] = typer.Option(None, "--snapshot-every", help="Steps between weight snapshots."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Model seed."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue a run already in --out."),
    show_progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Figure 9: a grokking run with weight snapshots, G/M proxies and parameter norm over steps."""
    from circeff.empirical.experiments.progress import run_progress

    config = with_overrides(presets.get("progress", preset), p=p, train_frac=train_frac, weight_decay=weight_decay,
                            steps=steps, snapshot_every=snapshot_every, seeds=None if seed is None else (seed,),
                            device=device)
    _check_device(config.device)
    result = run_progress(config, out, progress=show_progress, resume=resume)
    last = result.rows.iloc[-1]
    typer.echo(f"{len(result.rows)} snapshots -> {out / 'progress.csv'}, {out / 'fig9.png'}; final step "
               f"{int(last['step'])}: norm {last['param_norm']:.4g}, G train {last['trig_train']:.4g}, "
               f"M train {last['mem_train']:.4g}, test_acc {last['test_acc']:.3f}")


def _check_device(device: str) -> None:
    from circeff.errors import ConfigError

    if not (device == "cpu" or device.startswith("cuda")):
        raise ConfigError("device", "must be cpu or cuda", device)
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device", "cuda is not available on this machine; use cpu", device)
