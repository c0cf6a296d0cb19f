"""``circeff reproduce``: every check and experiment of the paper in one resumable run, with a
report (``report.md``) and machine-readable verdicts (``summary.json``).

Stages, in order, each in its own subfolder of the out folder (``DIR/<stage>/``):

=============  =====================================================================
``theory``     Theorems D.1-D.4 and the lemmas (:func:`circeff.theory.check.run_claims`)
``toy``        Figure 2 of the toy model (:func:`circeff.toy.experiments.figure2_data`)
``grokking``   one grokking run with the G/M proxies over time (Figure 9)
``p1``         P1 efficiency: M-only and G-only networks (:func:`run_efficiency`)
``base``       G-only networks trained on the full dataset (start of P2/P3 and Figure 10)
``p2_p3``      ungrokking over D' x weight decay x seed (:func:`run_ungrokking`)
``p4``         semi-grokking just above D_crit (:func:`run_semigrokking`)
``fig10``      G:M correct-logit ratio against D (:func:`run_fig10`)
``allocation`` Theorem D.4 from the P1 fits against the measured ratio; D_crit two ways
=============  =====================================================================

Resuming: a finished stage leaves ``stage.json`` (``done``, its summary and timing) and is
skipped on a rerun; an unfinished one is run again, and the engine continues its batches from
their checkpoints. ``DIR/reproduce_config.json`` records the config; a rerun with a different
config stops with a one-line error unless ``force`` (which deletes the stage folders first).

Verdicts: ``summary.json["verdicts"]`` has exactly the keys ``P1, P2, P3, P4, fig10a,
allocation``, each with a boolean ``holds`` and the numbers behind it, computed from the data.
A stage that fails (for example a fit that is impossible on too few accepted networks) is
reported with its error and its verdicts do not hold; the other stages still run.

Scales: ``quick`` (the default), ``full`` and ``tiny`` (for tests only: P = 11, a 16-wide model,
tens of steps; its numbers mean nothing). ``circeff presets`` lists what each sets; every run's
stage times are recorded in its ``summary.json``.
"""

from __future__ import annotations

import json
import math
import platform
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from circeff.analysis.allocation import measured_ratios, pooled_kappa
from circeff.analysis.stats import Interval, to_plain
from circeff.empirical.backend import IN_PROCESS, Trainer
from circeff.empirical.experiments import efficiency as eff
from circeff.empirical.experiments import fig10 as f10
from circeff.empirical.experiments import progress as prog
from circeff.empirical.experiments import semigrokking as semi
from circeff.empirical.experiments import ungrokking as ung
from circeff.empirical import presets
from circeff.empirical.config import Training
from circeff.empirical.experiments.predictions_common import TINY_MODEL, BaseConfig, train_base
from circeff.errors import ConfigError, RunError
from circeff.io import atomic_write_text, ensure_dir, read_json, write_csv, write_json

__all__ = [
    "PRESETS",
    "SCALES",
    "STAGES",
    "VERDICT_KEYS",
    "ReproduceConfig",
    "reproduce_config",
    "run_reproduce",
]

