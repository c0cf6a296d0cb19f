"""Synthetic data with a known truth for the analysis layer, and hypothesis strategies over it.

Every generator takes a ``seed`` and returns the flat table the analysis functions read, so a
test can compare a fit with the numbers that generated the data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from hypothesis import strategies as st
from scipy.special import expit


def efficiency_rows(P_of_D: Mapping[str, Callable[[float], float]], *, kappa: float,
                    D_values: Sequence[float], weight_decays: Sequence[float] = (0.3, 1.0, 3.0),
                    n_seeds: int = 4, noise_sd: float = 0.05, seed_sd: float = 0.0,
                    seed: int = 0) -> pd.DataFrame:
    """Single-circuit networks obeying ``logit = (norm / P)^kappa`` times log-normal noise.

    ``P_of_D[circuit](D)`` is the true P. The norm grows as the weight decay falls (a spread of
    about a factor e between the extreme weight decays, plus jitter). ``seed_sd`` multiplies each
    (circuit, D, seed) stripe's P by ``exp(seed_sd * z)``, the paper's seed-to-seed noise.
    """
    rng = np.random.default_rng(seed)
    rows = []
    log_wd = np.log(np.asarray(weight_decays, dtype=float))
    spread = (log_wd - log_wd.mean()) / max(np.ptp(log_wd), 1e-12)
    for circuit, P_fn in P_of_D.items():
        for D in D_values:
            for s in range(n_seeds):
                P = P_fn(D) * np.exp(seed_sd * rng.standard_normal())
                for wd, u in zip(weight_decays, spread):
                    norm = P * np.exp(1.0 - u + 0.1 * rng.standard_normal())
                    logit = (norm / P) ** kappa * np.exp(noise_sd * rng.standard_normal())
                    rows.append({"circuit": circuit, "D": float(D), "weight_decay": float(wd),
                                 "seed": s, "param_norm": float(norm), "correct_logit": float(logit)})
    return pd.DataFrame(rows)


def ungrokking_rows(D_crit: float | Mapping[float, float], *, D_values: Sequence[float],
                    n_seeds: int = 5, width: float = 0.15, chance: float = 0.01,
                    noise_sd: float = 0.03, seed_shift_sd: float = 0.1,
                    seed: int = 0) -> pd.DataFrame:
    """Final test accuracy after ungrokking: a sigmoid in ``log D`` from chance to 1.

    ``D_crit`` is a number or a mapping weight decay -> D_crit. Each seed shifts its own
    midpoint by ``seed_shift_sd`` in log D (the paper's seed variance); accuracy gets Gaussian
    noise and is clipped into ``[0, 1]``.
    """
    rng = np.random.default_rng(seed)
    by_wd = D_crit if isinstance(D_crit, Mapping) else {1.0: D_crit}
    rows = []
    for wd, dc in by_wd.items():
        for s in range(n_seeds):
            mid = np.log(dc) + seed_shift_sd * rng.standard_normal()
            for D in D_values:
                acc = chance + (1 - chance) * expit((np.log(D) - mid) / width)
                acc = float(np.clip(acc + noise_sd * rng.standard_normal(), 0.0, 1.0))
                rows.append({"D": float(D), "seed": s, "weight_decay": float(wd),
                             "final_test_acc": acc})
    return pd.DataFrame(rows)


def trajectory(kind: str, *, n_steps: int = 400, noise_sd: float = 0.01, level: float = 0.6,
               seed: int = 0) -> np.ndarray:
    """A test-accuracy trajectory of a named shape, ``n_steps`` points at steps 0..n_steps-1.

    kinds: ``grok`` (chance, then a late rise to 1), ``semi`` (chance, then a delayed rise to
    ``level`` that stays), ``none`` (chance throughout), ``transient`` (rise to ``level``, a long
    plateau, then a second rise to 1), ``early_middling`` (at ``level`` from the first step),
    ``wobbly`` (middling but oscillating widely at the end).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps) / n_steps
    chance = 0.01
    if kind == "grok":
        acc = chance + (1 - chance) * expit((t - 0.5) / 0.02)
    elif kind == "semi":
        acc = chance + (level - chance) * expit((t - 0.4) / 0.02)
    elif kind == "none":
        acc = np.full(n_steps, chance)
    elif kind == "transient":
        acc = (chance + (level - chance) * expit((t - 0.2) / 0.02)
               + (1 - level) * expit((t - 0.75) / 0.02))
    elif kind == "early_middling":
        acc = np.full(n_steps, level)
    elif kind == "wobbly":
        acc = 0.5 + 0.3 * np.sin(2 * np.pi * 8 * t) * (t > 0.3)
    else:
        raise ValueError(kind)
    return np.clip(acc + noise_sd * rng.standard_normal(n_steps), 0.0, 1.0)


def trajectory_rows(kinds: Sequence[str], **kwargs: object) -> pd.DataFrame:
    """Rows ``run, kind, D, seed, step, train_acc, test_acc`` with one run per kind: run ``i`` has
    ``D = 100 (i + 1)``, seed 0 and is named as :func:`circeff.analysis.semigrokking.classify_runs`
    names it (``D<D>_s0``); train accuracy is 1 throughout."""
    frames = []
    for i, kind in enumerate(kinds):
        acc = trajectory(kind, seed=i, **kwargs)
        D = 100 * (i + 1)
        frames.append(pd.DataFrame({"run": f"D{D:05d}_s0", "kind": kind, "D": float(D), "seed": 0,
                                    "step": np.arange(acc.size), "train_acc": 1.0, "test_acc": acc}))
    return pd.concat(frames, ignore_index=True)


def ratio_rows(ratio_of_D: Callable[[float], float], *, D_values: Sequence[float], n_seeds: int = 5,
               noise_sd: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """Rows ``D, seed, g_logit, m_logit`` whose G:M ratio is ``ratio_of_D(D)`` times noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for D in D_values:
        for s in range(n_seeds):
            m = float(np.exp(0.3 * rng.standard_normal()))
            ratio = ratio_of_D(D) * np.exp(noise_sd * rng.standard_normal())
            rows.append({"D": float(D), "seed": s, "g_logit": float(ratio * m), "m_logit": m})
    return pd.DataFrame(rows)


# hypothesis strategies over the truths the fits must recover
kappas = st.floats(min_value=0.8, max_value=3.0)
log_P0s = st.floats(min_value=-1.0, max_value=3.0)
slopes = st.floats(min_value=0.2, max_value=1.0)
fit_seeds = st.integers(min_value=0, max_value=2**31 - 1)
d_crits = st.floats(min_value=300.0, max_value=3000.0)

# decision rules (circeff.analysis.verdicts): inputs on which a rule must say no
# three G sizes spanning less than half a decade (log10 range < 0.5), from 100 upwards
g_short_ranges = st.tuples(st.floats(min_value=100.0, max_value=1000.0),
                           st.floats(min_value=0.02, max_value=0.49)).map(
    lambda a: (a[0], a[0] * 10 ** (a[1] / 2), a[0] * 10 ** a[1]))
# a still-rising run: test accuracy linear from `start` to `start + rise` over the whole run
rising_runs = st.tuples(st.floats(min_value=0.02, max_value=0.4),
                        st.floats(min_value=0.2, max_value=0.55))
