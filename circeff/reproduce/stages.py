"""The stages of ``circeff reproduce``, listed once in :data:`STAGES`; each returns a
:class:`StageResult`. A stage is named after the experiment it runs (the paper's word):

================  ==================================================================
``theory``        Theorems D.1-D.4 and the lemmas (:func:`circeff.theory.check.run_claims`)
``toy``           Figure 2 of the toy model (:func:`circeff.toy.experiments.figure2_data`)
``progress``      one grokking run with accuracy and the G/M proxies over time (Figure 9)
``efficiency``    P1: M-only and G-only networks (``run_efficiency``)
``base``          G-only networks trained on the full dataset (start of P2/P3 and Figure 10)
``ungrokking``    P2/P3: ungrokking over D' x weight decay x seed (``run_ungrokking``)
``fig10``         Figure 10a: G:M correct-logit ratio against D (``run_fig10``)
``allocation``    Theorem D.4 on disjoint pairs; Figure 10 settled; predicted curves; D_crit two ways
``semigrokking``  P4: semi-grokking above D_crit, and D_down <= D_cross <= D_up (``run_semigrokking``)
``figure8``       Figure 8: ungrokking of the other operations (the full scale only)
================  ==================================================================

A stage takes the results of the stages it reads as an argument (``upstream``, by stage
name; :attr:`Stage.needs` run first, :attr:`Stage.reads` are used when they ran), and their
folders through :meth:`Context.folder`; where it draws an upstream stage's table, it reads it
with that experiment's own reader (``read_ungrokking``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from circeff.analysis import controls as C
from circeff.analysis import verdicts as V
from circeff.analysis.robustness import robustness, with_check
from circeff.analysis.stats import Interval, to_plain
from circeff.analysis.verdicts import Verdict
from circeff.empirical.backend import IN_PROCESS, Trainer
from circeff.empirical.experiments import efficiency as eff
from circeff.empirical.experiments import fig10 as f10
from circeff.empirical.experiments import progress as prog
from circeff.empirical.experiments import semigrokking as semi
from circeff.empirical.experiments import ungrokking as ung
from circeff.empirical.experiments.predictions_common import train_base
from circeff.errors import ConfigError, RunError
from circeff.thresholds import GENERALISED_TEST_ACC, MEMORISED_TRAIN_ACC
from circeff.io import read_json, write_json
from circeff.reproduce.config import ReproduceConfig
from circeff.reproduce.results import StageResult, Table

__all__ = ["STAGES", "Context", "Stage", "VERDICT_KEYS", "measure_run_controls", "settings_of", "stage",
           "stages_for"]

VERDICT_KEYS = ("P1", "P2", "P3", "P4", "fig10a", "allocation")
Upstream = Mapping[str, StageResult]


@dataclass(frozen=True)
class Context:
    """What every stage of one call reads: the config, the out folder, progress bars, the trainer."""

    config: ReproduceConfig
    out: Path
    progress: bool
    trainer: Trainer = IN_PROCESS

    def rel(self, path: Path) -> str:
        return str(Path(path).relative_to(self.out))

    def folder(self, stage: str) -> Path:
        """The folder of stage ``stage`` (where an upstream stage left its runs)."""
        return self.out / stage


def _estimate(upstream: Upstream, stage: str, name: str) -> Interval | None:
    r = upstream.get(stage)
    return r.estimates.get(name) if r is not None and r.done else None


def settings_of(config: Any, **extra: Any) -> dict[str, Any]:
    """P, model widths, lr, steps, seeds and weight decay of an experiment config (what every
    page and the report state about the run), plus ``extra``."""
    t = config.base.training if hasattr(config, "base") else config.training
    return to_plain({"P": t.p, "d_model": t.model.d_model, "n_heads": t.model.n_heads, "d_head": t.model.d_head,
                     "d_mlp": t.model.d_mlp, "lr": t.lr, "steps": getattr(config, "steps", t.steps),
                     "seeds": len(getattr(config, "seeds", ()) or t.seeds), "weight_decay": t.weight_decay,
                     **extra})


def measure_run_controls(designs: dict[str, Callable[[], C.Design]], n: int, seed: int = 0) -> dict[str, dict]:
    """False accept and false reject of each verdict on ``n`` synthetic tables of each truth,
    drawn with the run's own design (``designs`` build it from the run's tables; one that cannot
    be estimated is reported with its error instead). Each entry records its cost in seconds."""
    out: dict[str, dict] = {}
    for name, make in designs.items():
        t0 = time.perf_counter()
        try:
            design = make()
            entry = C.measure_controls(C.VERDICTS[design.key], design, n=n, seed=seed)
        except (ConfigError, RunError, ValueError, ZeroDivisionError) as exc:
            entry = {"key": name, "error": f"no design could be estimated from this run's table: {exc}"}
        entry["seconds"] = round(time.perf_counter() - t0, 2)
        out[name] = entry
    return out


def _step(step: int | None) -> str:
    return "not reached" if step is None else str(step)


def stage_theory(ctx: Context, out: Path, upstream: Upstream) -> StageResult:
    from circeff.theory.check import run_claims

    report = run_claims(seed=ctx.config.theory_seed)
    write_json(out / "theory.json", report.to_dict())
    claims = report.to_dict()["claims"]
    return StageResult("theory", config={"seed": ctx.config.theory_seed},
                       notes=[f"All claims as expected: {'yes' if report.ok else 'no'}."],
                       tables=[Table.of("Theory checks", ["claim", "expected", "outcome", "ok"],
                                        [[c["claim"], str(c["expected"]), str(c["outcome"]), c["ok"]]
                                         for c in claims])])


def stage_toy(ctx: Context, out: Path, upstream: Upstream) -> StageResult:
    from circeff.io import atomic_write_bytes
    from circeff.toy.experiments import figure2_data
    from circeff.toy.plots import figure_png, plot_figure2

    data = figure2_data(ctx.config.toy_steps)
    write_json(out / "figure2.json", to_plain(data))
    atomic_write_bytes(out / "figure2.png", figure_png(plot_figure2(data)))
    return StageResult(
        "toy", config={"steps": ctx.config.toy_steps or "toy default (50000)"},
        figures={"Figure 2 (toy model): train and test loss": ctx.rel(out / "figure2.png")},
        notes=[f"- {p.get('title') or k}: grokking step {_step(p.get('grokking_step'))}"
               for k, p in data["panels"].items()])


def stage_progress(ctx: Context, out: Path, upstream: Upstream) -> StageResult:
    cfg = ctx.config.progress
    rows = prog.run_progress(cfg, out, progress=ctx.progress, resume=True).rows  # one model: always here
    prog.write_progress(rows, out)
    last = rows.iloc[-1]
    grok = rows[pd.to_numeric(rows["test_acc"], errors="coerce") >= GENERALISED_TEST_ACC]
    mem = rows[rows["train_acc"] >= MEMORISED_TRAIN_ACC]
    memorised = int(mem["step"].iloc[0]) if len(mem) else None
    generalised = int(grok["step"].iloc[0]) if len(grok) else None
    return StageResult(
        "progress", config=cfg.to_dict(),
        figures={"Figure 9: accuracy, G and M proxies and parameter norm during a grokking run":
                 ctx.rel(out / "fig9.png")},
        notes=[f"Memorised (train acc >= {MEMORISED_TRAIN_ACC:g}) at step {_step(memorised)}, generalised (test acc >= {GENERALISED_TEST_ACC:g}) at "
               f"step {_step(generalised)}; final train/test accuracy {float(last['train_acc']):.3g}/"
               f"{float(last['test_acc']):.3g}."])


def stage_efficiency(ctx: Context, out: Path, upstream: Upstream) -> StageResult:
    cfg = ctx.config.efficiency
    # the run decides P1 with the rule's power measured on its own design (its controls entry)
    result = eff.run_efficiency(cfg, out, progress=ctx.progress, resume=True, trainer=ctx.trainer,
                                controls_n=ctx.config.controls_n)
    eff.write_efficiency(result)
    a, table = result.analysis, result.verdict_table()
    fitted = {} if a is None else dict(kappa_G=a.fit_G.kappa, kappa_M=a.fit_M.kappa,
                                       crossover_D_crit=a.crossover.D_crit)
    verdict = robustness(V.p1, table, result.verdict.with_numbers(**fitted),
                         level=cfg.level, design_rates=C.rates_of(result.controls))
    g = result.rows[result.rows["circuit"] == "G"]
    kept = g.groupby("D").agg(networks=("accepted", "size"), accepted=("accepted", "sum"),
                              seeds=("seed", "nunique"),
                              min_trig_share=("trig_share", "min"), trained_at=("settled_from", "max")).reset_index()
    return StageResult(
        "efficiency", config=cfg.to_dict(), verdicts=[verdict],
        estimates={} if a is None else {"crossover": a.crossover.D_crit},
        controls={"P1": result.controls},
        settings=settings_of(cfg, alphas=list(cfg.alphas), settle_iterations=cfg.settle_iterations,
                             M_sizes=list(cfg.m_train_sizes), G_trained_at=list(cfg.g_train_sizes),
                             G_settled_on_subsets=list(cfg.g_subset_sizes)),
        figures={"Figure 3 analogue: correct logit against parameter norm": ctx.rel(out / "fig3_logit_vs_norm.png"),
                 **({} if a is None else {"P1: efficiency P(D) of G and M with the crossover D_crit":
                                          ctx.rel(out / "efficiency_P_of_D.png")})},
        notes=["```", *eff.describe(result), "```"],
        tables=[Table.of(f"G networks per D (accepted: settled, trig share > {cfg.g_only_share:g}); "
                         "each trained from scratch at its own D unless 'trained at D' is larger",
                         ["D", "trained at D", "network-rungs", "accepted", "seeds", "min trig share"],
                         [[k["D"], k["trained_at"], k["networks"], k["accepted"], k["seeds"], k["min_trig_share"]]
                          for k in kept.to_dict("records")])])


def stage_base(ctx: Context, out: Path, upstream: Upstream) -> StageResult:
    base = train_base(ctx.config.base, out, progress=ctx.progress, resume=True, trainer=ctx.trainer)
    cfg = ctx.config.base
    chosen = base.chosen(len(cfg.seeds))
    return StageResult("base", config=cfg.to_dict(), settings=settings_of(cfg, spare_seeds=list(cfg.spare_seeds)),
                       tables=[Table.of(
        f"Base networks (trained on the full dataset; G-only when trig share > {cfg.g_only_share:g}; "
        "ungrokking continues the G-only ones, a spare replacing a base that is not)",
        ["seed", "spare", "train acc", "trig share", "G-only", "continued by ungrokking"],
        [[r["seed"], r["seed"] in cfg.spare_seeds, r["train_acc"], r["trig_share"], r["g_only"], i in chosen]
         for i, r in enumerate(base.rows.to_dict("records"))])])


def stage_ungrokking(ctx: Context, out: Path, upstream: Upstream) -> StageResult:
    cfg = ctx.config.ungrokking
    r = ung.run_ungrokking(cfg, out, progress=ctx.progress, resume=True, base_dir=ctx.folder("base"),
                           trainer=ctx.trainer)
    ung.write_ungrokking(r)
    table, chance = r.verdict_table(), cfg.base.chance
    steps = {f"{w:g}": cfg.steps_for(w) for w in cfg.weight_decays}
    extra = dict(D_crit_pooled=r.pooled.D_crit, first_D_crit=r.first_D_crit, refined_sizes=list(r.refined_sizes))
    share = cfg.base.g_only_share
    verdicts = [robustness(V.p2, table, r.p2.with_numbers(**extra), chance=chance, level=cfg.level, n_boot=0,
                           g_only_share=share),
                robustness(V.p3, table, r.p3.with_numbers(
                    D_crit_by_weight_decay={f"{e.weight_decay:g}": e.D_crit for e in r.by_weight_decay},
                    decay_budget=cfg.decay_budget, steps_per_weight_decay=steps),
                    chance=chance, g_only_share=share)]
    # decided while D_crit still moves with the budget: fragile, whatever the rules say
    verdicts = [with_check(v, "decay_budget", r.budget_check()) for v in verdicts]
    means = r.rows.groupby(["weight_decay", "D"]).agg(
        mean=("final_test_acc", "mean"), min=("final_test_acc", "min"), max=("final_test_acc", "max"),
        converged=("converged", "sum"), n=("converged", "size")).reset_index()
    # semi-grokking places its sizes from an interior transition only
    estimates = {"ungrokking": r.pooled.D_crit, **({} if r.pooled.at_bound else {"ungrokking_interior": r.pooled.D_crit})}
    excluded = r.rows[~r.rows["converged"]]
    return StageResult(
        "ungrokking", config=cfg.to_dict(), verdicts=verdicts, estimates=estimates,
        controls=measure_run_controls({"P2": lambda: C.estimate_transition_design(table, chance),
                                       "P3": lambda: C.estimate_transition_design(table, chance, key="P3")},
                                      ctx.config.controls_n),
        settings=settings_of(cfg, weight_decays=list(cfg.weight_decays), decay_budget=cfg.decay_budget,
                             steps_per_weight_decay=steps, coarse_sizes=list(cfg.sizes),
                             refined_sizes=list(r.refined_sizes), continuations=cfg.max_extensions),
        figures={"Figures 4/7: final test accuracy after ungrokking against D' (open diamonds: the control, "
                 "continued on the full training set)": ctx.rel(out / "ungrokking.png")},
        notes=[f"Pooled D_crit {r.pooled.D_crit.value:.4g} [{r.pooled.D_crit.lo:.4g}, {r.pooled.D_crit.hi:.4g}]"
               + (" (at the edge of the D' grid)" if r.pooled.at_bound else "")
               + f"; the coarse grid's first estimate {r.first_D_crit or float('nan'):.4g} placed the refined D' "
               + f"{list(r.refined_sizes)}. {len(excluded)} of {len(r.rows)} networks are still unconverged after "
               + f"{cfg.max_extensions} continuation(s) and are left out of the fits"
               + (": " + ", ".join(f"D' {d['D']} seed {d['seed']} wd {d['weight_decay']:g}"
                                   for d in excluded.to_dict("records")) if len(excluded) else "") + "."],
        tables=[Table.of("Final test accuracy per (weight decay, D'): mean [min, max] over seeds, converged runs",
                         ["weight decay", "D'", "mean", "min", "max", "converged", "networks"],
                         [[m["weight_decay"], m["D"], m["mean"], m["min"], m["max"], m["converged"], m["n"]]
                          for m in means.to_dict("records")]),
                Table.of(f"D_crit against the decay budget (lr x wd x steps, e-folds): weight decay "
                         f"{cfg.convergence_weight_decay:g}, {len(r.convergence) and int(r.convergence['n_sizes'].iloc[0])} "
                         f"D' around the first D_crit, the same bases; this grid's budget is {cfg.efolds:.3g} e-folds; "
                         f"D_crit moves by at most {cfg.max_drift:.0%} from "
                         + (f"{r.converged_budget():.3g} e-folds" if r.converged_budget() is not None else
                            "none of the measured budgets"),
                         ["e-folds", "step", "D_crit [interval]", "drift to the next budget"],
                         [[c["efolds"], c["step"], Interval(c["D_crit"], c["D_crit_lo"], c["D_crit_hi"], cfg.level,
                                                             "bootstrap"), c["drift_to_next"]]
                          for c in r.convergence.to_dict("records")]),
                Table.of("Control: each base continued on its own full training set for the same steps (final "
                         "accuracy on every pair; P2 needs >= 0.99)",
                         ["weight decay", "seed", "D", "steps", "final accuracy", "converged"],
                         [[c["weight_decay"], c["seed"], c["D"], c["steps"], c["final_acc"], c["converged"]]
                          for c in r.control.to_dict("records")])])


def _dcrit_for_semigrokking(upstream: Upstream) -> tuple[float | None, str]:
    # the ungrokking stage runs first (it is needed): its D_crit at the edge of its grid comes
    # last, but before measuring the same config's D_crit again on demand
    for stage, name, source in (("ungrokking", "ungrokking_interior", "ungrokking transition"),
                                ("efficiency", "crossover", "P1 efficiency crossover"),
                                ("ungrokking", "ungrokking", "ungrokking transition (at the edge of its grid)")):
        iv = _estimate(upstream, stage, name)
        if iv is not None and np.isfinite(iv.value):
            return iv.value, source
    return None, "computed on demand (ungrokking)"


_THRESHOLDS = {"D_down": "D_down: ungrokking transition (P2)",
               "D_cross": "D_cross: efficiency crossover at the operating logit (allocation)",
               "D_up": "D_up: from-scratch transition (these runs)"}


def _bracket_rows(thresholds: dict[str, Interval | None], bracket: dict) -> list[list]:
    """Each threshold with its interval, then each inequality's outcome."""
    rows = [[label, _iv_text(thresholds[k]) if thresholds[k] is not None else "not measured"]
            for k, label in _THRESHOLDS.items()]
    return rows + [[k, v] for k, v in bracket.items() if "<=" in k]


