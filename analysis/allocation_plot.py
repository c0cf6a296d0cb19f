"""The allocation figure: one quantity on the y axis, the G:M correct-logit ratio (log scale),
against D. Predicted curves with bands, measured points with intervals. Only plots."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from circeff.analysis.allocation_curves import AllocationCurves

__all__ = ["plot_allocation_curves"]


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
    ax.set_title("G:M logit ratio: predicted curves against measured")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    fig.tight_layout()
    return fig
