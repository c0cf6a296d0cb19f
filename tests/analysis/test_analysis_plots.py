"""Every plot returns a Figure with the expected axes and renders to a PNG."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from circeff.analysis import plots
from circeff.analysis.efficiency import analyse_efficiency, fit_circuit, fitted_lines
from circeff.analysis.fig10 import fig10a, measured_ratios
from circeff.analysis.semigrokking import classify_runs
from circeff.analysis.ungrokking import dcrit_by_weight_decay
from circeff.errors import ConfigError
from tests.strategies.analysis import efficiency_rows, ratio_rows, trajectory_rows, ungrokking_rows

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def eff_rows():
    return efficiency_rows({"G": lambda D: 5.0, "M": lambda D: 0.5 * D**0.5}, kappa=1.2,
                           D_values=(100, 300, 1000, 3000), seed=0)


@pytest.fixture(scope="module")
def analysis(eff_rows):
    return analyse_efficiency(eff_rows, n_boot=200)


def _progress_rows():
    step = np.arange(0, 5000, 50)
    test_acc = 1 / (1 + np.exp(-(step - 2200) / 200))
    return pd.DataFrame({"step": step, "train_acc": np.minimum(1.0, step / 300), "test_acc": test_acc, "trig_train": 10 / (1 + np.exp(-(step - 2000) / 300)),
                         "mem_train": 8 * np.exp(-step / 2500), "trig_test": 9 / (1 + np.exp(-(step - 2200) / 300)),
                         "mem_test": -np.exp(-step / 2500), "param_norm": 40 - 15 * step / 5000})


def _figures(eff_rows, analysis):
    lines = pd.concat([fitted_lines(fit_circuit(eff_rows, c), eff_rows) for c in ("G", "M")])
    ungrok = ungrokking_rows({0.3: 800, 1.0: 800, 3.0: 800}, D_values=np.geomspace(200, 3000, 9),
                             n_seeds=5, chance=1 / 113, seed=1)
    traj = trajectory_rows(["grok", "semi", "none", "transient", "wobbly"])
    ratio_table = ratio_rows(lambda D: (D / 100) ** 1.5, D_values=(50, 100, 200, 400, 800, 1600),
                             seed=2)
    ratios = measured_ratios(ratio_table)
    return {
        "logit_vs_norm": (plots.plot_logit_vs_norm(eff_rows, lines), 2),
        "efficiency": (plots.plot_efficiency(analysis), 1),
        "ungrokking": (plots.plot_ungrokking(
            ungrok, dcrit_by_weight_decay(ungrok, chance=1 / 113, n_boot=30)), 1),
        "semigrok": (plots.plot_semigrok(traj, classify_runs(traj, 0.01)), 5),   # a panel per run
        "semigrok_final": (plots.plot_semigrok_final(classify_runs(traj, 0.01), 150.0, ungrokking_rows=ungrok), 1),
        "progress": (plots.plot_progress(_progress_rows()), 3),
        "ratio_vs_D": (plots.plot_ratio_vs_D(ratios, fig10a(ratios)), 1),
    }


def test_every_plot_returns_a_figure_with_its_axes_and_renders_a_png(eff_rows, analysis, tmp_path):
    for name, (fig, n_axes) in _figures(eff_rows, analysis).items():
        assert isinstance(fig, Figure), name
        assert len(fig.axes) == n_axes, name
        path = tmp_path / f"{name}.png"
        plots.save_figure(fig, path)
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert len(data) > 10_000, name  # something was drawn


def test_plots_name_a_missing_column():
    with pytest.raises(ConfigError) as exc:
        plots.plot_progress(pd.DataFrame({"step": [0, 1], "param_norm": [1.0, 2.0]}))
    assert exc.value.field == "proxies"
    with pytest.raises(ConfigError) as exc:
        plots.plot_ratio_vs_D(pd.DataFrame({"D": [1.0]}))
    assert exc.value.field == "ratio"


def _legend_boxes_clear_of_data(fig):
    """Every legend's box lies outside its axes' data area (below the panel)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            box, area = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
            if box.overlaps(area):
                return False
    return True


