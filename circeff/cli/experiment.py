"""``circeff experiment``: one measured experiment at a preset of :mod:`circeff.empirical.presets`.

- ``circeff experiment efficiency [--preset quick|full|paper] --out DIR``: prediction P1
  (:mod:`circeff.empirical.experiments.efficiency`); options override the preset.
- ``circeff experiment progress [--preset quick|full|paper] --out DIR``: a grokking run with
  weight snapshots and Figure 9 (:mod:`circeff.empirical.experiments.progress`).
- ``circeff experiment semigrokking-pilot --out DIR``: P4's pilot (time scales before the main
  design; :data:`circeff.empirical.presets.SEMIGROKKING_PILOT`).
- ``circeff experiment ungrokking|semigrokking|fig10|allocation --out DIR``: ungrokking (P2/P3,
  one task with ``--task``), semi-grokking (P4), Figure 10 and Theorem D.4's allocation. Each runs the
  stages of ``circeff reproduce`` that make it (the same functions, the same out-folder layout:
  ``DIR/<stage>/``, ``DIR/report.md``, ``DIR/summary.json``) with the preset's settings and the
  options given, and checks only the settings of the stages it runs; ``--plan`` prints their
  work and estimated time without training.

Every command defaults to ``--preset quick``; the options have the same names in every command
(``--p``, ``--train-frac``, ``--seeds``, ``--base-steps``, ``--sizes``, ``--weight-decays``,
``--decay-budget``, ``--lr``, ``--d-model``, ``--d-mlp``, ``--n-heads``, ``--preset``,
``--out``, ``--json``); a command that takes one seed or weight decay takes a list of one.
All resume by default: rerunning the same command skips finished training; ``--no-resume``
refuses an ``--out`` that holds files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from circeff.cli import table
from circeff.cli.common import (RESUME_RULE, apply_threads, check_plan_out, check_resumable_out, float_check_option,
                                resume_option, single, spelling, threads_option, warn_if_busy)
from circeff.thresholds import BASE_GENERALISED_ACC
from circeff.validate import distinct, parse_float_list, parse_int_list

# Nothing here imports torch or the experiments at import time (``circeff experiment --help``
# answers at once); each command imports what it runs.


def _preset_help(experiment: str) -> str:
    """``--preset`` help that shows what each preset sets (from the presets table)."""
    return table.scale_help(experiment) + ". Options override it."


app = typer.Typer(help="Run one experiment: P1 efficiency, Figure 9 progress, ungrokking (P2/P3, Figure 8), "
                       "semi-grokking (P4), Figure 10, allocation (Theorem D.4).", no_args_is_help=True)


def _ints(flag: str, text: Optional[str]) -> Optional[tuple[int, ...]]:
    return None if text is None else tuple(parse_int_list(flag, text))


def _seeds(flag: str, text: Optional[str]) -> Optional[tuple[int, ...]]:
    """Seeds: integers, none twice (two equal seeds train the same network twice)."""
    values = _ints(flag, text)
    return None if values is None else tuple(distinct(flag, values))


def _floats(flag: str, text: Optional[str]) -> Optional[tuple[float, ...]]:
    return None if text is None else tuple(parse_float_list(flag, text))


@app.command("efficiency")
def efficiency(
    out: Path = typer.Option(..., "--out", help="Output folder (efficiency.csv, efficiency.json, figures, runs). "
                             + RESUME_RULE),
    preset: str = typer.Option("quick", "--preset", help=_preset_help("efficiency")),
    p: Optional[int] = typer.Option(None, "--p", help="Modulus P."),
    m_train_sizes: Optional[str] = typer.Option(None, "--m-sizes", help="D of the random-label (M) networks, "
                                                "e.g. 40,80,160."),
    old_m_train_sizes: Optional[str] = typer.Option(None, "--m-train-sizes", hidden=True),
    g_train_sizes: Optional[str] = typer.Option(None, "--g-sizes", help="D of the generalising (G) networks."),
    old_g_train_sizes: Optional[str] = typer.Option(None, "--g-train-sizes", hidden=True),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Model seeds, two or more."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Stage 1: full-batch AdamW steps."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Stage 1: AdamW learning rate."),
    train_weight_decay: Optional[str] = typer.Option(None, "--weight-decays", help="Stage 1: AdamW weight decay "
                                                     "(one value)."),
    old_train_weight_decay: Optional[str] = typer.Option(None, "--train-weight-decay", hidden=True),
    alphas: Optional[str] = typer.Option(None, "--alphas", help="Stage 2: L2 coefficients of the settle ladder, two or more, e.g. 1e-4,1e-3,1e-2."),
    settle_iterations: Optional[int] = typer.Option(None, "--settle-iterations", help="Stage 2: L-BFGS iterations per network and rung."),
    g_only_share: Optional[float] = typer.Option(None, "--g-only-share", help="Accept G networks above this trig "
                                                 "share (the G-only criterion)."),
    old_g_only_share: Optional[float] = typer.Option(None, "--trig-share-threshold", hidden=True),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda."),
    resume: bool = resume_option(), threads: Optional[int] = threads_option(),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """P1: efficiency of the memorising and the generalising circuit against D."""
    apply_threads(threads)
    from circeff.empirical import presets
    from circeff.empirical.config import with_overrides
    from circeff.empirical.experiments.efficiency import describe, run_efficiency, write_efficiency

    m_train_sizes, m_flag = spelling(m_train_sizes, "--m-sizes", old_m_train_sizes, "--m-train-sizes")
    g_train_sizes, g_flag = spelling(g_train_sizes, "--g-sizes", old_g_train_sizes, "--g-train-sizes")
    wd_text, wd_flag = spelling(train_weight_decay, "--weight-decays", old_train_weight_decay, "--train-weight-decay")
    g_only_share, _ = spelling(g_only_share, "--g-only-share", old_g_only_share, "--trig-share-threshold")
    config = with_overrides(
        presets.get("efficiency", preset), p=p, m_train_sizes=_ints(m_flag, m_train_sizes),
        g_train_sizes=_ints(g_flag, g_train_sizes), alphas=_floats("alphas", alphas), seeds=_seeds("--seeds", seeds),
        steps=steps, lr=lr, weight_decay=single(wd_flag, _floats(wd_flag, wd_text), "the M and G networks train at "
                                                "one weight decay"),
        settle_iterations=settle_iterations, g_only_share=g_only_share, device=device)
    _check_device(config.device)
    check_resumable_out(out, resume)
    warn_if_busy(threads)
    result = run_efficiency(config, out, progress=progress, resume=resume)
    write_efficiency(result)  # efficiency.csv, efficiency.json and the figures (the run only computes)
    by_circuit = result.rows.groupby("circuit")["accepted"]
    accepted = ", ".join(f"{c}: {int(flags.sum())}/{len(flags)} accepted" for c, flags in by_circuit)
    typer.echo(f"{len(result.rows)} (network, alpha) points ({accepted}) -> {out}")
    for line in describe(result):
        typer.echo(line)


@app.command("progress")
def progress(
    out: Path = typer.Option(..., "--out", help="Run folder (checkpoint, snapshots/, progress.csv, fig9.png). "
                             + RESUME_RULE),
    preset: str = typer.Option("quick", "--preset", help=_preset_help("progress")),
    p: Optional[int] = typer.Option(None, "--p", help="Modulus P."),
    train_frac: Optional[float] = typer.Option(None, "--train-frac", help="Training fraction in (0, 1]."),
    weight_decay: Optional[str] = typer.Option(None, "--weight-decays", help="Weight decay (one value)."),
    old_weight_decay: Optional[str] = typer.Option(None, "--weight-decay", hidden=True),
    steps: Optional[int] = typer.Option(None, "--steps", help="Full-batch AdamW steps."),
    snapshot_every: Optional[int] = typer.Option(None, "--snapshot-every", help="Steps between weight snapshots."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Model seed (one value: one run)."),
    old_seed: Optional[str] = typer.Option(None, "--seed", hidden=True),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda."),
    resume: bool = resume_option(), threads: Optional[int] = threads_option(),
    show_progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Figure 9: a grokking run with weight snapshots, G/M proxies and parameter norm over steps."""
    apply_threads(threads)
    from circeff.empirical import presets
    from circeff.empirical.config import with_overrides
    from circeff.empirical.experiments.progress import run_progress, write_progress

    wd_text, wd_flag = spelling(weight_decay, "--weight-decays", old_weight_decay, "--weight-decay")
    seeds, seeds_flag = spelling(seeds, "--seeds", old_seed, "--seed")
    config = with_overrides(presets.get("progress", preset), p=p, train_frac=train_frac,
                            weight_decay=single(wd_flag, _floats(wd_flag, wd_text), "one run, one weight decay"),
                            steps=steps, snapshot_every=snapshot_every, seeds=_seeds(seeds_flag, seeds),
                            device=device)
    _check_device(config.device)
    check_resumable_out(out, resume)
    warn_if_busy(threads)
    result = run_progress(config, out, progress=show_progress, resume=resume)
    write_progress(result.rows, out)
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
# experiment -> the reproduce stage it runs (with the stages that one needs: stages_of); only
# their settings are checked. Each experiment and its stage carry the paper's word.
STAGE_OF = {"ungrokking": "ungrokking", "ungrokking_task": "figure8", "semigrokking": "semigrokking",
            "fig10": "fig10", "allocation": "allocation"}
