"""Negative controls and power of the decision rules in :mod:`circeff.analysis.verdicts`.

For every verdict a *design* records the shape of a run (the grid of D, seeds, weight
decays, evaluation steps) and its noise, and :func:`simulate` draws synthetic tables of that
shape under two truths:

* ``"alternative"``, a named alternative that violates the prediction:
  P1: G's efficiency slope equals M's; P2: a linear ramp in log D' across the grid;
  P3: D_crit proportional to wd^0.25; P4: the runs that would semi-grok are still rising or
  never plateau; Figure 10a: a flat ratio.
* ``"hypothesis"``, the paper's prediction with the run's own effect sizes.

:func:`measure_controls` applies a verdict to ``n`` tables of each kind and reports the
false-accept rate (the alternative accepted) and the false-reject rate (the hypothesis
rejected), each with a Clopper-Pearson 95% interval, against the targets (false accept at most
5%, false reject at most 20%). :func:`required_design` scans one design field (more seeds,
more sizes) for the smallest value that meets both targets.

``estimate_*_design`` read the design and the noise from a real table (the residuals of the
run's own fits), so the controls of a run are drawn with that run's grid and noise.
Everything returned is JSON-safe (``to_dict()``), ready for ``summary.json["controls"]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from circeff.analysis import verdicts as V
from circeff.analysis.efficiency import efficiency_slope, stripe_efficiencies
from circeff.analysis.semigrokking import P4Rule
from circeff.analysis.ungrokking import converged_rows, pooled_fit, transition_accuracy, unit_log_dcrit
from circeff.thresholds import CONFIDENCE_LEVEL
from circeff.analysis.stats import Interval, require_columns, to_plain
from circeff.errors import ConfigError

__all__ = [
    "ALTERNATIVES",
    "TARGETS",
    "Fig10Design",
    "P1Design",
    "P4Design",
    "TransitionDesign",
    "estimate_fig10_design",
    "estimate_p1_design",
    "estimate_p4_design",
    "estimate_transition_design",
    "VERDICTS",
    "measure_controls",
    "measure_designs",
    "p1_on_its_design",
    "rates_of",
    "reference_designs",
    "required_design",
    "simulate",
]

TARGETS = {"false_accept": 0.05, "false_reject": 0.20}
ALTERNATIVES = {
    "P1": "G's slope of log P against log D equals M's",
    "P2": "final test accuracy is a straight line in log D' from chance at the smallest D' to 1 at the largest",
    "P3": "D_crit proportional to weight_decay^0.25",
    "P4": "the runs that would semi-grok are still rising at the last step (linearly, or on a late logistic), "
          "or reach middling accuracy together with train accuracy (no delay)",
    "fig10a": "the G:M ratio does not depend on D",
}


class _Design:
    key: str

    def to_dict(self) -> dict:
        return to_plain({"key": self.key, **asdict(self)})

    def verdict_kwargs(self) -> dict:
        """Arguments the verdict takes besides the table (P2-P4 also need the chance level)."""
        return {}


@dataclass(frozen=True)
class P1Design(_Design):
    """Settled single-circuit networks: ``log P = log_P_* + slope log D`` per (D, seed) stripe
    plus ``stripe_sd_*`` noise; each rung sits at ``log_logit_by_rung`` with ``rung_sd_*`` noise
    in log logit about ``logit = (norm / P)^kappa``.

    M has ``seeds`` seeds at every D. G has them too unless ``G_cells`` lists the (D, seed)
    stripes it has: a run keeps only the G networks that stayed G-only, and the clustered slope
    uses only seeds kept at two or more D, so the power on the run's own design is the power on
    its kept cells. ``copies`` repeats the whole design (M's seeds, G's seeds or cells) under fresh
    seeds: the design with that many times the kept networks of both circuits."""

    M_D: tuple[float, ...]
    G_D: tuple[float, ...]
    seeds: int
    log_logit_by_rung: tuple[float, ...]
    kappa_M: float
    kappa_G: float
    slope_M: float
    log_P_M: float          # intercept of log P_M at log D = 0
    log_P_G: float          # log P_G at the geometric centre of G_D
    stripe_sd_M: float
    stripe_sd_G: float
    rung_sd_M: float
    rung_sd_G: float
    G_cells: tuple[tuple[float, int], ...] | None = None
    copies: int = 1
    key: str = "P1"

    def seeds_at(self, circuit: str, D: float) -> list[int]:
        """The circuit's seeds at ``D``: every seed, or for G those of ``G_cells``, each
        repeated ``copies`` times under new seed ids."""
        if circuit == "M" or self.G_cells is None:
            base, span = list(range(self.seeds)), self.seeds
        else:
            base = sorted(s for d, s in self.G_cells if d == D)
            span = 1 + max(s for _, s in self.G_cells)
        return [s + k * span for k in range(self.copies) for s in base]


@dataclass(frozen=True)
class TransitionDesign(_Design):
    """Ungrokking networks (P2 and P3): accuracy ``lower + (upper - lower) sigmoid((log D' -
    log D_crit - shift) / width)`` with a per-seed shift (``seed_sd``, shared by the weight
    decays: the same base network), a per-(weight decay, seed) shift (``unit_sd``) and Gaussian
    noise ``noise_sd`` per network, clipped to [0, 1]; ``unconverged`` of the rows flagged."""

    sizes: tuple[float, ...]
    seeds: int
    weight_decays: tuple[float, ...]
    chance: float
    D_crit: float
    width: float
    lower: float
    upper: float
    seed_sd: float
    unit_sd: float
    noise_sd: float
    unconverged: float = 0.0
    key: str = "P2"

    def verdict_kwargs(self) -> dict:
        return {"chance": self.chance}


@dataclass(frozen=True)
class P4Design(_Design):
    """Runs from random initialisation at ``sizes`` x ``seeds``, evaluated at ``steps``; a
    fraction ``semi_fraction`` (at least ``rule.min_semi`` runs, two of them of distinct seeds
    and sizes) would semi-grok under the hypothesis, the others grok or stay near chance;
    test-accuracy noise ``noise_sd`` per evaluation; ``rule`` is the run's P4 rule."""

    sizes: tuple[float, ...]
    seeds: int
    steps: tuple[float, ...]
    chance: float
    noise_sd: float
    semi_fraction: float
    rule: P4Rule = P4Rule()
    key: str = "P4"

    def verdict_kwargs(self) -> dict:
        return {"chance": self.chance, "rule": self.rule}


