"""``circeff experiment``: one measured experiment at a preset of :mod:`circeff.empirical.presets`.

- ``circeff experiment efficiency [--preset quick|full|paper] --out DIR``: prediction P1
  (:mod:`circeff.empirical.experiments.efficiency`); options override the preset.
- ``circeff experiment progress [--preset quick|full|paper] --out DIR``: a grokking run with
  weight snapshots and Figure 9 (:mod:`circeff.empirical.experiments.progress`).
- ``circeff experiment ungrok|semigrok|fig10|allocation --out DIR``: ungrokking (P2/P3, one task
  with ``--task``), semi-grokking (P4), Figure 10 and Theorem D.4's allocation. Each runs the
  stages of ``circeff reproduce`` that make it (the same functions, the same out-folder layout:
  ``DIR/<stage>/``, ``DIR/report.md``, ``DIR/summary.json``) with the preset's settings and the
  options given; the options have the same names in every command (``--p``, ``--train-frac``,
  ``--seeds``, ``--base-steps``, ``--sizes``, ``--weight-decays``, ``--decay-budget``, ``--lr``,
  ``--d-model``, ``--d-mlp``, ``--preset``, ``--out``, ``--json``).

All resume by default: rerunning the same command skips finished training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

import json

from circeff.empirical import presets
from circeff.empirical.config import with_overrides
from circeff.validate import parse_float_list, parse_int_list



def _preset_help(experiment: str) -> str:
    """``--preset`` help that shows what each preset sets (from the presets table)."""
    return "; ".join(f"{scale}: {presets.describe(presets.get(experiment, scale))}" for scale in presets.SCALES) + "."


app = typer.Typer(help="Run one experiment: P1 efficiency, Figure 9 progress, ungrokking (P2/P3, Figure 8), "
                       "semi-grokking (P4), Figure 10, allocation (Theorem D.4).", no_args_is_help=True)


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
    g_only_share: Optional[float] = typer.Option(None, "--g-only-share", help="Accept G networks above this trig "
                                                 "share (the G-only criterion)."),
    trig_share_threshold: Optional[float] = typer.Option(None, "--trig-share-threshold", hidden=True),
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
        g_only_share=g_only_share if trig_share_threshold is None else trig_share_threshold, device=device)
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


# ---- the experiments that are stages of `circeff reproduce` ------------------------------------
# experiment -> the reproduce stages it runs (in reproduce's order)
STAGES_OF = {"ungrok": ("base", "p2_p3"), "ungrok_task": ("figure8",), "semigrok": ("p4",), "fig10": ("base", "fig10"),
             "allocation": ("p1", "base", "p2_p3", "fig10", "allocation")}

_PRESET_HELP = "quick, full or paper (`circeff presets` lists what each sets); options override it."
OUT = typer.Option(..., "--out", help="Out folder (as reproduce's: DIR/<stage>/, report.md, summary.json); "
                   "rerun the same command to resume.")
PRESET = typer.Option("quick", "--preset", help=_PRESET_HELP)
P = typer.Option(None, "--p", help="Modulus P (every stage).")
LR = typer.Option(None, "--lr", help="AdamW learning rate (every stage).")
D_MODEL = typer.Option(None, "--d-model", help="Residual width; the heads share it evenly (every stage).")
D_MLP = typer.Option(None, "--d-mlp", help="MLP width (every stage).")
SEEDS = typer.Option(None, "--seeds", help="Model seeds, e.g. 0,1,2 (every stage; two or more).")
TRAIN_FRAC = typer.Option(None, "--train-frac", help="Base networks: fraction of the pairs they train on, (0, 1].")
BASE_STEPS = typer.Option(None, "--base-steps", help="Base networks: AdamW steps.")
SIZES = typer.Option(None, "--sizes", help="Dataset sizes D', e.g. 30,60,120.")
DECAY_BUDGET = typer.Option(None, "--decay-budget", help="weight decay x steps of every continuation.")
JSON = typer.Option(None, "--json", help="Also write the experiment's result (verdicts, estimates) as JSON here.")
DEVICE = typer.Option("cpu", "--device", help="cpu or cuda.")
PROGRESS = typer.Option(True, "--progress/--no-progress", help="Show progress bars.")


def _ints(flag: str, text: Optional[str]) -> Optional[tuple[int, ...]]:
    return None if text is None else tuple(parse_int_list(flag, text))


def _floats(flag: str, text: Optional[str]) -> Optional[tuple[float, ...]]:
    return None if text is None else tuple(parse_float_list(flag, text))


def _run_stages(experiment: str, out: Path, config, json_path: Optional[Path], progress: bool,
                argv_note: str) -> dict:
    """Run the experiment's reproduce stages into ``out``; echo the verdicts; exit 1 on a failure."""
    from circeff.errors import RunError
    from circeff.reproduce import run_reproduce

    _check_device(config.base.device)
    summary = run_reproduce(config, out, progress=progress, command=f"circeff experiment {experiment} {argv_note}",
                            stages=STAGES_OF[experiment])
    for key, v in summary["verdicts"].items():
        typer.echo(f"{key}: {'holds' if v['holds'] else 'does NOT hold'} - {v.get('reason', '')}")
    failed = {n: s["error"] for n, s in summary["stages"].items() if s["status"] != "done"}
    result = {"experiment": experiment, "out": str(out), "verdicts": summary["verdicts"],
              "estimates": {n: s["estimates"] for n, s in summary["stages"].items() if s["estimates"]},
              "timings": summary["timings"], "stages_failed": failed}
    if json_path is not None:
        from circeff.io import write_json

        write_json(json_path, result)
    typer.echo(f"wall time {summary['timings']['total_s']:.1f} s; report: {out / 'report.md'}; "
               f"summary: {out / 'summary.json'}")
    if failed:
        raise RunError("; ".join(f"stage {n} failed: {e}" for n, e in failed.items()))
    return result


