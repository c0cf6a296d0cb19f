"""Figure 2 and the phase diagram: configurations and the data each command writes.

Figure 2 panels (Section 3 of the paper; the values of (b) and (c) were not recovered, these are
our documented choices, each a plain :class:`ToyConfig` that a user can change):

- (a) all three ingredients: Table 1 (P_G = 1 < P_M = 2, w_G2(0) = 0.005 < w_M2(0) = 1).
- (b) G less efficient: P_G = 4 (twice P_M, the mirror image of (a)'s factor 2); else as (a).
- (c) no slow/fast difference: w_G2(0) = w_M2(0) = 1; else as (a).

The phase diagram varies the efficiency ratio P_G / P_M (by P_G, with P_M fixed) and the
speed ratio w_G2(0) / w_M2(0) (by w_G2(0), with w_M2(0) fixed) and runs every cell in one
vectorised batch.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import NDArray

from circeff import validate
from circeff.errors import ConfigError
from circeff.toy.metrics import fit_step, grokking_delay, grokking_step
from circeff.toy.simulate import ToyConfig, ToyRun, simulate

PANEL_A = ToyConfig()
FIGURE2_PANELS: dict[str, tuple[str, ToyConfig]] = {
    "a": ("(a) all ingredients", PANEL_A),
    "b": ("(b) G less efficient (P_G = 4 > P_M = 2)", PANEL_A.replace(P_G=4.0)),
    "c": ("(c) no slow/fast difference (w_G2 = w_M2 = 1)", PANEL_A.replace(w_G2=1.0)),
}


def figure2_configs(steps: int | None = None) -> dict[str, ToyConfig]:
    """The three panels' configurations (optionally with another step count)."""
    return {k: (c if steps is None else c.replace(steps=steps)) for k, (_, c) in FIGURE2_PANELS.items()}


def figure2_data(steps: int | None = None, n_record: int = 200) -> dict[str, object]:
    """Curves of the three panels, run as one batch. JSON-ready."""
    configs = figure2_configs(steps)
    run = simulate(list(configs.values()), n_record=n_record)
    panels = {}
    for i, (key, cfg) in enumerate(configs.items()):
        rec = run.record(i)
        rec["title"] = FIGURE2_PANELS[key][0]
        panels[key] = rec
    return {"panels": panels, "chance_loss": float(np.log(PANEL_A.n_classes))}


@dataclasses.dataclass(frozen=True)
class PhaseGrid:
    """Grid of the phase diagram: log-spaced efficiency and speed ratios around a base config."""

    p_ratio_min: float = 0.25    # P_G / P_M
    p_ratio_max: float = 2.0
    n_p: int = 22
    w_ratio_min: float = 1e-3    # w_G2(0) / w_M2(0)
    w_ratio_max: float = 1.0
    n_w: int = 19
    steps: int = 100_000
    base: ToyConfig = PANEL_A

    def __post_init__(self) -> None:
        for name in ("p_ratio_min", "p_ratio_max", "w_ratio_min", "w_ratio_max"):
            validate.positive(name, getattr(self, name))
        validate.integer_at_least("n_p", self.n_p, 1)
        validate.integer_at_least("n_w", self.n_w, 1)
        validate.integer_at_least("steps", self.steps, 1)
        if self.p_ratio_max < self.p_ratio_min:
            raise ConfigError("p_ratio_max", f"must be >= p_ratio_min = {self.p_ratio_min:g}",
                                       self.p_ratio_max)
        if self.w_ratio_max < self.w_ratio_min:
            raise ConfigError("w_ratio_max", f"must be >= w_ratio_min = {self.w_ratio_min:g}",
                                       self.w_ratio_max)

    @property
    def p_ratios(self) -> NDArray[np.float64]:
        return np.geomspace(self.p_ratio_min, self.p_ratio_max, self.n_p)

    @property
    def w_ratios(self) -> NDArray[np.float64]:
        return np.geomspace(self.w_ratio_min, self.w_ratio_max, self.n_w)

    def configs(self) -> list[ToyConfig]:
        """Row-major over (p_ratio, w_ratio): index = i_p * n_w + i_w."""
        b = self.base
        return [b.replace(P_G=pr * b.P_M, w_G2=wr * b.w_M2, steps=self.steps)
                for pr in self.p_ratios for wr in self.w_ratios]


def phase_data(grid: PhaseGrid, n_record: int = 200, progress: bool = False) -> dict[str, object]:
    """Grokking delay and final test loss over the grid, all cells in ONE batch.

    Cells that never grok (or diverge) have ``None`` delay; diverged cells also ``None`` loss.
    """
    configs = grid.configs()
    run = simulate(configs, n_record=n_record, progress=progress, progress_desc="phase")
    shape = (grid.n_p, grid.n_w)
    rows = _phase_rows(run, grid)

    def table(key: str) -> list[list[object]]:
        return np.array([r[key] for r in rows], dtype=object).reshape(shape).tolist()

    return {
        "p_ratio": grid.p_ratios.tolist(),
        "w_ratio": grid.w_ratios.tolist(),
        "steps": grid.steps,
        "base_config": dataclasses.asdict(grid.base),
        "fit_step": table("fit_step"),
        "grokking_step": table("grokking_step"),
        "grokking_delay": table("grokking_delay"),
        "final_test_loss": table("final_test_loss"),
        "diverged_step": table("diverged_step"),
        "rows": rows,
    }


def _phase_rows(run: ToyRun, grid: PhaseGrid) -> list[dict[str, object]]:
    rows = []
    for i, cfg in enumerate(run.configs):
        ok = not run.diverged(i)
        n = cfg.n_classes
        tr, te = run.train_loss[i], run.test_loss[i]
        rows.append({
            "p_ratio": cfg.P_G / cfg.P_M, "w_ratio": cfg.w_G2 / cfg.w_M2,
            "P_G": cfg.P_G, "P_M": cfg.P_M, "w_G2": cfg.w_G2, "w_M2": cfg.w_M2,
            "fit_step": fit_step(run.steps, tr, n) if ok else None,
            "grokking_step": grokking_step(run.steps, tr, te, n) if ok else None,
            "grokking_delay": grokking_delay(run.steps, tr, te, n) if ok else None,
            "final_test_loss": float(te[-1]) if ok else None,
            "final_train_loss": float(tr[-1]) if ok else None,
            "final_w_G": float(run.w_G[i, -1]) if ok else None,
            "final_w_M": float(run.w_M[i, -1]) if ok else None,
            "diverged_step": int(run.diverged_step[i]) if not ok else None,
        })
    return rows