@dataclass(frozen=True)
class Fig10Design(_Design):
    """Networks at ``sizes`` x ``seeds`` with ``log ratio = intercept + slope log D`` plus
    Gaussian noise ``noise_sd``."""

    sizes: tuple[float, ...]
    seeds: int
    slope: float
    intercept: float
    noise_sd: float
    key: str = "fig10a"


Design = P1Design | TransitionDesign | P4Design | Fig10Design


# ---------------------------------------------------------------------------------------------
# Simulation
# ---------------------------------------------------------------------------------------------


def _sim_p1(d: P1Design, truth: str, rng: np.random.Generator) -> pd.DataFrame:
    centre = float(np.mean(np.log(d.G_D)))
    slope_G = d.slope_M if truth == "alternative" else 0.0
    rows = []
    for circuit, Ds in (("M", d.M_D), ("G", d.G_D)):
        kappa = d.kappa_M if circuit == "M" else d.kappa_G
        for D in Ds:
            seeds = d.seeds_at(circuit, D)
            if circuit == "M":
                log_P = d.log_P_M + d.slope_M * math.log(D) + d.stripe_sd_M * rng.standard_normal(len(seeds))
            else:
                log_P = d.log_P_G + slope_G * (math.log(D) - centre) + d.stripe_sd_G * rng.standard_normal(len(seeds))
            rung_sd = d.rung_sd_M if circuit == "M" else d.rung_sd_G
            for i, s in enumerate(seeds):
                for r, target in enumerate(d.log_logit_by_rung):
                    log_norm = log_P[i] + (target + 0.05 * rng.standard_normal()) / kappa
                    log_logit = kappa * (log_norm - log_P[i]) + rung_sd * rng.standard_normal()
                    rows.append({"circuit": circuit, "D": float(D), "seed": s, "alpha": 10.0 ** (r - 4),
                                 "logit": math.exp(log_logit), "param_norm": math.exp(log_norm)})
    return pd.DataFrame(rows)