PRESETS = ("cpu", "paper")
SCALES = ("quick", "full", "tiny")
STAGES = ("theory", "toy", "grokking", "p1", "base", "p2_p3", "p4", "fig10", "allocation")
VERDICT_KEYS = ("P1", "P2", "P3", "P4", "fig10a", "allocation")
CONFIG_FILE = "reproduce_config.json"
STAGE_FILE = "stage.json"


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReproduceConfig:
    """Every stage's config. ``ungrokking.base`` and ``fig10.base`` must be the same networks
    (stage ``base``), and every empirical stage must use the same P (so that D_crit from P1 and
    from ungrokking, and the allocation prediction, are about the same dataset)."""

    preset: str
    scale: str
    theory_seed: int = 0
    toy_steps: int | None = None
    progress: prog.ProgressConfig = field(default_factory=prog.ProgressConfig)
    efficiency: eff.EfficiencyConfig = field(default_factory=eff.EfficiencyConfig)
    ungrokking: ung.UngrokkingConfig = field(default_factory=ung.UngrokkingConfig)
    semigrok: semi.SemigrokConfig = field(default_factory=semi.SemigrokConfig)
    fig10: f10.Fig10Config = field(default_factory=f10.Fig10Config)
    q: float = 2.0
    allocation_n_boot: int = 2000

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError("--preset", f"must be one of {', '.join(PRESETS)}", self.preset)
        if self.scale not in SCALES:
            raise ConfigError("--scale", f"must be one of {', '.join(SCALES)}", self.scale)
        if self.ungrokking.base != self.fig10.base:
            raise ConfigError("fig10.base", "must equal ungrokking.base (one set of base networks)", "differs")
        ps = {"efficiency": self.efficiency.p, "ungrokking": self.ungrokking.base.p, "semigrok": self.semigrok.p}
        if len(set(ps.values())) != 1:
            raise ConfigError("p", "must be the same in P1, ungrokking, semi-grokking and Figure 10", ps)

    @property
    def base(self) -> BaseConfig:
        return self.ungrokking.base

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _with_device(config: ReproduceConfig, device: str) -> ReproduceConfig:
    def on(training):
        return replace(training, device=device)

    base = replace(config.base, training=on(config.base.training))
    return replace(config, progress=replace(config.progress, training=on(config.progress.training)),
                   efficiency=replace(config.efficiency, training=on(config.efficiency.training)),
                   ungrokking=replace(config.ungrokking, base=base), fig10=replace(config.fig10, base=base),
                   semigrok=replace(config.semigrok, training=on(config.semigrok.training)))