def stage_semigrokking(ctx: Context, out: Path, upstream: Upstream) -> StageResult:
    cfg = ctx.config.semigrokking
    dcrit, source = _dcrit_for_semigrokking(upstream)
    ung_rows = ung_fit = None
    if (ctx.folder("ungrokking") / "ungrokking.json").is_file():
        ung_rows, ung_fit = ung.read_ungrokking(ctx.folder("ungrokking"))
    r = semi.run_semigrokking(cfg, out, dcrit=dcrit, ungrokking=ctx.config.ungrokking, progress=ctx.progress,
                              resume=True, trainer=ctx.trainer, ungrokking_rows=ung_rows, ungrokking_fit=ung_fit)
    semi.write_semigrokking(r)
    thresholds = {"D_down": _estimate(upstream, "ungrokking", "ungrokking"),
                  "D_cross": _estimate(upstream, "allocation", "crossover_operating"), "D_up": r.d_up}
    bracket = V.threshold_bracket(thresholds["D_down"], thresholds["D_cross"], thresholds["D_up"])
    table, chance = r.curves[list(V.P4_COLUMNS)], cfg.chance
    verdict = robustness(V.p4, table, r.verdict.with_numbers(
        D_crit_used=r.dcrit, D_crit_source=source if not cfg.sizes else "sizes given", bracket=bracket),
        chance=chance, rule=cfg.rule)
    by_size = r.by_size()
    power = ", ".join(f"{p} {v:.2f}" for p, v in cfg.power().items())
    notes = [f"Design, declared before the run: {len(r.sizes)} sizes x {len(cfg.seeds)} seeds, weight decay "
             f"{cfg.weight_decay:g}, {cfg.steps} steps (decay budget lr x wd x steps = {cfg.decay_budget:.3g} "
             f"e-folds). Power (each run semi-groks independently with probability p): {power}."]
    if r.d_up_note:
        notes.append(r.d_up_note + ".")
    return StageResult(
        "semigrokking", config=cfg.to_dict(), verdicts=[verdict],
        controls=measure_run_controls({"P4": lambda: C.estimate_p4_design(table, chance, cfg.rule)},
                                      ctx.config.controls_n),
        estimates={"from_scratch": r.d_up} if r.d_up is not None else {},
        settings=settings_of(cfg, sizes=list(r.sizes), size_rule=f"{cfg.n_sizes} sizes evenly spaced in "
                             f"[{cfg.low_factor:g}, {cfg.high_factor:g}] x D_crit", decay_budget=cfg.decay_budget),
        figures={"Figures 5/6: every run's train and test accuracy, by class": ctx.rel(out / "semigrokking.png"),
                 "Final test accuracy against D / D_crit, from scratch and after ungrokking":
                     ctx.rel(out / "semigrokking_final.png")},
        notes=notes,
        tables=[Table.of("Runs by class and size", ["D", "D / D_crit", *V.P4_LABELS],
                         [[row["D"], row.get("D_over_D_crit", float("nan")), *[row[k] for k in V.P4_LABELS]]
                          for row in by_size.to_dict("records")]),
                Table.of("The threshold from both sides: the theory predicts D_down <= D_cross <= D_up",
                         ["quantity or inequality", "value [interval] or outcome"],
                         _bracket_rows(thresholds, bracket)),
                Table.of("Runs (class by the P4 rule)", ["run", "class", "final acc", "memorised step", "onset step",
                                                         "delay ratio", "tail change", "transient plateau"],
                         [[c.run, c.label, c.final_test_acc, c.memorised_step, c.onset_step, c.delay_ratio,
                           c.tail_change, c.transient] for c in r.classes])])