def test_fig9_shows_accuracy_with_the_grokking_step_and_legends_off_the_data():
    fig = plots.plot_progress(_progress_rows())
    acc = fig.axes[0]
    assert acc.get_ylabel() == "accuracy"
    assert any("test accuracy >= 0.95 at step" in t.get_text() for t in acc.get_legend().get_texts())
    assert _legend_boxes_clear_of_data(fig)
    # the G test line is drawn over the G train line with a different style, so it stays visible
    proxy = fig.axes[1]
    styles = {line.get_label(): (line.get_linewidth(), line.get_linestyle()) for line in proxy.get_lines()}
    assert styles["G (trig), test"] != styles["G (trig), train"]


def test_semigrok_panels_are_labelled_by_D_over_D_crit_and_class_and_legend_is_off_the_data():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    traj = trajectory_rows(["grok", "semi", "none", "transient", "wobbly"])
    classes = classify_runs(traj, 0.01)
    fig = plots.plot_semigrok(traj, classes, d_crit=100.0)
    titles = sorted(ax.get_title() for ax in fig.axes)
    assert titles == sorted(f"D/Dc {c.D / 100:.2f}, s0: {c.label}" for c in classes)
    # each panel draws train (grey) and test (its class's colour)
    for ax in fig.axes:
        label = ax.get_title().rsplit(": ", 1)[1]
        colors = [line.get_color() for line in ax.get_lines()]
        assert plots.CLASS_COLORS[label] in colors and "0.7" in colors
    # the one legend (the figure's) counts each class and sits below every panel
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "semi (1)" in texts and "grokked (1)" in texts
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box = fig.legends[0].get_window_extent(canvas.get_renderer())
    assert not any(box.overlaps(ax.get_window_extent(canvas.get_renderer())) for ax in fig.axes)


def test_p1_figure_states_the_verdicts_slopes_and_keeps_its_legend_off_the_data(analysis):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from circeff.analysis.rule import Verdict

    slope = {"M": {"value": 0.336, "lo": 0.324, "hi": 0.347, "level": 0.95},
             "G": {"value": 0.0166, "lo": -0.138, "hi": 0.171, "level": 0.9}}
    verdict = Verdict("P1", False, "G neither flat nor steep", {"slope_M": slope["M"], "slope_G": slope["G"],
                      "delta": 0.162, "outcome_M": "holds", "outcome_G": "undecided"}, {}, undecided=True)
    fig = plots.plot_efficiency(analysis, verdict)
    (ax,) = fig.axes
    caption = ax.get_xlabel()
    # the deciding slopes (within each seed), not only the trend lines' fit to the per-D points
    assert "M 0.336 [0.324, 0.347] (95%)" in caption
    assert "G 0.017 [-0.138, 0.171] (90%); G flat means inside +-0.162" in caption
    assert "P1 undecided: M part holds, G part undecided" in fig._suptitle.get_text()
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    (legend,) = fig.legends
    assert not legend.get_window_extent(canvas.get_renderer()).overlaps(ax.get_window_extent(canvas.get_renderer()))
    # without slopes the caption says so instead of inventing them
    bare = Verdict("P1", False, "M has one D", {}, {}, undecided=True)
    assert "no slopes" in plots.plot_efficiency(analysis, bare).axes[0].get_xlabel()


def test_logit_vs_norm_gives_each_D_of_a_panel_its_own_colour(eff_rows):
    # G sizes close together on a wide D range must not share one colour
    rows = eff_rows.copy()
    g = rows["circuit"] == "G"
    rows.loc[g, "D"] = rows.loc[g, "D"].map({100: 436, 300: 476, 1000: 506, 3000: 520})
    fig = plots.plot_logit_vs_norm(rows)
    g_colors = {tuple(c.get_facecolor()[0]) for c in fig.axes[1].collections}
    assert len(g_colors) == rows.loc[g, "D"].nunique()
    assert _legend_boxes_clear_of_data(fig)


def test_ungrokking_title_is_the_callers():
    ungrok = ungrokking_rows({1.0: 800}, D_values=np.geomspace(200, 3000, 5), n_seeds=2, chance=1 / 113, seed=1)
    fig = plots.plot_ungrokking(ungrok, title="Figure 10b: final test accuracy against D")
    assert fig._suptitle.get_text() == "Figure 10b: final test accuracy against D"
    assert "P2" in plots.plot_ungrokking(ungrok)._suptitle.get_text()