def _sim_transition(d: TransitionDesign, truth: str, rng: np.random.Generator) -> pd.DataFrame:
    x = np.log(np.asarray(d.sizes, float))
    wd_ref = float(np.exp(np.mean(np.log(d.weight_decays))))
    seed_shift = d.seed_sd * rng.standard_normal(d.seeds)
    rows = []
    for wd in d.weight_decays:
        log_dc = math.log(d.D_crit)
        if truth == "alternative" and d.key == "P3":
            log_dc += 0.25 * math.log(wd / wd_ref)
        for s in range(d.seeds):
            mid = log_dc + seed_shift[s] + d.unit_sd * rng.standard_normal()
            if truth == "alternative" and d.key == "P2":
                mean = d.chance + (1 - d.chance) * (x - x.min()) / (x.max() - x.min())
            else:
                mean = d.lower + (d.upper - d.lower) * expit((x - mid) / d.width)
            acc = np.clip(mean + d.noise_sd * rng.standard_normal(x.size), 0.0, 1.0)
            conv = rng.random(x.size) >= d.unconverged
            rows += [{"D": float(D), "seed": s, "weight_decay": float(wd), "final_test_acc": float(a),
                      "converged": bool(c)} for D, a, c in zip(d.sizes, acc, conv)]
    return pd.DataFrame(rows)


def _semi_runs(d: P4Design, runs: list[tuple[float, int]], rng: np.random.Generator) -> set[int]:
    """Which of ``runs`` would semi-grok: at least ``min_semi``, the first two of distinct seeds and sizes."""
    n_semi = min(len(runs), max(d.rule.min_semi, int(round(d.semi_fraction * len(runs)))))
    first = int(rng.integers(len(runs)))
    others = [i for i, r in enumerate(runs) if r[0] != runs[first][0] and r[1] != runs[first][1]]
    chosen = {first, int(rng.choice(others))} if others else {first}
    rest = [i for i in range(len(runs)) if i not in chosen]
    return chosen | set(rng.choice(rest, size=max(0, n_semi - len(chosen)), replace=False).tolist())


def _sim_p4(d: P4Design, truth: str, rng: np.random.Generator) -> pd.DataFrame:
    steps = np.asarray(d.steps, float)
    t = (steps - steps[0]) / (steps[-1] - steps[0])
    runs = [(D, s) for D in d.sizes for s in range(d.seeds)]
    semi = _semi_runs(d, runs, rng)
    frames = []
    for i, (D, s) in enumerate(runs):
        fit_at = 0.03    # every run fits its training set early, as in the runs
        train = np.clip(expit((t - fit_at) / 0.005) + 0.002 * rng.standard_normal(t.size), 0, 1)
        level = d.chance + (1 - d.chance) * rng.uniform(0.35, 0.7)
        if i in semi and truth == "hypothesis":   # memorised, then after a delay a middling plateau
            test = d.chance + (level - d.chance) * expit((t - rng.uniform(0.2, 0.5)) / 0.02)
        elif i in semi and i % 3 == 0:            # still rising linearly to a middling value at the last step
            test = d.chance + (level - d.chance) * t
        elif i in semi and i % 3 == 1:            # a late logistic rise whose middle lies at or after the last step
            test = d.chance + (1 - d.chance) * expit((t - rng.uniform(0.95, 1.1)) / 0.15)
        elif i in semi:                            # middling accuracy reached together with the training set
            test = d.chance + (level - d.chance) * expit((t - fit_at) / 0.005)
        elif rng.random() < 0.5:
            test = d.chance + (1 - d.chance) * expit((t - rng.uniform(0.2, 0.6)) / 0.03)
        else:
            test = np.full(t.size, d.chance + 0.02)
        test = np.clip(test + d.noise_sd * rng.standard_normal(t.size), 0, 1)
        frames.append(pd.DataFrame({"D": float(D), "seed": s, "step": steps, "train_acc": train,
                                    "test_acc": test}))
    return pd.concat(frames, ignore_index=True)


def _sim_fig10(d: Fig10Design, truth: str, rng: np.random.Generator) -> pd.DataFrame:
    slope = 0.0 if truth == "alternative" else d.slope
    rows = [{"D": float(D), "seed": s,
             "ratio": float(np.exp(d.intercept + slope * math.log(D) + d.noise_sd * rng.standard_normal()))}
            for D in d.sizes for s in range(d.seeds)]
    return pd.DataFrame(rows)