def _paper_quick(config: ReproduceConfig) -> ReproduceConfig:
    """The paper's settings with a tenth of the steps and three seeds: a GPU smoke test."""
    def cut(training, seeds: int | None = 3):
        return replace(training, steps=training.steps // 10,
                       seeds=training.seeds[:seeds] if seeds else training.seeds)

    base = replace(config.base, training=cut(config.base.training))
    return replace(
        config, progress=replace(config.progress, training=cut(config.progress.training, None)),
        efficiency=replace(config.efficiency, training=cut(config.efficiency.training, None),
                           settle_iterations=config.efficiency.settle_iterations // 10),
        ungrokking=replace(config.ungrokking, base=base, decay_budget=config.ungrokking.decay_budget / 10),
        fig10=replace(config.fig10, base=base, seeds=config.fig10.seeds[:2],
                      decay_budget=config.fig10.decay_budget / 10),
        semigrok=replace(config.semigrok, training=cut(config.semigrok.training), sizes=config.semigrok.sizes[::4]))


def _tiny() -> ReproduceConfig:
    """P = 11 and a 16-wide model for tests of the plumbing (seconds; numbers mean nothing)."""
    t = Training(p=11, model=TINY_MODEL, lr=1e-2, steps=60, seeds=(0, 1), log_every=10, checkpoint_every=30)
    base = BaseConfig(t)
    return ReproduceConfig(
        preset="cpu", scale="tiny", toy_steps=2000,
        progress=prog.ProgressConfig(replace(t, steps=40, seeds=(0,)), train_frac=0.6, snapshot_every=20),
        efficiency=eff.EfficiencyConfig(t, m_train_sizes=(20, 40), g_train_sizes=(90, 110), alphas=(1e-3, 1e-2),
                                        settle_iterations=10, n_boot=100),
        ungrokking=ung.UngrokkingConfig(base=base, sizes=(10, 30, 60, 100), weight_decays=(1.0, 2.0),
                                        decay_budget=40.0, log_every=10, n_boot=50),
        semigrok=semi.SemigrokConfig(replace(t, steps=40, checkpoint_every=20), n_sizes=2),
        fig10=f10.Fig10Config(base=base, sizes=(10, 30, 60, 100), decay_budget=40.0, log_every=10, n_boot=50),
        allocation_n_boot=50)


# reproduce's (preset, scale) -> the scale of the presets table
_SCALE_OF = {("cpu", "quick"): "quick", ("cpu", "full"): "full", ("paper", "full"): "paper",
             ("paper", "quick"): "paper"}


def reproduce_config(preset: str = "cpu", scale: str = "quick", device: str = "cpu") -> ReproduceConfig:
    """The config of a preset (``cpu``, ``paper``) at a scale (``quick``, ``full``, ``tiny``).

    Every experiment's config is the presets table's entry (:mod:`circeff.empirical.presets`):
    cpu/quick uses the ``quick`` entries, cpu/full the ``full`` ones, paper/full the ``paper``
    ones, and paper/quick those with a tenth of the steps and fewer seeds (a GPU smoke test).
    """
    if preset not in PRESETS:
        raise ConfigError("--preset", f"must be one of {', '.join(PRESETS)}", preset)
    if scale not in SCALES:
        raise ConfigError("--scale", f"must be one of {', '.join(SCALES)}", scale)
    if scale == "tiny":
        return _with_device(replace(_tiny(), preset=preset), device)
    which = _SCALE_OF[(preset, scale)]
    config = ReproduceConfig(
        preset=preset, scale=scale if preset == "cpu" else "full",
        **{name: presets.get(name, which) for name in ("progress", "efficiency", "ungrokking", "semigrok", "fig10")})
    if (preset, scale) == ("paper", "quick"):
        config = replace(_paper_quick(config), scale="quick")
    return _with_device(config, device)


def _comparable(d: Any) -> Any:
    """The config as compared between runs: without device fields (a run may move device)."""
    if isinstance(d, dict):
        return {k: _comparable(v) for k, v in d.items() if k != "device"}
    if isinstance(d, (list, tuple)):
        return [_comparable(v) for v in d]
    return d


# ---------------------------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------------------------


@dataclass
class StageOutcome:
    """What one stage leaves for the report: status, timing, figures, verdicts, data."""

    name: str
    status: str = "done"                       # done | failed
    seconds: float = 0.0
    skipped: bool = False
    error: str | None = None
    figures: dict[str, str] = field(default_factory=dict)   # caption -> path relative to DIR
    verdicts: dict[str, dict] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    config: Any = None

    def to_dict(self) -> dict[str, Any]:
        return to_plain(asdict(self))


class _Context:
    """In-memory results shared between the stages of one call (recomputed when skipped)."""

    def __init__(self, config: ReproduceConfig, out: Path, progress: bool, trainer: Trainer = IN_PROCESS) -> None:
        self.config, self.out, self.progress, self.trainer = config, out, progress, trainer
        self.outcomes: dict[str, StageOutcome] = {}
        self.efficiency: eff.EfficiencyResult | None = None
        self.fig10_rows: pd.DataFrame | None = None

    def rel(self, path: Path) -> str:
        return str(Path(path).relative_to(self.out))


def _interval(d: dict | None) -> Interval | None:
    if not d:
        return None
    f = (lambda v, default: default if v is None else float(v))
    return Interval(f(d.get("value"), math.nan), f(d.get("lo"), -math.inf), f(d.get("hi"), math.inf),
                    float(d.get("level") or 0.95), str(d.get("method", "")))


def _stage_theory(ctx: _Context, out: Path, o: StageOutcome) -> None:
    from circeff.theory.check import run_claims

    report = run_claims(seed=ctx.config.theory_seed)
    write_json(out / "theory.json", report.to_dict())
    o.data = {"ok": report.ok, "failures": report.failures,
              "claims": [{"claim": r["claim"], "ok": r["ok"], "expected": r["expected"],
                          "outcome": r["outcome"], "statement": r["statement"]}
                         for r in report.to_dict()["claims"]]}
    o.config = {"seed": ctx.config.theory_seed}


def _stage_toy(ctx: _Context, out: Path, o: StageOutcome) -> None:
    from circeff.toy.experiments import figure2_data
    from circeff.toy.plots import figure_png, plot_figure2

    from circeff.io import atomic_write_bytes

    data = figure2_data(ctx.config.toy_steps)
    write_json(out / "figure2.json", to_plain(data))
    atomic_write_bytes(out / "figure2.png", figure_png(plot_figure2(data)))
    o.figures = {"Figure 2 (toy model): train and test loss": ctx.rel(out / "figure2.png")}
    o.data = {"grokking_step": {k: p.get("grokking_step") for k, p in data["panels"].items()},
              "titles": {k: p.get("title") for k, p in data["panels"].items()}}
    o.config = {"steps": ctx.config.toy_steps or "toy default (50000)"}


def _stage_grokking(ctx: _Context, out: Path, o: StageOutcome) -> None:
    cfg = ctx.config.progress
    result = prog.run_progress(cfg, out, progress=ctx.progress, resume=True)  # one model: always here
    rows = result.rows
    last = rows.iloc[-1]
    grok = rows[rows["test_acc"] >= 0.95]
    mem = rows[rows["train_acc"] >= 0.99]
    o.figures = {"Figure 9: G and M proxies and parameter norm during a grokking run": ctx.rel(out / "fig9.png")}
    o.data = {"final_train_acc": float(last["train_acc"]), "final_test_acc": float(last["test_acc"]),
              "memorised_at": int(mem["step"].iloc[0]) if len(mem) else None,
              "generalised_at": int(grok["step"].iloc[0]) if len(grok) else None,
              "final_trig_train": float(last["trig_train"]), "final_mem_train": float(last["mem_train"])}
    o.config = cfg.to_dict()


def _stage_p1(ctx: _Context, out: Path, o: StageOutcome) -> None:
    cfg = ctx.config.efficiency
    o.config = cfg.to_dict()
    result = eff.run_efficiency(cfg, out, progress=ctx.progress, resume=True, trainer=ctx.trainer)
    ctx.efficiency = result
    a = result.analysis
    o.figures = {"Figure 3 analogue: correct logit against parameter norm": ctx.rel(out / "fig3_logit_vs_norm.png"),
                 "P1: efficiency P(D) of G and M with the crossover D_crit": ctx.rel(out / "efficiency_P_of_D.png")}
    o.verdicts["P1"] = {**a.verdict.to_dict(), "kappa_G": a.fit_G.kappa.to_dict(), "kappa_M": a.fit_M.kappa.to_dict(),
                        "crossover_D_crit": a.crossover.D_crit.to_dict()}
    o.data = {"crossover": a.crossover.D_crit.to_dict(), "describe": eff.describe(result)}


def _stage_base(ctx: _Context, out: Path, o: StageOutcome) -> None:
    base = train_base(ctx.config.base, out, progress=ctx.progress, resume=True, trainer=ctx.trainer)
    o.config = ctx.config.base.to_dict()
    o.data = {"networks": base.rows.to_dict("records"), "all_g_only": base.all_g_only}


def _stage_p2_p3(ctx: _Context, out: Path, o: StageOutcome) -> None:
    cfg = ctx.config.ungrokking
    o.config = cfg.to_dict()
    r = ung.run_ungrokking(cfg, out, progress=ctx.progress, resume=True, base_dir=ctx.out / "base",
                           trainer=ctx.trainer)
    o.figures = {"Figures 4/7/10b: final test accuracy after ungrokking against D'": ctx.rel(out / "ungrokking.png")}
    per_wd = {f"{e.weight_decay:g}": e.D_crit.to_dict() for e in r.by_weight_decay}
    o.verdicts["P2"] = {**r.transition.to_dict(), "chance": cfg.base.chance,
                        "converged": int(r.rows["converged"].sum()), "n_networks": int(len(r.rows))}
    if r.weight_decay is not None:
        v = r.weight_decay.to_dict()
        v.pop("estimates", None)
        o.verdicts["P3"] = {**v, "D_crit_by_weight_decay": per_wd, "decay_budget": cfg.decay_budget,
                            "steps_per_weight_decay": {f"{w:g}": cfg.steps_for(w) for w in cfg.weight_decays}}
    else:
        o.verdicts["P3"] = {"holds": False, "reason": "only one weight decay"}
    means = (r.rows.groupby(["weight_decay", "D"])["final_test_acc"].agg(["mean", "min", "max"]).reset_index())
    o.data = {"D_crit": r.pooled.D_crit.to_dict(), "at_bound": r.pooled.at_bound,
              "curve": r.pooled.curve.to_dict(), "mean_acc": means.to_dict("records")}


def _dcrit_for_semigrok(ctx: _Context) -> tuple[float | None, str]:
    ungr = ctx.outcomes.get("p2_p3")
    if ungr and ungr.status == "done":
        iv = _interval(ungr.data.get("D_crit"))
        if iv is not None and np.isfinite(iv.value) and not ungr.data.get("at_bound"):
            return iv.value, "ungrokking transition"
    p1 = ctx.outcomes.get("p1")
    if p1 and p1.status == "done":
        iv = _interval(p1.data.get("crossover"))
        if iv is not None and np.isfinite(iv.value):
            return iv.value, "P1 efficiency crossover"
    return None, "computed on demand (ungrokking)"


def _stage_p4(ctx: _Context, out: Path, o: StageOutcome) -> None:
    cfg = ctx.config.semigrok
    o.config = cfg.to_dict()
    dcrit, source = _dcrit_for_semigrok(ctx)
    r = semi.run_semigrokking(cfg, out, dcrit=dcrit, ungrokking=ctx.config.ungrokking, progress=ctx.progress,
                              resume=True, trainer=ctx.trainer)
    o.figures = {"Figures 5/6: test accuracy over training, classified": ctx.rel(out / "semigrokking.png")}
    counts = r.verdict.counts
    reason = (f"{counts['semi']} of {r.verdict.n_runs} runs semi-grokked (needs {cfg.min_semi}); "
              + ", ".join(f"{k} {n}" for k, n in counts.items() if k != "semi")
              + f"; {r.verdict.n_transient} transient plateaus; sizes {list(r.sizes)}")
    o.verdicts["P4"] = {**r.verdict.to_dict(), "reason": reason, "sizes": list(r.sizes), "D_crit_used": r.dcrit,
                        "D_crit_source": source if not cfg.sizes else "sizes given",
                        "band": list(cfg.thresholds.band)}
    o.data = {"classes": [c.to_dict() for c in r.classes]}


def _stage_fig10(ctx: _Context, out: Path, o: StageOutcome) -> None:
    cfg = ctx.config.fig10
    o.config = cfg.to_dict()
    r = f10.run_fig10(cfg, out, progress=ctx.progress, resume=True, base_dir=ctx.out / "base",
                      trainer=ctx.trainer)
    ctx.fig10_rows = r.rows
    o.figures = {"Figure 10a: G:M correct-logit ratio against D": ctx.rel(out / "fig10a.png"),
                 "Figure 10b: final test accuracy against D (same networks)": ctx.rel(out / "fig10b.png")}
    med = r.rows.groupby("D").agg(ratio=("ratio", "median"), g_logit=("g_logit", "median"),
                                  m_logit=("m_logit", "median"), test_acc=("test_acc", "mean"),
                                  trig_share=("trig_share", "median")).reset_index()
    o.verdicts["fig10a"] = {**r.verdict.to_dict(), "median_by_D": med.to_dict("records"),
                            "converged": int(r.rows["converged"].sum()), "n_networks": int(len(r.rows))}


def _stage_allocation(ctx: _Context, out: Path, o: StageOutcome) -> None:
    o.config = {"q": ctx.config.q, "n_boot": ctx.config.allocation_n_boot}
    dcrit = _dcrit_two_ways(ctx)
    o.data["dcrit_two_ways"] = dcrit
    if ctx.efficiency is None:
        p1 = ctx.outcomes.get("p1")
        if p1 is None or p1.status != "done":
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
    if not (np.isfinite(kappa) and kappa > 0):
        # Theorem D.4 is stated for kappa > 0; a non-positive fitted kappa means the P1 fits do
        # not describe the networks, so there is no prediction to compare (a data outcome, not a bug)
        measured = (measured_ratios(rows[["D", "seed", "g_logit", "m_logit"]]).groupby("D")["ratio"]
                    .median().reset_index().rename(columns={"ratio": "measured_median_ratio"}))
        write_csv(out / "allocation.csv", measured.to_dict("records"))
        o.verdicts["allocation"] = {
            "holds": False, "q": ctx.config.q, "kappa": kappa, "kappa_G": analysis.fit_G.kappa.value,
            "kappa_M": analysis.fit_M.kappa.value, "kappa_G_interval": analysis.fit_G.kappa.to_dict(),
            "kappa_M_interval": analysis.fit_M.kappa.to_dict(), "measured_median_by_D": measured.to_dict("records"),
            "dcrit_two_ways": dcrit,
            "reason": (f"no prediction: the P1 fits give kappa_G {analysis.fit_G.kappa.value:.3g}, kappa_M "
                       f"{analysis.fit_M.kappa.value:.3g} (pooled {kappa:.3g}); Theorem D.4 needs kappa > 0")}
        return
    c = f10.compare_with_theory(analysis, rows, out, q=ctx.config.q,
                                n_boot=ctx.config.allocation_n_boot, seed=0)
    o.figures = {"Allocation: Theorem D.4 prediction against the measured G:M ratio": ctx.rel(out / "allocation.png")}
    d = c.to_dict()
    o.verdicts["allocation"] = {**d, "dcrit_two_ways": dcrit}


def _dcrit_two_ways(ctx: _Context) -> dict[str, Any]:
    from circeff.analysis.dcrit import agree

    p1, ungr = ctx.outcomes.get("p1"), ctx.outcomes.get("p2_p3")
    cross = _interval(p1.data.get("crossover")) if p1 and p1.status == "done" else None
    trans = _interval(ungr.data.get("D_crit")) if ungr and ungr.status == "done" else None
    both = cross is not None and trans is not None
    bounded = both and all(np.isfinite([iv.lo, iv.hi]).all() and iv.lo > 0 for iv in (cross, trans))
    return {"crossover": cross.to_dict() if cross else None, "ungrokking": trans.to_dict() if trans else None,
            "agree": bool(agree(cross, trans)) if both else None,
            "informative": bool(bounded),
            "rule": "agree when the two intervals overlap (circeff.analysis.dcrit.agree); with an "
                    "unbounded interval agreement says nothing (informative: false)"}


_STAGE_FUNCS: dict[str, tuple[str, Callable[[_Context, Path, StageOutcome], None]]] = {
    "theory": ("Theory checks (D.1-D.4, lemmas)", _stage_theory),
    "toy": ("Toy model, Figure 2", _stage_toy),
    "grokking": ("Grokking run, Figure 9", _stage_grokking),
    "p1": ("P1 efficiency", _stage_p1),
    "base": ("Base G-only networks", _stage_base),
    "p2_p3": ("P2/P3 ungrokking", _stage_p2_p3),
    "p4": ("P4 semi-grokking", _stage_p4),
    "fig10": ("Figure 10a", _stage_fig10),
    "allocation": ("Allocation and D_crit two ways", _stage_allocation),
}
# which verdicts a stage produces (a failed stage's verdicts do not hold)
_STAGE_VERDICTS = {"p1": ("P1",), "p2_p3": ("P2", "P3"), "p4": ("P4",), "fig10": ("fig10a",),
                   "allocation": ("allocation",)}


def _run_stage(ctx: _Context, name: str, fingerprint: str) -> StageOutcome:
    out = ensure_dir(ctx.out / name)
    marker = out / STAGE_FILE
    if marker.is_file():
        saved = read_json(marker)
        if saved.get("done") and saved.get("fingerprint") == fingerprint:
            o = StageOutcome(**{k: v for k, v in saved["outcome"].items() if k in StageOutcome.__dataclass_fields__})
            o.skipped = True
            return o
    o = StageOutcome(name)
    t0 = time.perf_counter()
    try:
        _STAGE_FUNCS[name][1](ctx, out, o)
    except (RunError, ConfigError) as exc:
        o.status, o.error = "failed", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - one stage's bug must not lose the other stages' results
        last = traceback.extract_tb(exc.__traceback__)[-1]
        o.status, o.error = "failed", f"{type(exc).__name__}: {exc} (at {Path(last.filename).name}:{last.lineno})"
    o.seconds = round(time.perf_counter() - t0, 2)
    for key in _STAGE_VERDICTS.get(name, ()):
        if o.status == "failed" or key not in o.verdicts:
            o.verdicts[key] = {"holds": False, "reason": f"stage {name} failed: {o.error}"}
    if o.status == "done":
        write_json(marker, to_plain({"done": True, "fingerprint": fingerprint, "outcome": o.to_dict(),
                                     "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}))
    return o


# ---------------------------------------------------------------------------------------------
# Out folder
# ---------------------------------------------------------------------------------------------


def _prepare_out(out: Path, config: ReproduceConfig, force: bool) -> None:
    """Refuse an out folder holding another config's results (or foreign files) unless force."""
    cfg_file = out / CONFIG_FILE
    wanted = _comparable(to_plain(config.to_dict()))
    if cfg_file.is_file():
        try:
            existing = _comparable(read_json(cfg_file))
        except (OSError, json.JSONDecodeError):
            existing = None
        if existing != wanted:
            if not force:
                raise RunError(f"{out} holds results of a different reproduce config "
                               f"({_first_difference(existing, wanted)}); use another --out, or --force to replace them")
            _clear(out)
    elif out.is_dir() and any(out.iterdir()):
        if not force:
            raise RunError(f"{out} is not empty and holds no circeff reproduce results; use an empty "
                           "--out, or --force to write into it")
        _clear(out)
    ensure_dir(out)
    write_json(cfg_file, to_plain(config.to_dict()))


def _clear(out: Path) -> None:
    """Delete what reproduce writes (stage folders, report, summary, config); nothing else."""
    for name in STAGES:
        if (out / name).is_dir():
            shutil.rmtree(out / name)
    for name in (CONFIG_FILE, "report.md", "summary.json"):
        if (out / name).is_file():
            (out / name).unlink()


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else k)
    return f"{path or 'config'}: {a!r} there, {b!r} now" if path else "unreadable config"


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def run_reproduce(config: ReproduceConfig, out_dir: str | Path, *, force: bool = False, progress: bool = True,
                  command: str = "", trainer: Trainer | None = None) -> dict[str, Any]:
    """Run (or resume) every stage; write ``report.md`` and ``summary.json``; return the summary.

    ``trainer`` trains the engine batches (default: in this process); it changes where they
    train, never what they compute, so it is not part of the config.
    """
    from tqdm.auto import tqdm

    from circeff.report import write_report  # the markdown writer

    out = Path(out_dir)
    _prepare_out(out, config, force)
    fingerprint = _fingerprint(config)
    ctx = _Context(config, out, progress, trainer or IN_PROCESS)
    started = time.perf_counter()
    bar = tqdm(STAGES, desc="reproduce", unit="stage", disable=not progress, dynamic_ncols=True)
    for name in bar:
        bar.set_postfix_str(_STAGE_FUNCS[name][0])
        ctx.outcomes[name] = _run_stage(ctx, name, fingerprint)
    bar.close()
    total = time.perf_counter() - started

    verdicts: dict[str, dict] = {}
    for o in ctx.outcomes.values():
        verdicts.update(o.verdicts)
    verdicts = {k: verdicts.get(k, {"holds": False, "reason": "not computed"}) for k in VERDICT_KEYS}
    for v in verdicts.values():
        v["holds"] = bool(v.get("holds"))
    summary = to_plain({
        "command": command,
        "preset": config.preset, "scale": config.scale,
        "verdicts": verdicts,
        "dcrit_two_ways": ctx.outcomes["allocation"].data.get("dcrit_two_ways"),
        # total_s is this call; stages_s adds up every stage's recorded time, skipped ones
        # included, so a resumed run still says what the whole result cost
        "timings": {"total_s": round(total, 2),
                    "stages_s": round(sum(o.seconds or 0.0 for o in ctx.outcomes.values()), 2),
                    "stages": {n: {"seconds": o.seconds, "skipped": o.skipped, "status": o.status}
                               for n, o in ctx.outcomes.items()}},
        "stages": {n: {"status": o.status, "error": o.error, "figures": o.figures, "data": o.data}
                   for n, o in ctx.outcomes.items()},
        "config": config.to_dict(),
        "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    })
    write_json(out / "summary.json", summary)
    atomic_write_text(out / "report.md", write_report(summary, ctx.outcomes))
    return summary


def _fingerprint(config: ReproduceConfig) -> str:
    from circeff.empirical.experiments.predictions_common import config_fingerprint

    return config_fingerprint(_comparable(to_plain(config.to_dict())))