# experiment -> the presets table's entry whose values its --help shows
_ENTRY_OF = {"ungrokking": "ungrokking", "semigrokking": "semigrokking", "fig10": "fig10", "allocation": "allocation"}


def stages_of(experiment: str) -> tuple[str, ...]:
    """The reproduce stages an experiment command runs, in reproduce's order."""
    from circeff.reproduce.stages import stages_for  # imported when a command runs, not for --help

    return stages_for(STAGE_OF[experiment])

OUT = typer.Option(None, "--out", help="Out folder (as reproduce's: DIR/<stage>/, report.md, summary.json; "
                   "required unless --plan). " + RESUME_RULE)
P = typer.Option(None, "--p", help="Modulus P (every stage).")
LR = typer.Option(None, "--lr", help="AdamW learning rate (every stage).")
D_MODEL = typer.Option(None, "--d-model", help="Residual width; the heads share it evenly (every stage).")
D_MLP = typer.Option(None, "--d-mlp", help="MLP width (every stage).")
N_HEADS = typer.Option(None, "--n-heads", help="Attention heads; d_model must be a multiple (every stage).")
SEEDS = typer.Option(None, "--seeds", help="Model seeds, e.g. 0,1,2 (every stage; two or more).")
TRAIN_FRAC = typer.Option(None, "--train-frac", help="Base networks: fraction of the pairs they train on, (0, 1].")
BASE_STEPS = typer.Option(None, "--base-steps", help="Base networks: AdamW steps.")
SIZES = typer.Option(None, "--sizes", help="Dataset sizes D', e.g. 30,60,120.")
DECAY_BUDGET = typer.Option(None, "--decay-budget", help="weight decay x steps of every continuation.")
JSON = typer.Option(None, "--json", help="Also write the experiment's result (verdicts, estimates) as JSON here "
                    "(with --plan: the plan).")