_SIMULATORS: dict[type, Callable[..., pd.DataFrame]] = {
    P1Design: _sim_p1, TransitionDesign: _sim_transition, P4Design: _sim_p4, Fig10Design: _sim_fig10}


def simulate(design: Design, truth: str, seed: int | np.random.Generator = 0) -> pd.DataFrame:
    """One synthetic table of ``design`` under ``truth`` (``"hypothesis"`` or ``"alternative"``)."""
    if truth not in ("hypothesis", "alternative"):
        raise ConfigError("truth", "must be 'hypothesis' or 'alternative'", truth)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return _SIMULATORS[type(design)](design, truth, rng)


# ---------------------------------------------------------------------------------------------
# Rates
# ---------------------------------------------------------------------------------------------


def _rate(k: int, n: int) -> dict[str, float]:
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE_LEVEL, method="exact")
    rate = Interval(k / n, float(ci.low), float(ci.high), CONFIDENCE_LEVEL, "Clopper-Pearson")
    return {**rate.to_dict(), "k": int(k), "n": int(n)}


def measure_controls(verdict_fn: Callable[..., V.Verdict], design: Design, n: int = 200,
                     seed: int = 0, **rule: Any) -> dict:
    """False-accept and false-reject rates of ``verdict_fn`` on ``n`` tables of each truth.

    ``rule`` overrides the verdict's defaults. The P2 verdict's D_crit bootstrap does not
    enter its decision, so it is switched off here (``n_boot=0``) unless ``rule`` sets it.
    """
    if n < 1:
        raise ConfigError("n", "must be >= 1", n)
    kwargs = {**design.verdict_kwargs(), **rule}
    if verdict_fn is V.p2:
        kwargs.setdefault("n_boot", 0)
    seqs = np.random.SeedSequence(seed).spawn(2)
    out: dict[str, Any] = {"key": design.key, "alternative": ALTERNATIVES[design.key], "n": int(n)}
    reasons: dict[str, str] = {}
    applied: dict = {}
    for truth, seq, name in (("alternative", seqs[0], "false_accept"), ("hypothesis", seqs[1], "false_reject")):
        rng = np.random.default_rng(seq)
        wrong = 0
        for _ in range(n):
            v = verdict_fn(simulate(design, truth, rng), **kwargs)
            applied = v.rule
            wrong += int(v.holds if truth == "alternative" else not v.holds)
            if (v.holds if truth == "alternative" else not v.holds) and name not in reasons:
                reasons[name] = v.reason
        out[name] = _rate(wrong, n)
    out["meets_targets"] = bool(out["false_accept"]["value"] <= TARGETS["false_accept"]
                                and out["false_reject"]["value"] <= TARGETS["false_reject"])
    out["targets"] = dict(TARGETS)
    out["example_wrong_reasons"] = reasons
    out["rule"] = applied
    out["design"] = design.to_dict()
    return to_plain(out)


VERDICTS: dict[str, Callable[..., V.Verdict]] = V.RULES


def measure_designs(designs: dict[str, Design], n: int = 200, seed: int = 0) -> dict[str, dict]:
    """:func:`measure_controls` for every named design with its own verdict (by ``design.key``):
    the ``controls`` table of a summary, keyed like ``designs``."""
    return {name: measure_controls(VERDICTS[d.key], d, n=n, seed=seed) for name, d in designs.items()}


def rates_of(entry: dict) -> dict[str, float] | None:
    """Power (1 - false reject) and false accept of a :func:`measure_controls` entry (the
    ``design_rates`` a rule takes), or None where the entry holds an error instead."""
    if "false_accept" not in entry:
        return None
    return {"power": 1.0 - entry["false_reject"]["value"], "false_accept": entry["false_accept"]["value"]}


def p1_on_its_design(table: Any, *, n: int = 100, seed: int = 0, **rule: Any) -> tuple[dict, V.Verdict]:
    """P1 decided on a table with the power and false accept of the rule measured on that
    table's own design: ``(controls entry, verdict)``. G's part is judged only where the design
    can judge it (:func:`circeff.analysis.efficiency.p1`); an entry that cannot be estimated
    holds its error, and the verdict is then made without rates. The entry records its cost."""
    import time

    t0 = time.perf_counter()
    try:
        design = estimate_p1_design(table)
        entry = measure_controls(V.p1, design, n=n, seed=seed, **rule)
    except (ConfigError, ValueError, ZeroDivisionError) as exc:
        design, entry = None, {"key": "P1", "error": f"no design could be estimated from this run's table: {exc}"}
    rates = rates_of(entry)
    verdict = V.p1(table, design_rates=rates, **rule)
    if design is not None and rates is not None and rates["power"] < verdict.rule["min_power"]:
        # G cannot be judged on this design: say how many times its kept networks would let it
        entry["seeds_for_power"] = required_design(V.p1, design, "copies", list(SEED_MULTIPLES), n=n, seed=seed,
                                                   **rule)
    entry["seconds"] = round(time.perf_counter() - t0, 2)
    return entry, verdict


