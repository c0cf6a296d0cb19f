"""The nine stages of ``circeff reproduce``; each returns a :class:`StageResult`.

=============  =====================================================================
``theory``     Theorems D.1-D.4 and the lemmas (:func:`circeff.theory.check.run_claims`)
``toy``        Figure 2 of the toy model (:func:`circeff.toy.experiments.figure2_data`)
``grokking``   one grokking run with accuracy and the G/M proxies over time (Figure 9)
``p1``         P1 efficiency: M-only and G-only networks (``run_efficiency``)
``base``       G-only networks trained on the full dataset (start of P2/P3 and Figure 10)
``p2_p3``      ungrokking over D' x weight decay x seed (``run_ungrokking``)
``p4``         semi-grokking just above D_crit (``run_semigrokking``)
``fig10``      G:M correct-logit ratio against D (``run_fig10``)
``allocation`` Theorem D.4 from the P1 fits against the measured ratio; D_crit two ways
=============  =====================================================================

A stage reads what earlier stages left through :class:`Context` (typed results, or the
in-memory experiment results of this call), never by parsing their JSON.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from circeff.analysis import controls as C
from circeff.analysis import verdicts as V
from circeff.analysis.allocation import measured_ratios, pooled_kappa
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
from circeff.io import write_csv, write_json
from circeff.reproduce.config import ReproduceConfig
from circeff.reproduce.results import StageResult, Table, verdict_from_record

__all__ = ["STAGE_FUNCS", "STAGE_VERDICTS", "Context", "VERDICT_KEYS", "measure_run_controls", "settings_of"]

VERDICT_KEYS = ("P1", "P2", "P3", "P4", "fig10a", "allocation")
# which verdicts a stage produces (a failed stage's verdicts do not hold)
STAGE_VERDICTS = {"p1": ("P1",), "p2_p3": ("P2", "P3"), "p4": ("P4",), "fig10": ("fig10a",),
                  "allocation": ("allocation",)}


class Context:
    """What the stages of one call share: the config, the out folder, the trainer, the results
    so far, and experiment results kept in memory (recomputed from disk when a stage was skipped)."""

    def __init__(self, config: ReproduceConfig, out: Path, progress: bool, trainer: Trainer = IN_PROCESS) -> None:
        self.config, self.out, self.progress, self.trainer = config, out, progress, trainer
        self.results: dict[str, StageResult] = {}
        self.efficiency: eff.EfficiencyResult | None = None
        self.fig10_rows: pd.DataFrame | None = None

    def rel(self, path: Path) -> str:
        return str(Path(path).relative_to(self.out))

    def estimate(self, stage: str, name: str) -> Interval | None:
        r = self.results.get(stage)
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


def _with_numbers(v: Verdict, **numbers: Any) -> Verdict:
    return Verdict(v.key, v.holds, v.reason, to_plain({**v.numbers, **numbers}), v.rule)


def _step(step: int | None) -> str:
    return "not reached" if step is None else str(step)


def stage_theory(ctx: Context, out: Path) -> StageResult:
    from circeff.theory.check import run_claims

    report = run_claims(seed=ctx.config.theory_seed)
    write_json(out / "theory.json", report.to_dict())
    claims = report.to_dict()["claims"]
    return StageResult("theory", config={"seed": ctx.config.theory_seed},
                       notes=[f"All claims as expected: {'yes' if report.ok else 'no'}."],
                       tables=[Table.of("Theory checks", ["claim", "expected", "outcome", "ok"],
                                        [[c["claim"], str(c["expected"]), str(c["outcome"]), c["ok"]]
                                         for c in claims])])


def stage_toy(ctx: Context, out: Path) -> StageResult:
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


def stage_grokking(ctx: Context, out: Path) -> StageResult:
    cfg = ctx.config.progress
    rows = prog.run_progress(cfg, out, progress=ctx.progress, resume=True).rows  # one model: always here
    last = rows.iloc[-1]
    grok = rows[pd.to_numeric(rows["test_acc"], errors="coerce") >= 0.95]
    mem = rows[rows["train_acc"] >= 0.99]
    memorised = int(mem["step"].iloc[0]) if len(mem) else None
    generalised = int(grok["step"].iloc[0]) if len(grok) else None
    return StageResult(
        "grokking", config=cfg.to_dict(),
        figures={"Figure 9: accuracy, G and M proxies and parameter norm during a grokking run":
                 ctx.rel(out / "fig9.png")},
        notes=[f"Memorised (train acc >= 0.99) at step {_step(memorised)}, generalised (test acc >= 0.95) at "
               f"step {_step(generalised)}; final train/test accuracy {float(last['train_acc']):.3g}/"
               f"{float(last['test_acc']):.3g}."])


def stage_p1(ctx: Context, out: Path) -> StageResult:
    cfg = ctx.config.efficiency
    result = eff.run_efficiency(cfg, out, progress=ctx.progress, resume=True, trainer=ctx.trainer)
    ctx.efficiency = result
    a, table = result.analysis, result.verdict_table()
    verdict = _with_numbers(result.verdict, kappa_G=a.fit_G.kappa, kappa_M=a.fit_M.kappa,
                            crossover_D_crit=a.crossover.D_crit)
    g = result.rows[result.rows["circuit"] == "G"]
    kept = g.groupby("D").agg(networks=("accepted", "size"), accepted=("accepted", "sum"),
                              min_trig_share=("trig_share", "min"), trained_at=("settled_from", "max")).reset_index()
    return StageResult(
        "p1", config=cfg.to_dict(), verdicts=[verdict], estimates={"crossover": a.crossover.D_crit},
        controls=measure_run_controls({"P1": lambda: C.estimate_p1_design(table)}, ctx.config.controls_n),
        settings=settings_of(cfg, alphas=list(cfg.alphas), settle_iterations=cfg.settle_iterations,
                             M_sizes=list(cfg.m_train_sizes), G_trained_at=list(cfg.g_train_sizes),
                             G_settled_on_subsets=list(cfg.g_subset_sizes)),
        figures={"Figure 3 analogue: correct logit against parameter norm": ctx.rel(out / "fig3_logit_vs_norm.png"),
                 "P1: efficiency P(D) of G and M with the crossover D_crit": ctx.rel(out / "efficiency_P_of_D.png")},
        notes=["```", *eff.describe(result), "```"],
        tables=[Table.of(f"G networks per D (accepted: settled, trig share > {cfg.trig_share_threshold:g}); "
                         "a D below the training size was reached by settling on a random subset",
                         ["D", "trained at D", "network-rungs", "accepted", "min trig share"],
                         [[k["D"], k["trained_at"], k["networks"], k["accepted"], k["min_trig_share"]]
                          for k in kept.to_dict("records")])])


def stage_base(ctx: Context, out: Path) -> StageResult:
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


def stage_p2_p3(ctx: Context, out: Path) -> StageResult:
    cfg = ctx.config.ungrokking
    r = ung.run_ungrokking(cfg, out, progress=ctx.progress, resume=True, base_dir=ctx.out / "base",
                           trainer=ctx.trainer)
    table, chance = r.verdict_table(), cfg.base.chance
    steps = {f"{w:g}": cfg.steps_for(w) for w in cfg.weight_decays}
    extra = dict(D_crit_pooled=r.pooled.D_crit, first_D_crit=r.first_D_crit, refined_sizes=list(r.refined_sizes))
    verdicts = [_with_numbers(r.p2, **extra),
                _with_numbers(r.p3, D_crit_by_weight_decay={f"{e.weight_decay:g}": e.D_crit for e in r.by_weight_decay},
                              decay_budget=cfg.decay_budget, steps_per_weight_decay=steps)]
    means = r.rows.groupby(["weight_decay", "D"]).agg(
        mean=("final_test_acc", "mean"), min=("final_test_acc", "min"), max=("final_test_acc", "max"),
        converged=("converged", "sum"), n=("converged", "size")).reset_index()
    # semi-grokking places its sizes from an interior transition only
    estimates = {"ungrokking": r.pooled.D_crit, **({} if r.pooled.at_bound else {"ungrokking_interior": r.pooled.D_crit})}
    excluded = r.rows[~r.rows["converged"]]
    return StageResult(
        "p2_p3", config=cfg.to_dict(), verdicts=verdicts, estimates=estimates,
        controls=measure_run_controls({"P2": lambda: C.estimate_transition_design(table, chance),
                                       "P3": lambda: C.estimate_transition_design(table, chance, key="P3")},
                                      ctx.config.controls_n),
        settings=settings_of(cfg, weight_decays=list(cfg.weight_decays), decay_budget=cfg.decay_budget,
                             steps_per_weight_decay=steps, coarse_sizes=list(cfg.sizes),
                             refined_sizes=list(r.refined_sizes), continuations=cfg.max_extensions),
        figures={"Figures 4/7: final test accuracy after ungrokking against D'": ctx.rel(out / "ungrokking.png")},
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
                          for m in means.to_dict("records")])])


def _dcrit_for_semigrok(ctx: Context) -> tuple[float | None, str]:
    for stage, name, source in (("p2_p3", "ungrokking_interior", "ungrokking transition"),
                                ("p1", "crossover", "P1 efficiency crossover")):
        iv = ctx.estimate(stage, name)
        if iv is not None and np.isfinite(iv.value):
            return iv.value, source
    return None, "computed on demand (ungrokking)"


def stage_p4(ctx: Context, out: Path) -> StageResult:
    cfg = ctx.config.semigrok
    dcrit, source = _dcrit_for_semigrok(ctx)
    r = semi.run_semigrokking(cfg, out, dcrit=dcrit, ungrokking=ctx.config.ungrokking, progress=ctx.progress,
                              resume=True, trainer=ctx.trainer)
    table, chance = r.curves[list(V.P4_COLUMNS)], cfg.chance
    verdict = _with_numbers(r.verdict, D_crit_used=r.dcrit,
                            D_crit_source=source if not cfg.sizes else "sizes given")
    return StageResult(
        "p4", config=cfg.to_dict(), verdicts=[verdict],
        controls=measure_run_controls({"P4": lambda: C.estimate_p4_design(table, chance)}, ctx.config.controls_n),
        settings=settings_of(cfg, sizes=list(r.sizes), size_rule=f"{cfg.n_sizes} sizes geometrically spaced in "
                             f"[{cfg.low_factor:g}, {cfg.high_factor:g}] x D_crit"),
        figures={"Figures 5/6: test accuracy over training by D, classified": ctx.rel(out / "semigrokking.png")},
        tables=[Table.of("Runs (class by the P4 rule)", ["run", "class", "final acc", "tail drift", "transient plateau"],
                         [[c.run, c.label, c.final_acc, c.reason, c.transient_plateau] for c in r.classes])])


def stage_fig10(ctx: Context, out: Path) -> StageResult:
    cfg = ctx.config.fig10
    r = f10.run_fig10(cfg, out, progress=ctx.progress, resume=True, base_dir=ctx.out / "base",
                      trainer=ctx.trainer)
    ctx.fig10_rows = r.rows
    table = r.rows[list(V.FIG10A_COLUMNS)]
    med = r.rows.groupby("D").agg(ratio=("ratio", "median"), g_logit=("g_logit", "median"),
                                  m_logit=("m_logit", "median"), test_acc=("test_acc", "mean"),
                                  trig_share=("trig_share", "median")).reset_index()
    verdict = _with_numbers(r.verdict, proxies_by_D=med.to_dict("records"),
                            converged=int(r.rows["converged"].sum()), n_networks=int(len(r.rows)))
    return StageResult(
        "fig10", config=cfg.to_dict(), verdicts=[verdict],
        controls=measure_run_controls({"fig10a": lambda: C.estimate_fig10_design(table)}, ctx.config.controls_n),
        settings=settings_of(cfg, sizes=list(cfg.sizes), decay_budget=cfg.decay_budget),
        figures={"Figure 10a: G:M correct-logit ratio against D": ctx.rel(out / "fig10a.png"),
                 "Figure 10b: final test accuracy against D (same networks)": ctx.rel(out / "fig10b.png")})


def _dcrit_two_ways(ctx: Context) -> dict:
    from circeff.analysis.dcrit import agree

    cross, trans = ctx.estimate("p1", "crossover"), ctx.estimate("p2_p3", "ungrokking")
    both = cross is not None and trans is not None
    bounded = both and all(np.isfinite([iv.lo, iv.hi]).all() and iv.lo > 0 for iv in (cross, trans))
    return {"crossover": cross, "ungrokking": trans, "agree": bool(agree(cross, trans)) if both else None,
            "informative": bool(bounded)}


def stage_allocation(ctx: Context, out: Path) -> StageResult:
    config = {"q": ctx.config.q, "n_boot": ctx.config.allocation_n_boot}
    dcrit = _dcrit_two_ways(ctx)
    two_ways = Table.of("D_crit two ways (agree when the two intervals overlap; with an unbounded interval "
                        "agreement says nothing)", ["estimate", "D_crit [interval]"],
                        [["efficiency crossover (P1 fits)", dcrit["crossover"]],
                         ["ungrokking transition midpoint (P2)", dcrit["ungrokking"]],
                         ["agree (intervals overlap)", dcrit["agree"]],
                         ["informative (both intervals bounded)", dcrit["informative"]]])
    if ctx.efficiency is None:
        if ctx.results.get("p1") is None or not ctx.results["p1"].done:
            raise RunError("no P1 fit (the p1 stage failed), so Theorem D.4 has no P_G, P_M, kappa")
        # finished earlier: its networks are reused, only the fit is recomputed
        ctx.efficiency = eff.run_efficiency(ctx.config.efficiency, ctx.out / "p1", progress=False, resume=True,
                                            trainer=ctx.trainer)
    rows = ctx.fig10_rows
    if rows is None:
        if not (ctx.out / "fig10" / "fig10.csv").is_file():
            raise RunError("no Figure 10 measurements (the fig10 stage failed)")
        rows = pd.read_csv(ctx.out / "fig10" / "fig10.csv")
    analysis = ctx.efficiency.analysis
    kappa = pooled_kappa(analysis)
    result = StageResult("allocation", config=config, tables=[two_ways])
    if not (np.isfinite(kappa) and kappa > 0):
        # Theorem D.4 is stated for kappa > 0; a non-positive fitted kappa means the P1 fits do
        # not describe the networks, so there is no prediction to compare (a data outcome, not a bug)
        measured = (measured_ratios(rows[["D", "seed", "g_logit", "m_logit"]]).groupby("D")["ratio"]
                    .median().reset_index().rename(columns={"ratio": "measured_median_ratio"}))
        write_csv(out / "allocation.csv", measured.to_dict("records"))
        result.verdicts.append(Verdict(
            "allocation", False,
            f"no prediction: the P1 fits give kappa_G {analysis.fit_G.kappa.value:.3g}, kappa_M "
            f"{analysis.fit_M.kappa.value:.3g} (pooled {kappa:.3g}); Theorem D.4 needs kappa > 0",
            to_plain({"kappa": kappa, "kappa_G": analysis.fit_G.kappa, "kappa_M": analysis.fit_M.kappa,
                      "measured_median_by_D": measured.to_dict("records"), "dcrit_two_ways": dcrit}),
            {"q": ctx.config.q}))
        return result
    c = f10.compare_with_theory(analysis, rows, out, q=ctx.config.q, n_boot=ctx.config.allocation_n_boot, seed=0)
    result.figures = {"Allocation: Theorem D.4 prediction against the measured G:M ratio":
                      ctx.rel(out / "allocation.png")}
    result.verdicts.append(verdict_from_record("allocation", c, rule=("q",), dcrit_two_ways=dcrit))
    return result


STAGE_FUNCS: dict[str, tuple[str, Callable[[Context, Path], StageResult]]] = {
    "theory": ("Theory checks (D.1-D.4, lemmas)", stage_theory),
    "toy": ("Toy model, Figure 2", stage_toy),
    "grokking": ("Grokking run, Figure 9", stage_grokking),
    "p1": ("P1 efficiency", stage_p1),
    "base": ("Base G-only networks", stage_base),
    "p2_p3": ("P2/P3 ungrokking", stage_p2_p3),
    "p4": ("P4 semi-grokking", stage_p4),
    "fig10": ("Figure 10a", stage_fig10),
    "allocation": ("Allocation and D_crit two ways", stage_allocation),
}