DEVICE = typer.Option("cpu", "--device", help="cpu or cuda.")
PROGRESS = typer.Option(True, "--progress/--no-progress", help="Show progress bars.")
PLAN = typer.Option(False, "--plan", help="Print the work and estimated wall time of the stages this command runs "
                    "(a calibration of a few engine steps here) and exit; trains nothing.")


def _preset(experiment: str):  # noqa: ANN202 - a typer OptionInfo
    return typer.Option("quick", "--preset", help=_preset_help(_ENTRY_OF[experiment]))


# options that say where and how a command runs, not what it computes: left out of the recorded command
_NOT_THE_DESIGN = frozenset({"out", "json_path", "plan", "show", "resume", "threads", "float_check", "preset", "task"})


def _design_options(ctx: typer.Context) -> str:
    """The options of the running command that set its design, as typed (``--sizes 40,70``), so
    that the command recorded in summary.json reproduces the run."""
    import shlex

    parts = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.name in _NOT_THE_DESIGN or value is None or value == param.default:
            continue
        flag = next(o for o in param.opts if o.startswith("--"))
        parts.append(flag if getattr(param, "is_flag", False) else f"{flag} {shlex.quote(str(value))}")
    return " ".join(parts)


def _run_stages(experiment: str, out: Optional[Path], config, json_path: Optional[Path], progress: bool,
                argv_note: str, *, plan: bool, resume: bool, threads: Optional[int], float_check: bool,
                ctx: typer.Context) -> Optional[dict]:
    """Run the experiment's reproduce stages into ``out``; echo the verdicts; exit 1 on a failure.
    With ``plan``: print the stages' work and estimated time instead (nothing trains). With
    ``float_check``: the stages a second time with another order of floating-point sums, as
    ``circeff reproduce --float-check``."""
    from circeff.errors import ConfigError, RunError

    argv_note = f"{argv_note} {_design_options(ctx)}".strip()
    _check_device(config.base.device)
    check_plan_out(plan, out)
    if plan:
        warn_if_busy(threads)
        from circeff.io import write_json
        from circeff.reproduce.plan import run_plan, stage_work

        lines, data = run_plan(f"circeff experiment {experiment} {argv_note}: plan",
                               stage_work(config, stages_of(experiment)),
                               gpu=config.preset == "paper" or config.base.device != "cpu")
        for line in lines:
            typer.echo(line)
        if json_path is not None:
            write_json(json_path, data)
        return None
    if out is None:
        raise ConfigError("--out", "is required (unless --plan)", None)
    check_resumable_out(out, resume)
    warn_if_busy(threads)
    from circeff.reproduce import run_reproduce

    summary = run_reproduce(config, out, progress=progress,
                            command=f"circeff experiment {experiment} {argv_note} --out {out}"
                                    + (" --float-check" if float_check else ""),
                            stages=stages_of(experiment), float_check=float_check)
    from circeff.report import verdict_line

    for key, v in summary["verdicts"].items():
        typer.echo(verdict_line(key, v))
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