def _interval(d: dict) -> dict:
    return {"value": d.get("value"), "lo": d.get("lo"), "hi": d.get("hi")}


def dcrit_record(ungrokking_json: Path) -> dict:
    """D_crit pooled and per weight decay, each ``{value, lo, hi}``, from ``ungrokking.json``."""
    data = json.loads(Path(ungrokking_json).read_text())
    return {"pooled": _interval(data["D_crit"]["D_crit"]),
            "by_weight_decay": {f"{e['weight_decay']:g}": _interval(e["D_crit"])
                                for e in data["D_crit_by_weight_decay"]}}


@app.command("ungrok")
def ungrok(
    out: Path = OUT, preset: str = PRESET, task: Optional[str] = typer.Option(
        None, "--task", help="The operation (default: modular addition). Another one runs Figure 8's ungrokking "
        "of it: bases on --train-frac (default 0.8) of its pairs, generalised when held-out accuracy >= 0.99."),
    p: Optional[int] = P, train_frac: Optional[float] = TRAIN_FRAC, seeds: Optional[str] = SEEDS,
    base_steps: Optional[int] = BASE_STEPS, sizes: Optional[str] = SIZES,
    weight_decays: Optional[str] = typer.Option(None, "--weight-decays", help="One continuation batch per value, "
                                                "e.g. 0.5,1,2 (two or more for P3)."),
    decay_budget: Optional[float] = DECAY_BUDGET, lr: Optional[float] = LR, d_model: Optional[int] = D_MODEL,
    d_mlp: Optional[int] = D_MLP, json_path: Optional[Path] = JSON, device: str = DEVICE, show: bool = PROGRESS,
) -> None:
    """P2/P3 (Figures 4/7): generalised networks continued on D' < D_crit; D_crit per weight decay."""
    from circeff.reproduce.config import experiment_config

    config = experiment_config(preset, device, task=task, p=p, lr=lr, d_model=d_model, d_mlp=d_mlp,
                               seeds=_ints("seeds", seeds), train_frac=train_frac, base_steps=base_steps,
                               ungrokking_sizes=_ints("sizes", sizes),
                               weight_decays=_floats("weight_decays", weight_decays), decay_budget=decay_budget)
    other = task not in (None, "add")
    result = _run_stages("ungrok_task" if other else "ungrok", out, config, None, show,
                         f"--preset {preset}{f' --task {task}' if task else ''} --out {out}")
    folder = out / "figure8" / task if other else out / "p2_p3"
    if not (folder / "ungrokking.json").is_file():
        from circeff.errors import RunError

        raise RunError(f"no ungrokking of {task}: " + "; ".join(
            str(t["note"]) for t in json.loads((out / "figure8" / "figure8.json").read_text())["tasks"]))
    result["D_crit"] = dcrit_record(folder / "ungrokking.json")
    for wd, iv in result["D_crit"]["by_weight_decay"].items():
        typer.echo(f"D_crit at weight decay {wd}: {iv['value']:.4g} [{iv['lo']:.4g}, {iv['hi']:.4g}]")
    pooled = result["D_crit"]["pooled"]
    typer.echo(f"D_crit pooled: {pooled['value']:.4g} [{pooled['lo']:.4g}, {pooled['hi']:.4g}]")
    if json_path is not None:
        from circeff.io import write_json

        write_json(json_path, result)


