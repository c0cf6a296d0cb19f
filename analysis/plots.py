"""Figures of the analysis layer. Every function takes data (tables or the result dataclasses)
and returns a :class:`matplotlib.figure.Figure`; none fits or estimates anything.

Figures are built with ``Figure`` directly (no pyplot state, so nothing leaks between calls, no
display is needed and the global backend is left alone; PNGs render through the Agg canvas). Save one with :func:`save_figure`
(atomic write). One style helper keeps sizes, colours and fonts consistent:

* circuits: G blue, M orange; dataset sizes: one colour per D of a panel, spread over a
  sequential colour map;
* trajectory classes: grokked green, semi purple, no delay orange, ungeneralised grey,
  unsettled brown;
* bands (intervals) are translucent spans in the colour of their estimate.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from circeff.analysis.allocation import AllocationCurves
from circeff.analysis.efficiency import EfficiencyAnalysis
from circeff.analysis.rule import Verdict
from circeff.analysis.semigrokking import LABELS, RunClass
from circeff.analysis.stats import Interval
from circeff.analysis.ungrokking import DcritEstimate
from circeff.errors import ConfigError
from circeff.thresholds import GENERALISED_TEST_ACC
from circeff.io import atomic_write_bytes

__all__ = [
    "CIRCUIT_COLORS",
    "CLASS_COLORS",
    "UNGROKKING_TITLE",
    "plot_allocation_curves",
    "plot_efficiency",
    "plot_figure8",
    "plot_logit_vs_norm",
    "plot_progress",
    "plot_ratio_vs_D",
    "plot_semigrok",
    "plot_semigrok_final",
    "plot_ungrokking",
    "save_figure",
    "save_figures",
]

CIRCUIT_COLORS = {"G": "tab:blue", "M": "tab:orange"}
CLASS_COLORS = {"grokked": "tab:green", "semi": "tab:purple", "no_delay": "tab:orange",
                "ungeneralised": "tab:gray", "unsettled": "tab:brown"}
_PANEL = (4.4, 3.4)  # inches per panel


def _figure(ncols: int = 1, *, title: str | None = None) -> tuple[Figure, list]:
    """A figure with ``ncols`` panels in one row, constrained layout, consistent fonts."""
    fig = Figure(figsize=(_PANEL[0] * ncols, _PANEL[1]), layout="constrained", dpi=110)
    axes = list(fig.subplots(1, ncols, squeeze=False)[0])
    for ax in axes:
        ax.tick_params(which="both", labelsize=8)
        ax.grid(True, which="major", alpha=0.3, linewidth=0.6)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig, axes


def _log(ax, which: str = "xy") -> None:
    """Log scale with plain tick labels (100, 200, 500 rather than 2 x 10^2): majors always,
    every minor while the axis spans at most a factor 3 (a norm axis from 10 to 17 would
    otherwise show one label), minors at 2 and 5 times a power of ten up to two decades."""
    for name in which:
        getattr(ax, f"set_{name}scale")("log")
        axis = getattr(ax, f"{name}axis")

        def minor(value: float, _pos: object, axis=axis) -> str:
            lo, hi = sorted(axis.get_view_interval())
            if lo <= 0 or hi / lo > 100 or value <= 0:
                return ""
            if hi / lo <= 3:
                return f"{value:g}"
            mantissa = value / 10 ** np.floor(np.log10(value))
            return f"{value:g}" if np.isclose(mantissa, 2) or np.isclose(mantissa, 5) else ""

        axis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
        axis.set_minor_formatter(FuncFormatter(minor))


def _label(ax, xlabel: str, ylabel: str, title: str | None = None) -> None:
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    if title:
        ax.set_title(title, fontsize=9)


def _band(ax, interval: Interval, color: str, label: str | None = None) -> None:
    """Vertical span over a D interval (unbounded ends are clipped to the axis)."""
    lo, hi = interval.lo, interval.hi
    x0, x1 = ax.get_xlim()
    if not (np.isfinite(lo) or np.isfinite(hi)):
        return
    ax.axvspan(lo if np.isfinite(lo) else x0, hi if np.isfinite(hi) else x1, color=color,
               alpha=0.15, linewidth=0, label=label)
    ax.set_xlim(x0, x1)


def _require(rows: pd.DataFrame, columns: Sequence[str]) -> None:
    for col in columns:
        if col not in rows.columns:
            raise ConfigError(col, "column is missing from the rows", sorted(rows.columns))


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 130) -> None:
    """Write ``fig`` as PNG atomically (temporary file + rename)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    atomic_write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------------------------------------