# how many times the run's kept networks the power projection tries (P1 without power)
SEED_MULTIPLES = (2, 4, 8)


def required_design(verdict_fn: Callable[..., V.Verdict], design: Design, field: str,
                    values: list[Any], n: int = 100, seed: int = 0, **rule: Any) -> dict:
    """Scan ``field`` of ``design`` over ``values`` (in order) and report the first that meets
    both targets, with the rates at every value tried up to it."""
    tried = []
    for value in values:
        res = measure_controls(verdict_fn, replace(design, **{field: value}), n=n, seed=seed, **rule)
        tried.append({field: to_plain(value), "false_accept": res["false_accept"],
                      "false_reject": res["false_reject"], "meets_targets": res["meets_targets"]})
        if res["meets_targets"]:
            return {"field": field, "first_meeting_targets": to_plain(value), "tried": tried}
    return {"field": field, "first_meeting_targets": None, "tried": tried}


# ---------------------------------------------------------------------------------------------
# Designs read from a run's own table
# ---------------------------------------------------------------------------------------------


def estimate_p1_design(table: Any) -> P1Design:
    """The P1 design and noise of a real table (:data:`circeff.analysis.verdicts.P1_COLUMNS`)."""
    df = require_columns(table, V.P1_COLUMNS, numeric=("D", "alpha", "logit", "param_norm"))
    df = df[(df["logit"] > 0) & (df["param_norm"] > 0)]
    fits = {}
    for c in ("M", "G"):
        sub = df[df["circuit"].astype(str) == c]
        if sub["D"].nunique() < 2:
            raise ConfigError("D", f"circuit {c} needs two or more D to estimate a design", sub["D"].nunique())
        fit = stripe_efficiencies(sub, CONFIDENCE_LEVEL)
        slope, a, sd = efficiency_slope(np.log(fit["D"]), fit["log_P"], CONFIDENCE_LEVEL)
        fits[c] = (sub, fit, slope.value, a, sd)
    rungs = df.groupby("alpha")["logit"].apply(lambda s: float(np.mean(np.log(s)))).sort_index()
    msub, gsub, gfit = fits["M"][0], fits["G"][0], fits["G"][1]
    # G's kept stripes as they are: a seed kept at one D only adds nothing to the clustered slope
    seed_ids = {s: i for i, s in enumerate(sorted(gsub["seed"].unique()))}
    cells = sorted({(float(d), seed_ids[s]) for d, s in zip(gsub["D"], gsub["seed"])})
    return P1Design(
        M_D=tuple(sorted(msub["D"].unique().astype(float))),
        G_D=tuple(sorted(gsub["D"].unique().astype(float))),
        seeds=int(msub["seed"].nunique()), log_logit_by_rung=tuple(rungs.to_numpy()),
        kappa_M=fits["M"][1]["kappa"].value, kappa_G=gfit["kappa"].value,
        slope_M=fits["M"][2], log_P_M=fits["M"][3], log_P_G=float(np.mean(gfit["log_P"])),
        stripe_sd_M=float(np.nan_to_num(fits["M"][4], nan=0.05)),
        stripe_sd_G=float(np.nan_to_num(fits["G"][4], nan=0.05)),
        rung_sd_M=float(np.nan_to_num(fits["M"][1]["rung_sd"], nan=0.1)),
        rung_sd_G=float(np.nan_to_num(gfit["rung_sd"], nan=0.1)), G_cells=tuple(cells))