def dcrit_record(ungrokking_json: Path) -> dict:
    """D_crit pooled and per weight decay, each an interval record, from ``ungrokking.json``."""
    data = json.loads(Path(ungrokking_json).read_text())
    return {"pooled": data["D_crit"]["D_crit"],
            "by_weight_decay": {f"{e['weight_decay']:g}": e["D_crit"] for e in data["D_crit_by_weight_decay"]}}


@app.command("ungrokking")
def ungrokking(
    ctx: typer.Context, out: Optional[Path] = OUT, preset: str = _preset("ungrokking"), task: Optional[str] = typer.Option(
        None, "--task", help="The operation (default: modular addition). Another one runs Figure 8's ungrokking "
        f"of it: bases on --train-frac (default {table.figure8_base_train_frac():g}) of its pairs, generalised when held-out "
        f"accuracy >= {BASE_GENERALISED_ACC:g}."),
    p: Optional[int] = P, train_frac: Optional[float] = TRAIN_FRAC, seeds: Optional[str] = SEEDS,
    base_steps: Optional[int] = BASE_STEPS, sizes: Optional[str] = SIZES,
    weight_decays: Optional[str] = typer.Option(None, "--weight-decays", help="One continuation batch per value, "
                                                "e.g. 0.5,1,2 (two or more for P3)."),
    decay_budget: Optional[float] = DECAY_BUDGET,
    convergence_multiples: Optional[str] = typer.Option(  # the config field's name, so errors name the flag
        None, "--budget-multiples", help="Read D_crit again at these multiples of the decay budget, e.g. 1,3,9 "
        "(one batch at the largest weight decay, run to the largest); P2 and P3 are robust only where D_crit "
        "moves by at most 5% from 1 to every larger multiple."),
    lr: Optional[float] = LR, d_model: Optional[int] = D_MODEL,
    d_mlp: Optional[int] = D_MLP, n_heads: Optional[int] = N_HEADS, json_path: Optional[Path] = JSON,
    device: str = DEVICE, resume: bool = resume_option(), threads: Optional[int] = threads_option(),
    plan: bool = PLAN, show: bool = PROGRESS, float_check: bool = float_check_option(),
) -> None:
    """P2/P3 (Figures 4/7): generalised networks continued on D' < D_crit; D_crit per weight decay."""
    apply_threads(threads)
    from circeff.reproduce.config import experiment_config

    other = task not in (None, "add")
    experiment = "ungrokking_task" if other else "ungrokking"
    config = experiment_config(preset, device, task=task, p=p, lr=lr, d_model=d_model, d_mlp=d_mlp, n_heads=n_heads,
                               seeds=_seeds("--seeds", seeds), train_frac=train_frac, base_steps=base_steps,
                               ungrokking_sizes=_ints("sizes", sizes),
                               weight_decays=_floats("weight_decays", weight_decays), decay_budget=decay_budget,
                               budget_multiples=_floats("budget_multiples", convergence_multiples),
                               stages=stages_of(experiment))
    result = _run_stages(experiment, out, config, json_path if plan else None, show,
                         f"--preset {preset}{f' --task {task}' if task else ''}", plan=plan, resume=resume,
                         threads=threads, float_check=float_check, ctx=ctx)
    if result is None:
        return
    folder = out / "figure8" / task if other else out / "ungrokking"
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