# P1: Figure 3 analogue and P(D)
# ---------------------------------------------------------------------------------------------


def save_figures(figures: Mapping[str, Figure], folder: str | os.PathLike[str]) -> None:
    """Save each figure under its file name in ``folder`` (atomic writes)."""
    for name, fig in figures.items():
        save_figure(fig, os.path.join(folder, name))


def _d_colors(values: Sequence[float], cmap_name: str) -> dict[float, tuple]:
    """One colour per distinct D, spread over the whole colour map in log order: the few
    sizes of one panel stay apart however close they are (436 and 506 would share a colour on
    a 40-500 scale)."""
    ds = sorted(set(float(v) for v in values))
    cmap = matplotlib.colormaps[cmap_name]
    return {d: cmap(0.1 + 0.75 * i / max(len(ds) - 1, 1)) for i, d in enumerate(ds)}


def plot_logit_vs_norm(rows: pd.DataFrame, lines: pd.DataFrame | None = None) -> Figure:
    """Figure 3: correct logit against parameter norm, panels M then G, each coloured by its
    own D values (legend below the panel).

    ``rows``: the efficiency table (``circuit, D, param_norm, correct_logit``; with ``seed``,
    each (D, seed) stripe is joined by a dotted line). ``lines``: optional fitted lines in the
    same columns (``efficiency.fitted_lines``), drawn per D. Axes: the two panels.
    """
    _require(rows, ("circuit", "D", "param_norm", "correct_logit"))
    fig, axes = _figure(2, title="Correct logit against parameter norm (P1)")
    fig.set_figheight(_PANEL[1] + 0.6)
    for ax, circuit, cmap_name in zip(axes, ("M", "G"), ("viridis", "plasma")):
        sub = rows[rows["circuit"] == circuit]
        colors = _d_colors(sub["D"], cmap_name)
        for i, (D, points) in enumerate(sub.groupby("D")):
            # a marker per D as well as a colour: networks of neighbouring D can sit on top of each other
            ax.scatter(points["param_norm"], points["correct_logit"], color=colors[float(D)], s=22, alpha=0.8,
                       marker="os^Dv<>p"[i % 8], edgecolors="none", label=f"D = {D:g}")
        if "seed" in sub:
            # one network's points across weight decays: the paper's "stripes" (Section 5.1)
            for (D, _seed), stripe in sub.groupby(["D", "seed"]):
                stripe = stripe.sort_values("param_norm")
                ax.plot(stripe["param_norm"], stripe["correct_logit"], color=colors[float(D)], lw=0.6,
                        alpha=0.5, ls=":")
        if lines is not None:
            for D, line in lines[lines["circuit"] == circuit].groupby("D"):
                ax.plot(line["param_norm"], line["correct_logit"], color=colors.get(float(D), "k"), lw=1.2)
        _log(ax)
        name = "memorising (M)" if circuit == "M" else "generalising (G)"
        _label(ax, "parameter norm", "correct logit", f"{name}-only networks")
        if len(sub):
            ax.legend(fontsize=7, ncols=min(len(colors), 4), loc="upper center", bbox_to_anchor=(0.5, -0.2),
                      frameon=False, title="dataset size", title_fontsize=7)
    return fig