def stage_fig10(ctx: Context, out: Path, upstream: Upstream) -> StageResult:
    cfg = ctx.config.fig10
    r = f10.run_fig10(cfg, out, progress=ctx.progress, resume=True, base_dir=ctx.folder("base"),
                      trainer=ctx.trainer)
    f10.write_fig10(r)
    table = r.rows[list(V.FIG10A_COLUMNS)]
    med = r.rows.groupby("D").agg(ratio=("ratio", "median"), g_logit=("g_logit", "median"),
                                  m_logit=("m_logit", "median"), test_acc=("test_acc", "mean"),
                                  trig_share=("trig_share", "median")).reset_index()
    verdict = robustness(V.fig10a, table, r.verdict.with_numbers(
        proxies_by_D=med.to_dict("records"), converged=int(r.rows["converged"].sum()), n_networks=int(len(r.rows))),
        level=cfg.level)
    return StageResult(
        "fig10", config=cfg.to_dict(), verdicts=[verdict],
        controls=measure_run_controls({"fig10a": lambda: C.estimate_fig10_design(table)}, ctx.config.controls_n),
        settings=settings_of(cfg, sizes=list(cfg.sizes), decay_budget=cfg.decay_budget),
        figures={"Figure 10a: G:M correct-logit ratio against D": ctx.rel(out / "fig10a.png"),
                 "Figure 10b: final test accuracy against D (same networks)": ctx.rel(out / "fig10b.png")})