WINDOW = typer.Option(None, "--window", help="LOW,HIGH: the sizes are spaced evenly in [LOW, HIGH] x D_crit, e.g. "
                      "2.5,4.5.")
N_SIZES = typer.Option(None, "--n-sizes", help="How many sizes in the window.")


def _window(text: Optional[str]) -> Optional[tuple[float, float]]:
    from circeff.errors import ConfigError

    values = _floats("window", text)
    if values is not None and len(values) != 2:
        raise ConfigError("--window", "takes two numbers, LOW,HIGH (factors of D_crit)", text)
    return values  # type: ignore[return-value]


@app.command("semigrokking")
def semigrokking(
    ctx: typer.Context, out: Optional[Path] = OUT, preset: str = _preset("semigrokking"), p: Optional[int] = P, seeds: Optional[str] = SEEDS,
    sizes: Optional[str] = typer.Option(None, "--sizes", help="Dataset sizes D just above D_crit, e.g. 200,230,260 "
                                        "(default: placed from D_crit, which ungrokking measures first)."),
    window: Optional[str] = WINDOW, n_sizes: Optional[int] = N_SIZES,
    steps: Optional[int] = typer.Option(None, "--steps", help="AdamW steps from random initialisation."),
    weight_decay: Optional[str] = typer.Option(None, "--weight-decays", help="AdamW weight decay (one value)."),
    old_weight_decay: Optional[str] = typer.Option(None, "--weight-decay", hidden=True),
    lr: Optional[float] = LR, d_model: Optional[int] = D_MODEL, d_mlp: Optional[int] = D_MLP,
    n_heads: Optional[int] = N_HEADS, json_path: Optional[Path] = JSON, device: str = DEVICE,
    resume: bool = resume_option(), threads: Optional[int] = threads_option(), plan: bool = PLAN,
    show: bool = PROGRESS, float_check: bool = float_check_option(),
) -> None:
    """P4 (Figures 5/6): semi-grokking, training from scratch at D above D_crit; the design (window,
    sizes, seeds, steps, weight decay) as options."""
    apply_threads(threads)
    from circeff.reproduce.config import experiment_config

    wd_text, wd_flag = spelling(weight_decay, "--weight-decays", old_weight_decay, "--weight-decay")
    config = experiment_config(preset, device, p=p, lr=lr, d_model=d_model, d_mlp=d_mlp, n_heads=n_heads,
                               seeds=_seeds("--seeds", seeds), semigrokking_sizes=_ints("sizes", sizes), steps=steps,
                               weight_decay=single(wd_flag, _floats(wd_flag, wd_text), "one weight decay for "
                                                   "every run"),
                               semigrokking_window=_window(window), semigrokking_n_sizes=n_sizes,
                               stages=stages_of("semigrokking"))
    _run_stages("semigrokking", out, config, json_path, show, f"--preset {preset}", plan=plan, resume=resume,
                threads=threads, float_check=float_check, ctx=ctx)