def plot_efficiency(analysis: EfficiencyAnalysis, verdict: Verdict | None = None) -> Figure:
    """P(D) with intervals for G and M, their trend lines (solid over the D each circuit was
    measured at, dashed where extended to the crossover), the crossover D_crit band, and, when the
    P1 ``verdict`` is given, its outcome in the title and its deciding slopes in the caption."""
    title = "Efficiency: norm P needed for a unit logit (P1)"
    if verdict is not None:
        n = verdict.numbers
        title += f"\nP1 {verdict.outcome}: M part {n.get('outcome_M', '?')}, G part {n.get('outcome_G', '?')}"
    fig, (ax,) = _figure(1, title=title)
    # the legend and caption go below the panel (they covered points inside it); taller to keep the panel
    fig.set_figheight(_PANEL[1] * 1.6)
    cross = analysis.crossover
    reach = [cross.D_crit.value] if np.isfinite(cross.D_crit.value) else []
    for fit, trend in ((analysis.fit_G, analysis.trend_G), (analysis.fit_M, analysis.trend_M)):
        color = CIRCUIT_COLORS[fit.circuit]
        P = np.array([p.P.value for p in fit.per_D])
        err = np.array([[p.P.value - p.P.lo for p in fit.per_D], [p.P.hi - p.P.value for p in fit.per_D]])
        ax.errorbar(fit.D, P, yerr=err, fmt="o", color=color, ms=4, capsize=3,
                    label=f"{fit.circuit}: P(D), kappa={fit.kappa.value:.2f}")
        grid = np.geomspace(fit.D.min(), fit.D.max(), 50)
        ax.plot(grid, np.exp(trend.log_P(grid)), color=color, lw=1,
                label=f"{fit.circuit} trend line: slope {trend.slope.value:.2f} "
                      f"[{trend.slope.lo:.2f}, {trend.slope.hi:.2f}]")
        if fit.circuit == "M" and reach and reach[0] > fit.D.max():
            ext = np.geomspace(fit.D.max(), reach[0], 30)
            ax.plot(ext, np.exp(trend.log_P(ext)), color=color, lw=1, ls="--", label="M trend extrapolated")
    _log(ax)
    if cross.g_model == "flat":
        D_G = analysis.fit_G.D
        level = np.exp(cross.log_P_G)
        ax.hlines(level, D_G.min(), D_G.max(), color=CIRCUIT_COLORS["G"], ls="-", lw=1.5, alpha=0.6,
                  label="G flat level (crossover uses it)")
        lo = min(reach + [analysis.fit_M.D.min()])
        if lo < D_G.min():
            ax.hlines(level, lo, D_G.min(), color=CIRCUIT_COLORS["G"], ls="--", lw=1, label="G level extrapolated")
    if np.isfinite(cross.D_crit.value):
        ax.axvline(cross.D_crit.value, color="k", ls="--", lw=1,
                   label=f"crossover D_crit {cross.D_crit.value:.3g}")
        # an unlabelled grey band reads as a rendering glitch when it spans the whole axis
        _band(ax, cross.D_crit, "k", label=f"D_crit {cross.D_crit.level:.0%} interval "
                                            f"[{cross.D_crit.lo:.3g}, {cross.D_crit.hi:.3g}]")
    _label(ax, "dataset size D", "P (parameter norm per unit logit)")
    caption = ["error bars: 95% interval of P(D) over seeds, widened by kappa's error",
               "trend lines: fitted to the points, intervals by parametric bootstrap;",
               "dashed: extrapolated beyond the D measured"]
    if verdict is not None:
        caption += _p1_slopes(verdict.numbers)
    ax.set_xlabel("dataset size D\n" + "\n".join(caption), fontsize=7)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=7, ncols=2, loc="outside lower center", frameon=False)
    return fig


def _p1_slopes(numbers: Mapping[str, object]) -> list[str]:
    """Caption lines with the slopes that decide P1 (fitted within each seed, then averaged over
    seeds), which differ from the trend lines' fit to the per-D points."""
    parts = []
    for circuit in ("M", "G"):
        slope = numbers.get(f"slope_{circuit}")
        if isinstance(slope, Mapping):
            parts.append(f"{circuit} {slope['value']:.3f} [{slope['lo']:.3f}, {slope['hi']:.3f}] "
                         f"({slope['level']:.0%})")
    if not parts:
        return ["the verdict has no slopes (its reason says why)"]
    delta = numbers.get("delta")
    if isinstance(delta, float) and parts[-1].startswith("G"):
        parts[-1] += f"; G flat means inside +-{delta:.3f}"
    return ["the verdict's slopes (within each seed, over seeds):", *parts]