def estimate_transition_design(table: Any, chance: float, key: str = "P2") -> TransitionDesign:
    """The P2/P3 design and noise of a real ungrokking table (converged rows fitted)."""
    df, dropped = converged_rows(table, chance)
    x, y = np.log(df["D"].to_numpy()), df["final_test_acc"].to_numpy()
    curve = pooled_fit(df, chance)
    if curve is None:
        raise ConfigError("final_test_acc", "no transition could be fitted to estimate a design")
    lower, upper, log_mid, width = curve.params
    units = [(wd, s, unit_log_dcrit(g, chance, curve)) for (wd, s), g in df.groupby(["weight_decay", "seed"])]
    u = pd.DataFrame(units, columns=["wd", "seed", "c"]).dropna()
    u["c"] -= u.groupby("wd")["c"].transform("mean")
    seed_means = u.groupby("seed")["c"].mean()
    seed_sd = float(seed_means.std(ddof=1)) if len(seed_means) > 1 else 0.0
    unit_sd = float((u["c"] - u["seed"].map(seed_means)).std(ddof=1)) if len(u) > 2 else 0.0
    band = np.abs(x - log_mid) > 2.2 * width   # outside the 10-90% band: evaluation noise only
    resid = y - transition_accuracy(x, *curve.params)
    noise = float(np.std(resid[band], ddof=1)) if band.sum() > 2 else float(np.std(resid, ddof=1))
    return TransitionDesign(
        sizes=tuple(sorted(df["D"].unique().astype(float))), seeds=int(df["seed"].nunique()),
        weight_decays=tuple(sorted(df["weight_decay"].unique().astype(float))), chance=float(chance),
        D_crit=float(np.exp(log_mid)), width=width, lower=lower, upper=upper,
        seed_sd=float(np.nan_to_num(seed_sd)), unit_sd=float(np.nan_to_num(unit_sd)),
        noise_sd=max(noise, 0.005), unconverged=len(dropped) / (len(df) + len(dropped)), key=key)


