"""Every named setting of the package, in one table keyed by (experiment, scale).

Scales (the same word means the same model and optimiser in every command, and the same P in
every experiment; ``circeff presets`` prints every value):

* ``quick``: :data:`QUICK`, a small prime and a narrower model than the paper's with a larger
  learning rate, small enough for ``circeff reproduce --quick`` on 2 CPU cores. The narrower
  model does a quarter of the paper model's matmul work per example; the larger learning rate
  makes it grok within the quick step budget.
* ``full``: :data:`FULL`, the paper's model and optimiser (ReLU, AdamW, betas 0.9/0.98, each
  entry's weight decays) at a larger P, with more seeds, sizes and steps, and Figure 8
  (``circeff reproduce --full``), sized to fit two hours on 2 CPU cores
  (:data:`FULL_ESTIMATE`, :data:`RECORDED_RUNS`).
* ``paper``: :data:`PAPER`, the paper's settings (Section 5, Appendix A); meant for a GPU.

``circeff train --preset`` takes the same three names (:data:`TRAIN_PRESETS`): each is its
scale's model, optimiser and steps, trained on one batch of seeds at one P and training fraction
(``full`` at a larger P than the full scale's experiments: one batch is cheap).

Dataset sizes that the experiments choose as a share of the data are written here as fractions
of the P^2 pairs and converted to counts (:func:`sizes_of`), so they follow P.

Measured numbers live in data, never in comments: :data:`MEASURED` (each entry's wall time in
the recorded runs), :data:`RECORDED_RUNS` (those runs as a whole) and :data:`MEASUREMENTS` (the
calibration observations that the settings rest on, each with its date and machine). The
comments beside the entries say why a setting was chosen and name the measurement it rests on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from circeff.empirical.config import ModelConfig, Training, TrainingView
from circeff.empirical.experiments.allocation import AllocationConfig, DisjointConfig
from circeff.empirical.experiments.efficiency import EfficiencyConfig
from circeff.empirical.experiments.fig10 import Fig10Config
from circeff.empirical.experiments.predictions_common import QUICK, BaseConfig, quick_base
from circeff.empirical.experiments.progress import ProgressConfig
from circeff.empirical.experiments.semigrokking import SemigrokConfig
from circeff.empirical.experiments.ungrokking import UngrokkingConfig
from circeff.errors import ConfigError
from circeff.validate import in_range

__all__ = ["EXPERIMENTS", "FULL_ESTIMATE", "MEASURED", "MEASUREMENTS", "PRESETS", "RECORDED_RUNS", "SCALES", "SEMIGROKKING_PILOT",
           "TRAIN_PRESETS", "Measurement", "RecordedRun", "TrainPreset", "describe", "get", "get_preset",
           "measurements_of", "preset_rows", "scale_help", "sizes_of", "train_preset_help"]

SCALES = ("quick", "full", "paper")
EXPERIMENTS = ("progress", "efficiency", "ungrokking", "fig10", "semigrokking", "allocation")


def sizes_of(p: int, fracs: Sequence[float]) -> tuple[int, ...]:
    """Dataset sizes as fractions of the P^2 pairs of modular addition (rounded)."""
    return tuple(int(round(f * p * p)) for f in fracs)


# ---- the training settings of each scale -------------------------------------------------------
# Quick: the defaults of every experiment config (QUICK and quick_base in predictions_common): the
# narrower model and a larger learning rate, so that it groks within 1500 steps on a CPU
# (MEASUREMENTS: "quick grokking"); two spare bases (MEASUREMENTS: "base trig shares").
# Full: the paper's architecture and optimiser (the defaults of ModelConfig and Training; weight
# decays as in each entry) at the largest prime P that fits the two-hour budget whatever Figure 8's
# bases do: the work per model-step grows with the P^2 pairs, so the next prime, 37, costs
# (37/31)^2 as much per step (FULL_ESTIMATE; MEASUREMENTS "full P").
FULL = Training(p=31, model=ModelConfig(), lr=1e-3, steps=3000, seeds=(0, 1, 2), log_every=50,
                checkpoint_every=500)
PAPER = Training(p=113, model=ModelConfig(), lr=1e-3, steps=20_000, seeds=tuple(range(10)), log_every=200,
                 checkpoint_every=2000)

# The grokked networks that ungrokking and Figure 10 both continue (one set per scale).
# Spare networks replace bases that are not G-only: two spares leave three G-only bases at the
# quick and full scales (MEASUREMENTS: "base trig shares").
# P1's full-scale training (24 e-folds, as quick's 22.5); the allocation stage reuses its M networks
_P1_FULL = replace(FULL, steps=6000, weight_decay=4.0, seeds=(0, 1, 2, 3, 4), checkpoint_every=1000)

_BASE = {"quick": quick_base(), "full": BaseConfig(FULL, spare_seeds=(3, 4)),
         "paper": BaseConfig(PAPER)}

PRESETS: dict[tuple[str, str], Any] = {
    # Figure 9: one grokking run, at a training fraction that groks within the scale's steps.
    ("progress", "quick"): ProgressConfig(),
    ("progress", "full"): ProgressConfig(replace(FULL, seeds=(0,)), train_frac=0.5, snapshot_every=100),
    ("progress", "paper"): ProgressConfig(replace(PAPER, seeds=(0,), steps=40_000, log_every=100),
                                          train_frac=0.3, snapshot_every=500),
    # P1. Every G network trained from scratch at its own D, 4 sizes x 5 seeds from about 3 x
    # D_crit up to nearly all pairs (the pilot: MEASUREMENTS "P1 pilot"), both circuits with 22-24
    # e-folds of weight decay; the slopes are clustered by seed. Full: M at 4 sizes reaching into
    # G's range. Quick: M at 3 sizes below it, 2000 steps and 100 L-BFGS iterations per rung, to
    # fit ten minutes (the crossover is then an extrapolation of M's trend, drawn dashed).
    ("efficiency", "quick"): EfficiencyConfig(),
    ("efficiency", "full"): EfficiencyConfig(
        _P1_FULL,
        m_train_sizes=(60, 120, 240, 480), g_train_sizes=(400, 524, 687, 913), g_subset_sizes=(),
        settle_iterations=300),
    # G networks at 40-80% of the pairs (above the grokking threshold)
    ("efficiency", "paper"): EfficiencyConfig(
        replace(PAPER, seeds=(0, 1, 2, 3, 4), steps=40_000), m_train_sizes=(500, 1000, 2000, 4000),
        g_train_sizes=sizes_of(113, (0.4, 0.53, 0.67, 0.8)), g_subset_sizes=(), settle_iterations=1000),
    # P2/P3. The coarse D' grid straddles the ungrokking transition (MEASUREMENTS "quick
    # ungrokking transition"). Three weight decays spanning 4x (what the P3 rule needs), compared
    # at equal wd x steps but never fewer steps than the middle weight decay gets (min_steps: the
    # largest is not cut short); five more D' around the coarse grid's D_crit; unconverged runs are
    # continued once; every base is also continued on its full training set (the control); D_crit
    # is measured again at 3x (quick) and 3x and 9x (full) the budget, at the largest weight decay.
    ("ungrokking", "quick"): UngrokkingConfig(),
    # Full: six coarse D' and four refined. Weight decays twice quick's: at the full scale's lr, a
    # third of quick's, they decay two thirds of quick's share of the weights per step (lr x wd),
    # and the budget gives about the same e-folds (lr x budget).
    ("ungrokking", "full"): UngrokkingConfig(_BASE["full"], sizes=(40, 70, 120, 200, 350, 600),
                                             weight_decays=(2.0, 4.0, 8.0), decay_budget=3000.0, n_refine=4,
                                             n_boot=1000, min_steps=750, convergence_multiples=(1.0, 3.0, 9.0)),
    # Appendix A.2, Figure 7: 7 sizes geometrically spaced in [390, 1494], 10 seeds
    ("ungrokking", "paper"): UngrokkingConfig(
        _BASE["paper"], sizes=tuple(int(round(x)) for x in np.geomspace(390, 1494, 7)),
        weight_decays=(0.5, 1.0, 2.0), decay_budget=100_000.0, log_every=500, n_boot=1000, min_steps=100_000),
    # Figure 10 continues the same bases at sizes from a few dozen to nearly all pairs.
    # (three seeds per D: the Figure 10a rule needs them)
    ("fig10", "quick"): Fig10Config(),
    ("fig10", "full"): Fig10Config(_BASE["full"], sizes=(20, 40, 80, 160, 320, 640, 900), decay_budget=3000.0),
    ("fig10", "paper"): Fig10Config(_BASE["paper"], sizes=(250, 500, 1000, 2000, 4000, 8000, 12000),
                                    seeds=(0, 1, 2, 3, 4), decay_budget=100_000.0, log_every=500),
    # P4. Sizes by rule from the same run's D_crit, evenly spaced across the window that straddles
    # the from-scratch transition the pilots found (MEASUREMENTS "P4 pilot": at the full scale
    # nothing moved up to 2.5 x D_crit in 120 e-folds and runs grokked from 2.9 x up; at the
    # quick scale the transition lies between 2 and 3 x). Full: the declared design, 8 sizes x 5
    # seeds (power 0.52 at p = 0.05, 0.87 at p = 0.1), the pilot's weight decay and budget (120
    # e-folds; the plateau test reads the last 40). Quick: the same rule on 4 sizes x 4 seeds,
    # 60 e-folds.
    ("semigrokking", "quick"): SemigrokConfig(),
    ("semigrokking", "full"): SemigrokConfig(replace(FULL, weight_decay=8.0, seeds=(0, 1, 2, 3, 4), steps=15_000,
                                                 checkpoint_every=2500),
                                         n_sizes=8, low_factor=2.4, high_factor=3.2),
    # Appendix A.1: 10 seeds x 20 sizes evenly spaced in [1500, 2050]
    ("semigrokking", "paper"): SemigrokConfig(
        replace(PAPER, steps=100_000, log_every=500, checkpoint_every=5000),
        sizes=tuple(int(round(x)) for x in np.linspace(1500, 2050, 20)), n_sizes=8),
}

# P4's pilot (`circeff experiment semigrokking-pilot`): the full scale's model and optimiser, with a
# weight decay of 8 so that lr x wd x steps reaches 120 e-folds on a CPU (D_crit moves little with
# weight decay at an equal decay budget, P3); five sizes from 1.3 to 4.5 x D_crit, two seeds.
SEMIGROKKING_PILOT = SemigrokConfig(replace(FULL, weight_decay=8.0, seeds=(0, 1), steps=15_000, log_every=50,
                                            checkpoint_every=2500), n_sizes=5, low_factor=1.3, high_factor=4.5)

# ---- allocation (Theorem D.4 on disjoint pairs; Figure 10's networks settled) ------------------
# The M circuits are P1's memorisation-only networks (same sizes, seeds and training, so they are
# reused, not retrained); G circuits are the base networks, settled alone on D examples, and
# also at larger D alone (g_only_sizes) where a G network keeps its trig share, so G and M are
# measured over overlapping D. Quick: 2 rungs, 2 starting splits and few L-BFGS iterations per
# minimisation, so that the stage stays a small part of the quick run (MEASUREMENTS "allocation
# cost").
PRESETS.update({
    ("allocation", "quick"): AllocationConfig(),
    ("allocation", "full"): AllocationConfig(
        DisjointConfig(_BASE["full"], sizes=(60, 120, 240, 480), g_only_sizes=(720, 900), seeds=(0, 1, 2),
                       m_steps=_P1_FULL.steps, m_lr=_P1_FULL.lr, m_weight_decay=_P1_FULL.weight_decay,
                       alphas=(1e-3, 1e-2), pair_alpha=1e-3,
                       splits=((1.0, 0.5), (0.5, 1.0)), iterations=100),
        fig10_alphas=(1e-3,), fig10_iterations=100, state_alpha=1e-3, n_boot=1000),
    ("allocation", "paper"): AllocationConfig(
        DisjointConfig(_BASE["paper"], sizes=(500, 1000, 2000, 4000), g_only_sizes=(6000, 9000), seeds=(0, 1, 2),
                       m_steps=40_000, m_lr=PAPER.lr, m_weight_decay=PAPER.weight_decay, alphas=(1e-4, 1e-3, 1e-2),
                       pair_alpha=1e-3, splits=((1.0, 0.5), (1.0, 1.0), (0.5, 1.0)), iterations=500),
        fig10_alphas=(1e-4, 1e-3), fig10_iterations=500, state_alpha=1e-3, n_boot=1000),
})


# ---- measured numbers --------------------------------------------------------------------------
@dataclass(frozen=True)
class Measurement:
    """A number measured on a real run that a setting of this table rests on.

    ``about`` names what it supports (a table entry ``"ungrokking quick"``, a scale ``"full"``
    or a ``circeff train`` preset ``"train full"``); ``value`` is the number(s), in ``unit``.
    """

    key: str
    about: str
    what: str
    value: Any
    unit: str = ""
    date: str | None = None
    setup: str = ""


_QUIET = "a fresh clone on 2 quiet CPU cores, torch threads 2"

MEASUREMENTS: tuple[Measurement, ...] = (
    Measurement("quick grokking", "progress quick",
                "P = 23 at 60% of the pairs, quick model and lr: steps until the run groks (within)", 1500,
                "steps"),
    Measurement("base trig shares", "quick", "trig shares of base seeds 0-4 after the quick base steps",
                (0.993, 0.986, 0.881, 0.811, 0.989)),
    Measurement("base trig shares", "full", "trig shares of base seeds 0-5 after the full base steps (P = 31, "
                "the paper's model)", (0.958, 0.965, 0.976, 0.923, 0.985, 0.918), date="2026-11-29",
                setup="2 CPU cores"),
    Measurement("base cost", "full", "wall time of the six full-scale base networks", 173.0, "s",
                date="2026-11-29", setup="2 CPU cores"),
    Measurement("P1 G fraction", "efficiency quick", "G networks trained at 60-75% of the pairs at P = 23: seeds "
                "of two with a trig share below 0.95", 1, "seeds"),
    Measurement("P1 pilot", "efficiency quick", "G networks from scratch at P = 23 (quick model, lr 3e-3), 1500 steps "
                "at wd 1 (4.5 e-folds), D = 150-506, 3 seeds: G-only (trig share > 0.95) rungs at D = 260, 340, 440, "
                "506 (of 9)", (3, 2, 3, 6), date="2026-12-05", setup="2 CPU cores"),
    Measurement("P1 pilot", "efficiency quick", "the quick P1 design (G at 260, 340, 420, 506 x 5 seeds, M at 40-320, "
                "2500 steps at wd 3 = 22.5 e-folds, 150 L-BFGS iterations per rung): G-only seeds kept per G size",
                (2, 4, 5, 4), date="2026-12-05", setup=_QUIET),
    Measurement("P1 pilot", "efficiency quick", "the same: within-seed spread of log P_G across sizes (pooled sd), "
                "G slope [90% interval] clustered by seed, M slope", (0.0038, 0.0076, 0.0052, 0.0101, 0.297),
                date="2026-12-05", setup=_QUIET),
    Measurement("P1 pilot", "efficiency quick", "the same: wall time (training and settling both circuits)", 355.0, "s",
                date="2026-12-05", setup=_QUIET),
    Measurement("P1 pilot", "efficiency quick", "the declared quick design, cut to fit ten minutes (2000 steps at wd 3.75, "
                "the same 22.5 e-folds; M at 40, 80, 160, no longer reaching G's sizes; 100 L-BFGS iterations per rung): "
                "G-only seeds kept per G size, G slope [90%], M slope, wall time (s)",
                (3, 5, 5, 4, 0.0075, 0.0049, 0.0101, 0.276, 226.5), date="2026-12-05", setup=_QUIET),
    Measurement("P1 full design", "efficiency full", "`circeff experiment efficiency --preset full` on a fresh clone: G-only "
                "seeds kept at D = 400, 524, 687, 913 (of 5), G network-rungs accepted (of 60), wall time",
                (0, 2, 4, 2, 18, 1518.9), date="2026-12-05", setup=_QUIET),
    Measurement("P1 full design", "efficiency full", "the same: G slope [90% interval] clustered over the 2 seeds with "
                "two or more sizes, M slope, power and false accept of the rule on that design (100 tables each)",
                (0.0166, -0.138, 0.171, 0.336, 0.24, 0.0), date="2026-12-05", setup=_QUIET),
    Measurement("decay budget", "ungrokking full", "`circeff experiment ungrokking --preset full` on a fresh clone: D_crit "
                "at 3, 9 and 27 e-folds (weight decay 8, 5 D' around the first D_crit, 3 bases)", (116.8, 132.1, 142.6),
                date="2026-12-05", setup=_QUIET),
    Measurement("decay budget", "ungrokking full", "the same run: its drift from 3 to 9 and from 9 to 27 e-folds; the "
                "stage's wall time with the control and the budget batch", (0.131, 0.079, 542.5), date="2026-12-05",
                setup=_QUIET),
    Measurement("ungrokking control", "ungrokking full", "final accuracy of the 9 control runs (bases continued on all "
                "961 pairs at weight decays 2, 4, 8 for 1500, 750, 750 steps): min, max", (1.0, 1.0),
                date="2026-12-05", setup=_QUIET),
    Measurement("decay budget", "ungrokking quick", "D_crit at 3.6 and 10.8 e-folds (weight decay 4, 5 D' around "
                "the first D_crit, 3 bases) and its drift between them", (77.7, 91.4, 0.177), date="2026-12-05",
                setup=_QUIET),
    Measurement("ungrokking control", "ungrokking quick", "final accuracy of the 9 control runs (bases continued on "
                "all 529 pairs at weight decays 1, 2, 4 for 1200, 600, 600 steps): min, max", (1.0, 1.0),
                date="2026-12-05", setup=_QUIET),
    Measurement("P1 settle drift", "efficiency quick", "largest relative norm drift left after 300 L-BFGS "
                "iterations per rung", 0.011),
    Measurement("quick ungrokking transition", "ungrokking quick", "bases' trig shares (min, max) after the "
                "quick base steps", (0.87, 0.99)),
    Measurement("quick ungrokking transition", "ungrokking quick", "final test accuracy after a decay budget "
                "of 1500 (wd x steps), at D' = 30 and at D' >= 240", (0.06, 1.0)),
    Measurement("quick ungrokking transition", "ungrokking quick", "D' near the midpoint of that transition",
                80, "pairs"),
    Measurement("P4 pilot", "semigrokking full", "`circeff experiment semigrokking-pilot --dcrit 125.4` (P = 31, "
                "wd 8, 15000 steps, 2 seeds): final test accuracy at 1.3 and 2.1 x D_crit (max); at 2.9, 3.7 and "
                "4.5 x D_crit (min)", (0.030, 0.996), date="2026-12-05", setup=_QUIET),
    Measurement("P4 pilot", "semigrokking full", "the same settings at D = 314 (2.5 x D_crit): final test accuracy "
                "of seeds 0, 1", (0.10, 0.056), date="2026-12-05", setup=_QUIET),
    Measurement("P4 pilot", "semigrokking full", "steps at which the 2.9 x D_crit runs passed test accuracy 0.95",
                (4050, 6350), "steps", date="2026-12-05", setup=_QUIET),
    Measurement("P4 pilot", "semigrokking quick", "P = 23 quick model, wd 4, 6000 steps, 2 seeds: final test "
                "accuracy at 2.0 x D_crit (max); at 2.5 x (seeds 0, 1); from 3.0 x up (min)", (0.096, 0.28, 1.0, 0.95),
                date="2026-12-05", setup=_QUIET),
    Measurement("allocation cost", "allocation quick", "the quick stage: CPU time, wall time", (37.0, 70.0), "s",
                setup="2 CPU cores shared with other jobs"),
    Measurement("allocation cost", "allocation quick", "its disjoint cells (wall), per objective evaluation",
                (40.0, 0.012), "s", setup="2 CPU cores shared with other jobs"),
    Measurement("allocation cost", "allocation quick", "Figure 10's 12 networks settled at one alpha, the "
                "analysis", (10.0, 4.0), "s", setup="2 CPU cores shared with other jobs"),
    Measurement("full P", "full", "`circeff reproduce --full --plan`: planned training, of it Figure 8's "
                "(as if all nine tasks continue), with P1's 4 x 5 independent G networks and ungrokking's control "
                "and budget batch", (108.6, 44.1), "min", date="2026-12-05",
                setup="2 quiet CPU cores, torch threads 2"),
    Measurement("full P", "full", "the full run with the previous engine (P = 31)", 2933.0, "s"),
    Measurement("full P", "full", "the previous engine's plan at P = 37 if all nine Figure 8 tasks generalised",
                2.4, "h"),
    Measurement("full P", "full", "this engine's estimate at P = 37 if Figure 8 continued the same three tasks "
                "(not planned in full, not run)", 62.0, "min"),
    Measurement("settle cost", "efficiency full", "ms per L-BFGS model-iteration, ms per training step: P1's 12 M "
                "networks (4.6x)", (19.0, 4.2), "ms", date="2026-11-29", setup="2 CPU cores"),
    Measurement("settle cost", "efficiency full", "the same for P1's G networks at their mean size (about 3x)",
                (23.0, 7.0), "ms", date="2026-11-29", setup="2 CPU cores"),
    Measurement("Figure 8 tasks", "full", "tasks that generalised in calibration (3000 steps at 80% of the "
                "pairs; div for one of two seeds, the others not)", ("sub", "mul", "x2_plus_y2", "div")),
    Measurement("train fraction", "train full", "P = 59, 30% of the pairs: test accuracy (min, max) after 6000 "
                "steps (no seed generalised)", (0.03, 0.20), setup="one thread"),
    Measurement("train fraction", "train full", "P = 59, 40% of the pairs: test accuracy (min, max) at step 2500",
                (0.28, 0.68), setup="one thread"),
    Measurement("train fraction", "train full", "P = 59, 50% of the pairs: steps (first, last) at which the four "
                "seeds reach test accuracy >= 0.95", (1050, 2600), "steps", setup="one thread"),
    Measurement("train steps", "train paper", "P = 113, 30% of the pairs: step from which seed 0 has test "
                "accuracy >= 0.95", 7250, "steps"),
)


def measurements_of(about: str) -> list[Measurement]:
    """The measurements that the entry, scale or train preset ``about`` rests on."""
    return [m for m in MEASUREMENTS if m.about == about or m.about.endswith(f" {about}")]


@dataclass(frozen=True)
class RecordedRun:
    """A recorded ``circeff reproduce`` run: its total wall time and the stages that are not
    entries of :data:`MEASURED` (whose wall times are there)."""

    command: str
    date: str
    setup: str
    total_s: float
    other_s: dict[str, float]


RECORDED_RUNS: dict[str, RecordedRun] = {
    "quick": RecordedRun("circeff reproduce --quick --float-check", "2026-12-06", _QUIET + ", torch 2.13", 581.6,
                         {"base": 17.4, "theory and toy": 4.1, "float-order second run": 597.2}),
    # the second call (--float-check added, with the rules of this version) kept the first call's
    # networks and decided every stage again; the float-order repeat was trained on the same
    # networks (identical numbers) in an earlier call at the same settings (other_s)
    "full": RecordedRun("circeff reproduce --full, then the same with --float-check", "2026-12-06",
                        "a fresh clone on 2 CPU cores, torch threads 2, torch 2.13", 5770.1,
                        {"base": 81.0, "figure8": 1410.6, "theory and toy": 4.3, "float-order second run": 6223.5}),
}

# Wall time (s) of each entry's stage in the recorded runs (RECORDED_RUNS).
MEASURED: dict[tuple[str, str], float] = {
    ("progress", "quick"): 4.8,
    ("efficiency", "quick"): 205.4,
    ("ungrokking", "quick"): 183.2,
    ("semigrokking", "quick"): 101.7,
    ("fig10", "quick"): 37.0,
    ("allocation", "quick"): 28.0,
    ("progress", "full"): 20.6,
    ("efficiency", "full"): 1456.2,
    ("ungrokking", "full"): 523.3,
    ("semigrokking", "full"): 1928.5,
    ("fig10", "full"): 180.4,
    ("allocation", "full"): 165.3,
}

# Figure 8 generalised and was continued on 3 of its 9 tasks in the recorded full run.
_FULL_FIG8_CONTINUED = 3


def _full_estimate() -> str:
    """The full scale's planned and measured cost, in words, from the data above."""
    planned = next(m for m in MEASUREMENTS if m.key == "full P" and m.unit == "min" and isinstance(m.value, tuple))
    run = RECORDED_RUNS["full"]

    def minutes(s: float) -> str:
        return f"{s / 60:.1f}".rstrip("0").rstrip(".")

    stages = {"P1": MEASURED[("efficiency", "full")], "P4": MEASURED[("semigrokking", "full")],
              "ungrokking": MEASURED[("ungrokking", "full")], "Figure 10": MEASURED[("fig10", "full")],
              "allocation": MEASURED[("allocation", "full")], "base": run.other_s["base"]}
    return (f"planned {planned.value[0]:g} min of training (`--plan` on the same machine, Figure 8 as if all "
            f"nine tasks continue); measured {minutes(run.total_s)} min on {run.setup.split(',')[0]} "
            f"({run.total_s:g} s: Figure 8 {minutes(run.other_s['figure8'])} min with {_FULL_FIG8_CONTINUED} of "
            "its 9 tasks generalised and continued, "
            + ", ".join(f"{name} {minutes(s)} min" for name, s in stages.items()) + ")")