@app.command("semigrokking-pilot")
def semigrokking_pilot(
    out: Path = typer.Option(..., "--out", help="Output folder (timescales.csv, the figures, runs). " + RESUME_RULE),
    dcrit: Optional[float] = typer.Option(None, "--dcrit", help="The ungrokking D_crit that places the sizes "
                                          "(default: measured first with the full scale's ungrokking)."),
    window: Optional[str] = WINDOW, n_sizes: Optional[int] = N_SIZES, seeds: Optional[str] = SEEDS,
    steps: Optional[int] = typer.Option(None, "--steps", help="AdamW steps from random initialisation."),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay", help="AdamW weight decay."),
    resume: bool = resume_option(), threads: Optional[int] = threads_option(), show: bool = PROGRESS,
) -> None:
    """The pilot of P4: a few sizes and seeds at the full scale's model and optimiser with a long
    decay budget, to learn when runs memorise, when test accuracy moves and where it settles,
    before the main design is fixed. Prints and writes the time-scale table (timescales.csv)."""
    apply_threads(threads)
    from dataclasses import replace

    from circeff.empirical import presets
    from circeff.empirical.experiments import semigrokking as semi

    pilot = presets.SEMIGROKKING_PILOT
    low, high = _window(window) or (pilot.low_factor, pilot.high_factor)
    training = replace(pilot.training, **{k: v for k, v in {"seeds": _seeds("--seeds", seeds), "steps": steps,
                                                             "weight_decay": weight_decay}.items() if v is not None})
    config = replace(pilot, training=training, low_factor=low, high_factor=high,
                     n_sizes=pilot.n_sizes if n_sizes is None else n_sizes)
    check_resumable_out(out, resume)
    warn_if_busy(threads)
    typer.echo(f"pilot: {config.n_sizes} sizes in [{low:g}, {high:g}] x D_crit, seeds {list(config.seeds)}, "
               f"weight decay {config.weight_decay:g}, {config.steps} steps (decay budget "
               f"{config.decay_budget:.3g} e-folds)")
    result = semi.run_semigrokking(config, out, dcrit=dcrit, ungrokking=presets.get("ungrokking", "full"),
                                   progress=show, resume=resume)
    semi.write_semigrokking(result)
    typer.echo(semi.pilot_table(result).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    typer.echo(f"D_crit {result.dcrit:.4g} ({result.sizes_from}); table: {out / 'timescales.csv'}")


def _continuation_command(stages: str):
    """``experiment fig10`` and ``experiment allocation`` take the same options: both continue
    generalised base networks at the Figure 10 sizes; they differ in the stages they run."""

    def command(
        ctx: typer.Context, out: Optional[Path] = OUT, preset: str = _preset(stages), p: Optional[int] = P,
        train_frac: Optional[float] = TRAIN_FRAC, seeds: Optional[str] = SEEDS, base_steps: Optional[int] = BASE_STEPS,
        sizes: Optional[str] = SIZES, decay_budget: Optional[float] = DECAY_BUDGET, lr: Optional[float] = LR,
        d_model: Optional[int] = D_MODEL, d_mlp: Optional[int] = D_MLP, n_heads: Optional[int] = N_HEADS,
        json_path: Optional[Path] = JSON, device: str = DEVICE, resume: bool = resume_option(),
        threads: Optional[int] = threads_option(), plan: bool = PLAN,
        show: bool = PROGRESS, float_check: bool = float_check_option(),
    ) -> None:
        apply_threads(threads)
        from circeff.reproduce.config import experiment_config

        config = experiment_config(preset, device, p=p, lr=lr, d_model=d_model, d_mlp=d_mlp, n_heads=n_heads,
                                   seeds=_seeds("--seeds", seeds), train_frac=train_frac, base_steps=base_steps,
                                   fig10_sizes=_ints("sizes", sizes), decay_budget=decay_budget,
                                   stages=stages_of(stages))
        _run_stages(stages, out, config, json_path, show, f"--preset {preset}", plan=plan, resume=resume,
                    threads=threads, float_check=float_check, ctx=ctx)

    return command


app.command("fig10", help="Figure 10: the G:M correct-logit ratio against D, continuing generalised networks.")(
    _continuation_command("fig10"))
app.command("allocation", help="Theorem D.4: predicted against measured G:M ratio; D_crit two ways (runs P1, "
            "ungrokking, Figure 10 first).")(_continuation_command("allocation"))

# the names these two commands had before they took the paper's words (still accepted, not listed)
app.command("ungrok", hidden=True)(ungrokking)
app.command("semigrok", hidden=True)(semigrokking)