# ---------------------------------------------------------------------------------------------
# P2/P3: ungrokking; P4: semi-grokking; Figure 9
# ---------------------------------------------------------------------------------------------


UNGROKKING_TITLE = "Ungrokking: final test accuracy against D' (P2, P3)"


def plot_ungrokking(rows: pd.DataFrame, estimates: Sequence[DcritEstimate] = (), *,
                    title: str = UNGROKKING_TITLE, xlabel: str = "reduced training set size D'",
                    control: pd.DataFrame | None = None) -> Figure:
    """Figures 4/7/10b: final test accuracy against D', one colour per weight decay, with the
    fitted transition and the D_crit band of each estimate (matched by weight decay), and the
    ``control`` (columns ``D, weight_decay, final_acc``: the bases continued on their own full
    training set) as open diamonds at its D."""
    _require(rows, ("D", "weight_decay", "final_test_acc"))
    fig, (ax,) = _figure(1, title=title)
    wds = sorted(rows["weight_decay"].unique())
    cmap = matplotlib.colormaps["plasma"]
    colors = {wd: cmap(0.15 + 0.7 * i / max(len(wds) - 1, 1)) for i, wd in enumerate(wds)}
    for wd in wds:
        sub = rows[rows["weight_decay"] == wd]
        ax.scatter(sub["D"], sub["final_test_acc"], color=colors[wd], s=12, alpha=0.6,
                   edgecolors="none", label=f"wd {wd:g}")
    if control is not None and len(control):
        for wd, sub in control.groupby("weight_decay"):
            ax.scatter(sub["D"], sub["final_acc"], marker="D", s=22, facecolors="none",
                       edgecolors=[colors.get(wd, "k")], lw=1.0)
        ax.scatter([], [], marker="D", s=22, facecolors="none", edgecolors="k",
                   label="control: full training set, same steps")
    _log(ax, "x")
    grid = np.geomspace(rows["D"].min(), rows["D"].max(), 200)
    for est in estimates:
        color = colors.get(est.weight_decay, "k")
        ax.plot(grid, est.curve.accuracy(grid), color=color, lw=1.2)
        ax.axvline(est.D_crit.value, color=color, ls="--", lw=0.8)
        _band(ax, est.D_crit, color)
    ax.set_ylim(-0.03, 1.03)
    _label(ax, xlabel, "final test accuracy")
    handles, labels = ax.get_legend_handles_labels()
    if estimates:
        handles.append(Line2D([], [], color="k", ls="--", lw=0.8))
        labels.append("D_crit (band: interval)")
    ax.legend(handles, labels, fontsize=7)
    return fig