def _settled_fig10(ctx: Context, out: Path) -> pd.DataFrame:
    """Figure 10's networks settled (reused when this config already settled them)."""
    from circeff.empirical.experiments.allocation import settle_fig10

    cfg = ctx.config.allocation
    runs = ctx.folder("fig10") / "runs"
    if not (runs / "summary.json").is_file():
        raise RunError("no Figure 10 networks (the fig10 stage failed)")
    csv, key = out / "fig10_settled.csv", {"alphas": list(cfg.fig10_alphas), "iterations": cfg.fig10_iterations,
                                          "fig10": to_plain(ctx.config.fig10.to_dict())}
    if csv.is_file() and (out / "fig10_settled.json").is_file() and read_json(out / "fig10_settled.json") == to_plain(key):
        return pd.read_csv(csv)
    rows = settle_fig10(runs, cfg.fig10_alphas, cfg.fig10_iterations, csv, progress=ctx.progress)
    write_json(out / "fig10_settled.json", key)
    return rows


def _iv_text(iv: Interval) -> str:
    return f"{iv.value:.3g} [{iv.lo:.3g}, {iv.hi:.3g}]"


def _allocation_verdict(a, state_alpha: float) -> Verdict:  # noqa: ANN001 - an AllocationAnalysis
    """The allocation verdict with the per-D records that summary.json and the docs show."""
    d, curves, cross = a.disjoint, a.curves, a.crossings
    op = cross["operating_settled"]
    # Figure 10's median ratio per D: AdamW endpoint beside the settled state
    fig10 = pd.DataFrame(a.summary["fig10"])
    fig10 = fig10[(fig10["state"] == "adamw") | (fig10["alpha"] == state_alpha)]
    wide = fig10.pivot(index="D", columns="state", values="ratio_median").reset_index()
    return dataclasses.replace(
        a.verdict, reason=f"{a.verdict.reason}. Disjoint pairs: {d.reason}",
        numbers=to_plain({**a.verdict.numbers, "disjoint_winner_agreement": d.winner_agreement,
                  "disjoint_winner_take_all": d.n_winner_take_all, "disjoint_cells": d.n_cells,
                  "kappa_eff_adamw": curves["adamw"].kappa_eff, "kappa_G": curves["settled"].kappa_G,
                  "kappa_M": curves["settled"].kappa_M,
                  "log_error_by_D": [{"D": p.D, "a": p.log_error_a, "b": p.log_error_b,
                                      "near_crossover": p.near_crossover} for p in curves["settled"].points],
                  "dcrit_operating": op.D_crit, "dcrit_operating_interpolated": op.interpolated,
                  "dcrit_ungrokking": a.dcrit_ungrokking, "dcrit_goal": a.dcrit_comparison.get("operating_settled"),
                  "disjoint_by_D": [{"D": r["D"], "pairs": r["n"], "predicted": "/".join(r["predicted_winners"]),
                                     "measured": "/".join(r["measured_winners"]), "ratio_median": r["ratio_median"],
                                     "winner_take_all": r["winner_take_all"], "agree": r["agree"]} for r in d.per_D],
                  "curves_by_D": [{"D": p.D, "measured": p.measured.value, "measured_lo": p.measured.lo,
                                   "measured_hi": p.measured.hi, "a": p.predicted_a, "log_error_a": p.log_error_a,
                                   "b": p.predicted_b.value, "b_lo": p.predicted_b.lo, "b_hi": p.predicted_b.hi,
                                   "b_region": p.predicted_b_region, "log_error_b": p.log_error_b,
                                   "near_crossover": p.near_crossover} for p in curves["settled"].points],
                  "dcrit_routes": [{"route": k, "D_crit": c.D_crit.value, "lo": c.D_crit.lo, "hi": c.D_crit.hi,
                                    "width": c.D_crit.hi / c.D_crit.lo if c.D_crit.lo > 0 else None,
                                    "operating_logit": c.operating_logit, "interpolated": c.interpolated}
                                   for k, c in cross.items()],
                  "fig10_ratio_by_D": [{"D": r["D"], "adamw": r["adamw"], "settled": r["settled"]}
                                       for r in wide.to_dict("records")]}))