def estimate_p4_design(trajectories: Any, chance: float, rule: P4Rule = P4Rule()) -> P4Design:
    """The P4 design of a real table: sizes, seeds, evaluation steps, per-evaluation noise
    (from successive differences of the tail test accuracy), the semi-grokked fraction (at
    least the rule's minimum) and the rule."""
    df = require_columns(trajectories, V.P4_COLUMNS, numeric=("D", "step", "train_acc", "test_acc"))
    diffs = []
    for _, g in df.groupby(["D", "seed"]):
        g = g.sort_values("step")
        tail = g["test_acc"].to_numpy()[-max(4, len(g) // 4):]
        diffs.append(np.std(np.diff(tail), ddof=1) / math.sqrt(2))
    verdict = V.p4(df, chance, rule=rule)
    first = df.groupby(["D", "seed"]).get_group(next(iter(df.groupby(["D", "seed"]).groups)))
    return P4Design(sizes=tuple(sorted(df["D"].unique().astype(float))), seeds=int(df["seed"].nunique()),
                    steps=tuple(np.sort(first["step"].to_numpy(float))), chance=float(chance),
                    noise_sd=float(np.median(diffs)),
                    semi_fraction=max(verdict.numbers["n_semi"], rule.min_semi) / verdict.numbers["n_runs"],
                    rule=rule)


def estimate_fig10_design(table: Any) -> Fig10Design:
    """The Figure 10a design of a real table (finite, positive ratios fitted in log)."""
    df = require_columns(table, V.FIG10A_COLUMNS, numeric=("D",))
    r = pd.to_numeric(df["ratio"], errors="coerce").to_numpy(float)
    ok = np.isfinite(r) & (r > 0)
    x, y = np.log(df["D"].to_numpy(float)[ok]), np.log(r[ok])
    slope, a, sd = efficiency_slope(x, y, CONFIDENCE_LEVEL)
    return Fig10Design(sizes=tuple(sorted(df["D"].unique().astype(float))),
                       seeds=int(df.groupby("D").size().min()), slope=slope.value, intercept=a,
                       noise_sd=float(sd))


# ---------------------------------------------------------------------------------------------
# Designs of the package's presets
# ---------------------------------------------------------------------------------------------


def reference_designs() -> dict[str, Design]:
    """Designs shaped like the ``quick`` (P = 23) and ``cpu`` (P = 31) presets, with effect
    sizes and noise read off their reported fits (per-D intervals, slope intervals and kappa
    intervals turned back into standard deviations), and the refined variants the rules need.

    Names: ``<key>.<preset>[.<variant>]``.
    """
    rungs = (math.log(25.0), math.log(13.0), math.log(6.0))
    p1_quick = P1Design(M_D=(40, 80, 160), G_D=(436, 476, 506), seeds=3, log_logit_by_rung=rungs,
                        kappa_M=4.44, kappa_G=6.01, slope_M=0.28,
                        log_P_M=math.log(5.80) - 0.28 * math.log(40), log_P_G=math.log(9.6),
                        stripe_sd_M=0.03, stripe_sd_G=0.08, rung_sd_M=0.14, rung_sd_G=0.02)
    p1_cpu = replace(p1_quick, M_D=(60, 120, 240, 480), G_D=(769, 865, 913), kappa_M=4.28, kappa_G=6.07,
                     slope_M=0.348, log_P_M=math.log(5.88) - 0.348 * math.log(60), log_P_G=math.log(10.77),
                     stripe_sd_M=0.065)
    p2_quick = TransitionDesign(sizes=(30, 50, 85, 140, 240, 400), seeds=3, weight_decays=(1.0, 2.0),
                                chance=1 / 23, D_crit=82.3, width=0.15, lower=0.07, upper=1.0,
                                seed_sd=0.1, unit_sd=0.05, noise_sd=0.03)
    refine_q = (58, 69, 82, 98, 116)
    p2_cpu = replace(p2_quick, sizes=(40, 60, 90, 135, 200, 300, 450, 700), seeds=4,
                     weight_decays=(0.5, 1.0, 2.0), chance=1 / 31, D_crit=132.1, lower=0.033)
    refine_c = (93, 111, 132, 157, 187)
    designs: dict[str, Design] = {
        "P1.quick": p1_quick,
        "P1.quick.G_half_decade": replace(p1_quick, G_D=(160, 285, 506)),
        "P1.cpu": p1_cpu,
        "P1.cpu.G_half_decade": replace(p1_cpu, G_D=(240, 480, 913)),
        "P2.quick": p2_quick,
        "P2.quick.refined": replace(p2_quick, sizes=tuple(sorted(set(p2_quick.sizes) | set(refine_q)))),
        "P2.cpu": p2_cpu,
        "P2.cpu.refined": replace(p2_cpu, sizes=tuple(sorted(set(p2_cpu.sizes) | set(refine_c)))),
        "P3.quick": replace(p2_quick, key="P3"),
        "P3.quick.refined_3wd": replace(p2_quick, key="P3", weight_decays=(0.5, 1.0, 2.0),
                                        sizes=tuple(sorted(set(p2_quick.sizes) | set(refine_q)))),
        "P3.cpu": replace(p2_cpu, key="P3"),
        "P3.cpu.refined": replace(p2_cpu, key="P3", sizes=tuple(sorted(set(p2_cpu.sizes) | set(refine_c)))),
        # the quick scale's design: 4 sizes in [2, 3] x D_crit (81), 4 seeds, 5000 steps
        "P4.quick": P4Design(sizes=(163.0, 190.0, 217.0, 244.0), seeds=4, steps=tuple(range(0, 5001, 50)),
                             chance=1 / 23, noise_sd=0.025, semi_fraction=2 / 16),
        # the full scale's declared design: 8 sizes in [2.4, 3.2] x D_crit (125), 5 seeds, 15000 steps
        "P4.full": P4Design(sizes=tuple(float(round(x)) for x in np.linspace(2.4 * 125, 3.2 * 125, 8)), seeds=5,
                            steps=tuple(range(0, 15_001, 50)), chance=1 / 31, noise_sd=0.02, semi_fraction=2 / 40),
        "fig10a.quick": Fig10Design(sizes=(20, 40, 80, 160, 320, 500), seeds=2, slope=3.1,
                                    intercept=math.log(0.05) - 3.1 * math.log(20), noise_sd=0.5),
        "fig10a.quick.3_seeds": Fig10Design(sizes=(20, 40, 80, 160, 320, 500), seeds=3, slope=3.1,
                                            intercept=math.log(0.05) - 3.1 * math.log(20), noise_sd=0.5),
        "fig10a.cpu": Fig10Design(sizes=(20, 40, 80, 160, 320, 640, 900), seeds=4, slope=3.12,
                                  intercept=math.log(0.0095) - 3.12 * math.log(20), noise_sd=0.5),
    }
    return designs