def plot_semigrok(rows: pd.DataFrame, classes: Sequence[RunClass], *, d_crit: float | None = None,
                  run_column: str = "run") -> Figure:
    """Figures 5/6, every run in its own panel (a row per size D, a column per seed): test
    accuracy in its class's colour, train accuracy in light grey, log steps; each panel is
    labelled with D / D_crit (D when ``d_crit`` is None), its seed and class, and marks the step
    of memorisation (train >= 0.99, a tick at the top) and of the test onset (a dotted line)."""
    _require(rows, (run_column, "step", "test_acc", "train_acc"))
    by_run: Mapping[str, RunClass] = {c.run: c for c in classes}
    sizes = sorted({c.D for c in classes})
    seeds = sorted({c.seed for c in classes}, key=str)
    fig = Figure(figsize=(1.9 * len(seeds) + 0.6, 1.25 * len(sizes) + 1.2), layout="constrained", dpi=110)
    axes = fig.subplots(len(sizes), len(seeds), squeeze=False, sharex=True, sharey=True)
    fig.suptitle("Semi-grokking (P4): every run's train (grey) and\ntest accuracy (coloured by class)", fontsize=9)
    for run, g in rows.groupby(run_column, sort=True):
        cls = by_run.get(str(run))
        if cls is None:
            continue
        ax = axes[sizes.index(cls.D)][seeds.index(cls.seed)]
        g = g.sort_values("step")
        step = g["step"].clip(lower=1)
        ax.plot(step, g["train_acc"], color="0.7", lw=0.9)
        ax.plot(step, g["test_acc"], color=CLASS_COLORS[cls.label], lw=1.2)
        if math.isfinite(cls.memorised_step):
            ax.plot([max(cls.memorised_step, 1)], [1.0], marker="v", color="0.4", ms=4)
        if math.isfinite(cls.onset_step):
            ax.axvline(cls.onset_step, color=CLASS_COLORS[cls.label], ls=":", lw=0.8)
        if cls.transient:
            ax.hlines(cls.plateau_level, cls.plateau_start, cls.plateau_end, color="k", lw=2, alpha=0.5)
        where = f"D/Dc {cls.D / d_crit:.2f}" if d_crit else f"D {cls.D:g}"
        ax.set_title(f"{where}, s{cls.seed}: {cls.label}", fontsize=7, color=CLASS_COLORS[cls.label])
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_ylim(-0.03, 1.05)
        ax.tick_params(which="both", labelsize=6)
        ax.grid(True, which="major", alpha=0.3, linewidth=0.5)
    counts = {label: sum(c.label == label for c in classes) for label in LABELS}
    handles = [Line2D([], [], color=CLASS_COLORS[k], lw=1.5) for k in LABELS]
    labels = [f"{k} ({counts[k]})" for k in LABELS]
    handles += [Line2D([], [], color="0.7", lw=1), Line2D([], [], color="0.4", marker="v", ls="", ms=4),
                Line2D([], [], color="k", ls=":", lw=0.8), Line2D([], [], color="k", lw=2, alpha=0.5)]
    labels += ["train accuracy", "memorised (train >= 0.99)", "test onset", "transient plateau"]
    fig.legend(handles, labels, fontsize=7, ncols=3 if len(seeds) < 4 else 5, loc="outside lower center",
               frameon=False)
    for ax in axes[-1]:
        ax.set_xlabel("step (log)", fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy", fontsize=7)
    return fig


def plot_semigrok_final(classes: Sequence[RunClass], d_crit: float | None, *, d_up: DcritEstimate | None = None,
                        ungrokking_rows: pd.DataFrame | None = None,
                        ungrokking_fit: DcritEstimate | None = None) -> Figure:
    """Final test accuracy against D / D_crit: the from-scratch runs (coloured by class) with
    their fitted transition (D_up), beside the ungrokking runs and their curve (D_down) on the
    same axes; x is D when ``d_crit`` is None."""
    scale = d_crit if d_crit else 1.0
    fig, (ax,) = _figure(1, title="From scratch (P4) against ungrokking (P2): final test accuracy")
    if ungrokking_rows is not None and len(ungrokking_rows):
        _require(ungrokking_rows, ("D", "final_test_acc"))
        ax.scatter(ungrokking_rows["D"] / scale, ungrokking_rows["final_test_acc"], marker="x", s=14,
                   color="tab:blue", alpha=0.5, label="ungrokking (from grokked networks)")
    for label in LABELS:
        sub = [c for c in classes if c.label == label]
        if sub:
            ax.scatter([c.D / scale for c in sub], [c.final_test_acc for c in sub], s=18, color=CLASS_COLORS[label],
                       edgecolors="none", alpha=0.85, label=f"from scratch: {label} ({len(sub)})")
    _log(ax, "x")
    for est, color, name in ((ungrokking_fit, "tab:blue", "D_down"), (d_up, "tab:red", "D_up")):
        if est is None:
            continue
        grid = np.geomspace(est.D_min, est.D_max, 200)
        ax.plot(grid / scale, est.curve.accuracy(grid), color=color, lw=1.1)
        iv = est.D_crit
        ax.axvline(iv.value / scale, color=color, ls="--", lw=0.8, label=f"{name} {iv.value:.3g} [{iv.lo:.3g}, {iv.hi:.3g}]")
        _band(ax, iv.map(lambda v: v / scale), color)
    ax.set_ylim(-0.03, 1.03)
    _label(ax, "D / D_crit (ungrokking)" if d_crit else "D", "final test accuracy")
    ax.legend(fontsize=6.5, loc="upper left")
    return fig


_PROXY_STYLE = {"trig_train": ("G (trig), train", CIRCUIT_COLORS["G"], "-"),
                "trig_test": ("G (trig), test", CIRCUIT_COLORS["G"], "--"),
                "mem_train": ("M (mem), train", CIRCUIT_COLORS["M"], "-"),
                "mem_test": ("M (mem), test", CIRCUIT_COLORS["M"], "--")}


def plot_progress(rows: pd.DataFrame,
                  proxies: Sequence[str] = ("trig_train", "mem_train", "trig_test", "mem_test"),
                  *, grok_threshold: float = GENERALISED_TEST_ACC) -> Figure:
    """Figure 9: left, train and test accuracy against step with the step where test accuracy
    first reaches ``grok_threshold`` marked; right, the G and M correct-logit proxies and the
    parameter norm (twin axis). ``rows``: ``step``, ``param_norm``, any of ``proxies``
    (``circeff.empirical.fourier.CircuitProxies``) and, for the left panel, ``train_acc`` and
    ``test_acc``. Train proxies are wide pale lines and test proxies thin dashed ones on top, so
    a test line equal to its train line stays visible. Legends sit below the panels.
    Axes: accuracy (when present), proxies and the norm twin."""
    _require(rows, ("step", "param_norm"))
    present = [p for p in proxies if p in rows.columns]
    if not present:
        raise ConfigError("proxies", "none of the proxy columns is in the rows", list(proxies))
    with_acc = {"train_acc", "test_acc"} <= set(rows.columns)
    fig, axes = _figure(2 if with_acc else 1, title="A grokking run: accuracy, circuit proxies and parameter norm")
    fig.set_figheight(_PANEL[1] + 0.8)
    ax = axes[-1]
    grok = None
    if with_acc:
        acc_ax = axes[0]
        test = pd.to_numeric(rows["test_acc"], errors="coerce")
        acc_ax.plot(rows["step"], rows["train_acc"], color="k", lw=1.2, label="train accuracy")
        acc_ax.plot(rows["step"], test, color="tab:green", lw=1.2, label="test accuracy")
        reached = rows["step"][test >= grok_threshold]
        if len(reached):
            grok = float(reached.iloc[0])
            acc_ax.axvline(grok, color="tab:green", ls=":", lw=1,
                           label=f"test accuracy >= {grok_threshold:g} at step {grok:g}")
        acc_ax.set_ylim(-0.03, 1.03)
        _label(acc_ax, "step", "accuracy")
        acc_ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    for col in present:
        label, color, ls = _PROXY_STYLE.get(col, (col, None, "-"))
        if col.endswith("_train"):
            ax.plot(rows["step"], rows[col], color=color, ls="-", lw=3.5, alpha=0.35, label=label)
        else:
            ax.plot(rows["step"], rows[col], color=color, ls=(0, (4, 2)), lw=1.2, label=label)
    if grok is not None:
        ax.axvline(grok, color="tab:green", ls=":", lw=1)
    twin = ax.twinx()
    twin.plot(rows["step"], rows["param_norm"], color="k", lw=1, alpha=0.7, label="parameter norm")
    twin.tick_params(labelsize=8)
    twin.set_ylabel("parameter norm", fontsize=9)
    _label(ax, "step", "correct-logit proxy")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, ncols=2, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    return fig


# ---------------------------------------------------------------------------------------------
# Figure 10a and the allocation comparison
# ---------------------------------------------------------------------------------------------


def plot_ratio_vs_D(rows: pd.DataFrame, verdict: Verdict | None = None) -> Figure:
    """Figure 10a: G:M correct-logit ratio against D (log-log), one point per network, with
    the median per D. ``rows``: ``D, ratio`` (``allocation.measured_ratios``); ratios that are
    0 or infinite cannot be drawn on a log axis and are left out. ``verdict``: the Figure 10a
    verdict (:func:`circeff.analysis.fig10.fig10a`); its rank correlation goes into the title."""
    _require(rows, ("D", "ratio"))
    title = "G:M correct-logit ratio against D"
    sp = verdict.numbers.get("spearman") if verdict is not None else None
    rho = Interval(sp["value"], sp["lo"], sp["hi"], sp["level"], sp["method"]) if sp else None
    if rho is not None:
        title += (f"\nSpearman {rho.value:.2f} [{rho.lo:.2f}, {rho.hi:.2f}], "
                  f"rises: {'yes' if verdict.holds else 'no'}")
    fig, (ax,) = _figure(1, title=title)
    drawable = rows[np.isfinite(rows["ratio"]) & (rows["ratio"] > 0)]
    ax.scatter(drawable["D"], drawable["ratio"], s=12, alpha=0.6, color="tab:blue",
               edgecolors="none", label="networks")
    medians = drawable.groupby("D")["ratio"].median()
    ax.plot(medians.index, medians.to_numpy(), color="k", lw=1, marker="o", ms=3, label="median")
    _log(ax)
    _label(ax, "dataset size D", "G:M correct-logit ratio")
    ax.legend(fontsize=7)
    return fig


def plot_allocation_curves(curves: AllocationCurves, measured: Mapping[str, AllocationCurves] | None = None,
                           crossover: tuple[float, float, float] | None = None, label: str = "measured",
                           reference: tuple[str, float, float, float] | None = None) -> Figure:
    """``curves``: the predictions and the measured ratios (``label``) they were fitted to; ``measured``:
    further measured series by label (e.g. the AdamW endpoints beside the settled states);
    ``crossover``: ``(value, lo, hi)`` of the operating-logit crossover, drawn as a band;
    ``reference``: ``(label, value, lo, hi)`` of another D_crit estimate (e.g. ungrokking's),
    drawn as a hatched band with its point."""
    fig = Figure(figsize=(7.5, 5.6))
    ax = fig.subplots()
    pts = curves.points
    D = np.array([p.D for p in pts])
    edge = (1 - curves.wta_share) / curves.wta_share
    ax.set_xscale("log")
    ax.set_yscale("log")

    # (b): case 2 with kappa_eff, its bootstrap band
    b = np.array([[p.predicted_b.value, p.predicted_b.lo, p.predicted_b.hi] for p in pts])
    ax.plot(D, b[:, 0], "-", color="tab:blue",
            label=f"(b) case 2, kappa_eff {curves.kappa_eff.value:.2f} "
                  f"[{curves.kappa_eff.lo:.2f}, {curves.kappa_eff.hi:.2f}]")
    ax.fill_between(D, b[:, 1], b[:, 2], color="tab:blue", alpha=0.15, linewidth=0)

    # (a): winner-take-all at the operating logit: the edge of the predicted region per D,
    # switching at the crossover where one is given (else halfway between neighbouring D)
    a = np.array([edge if p.log_norm_ratio > 0 else 1 / edge for p in pts])
    xs, ys = D, a
    if crossover is not None and math.isfinite(crossover[0]) and D[0] < crossover[0] < D[-1]:
        xs = np.concatenate([D[D < crossover[0]], [crossover[0], crossover[0]], D[D > crossover[0]]])
        ys = np.concatenate([np.full((D < crossover[0]).sum() + 1, 1 / edge), np.full((D > crossover[0]).sum() + 1, edge)])
    ax.plot(xs, ys, color="tab:red", linestyle="--",
            label=f"(a) per-circuit kappa (G {curves.kappa_G.value:.2f}, M {curves.kappa_M.value:.2f}): "
                  f"winner takes > {1 - curves.wta_share:.0%}")
    for d, y in zip(D, a):
        ax.annotate("", xy=(d, y * (8 if y > 1 else 1 / 8)), xytext=(d, y),
                    arrowprops={"arrowstyle": "->", "color": "tab:red", "alpha": 0.6})
    ax.plot([], [], color="tab:red", marker=r"$\uparrow$", linestyle="none",
            label="(a) predicts the ratio beyond its line, in the arrow's direction")
    # the region between the two winner-take-all edges: a mixture, which (a) rules out
    ax.axhspan(1 / edge, edge, color="0.5", alpha=0.07,
               label=f"mixture: neither circuit holds > {1 - curves.wta_share:.0%} of the logit")
    near = [p.D for p in pts if p.near_crossover]
    if near:
        ax.plot(near, [1.0] * len(near), linestyle="none", marker="x", color="k", ms=8,
                label="near the crossover (which circuit needs less norm is undetermined): not scored")
    if crossover is not None and all(math.isfinite(v) for v in crossover):
        ax.axvspan(crossover[1], crossover[2], color="tab:red", alpha=0.08,
                   label=f"(a) switch D at operating logit {crossover[0]:.3g} [{crossover[1]:.3g}, {crossover[2]:.3g}]")

    if reference is not None and all(math.isfinite(v) for v in reference[1:]):
        name, v, lo, hi = reference
        ax.axvspan(lo, hi, facecolor="none", edgecolor="tab:green", hatch="//", alpha=0.5,
                   label=f"{name} D_crit {v:.3g} [{lo:.3g}, {hi:.3g}]")
        ax.axvline(v, color="tab:green", linewidth=1)
    series = {label: curves} | dict(measured or {})
    for (label, c), marker in zip(series.items(), "osD^"):
        m = np.array([[p.measured.value, p.measured.lo, p.measured.hi] for p in c.points])
        Dm = np.array([p.D for p in c.points])
        ax.errorbar(Dm, m[:, 0], yerr=[m[:, 0] - m[:, 1], m[:, 2] - m[:, 0]], fmt=marker, capsize=3,
                    label=f"{label} (median over seeds, 95% interval)")
    ax.axhline(1.0, color="grey", linewidth=0.6)
    ax.set_xticks(D, [f"{d:g}" for d in D])
    ax.minorticks_off()
    ax.set_xlabel("dataset size D")
    ax.set_ylabel("G:M correct-logit ratio")
    ax.set_title("G:M logit ratio: predicted curves (a), (b) against the measured ratio\n"
                 f"median |log error| away from the crossover: (a) {curves.median_abs_error_a:.2f}, "
                 f"(b) {curves.median_abs_error_b:.2f}", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


def plot_figure8(tables: Mapping[str, pd.DataFrame], summary: pd.DataFrame) -> Figure:
    """Figure 8: one panel per task, final test accuracy against D' per weight decay (mean over
    seeds, points for single networks) and the pooled D_crit (``summary``: ``task, D_crit``)."""
    n = len(tables)
    cols = min(5, n)
    nrows = math.ceil(n / cols)
    fig = Figure(figsize=(3.0 * cols, 2.6 * nrows))
    axes = fig.subplots(nrows, cols, squeeze=False, sharey=True)
    cmap = matplotlib.colormaps["plasma"]
    d_crit = summary.set_index("task")["D_crit"]
    for ax, (task, t) in zip(axes.flat, tables.items()):
        wds = sorted(t["weight_decay"].unique())
        for i, wd in enumerate(wds):
            sub = t[t["weight_decay"] == wd]
            color = cmap(0.15 + 0.7 * i / max(len(wds) - 1, 1))
            ax.scatter(sub["D"], sub["final_test_acc"], s=8, alpha=0.4, color=color, edgecolors="none")
            mean = sub.groupby("D")["final_test_acc"].mean()
            ax.plot(mean.index, mean.values, color=color, lw=1.2, label=f"wd {wd:g}")
        if math.isfinite(d_crit.get(task, math.nan)):
            ax.axvline(d_crit[task], color="k", ls="--", lw=0.8)
        ax.set_xscale("log")
        # decade labels only: the minor labels of a log axis under a decade overlap at this width
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.tick_params(labelsize=7)
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("D'", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes[0][0].set_ylabel("final test accuracy", fontsize=8)
    axes[0][0].legend(fontsize=6)
    fig.suptitle("Figure 8: ungrokking across tasks (dashed: pooled D_crit)", fontsize=10)
    fig.tight_layout()
    return fig