def _dcrit_routes(cross: dict, ungrokking: Interval | None) -> list[list]:
    """Rows of the report's "D_crit two ways" table: each crossover route, then ungrokking's."""
    def width(iv: Interval | None) -> str:
        return f"{iv.hi / iv.lo:.3g}x" if iv is not None and iv.lo > 0 and np.isfinite(iv.hi) else "unbounded"

    named = {"operating_settled": "crossover at the settled operating logit "
                                  f"{cross['operating_settled'].operating_logit:.3g}",
             "operating_adamw": f"crossover at the AdamW operating logit {cross['operating_adamw'].operating_logit:.3g}",
             "unit_logit": "crossover at unit logit"}
    rows = [[label, _iv_text(cross[k].D_crit), width(cross[k].D_crit), cross[k].interpolated]
            for k, label in named.items()]
    if ungrokking is not None:
        rows.append(["ungrokking transition (P2)", _iv_text(ungrokking), width(ungrokking), "-"])
    return rows


def stage_allocation(ctx: Context, out: Path, upstream: Upstream) -> StageResult:
    """Theorem D.4 on disjoint pairs, Figure 10's networks settled, the two predicted curves
    and the crossover at the operating logit beside the ungrokking D_crit."""
    from circeff.empirical.experiments import allocation as alloc

    cfg = ctx.config.allocation
    alone, pair = alloc.run_disjoint(cfg.on_base(ctx.config.base), out / "disjoint", progress=ctx.progress,
                                     base_dir=ctx.folder("base"), m_source=ctx.folder("efficiency") / "M",
                                     trainer=ctx.trainer)
    settled = _settled_fig10(ctx, out)
    ungrokking = _estimate(upstream, "ungrokking", "ungrokking")
    a = alloc.analyse_allocation(alone, pair, settled, n_classes=ctx.config.base.p, state_alpha=cfg.state_alpha,
                                 g_only_share=cfg.g_only_share, dcrit_ungrokking=ungrokking,
                                 level=cfg.level, n_boot=cfg.n_boot)
    alloc.write_allocation(a, out)
    curves, op = a.curves, a.crossings["operating_settled"]
    goal = a.dcrit_comparison.get("operating_settled")
    # the per-D records travel in the verdict (summary.json, the docs); the report's table
    # here is only the one with intervals as text, for reading
    tables = [Table.of("D_crit two ways (width: hi/lo of the interval; interpolated: inside both circuits' "
                       "measured D)", ["route", "D_crit [interval]", "width", "interpolated"],
                       _dcrit_routes(a.crossings, ungrokking))]
    notes = [f"kappa_eff (case 2 fitted to the settled ratios) {_iv_text(curves['settled'].kappa_eff)}; "
             f"to the AdamW endpoints {_iv_text(curves['adamw'].kappa_eff)}; per-circuit kappa_G "
             f"{_iv_text(curves['settled'].kappa_G)} (G settled alone where its trig share stays above "
             f"{cfg.g_only_share:g}), kappa_M {_iv_text(curves['settled'].kappa_M)}.",
             f"G measured at D {op.D_range_G[0]:g}-{op.D_range_G[1]:g}, M at D {op.D_range_M[0]:g}-{op.D_range_M[1]:g}."]
    if goal is not None:
        notes.append(f"D_crit goal (points within 25%, widths within 2x): point gap {goal['point_gap']:.0%}, "
                     f"log-width ratio {goal['width_ratio']:.3g}: {'met' if goal['goal_met'] else 'not met'}.")
    # without one seed: the same curves and rule on the settled ratios of the other seeds (the
    # circuits' efficiencies stay those of every seed); fewer draws, as only the outcome is read
    from circeff.analysis.allocation import allocation_curves, allocation_verdict

    settled_rows = a.curves_input("settled")

    def without_seed(rows: pd.DataFrame) -> Verdict:
        return allocation_verdict(allocation_curves(a.stripes, a.kappa_G, a.fit_alone.fit_M.kappa, rows,
                                                    level=cfg.level, n_boot=min(cfg.n_boot, 300), seed=0))

    verdict = robustness(without_seed, settled_rows, _allocation_verdict(a, cfg.state_alpha))
    return StageResult(
        "allocation", config=cfg.to_dict(), verdicts=[verdict], tables=tables,
        notes=notes,
        estimates={"crossover_operating": op.D_crit},
        figures={"Allocation: G:M logit ratio against D, predicted curves (a), (b) and measured":
                 ctx.rel(out / "allocation_curves.png")})