FULL_ESTIMATE = _full_estimate()


# ---- circeff train -----------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainPreset(TrainingView):
    """Defaults of ``circeff train --preset NAME`` (explicit options override them)."""

    name: str
    training: Training = field(default_factory=Training)
    train_frac: float = 0.5

    def __post_init__(self) -> None:
        in_range("train_frac", self.train_frac, 0.0, 1.0, lo_open=True)

    @property
    def task(self) -> str:
        return self.training.task

    @property
    def description(self) -> str:
        """The values it sets, on one line (from the values themselves)."""
        return describe_train(self)


TRAIN_PRESETS: dict[str, TrainPreset] = {
    # The quick scale's run (a training fraction at which it groks within its steps, as Figure 9's).
    "quick": TrainPreset("quick", QUICK, train_frac=PRESETS[("progress", "quick")].train_frac),
    # The full scale's model, optimiser and steps at P = 59: one batch is cheap enough for a larger
    # P, and half of the pairs is the smallest share tried at which every seed generalises within
    # the steps (MEASUREMENTS "train fraction").
    "full": TrainPreset("full", replace(FULL, p=59, seeds=(0, 1, 2, 3)), train_frac=0.5),
    # Nanda et al. 2023's run length (MEASUREMENTS "train steps").
    "paper": TrainPreset("paper", replace(PAPER, steps=40_000, seeds=(0,), log_every=100, checkpoint_every=1000),
                         train_frac=0.3),
}
PRESETS.update({("train", name): preset for name, preset in TRAIN_PRESETS.items()})

