"""Figures of the toy model. Each function takes the JSON-ready data a command writes and
returns a matplotlib Figure (Agg backend); none of them computes anything."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def _log_steps(steps: Sequence[int]) -> np.ndarray:
    # step 0 cannot sit on a log axis; show it at 1/2 (the axis starts there)
    s = np.asarray(steps, dtype=float)
    return np.where(s == 0, 0.5, s)


def _ratio_ticks(ax, ratios: Sequence[float]) -> None:
    """Label a log x-axis of D / D_crit at the data's own ratios (no crowded minor labels)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    ax.xaxis.set_major_locator(FixedLocator(list(ratios)))
    ax.set_xticklabels([f"{r:.2g}" for r in ratios], fontsize=7)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_figure2(data: Mapping[str, object]) -> Figure:
    """Figure 2: train and test loss against step (log axis) for panels (a), (b), (c)."""
    panels = data["panels"]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), sharey=True)
    for ax, (key, rec) in zip(np.atleast_1d(axes), panels.items()):
        x = _log_steps(rec["steps"])
        ax.plot(x, rec["train_loss"], label="train loss", color="tab:blue")
        ax.plot(x, rec["test_loss"], label="test loss", color="tab:red")
        if rec.get("grokking_step") is not None:
            ax.axvline(max(rec["grokking_step"], 0.5), color="grey", ls=":", lw=1,
                       label=f"grokking step {rec['grokking_step']}")
        ax.set_xscale("log")
        ax.set_title(rec.get("title", key), fontsize=10)
        ax.set_xlabel("step")
        ax.legend(fontsize=8, loc="upper left")
    np.atleast_1d(axes)[0].set_ylabel("loss")
    fig.tight_layout()
    return fig


def plot_phase(data: Mapping[str, object]) -> Figure:
    """Heatmaps over (P_G/P_M, w_G2/w_M2): log10 grokking delay and final test loss.

    Cells that never grokked within the run are grey.
    """
    pr, wr = np.asarray(data["p_ratio"]), np.asarray(data["w_ratio"])
    delay = np.array(data["grokking_delay"], dtype=float)   # None -> nan
    loss = np.array(data["final_test_loss"], dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    panels = ((axes[0], np.log10(delay), "log10 grokking delay (grokking step / fit step)", "viridis"),
              (axes[1], loss, "final test loss", "magma_r"))
    for ax, z, title, cmap in panels:
        cm = plt.get_cmap(cmap).with_extremes(bad="lightgrey")  # grey: no grokking within the run
        mesh = ax.pcolormesh(wr, pr, np.ma.masked_invalid(z), cmap=cm, shading="nearest")
        fig.colorbar(mesh, ax=ax)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.axhline(1.0, color="white", ls="--", lw=1)
        ax.set_xlabel("speed ratio w_G2(0) / w_M2(0)")
        ax.set_ylabel("efficiency ratio P_G / P_M")
        ax.set_title(title, fontsize=10)
    axes[0].text(0.02, 0.98, "grey: no grokking within the run", transform=axes[0].transAxes,
                 va="top", fontsize=8)
    fig.suptitle(f"toy phase diagram ({data['steps']} steps; dashed: P_G = P_M)", fontsize=11)
    fig.tight_layout()
    return fig


def plot_ungrok(data: Mapping[str, object]) -> Figure:
    """Left: test loss while training on at smaller D from the grokked state. Right: final test loss vs D."""
    runs = data["runs"]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 4.5))
    cmap = plt.get_cmap("coolwarm_r")
    ratios = np.array([r["d_ratio"] for r in runs])
    lo, hi = np.log(ratios.min()), np.log(ratios.max())
    for r in runs:
        colour = cmap((np.log(r["d_ratio"]) - lo) / max(hi - lo, 1e-12))
        ax0.plot(_log_steps(r["steps"]), r["test_loss"], color=colour, label=f"D = {r['d_ratio']:g} D_crit")
    ax0.axhline(data["chance_loss"], color="grey", ls=":", lw=1, label="chance (log n)")
    ax0.set_xscale("log")
    ax0.set_xlabel("step after switching to the smaller dataset")
    ax0.set_ylabel("test loss")
    ax0.set_title("toy ungrokking: continue from the grokked state", fontsize=10)
    ax0.legend(fontsize=7)
    ax1.plot(ratios, [r["final_test_loss"] for r in runs], "o-", color="tab:red", label="final test loss")
    ax1.plot(ratios, [r["start_test_loss"] for r in runs], "s--", color="tab:green",
             label="test loss at the switch (grokked)")
    ax1.axvline(1.0, color="black", ls="--", lw=1, label=f"D_crit = {data['D_crit']:g}")
    ax1.set_xscale("log")
    _ratio_ticks(ax1, ratios)
    ax1.set_xlabel("D / D_crit")
    ax1.set_ylabel("test loss")
    ax1.set_title("final test loss against dataset size", fontsize=10)
    ax1.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_semigrok(data: Mapping[str, object]) -> Figure:
    """Left: test loss from scratch near D_crit (q > kappa). Middle/right: final test loss and
    G's weight share against D / D_crit, for q > kappa (mixture) and q = kappa (sharp)."""
    mix, sharp = data["mixture"], data["sharp"]
    fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(16, 4.5))
    cmap = plt.get_cmap("coolwarm_r")
    ratios = np.array([r["d_ratio"] for r in mix])
    lo, hi = np.log(ratios.min()), np.log(ratios.max())
    for r in mix:
        colour = cmap((np.log(r["d_ratio"]) - lo) / max(hi - lo, 1e-12))
        ax0.plot(_log_steps(r["steps"]), r["test_loss"], color=colour, lw=1,
                 label=f"D = {r['d_ratio']:.2g} D_crit")
    ax0.set_xscale("log")
    ax0.set_xlabel("step")
    ax0.set_ylabel("test loss")
    ax0.set_title(f"from scratch, q = {mix[0]['q']:g} > kappa = {data['kappa']:g}", fontsize=10)
    ax0.legend(fontsize=6, ncol=2)
    for runs, style, name in ((mix, "o-", "q > kappa: mixture"), (sharp, "s--", "q = kappa: winner takes all")):
        x = [r["d_ratio"] for r in runs]
        ax1.plot(x, [r["final_test_loss"] for r in runs], style, label=name)
        ax2.plot(x, [r["final_G_share"] for r in runs], style, label=name)
    for ax in (ax1, ax2):
        ax.axvline(1.0, color="black", ls=":", lw=1)
        ax.set_xscale("log")
        _ratio_ticks(ax, ratios)
        ax.set_xlabel("D / D_crit")
        ax.legend(fontsize=8)
    ax1.set_ylabel("final test loss")
    ax1.set_title("final test loss (middling near D_crit for q > kappa)", fontsize=10)
    ax2.set_ylabel("w_G / (w_G + w_M) at the end")
    ax2.set_title("final share of G", fontsize=10)
    fig.tight_layout()
    return fig


def figure_png(fig: Figure) -> bytes:
    """PNG bytes of ``fig`` (closes it), for an atomic write."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