def stage_figure8(ctx: Context, out: Path, upstream: Upstream) -> StageResult:
    """Figure 8: ungrokking on each other task, with D_crit and the P2/P3 rules per task."""
    from circeff.empirical.experiments import figure8 as fig8

    cfg = ctx.config.figure8
    if cfg is None:
        raise RunError("this scale has no Figure 8 stage")
    r = fig8.run_figure8(cfg, out, progress=ctx.progress, resume=True, trainer=ctx.trainer)
    fig8.write_figure8(r)
    verdicts = []
    for task, vs in r.verdicts.items():
        run, chance = r.ungrokking[task], cfg.ungrokking_for(task).base.chance
        for key, v in vs.items():
            kwargs = {"chance": chance, "g_only_share": run.config.base.g_only_share,
                      **({"level": run.config.level, "n_boot": 0} if key == "P2" else {})}
            verdicts.append(with_check(robustness(V.RULES[key], run.verdict_table(),
                                                  dataclasses.replace(v, key=f"{key} {task}"), **kwargs),
                                       "decay_budget", run.budget_check()))
    rows = [[t["task"], t["p"], t["base_held_out_acc_min"], t["generalised"],
             Interval(t["D_crit"], t["D_crit_lo"], t["D_crit_hi"], cfg.ungrokking.level,
                      "bootstrap percentile (seeds resampled)"), t["P2"],
             t["P3"], t["note"]]
            for t in r.rows.to_dict("records")]
    return StageResult(
        "figure8", config=cfg.to_dict(), verdicts=verdicts,
        figures={"Figure 8: final test accuracy after ungrokking against D', per task": ctx.rel(out / "figure8.png")}
        if (out / "figure8.png").is_file() else {},
        notes=[f"A base network counts as generalised when its accuracy on the pairs it never trained on (the "
               f"held-out {1 - cfg.base_train_frac:.0%}) is at least {cfg.generalised_acc:g}; the trig share "
               "applies to modular addition only. P2 and P3 are the same rules as for addition, per task."],
        tables=[Table.of("Ungrokking per task: D_crit (pooled over weight decays) and the P2/P3 rules",
                         ["task", "P", "base held-out acc (min)", "generalised", "D_crit [interval]", "P2", "P3",
                          "note"], rows),
                Table.of("P2/P3 per task: reasons", ["verdict", "outcome", "robust or fragile", "reason"],
                         [[v.key, v.outcome, v.robustness["label"], v.reason] for v in verdicts])])