# names of earlier versions: a one-line error says what they are called now
_RENAMED = {"cpu": "full"}


def get_preset(name: object) -> TrainPreset:
    """The ``circeff train`` preset ``name``."""
    if name not in TRAIN_PRESETS:
        hint = f" ({name} is now called {_RENAMED[name]})" if name in _RENAMED else ""
        raise ConfigError("preset", f"must be one of {', '.join(TRAIN_PRESETS)}{hint}", name)
    return TRAIN_PRESETS[name]


def get(experiment: str, scale: object) -> Any:
    """The config of ``experiment`` at ``scale`` (ConfigError naming ``--preset`` otherwise)."""
    scales = [s for e, s in PRESETS if e == experiment]
    if not scales:
        raise ConfigError("experiment", f"must be one of {', '.join(EXPERIMENTS)}", experiment)
    if scale not in scales:
        raise ConfigError("preset", f"must be one of {', '.join(scales)}", scale)
    return PRESETS[(experiment, scale)]


def _training_of(config: Any) -> Training:
    return config.base.training if hasattr(config, "base") else config.training


def preset_rows() -> list[dict[str, Any]]:
    """One row per preset: P, model widths, lr, steps, seeds, weight decays, and measured cost."""
    rows = []
    for (experiment, scale), config in PRESETS.items():
        t = _training_of(config)
        steps = getattr(config, "steps", t.steps)
        wds = getattr(config, "weight_decays", None) or (getattr(config, "weight_decay", t.weight_decay),)
        rows.append({
            "experiment": experiment, "preset": scale, "p": t.p, "d_model": t.model.d_model,
            "n_heads": t.model.n_heads, "d_head": t.model.d_head, "d_mlp": t.model.d_mlp, "lr": t.lr,
            "weight_decay": ",".join(f"{w:g}" for w in wds), "steps": steps,
            "seeds": len(getattr(config, "seeds", ()) or t.seeds),
            "measured_s": MEASURED.get((experiment, scale))})
    return rows