@app.command("semigrok")
def semigrok(
    out: Path = OUT, preset: str = PRESET, p: Optional[int] = P, seeds: Optional[str] = SEEDS,
    sizes: Optional[str] = typer.Option(None, "--sizes", help="Dataset sizes D just above D_crit, e.g. 200,230,260 "
                                        "(default: placed from D_crit, which ungrokking measures first)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="AdamW steps from random initialisation."),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay", help="AdamW weight decay."),
    lr: Optional[float] = LR, d_model: Optional[int] = D_MODEL, d_mlp: Optional[int] = D_MLP,
    json_path: Optional[Path] = JSON, device: str = DEVICE, show: bool = PROGRESS,
) -> None:
    """P4 (Figures 5/6): semi-grokking, training from scratch at D just above D_crit."""
    from circeff.reproduce.config import experiment_config

    config = experiment_config(preset, device, p=p, lr=lr, d_model=d_model, d_mlp=d_mlp, seeds=_ints("seeds", seeds),
                               semigrok_sizes=_ints("sizes", sizes), steps=steps, weight_decay=weight_decay)
    _run_stages("semigrok", out, config, json_path, show, f"--preset {preset} --out {out}")


def _continuation_command(stages: str):
    """``experiment fig10`` and ``experiment allocation`` take the same options: both continue
    generalised base networks at the Figure 10 sizes; they differ in the stages they run."""

    def command(
        out: Path = OUT, preset: str = PRESET, p: Optional[int] = P, train_frac: Optional[float] = TRAIN_FRAC,
        seeds: Optional[str] = SEEDS, base_steps: Optional[int] = BASE_STEPS, sizes: Optional[str] = SIZES,
        decay_budget: Optional[float] = DECAY_BUDGET, lr: Optional[float] = LR, d_model: Optional[int] = D_MODEL,
        d_mlp: Optional[int] = D_MLP, json_path: Optional[Path] = JSON, device: str = DEVICE, show: bool = PROGRESS,
    ) -> None:
        from circeff.reproduce.config import experiment_config

        config = experiment_config(preset, device, p=p, lr=lr, d_model=d_model, d_mlp=d_mlp,
                                   seeds=_ints("seeds", seeds), train_frac=train_frac, base_steps=base_steps,
                                   fig10_sizes=_ints("sizes", sizes), decay_budget=decay_budget)
        _run_stages(stages, out, config, json_path, show, f"--preset {preset} --out {out}")

    return command


app.command("fig10", help="Figure 10: the G:M correct-logit ratio against D, continuing generalised networks.")(
    _continuation_command("fig10"))
app.command("allocation", help="Theorem D.4: predicted against measured G:M ratio; D_crit two ways (runs P1, "
            "ungrokking, Figure 10 first).")(_continuation_command("allocation"))