@dataclass(frozen=True)
class Stage:
    """One stage of ``circeff reproduce``: its folder name, title, function and what it reads.

    ``verdicts``: the keys it decides (a failed stage's verdicts do not hold); ``configs``: the
    fields of :class:`ReproduceConfig` it reads, its own first (an experiment command checks
    only those); ``needs``: stages that must have run first (an experiment command runs them
    too); ``reads``: stages whose results it uses when they ran; ``optional``: only a scale
    that configures it (``configs[0]`` not None) runs it.
    """

    name: str
    title: str
    run: Callable[[Context, Path, Upstream], StageResult]
    verdicts: tuple[str, ...] = ()
    configs: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    optional: bool = False


# the one list of stages, in the order they run
STAGES: tuple[Stage, ...] = (
    Stage("theory", "Theory checks (D.1-D.4, lemmas)", stage_theory),
    Stage("toy", "Toy model, Figure 2", stage_toy),
    Stage("progress", "Grokking run, Figure 9", stage_progress, configs=("progress",)),
    Stage("efficiency", "P1 efficiency", stage_efficiency, ("P1",), ("efficiency",)),
    Stage("base", "Base networks of ungrokking and Figure 10", stage_base, configs=("base",)),
    Stage("ungrokking", "P2/P3 ungrokking", stage_ungrokking, ("P2", "P3"), ("ungrokking", "base"), needs=("base",)),
    Stage("fig10", "Figure 10a", stage_fig10, ("fig10a",), ("fig10", "base"), needs=("base",)),
    # allocation reuses P1's M networks, continues the base networks, settles Figure 10's
    Stage("allocation", "Allocation and D_crit two ways", stage_allocation, ("allocation",),
          ("allocation", "efficiency", "base"), needs=("efficiency", "base", "ungrokking", "fig10")),
    # semi-grokking places its sizes from ungrokking's D_crit (or P1's crossover) and compares its
    # from-scratch threshold with both thresholds of the stages before it
    Stage("semigrokking", "P4 semi-grokking", stage_semigrokking, ("P4",), ("semigrokking", "base", "ungrokking"),
          needs=("ungrokking",), reads=("efficiency", "allocation")),
    Stage("figure8", "Figure 8, ungrokking per task", stage_figure8, (), ("figure8", "base", "ungrokking"),
          optional=True),
)
_BY_NAME = {s.name: s for s in STAGES}


def stage(name: str) -> Stage:
    """The stage called ``name``."""
    return _BY_NAME[name]


def stages_for(name: str) -> tuple[str, ...]:
    """Stage ``name`` and every stage it needs (transitively), in the order they run."""
    wanted, todo = set(), [name]
    while todo:
        n = todo.pop()
        if n not in wanted:
            wanted.add(n)
            todo += stage(n).needs
    return tuple(s.name for s in STAGES if s.name in wanted)