# ---- the values a preset sets, in words (every --help shows them) ------------------------------
def number(x: float) -> str:
    """``3e-3`` rather than ``0.003`` for small numbers, ``%g`` otherwise."""
    if isinstance(x, float) and 0 < abs(x) < 1e-2:
        mantissa, exponent = f"{x:e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{x:g}"


def _list(values: Sequence[Any]) -> str:
    """``0,1,2``; a long run of consecutive integers as ``0-9``, other long lists by their range."""
    values = list(values)
    if len(values) > 6:
        if all(isinstance(v, int) for v in values) and values == list(range(values[0], values[0] + len(values))):
            return f"{values[0]}-{values[-1]}"
        return f"{len(values)} from {number(min(values))} to {number(max(values))}"
    return ",".join(number(v) for v in values)


def describe_training(t: Training) -> str:
    """P, the model and the learning rate of a training setting."""
    m = t.model
    return f"P = {t.p}, d_model {m.d_model} ({m.n_heads} heads of {m.d_head}), d_mlp {m.d_mlp}, lr {number(t.lr)}"


def describe(config: Any) -> str:
    """The values an experiment preset sets, on one line (for ``--help`` texts)."""
    t = _training_of(config)
    parts = [describe_training(t), f"steps {getattr(config, 'steps', t.steps)}",
             f"seeds {_list(getattr(config, 'seeds', ()) or t.seeds)}"]
    for name, label in (("train_frac", "train frac"), ("m_train_sizes", "M sizes"), ("g_train_sizes", "G sizes"),
                        ("sizes", "sizes"), ("weight_decays", "weight decays"), ("decay_budget", "decay budget")):
        value = getattr(config, name, None)
        if value:
            parts.append(f"{label} {_list(value) if isinstance(value, tuple) else number(value)}")
    if not getattr(config, "weight_decays", None):
        parts.append(f"weight decay {number(t.weight_decay)}")
    return ", ".join(parts)


def describe_train(preset: TrainPreset) -> str:
    """The values a ``circeff train`` preset sets, on one line."""
    t = preset.training
    return (f"{describe_training(t)}, {preset.train_frac:.0%} of the pairs, steps {t.steps}, "
            f"seeds {_list(t.seeds)}, weight decay {number(t.weight_decay)}")


def scale_help(experiment: str) -> str:
    """``--preset`` help: what each scale sets in ``experiment`` (from the table)."""
    return "; ".join(f"{scale}: {describe(get(experiment, scale))}" for scale in SCALES)


def train_preset_help() -> str:
    """``circeff train --preset`` help: what each preset sets."""
    return "; ".join(f"{name}: {describe_train(p)}" for name, p in TRAIN_PRESETS.items())



def cli_table() -> dict[str, Any]:
    """Everything ``circeff --help`` and ``circeff presets`` show from this module, as plain data.

    The command line reads it from :mod:`circeff.cli.table`'s generated JSON so that answering
    ``--help`` does not import torch (this module imports the experiments); a test holds that
    file equal to this function.
    """
    from circeff.empirical.experiments.figure8 import Figure8Config

    def value_text(m: Measurement) -> str:
        value = (", ".join(number(v) if isinstance(v, (int, float)) else str(v) for v in m.value)
                 if isinstance(m.value, tuple) else number(m.value))
        return f"{value} {m.unit}".strip()

    return {
        "scale_help": {e: scale_help(e) for e in EXPERIMENTS},
        "training_help": {s: describe_training(get("efficiency", s).training) for s in SCALES},
        "train_preset_help": train_preset_help(),
        "figure8_base_train_frac": Figure8Config.base_train_frac,
        "rows": preset_rows(),
        "recorded_runs": [f"{scale}: `{r.command}` took {r.total_s:g} s on {r.date} ({r.setup})"
                          for scale, r in RECORDED_RUNS.items()],
        "full_estimate": FULL_ESTIMATE,
        "measurements": [[m.about, m.key, m.what, value_text(m), ", ".join(x for x in (m.date, m.setup) if x) or "-"]
                         for m in MEASUREMENTS],
    }
