"""Dataset size in the toy (paper Section 4, made concrete): ungrokking and semi-grokking.

G's efficiency does not depend on the training-set size D; M's falls as D grows, because
a memorising circuit needs parameters for every example it memorises. Our law:

    P_M(D) = P_M_ref * (D / D_ref)^beta,     P_G constant,

with ``beta = 0.5`` by default: D independent memorised items need about D parameters of
similar size, whose l2 norm grows as sqrt(D). ``D_ref`` is an arbitrary unit; at
``D = D_ref`` the toy is Figure 2a (P_M = 2). The crossover, where the circuits are equally
efficient, is in closed form:

    P_M(D_crit) = P_G   <=>   D_crit = D_ref * (P_G / P_M_ref)^(1 / beta)   (= 1000 by default).

Ungrokking: start from the grokked end of a Figure-2a run (D = D_ref), keep training at a
smaller D. Below D_crit, M is the more efficient circuit, so weight decay moves weight back
to M and the test loss rises again. Above D_crit the toy stays grokked.

Semi-grokking: train from the Figure-2a initialisation at D near D_crit. With q > kappa
(case 2 of Theorem D.4) the optimum is a mixture, ``w_G / w_M = (D / D_crit)^(beta q kappa /
(q - kappa))``, so near D_crit the toy settles at a stable, middling test loss. With
q = kappa (case 1) the optimum is winner-take-all; we run it for comparison.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from circeff import validate
from circeff.errors import ConfigError
from circeff.toy.experiments import PANEL_A
from circeff.toy.simulate import ToyConfig, final_weights, simulate


@dataclasses.dataclass(frozen=True)
class DatasetSizeLaw:
    """``P_M(D) = P_M_ref (D / D_ref)^beta`` with ``P_G`` constant."""

    P_G: float = 1.0        # G's norm, independent of D
    P_M_ref: float = 2.0    # M's norm at D = D_ref (Figure 2a)
    D_ref: float = 4000.0   # reference dataset size (arbitrary units)
    beta: float = 0.5       # growth exponent of M's norm with D

    def __post_init__(self) -> None:
        for name in ("P_G", "P_M_ref", "D_ref", "beta"):
            validate.positive(name, getattr(self, name))

    def P_M(self, D: ArrayLike) -> NDArray[np.float64]:
        D = np.asarray(D, dtype=np.float64)
        if not (np.isfinite(D).all() and (D > 0).all()):
            raise ConfigError("D", "must be > 0", D.tolist())
        return self.P_M_ref * (D / self.D_ref) ** self.beta

    @property
    def D_crit(self) -> float:
        """The D at which ``P_M(D) = P_G`` (closed form)."""
        return self.D_ref * (self.P_G / self.P_M_ref) ** (1.0 / self.beta)

    def config_at(self, D: float, base: ToyConfig) -> ToyConfig:
        """``base`` with P_G from the law and P_M = P_M(D)."""
        return base.replace(P_G=self.P_G, P_M=float(self.P_M(D)))


def _ratios(field: str, values: tuple[float, ...]) -> None:
    validate.non_empty(field, values)
    for v in values:
        validate.positive(field, v)


@dataclasses.dataclass(frozen=True)
class UngrokExperiment:
    """Pre-train at D_ref until grokked, then continue at each ``D = d_ratio * D_crit``."""

    law: DatasetSizeLaw = DatasetSizeLaw()
    base: ToyConfig = PANEL_A
    pretrain_steps: int = 50_000
    steps: int = 100_000                 # continued training at the smaller D
    d_ratios: tuple[float, ...] = (0.25, 0.5, 0.7, 0.85, 1.2, 1.5, 2.0, 4.0)  # D / D_crit

    def __post_init__(self) -> None:
        validate.integer_at_least("pretrain_steps", self.pretrain_steps, 1)
        validate.integer_at_least("steps", self.steps, 1)
        _ratios("d_ratios", self.d_ratios)


def ungrok_data(exp: UngrokExperiment, n_record: int = 200) -> dict[str, object]:
    """Pre-training record plus one continued record per D. JSON-ready."""
    law = exp.law
    pre_cfg = law.config_at(law.D_ref, exp.base).replace(steps=exp.pretrain_steps)
    pre = simulate(pre_cfg, n_record=n_record)
    _require_converging(pre, "pretrain")
    Ds = [r * law.D_crit for r in exp.d_ratios]
    configs = [law.config_at(D, exp.base).replace(steps=exp.steps) for D in Ds]
    start = np.repeat(pre.final_subweights, len(configs), axis=0)
    run = simulate(configs, n_record=n_record, initial_subweights=start)
    _require_converging(run, "continued")
    runs = []
    for i, (D, ratio) in enumerate(zip(Ds, exp.d_ratios)):
        rec = run.record(i)
        rec.update(D=D, d_ratio=ratio, P_M=configs[i].P_M,
                   start_test_loss=rec["test_loss"][0], final_test_loss=rec["test_loss"][-1])
        runs.append(rec)
    return {"law": dataclasses.asdict(law), "D_crit": law.D_crit,
            "chance_loss": math.log(exp.base.n_classes), "pretrain": pre.record(0), "runs": runs}


@dataclasses.dataclass(frozen=True)
class SemigrokExperiment:
    """Train from Figure 2a's initialisation at D = d_ratio * D_crit, for two norm exponents.

    ``q_mixture`` (> kappa) shows the stable mixture, from Figure 2a's initialisation (slow G),
    so the mixture also appears only after a delay. ``q_sharp`` (= kappa by default, the
    boundary that belongs to winner-take-all and needs no smoothing) is the comparison; it
    starts G at M's speed (``w_G2 = sharp_w_G2``) because with q = kappa a slow G needs more
    than 10^5 steps to overtake M even at Figure 2a's P_M, longer than this run.
    """

    law: DatasetSizeLaw = DatasetSizeLaw()
    base: ToyConfig = PANEL_A
    steps: int = 200_000
    d_ratios: tuple[float, ...] = tuple(np.round(np.geomspace(0.5, 2.0, 13), 4).tolist())
    q_mixture: float = 2.0
    q_sharp: float = 1.2
    sharp_w_G2: float = 1.0

    def __post_init__(self) -> None:
        validate.integer_at_least("steps", self.steps, 1)
        _ratios("d_ratios", self.d_ratios)
        if not self.q_mixture > self.base.kappa:
            raise ConfigError("q_mixture", f"must be > kappa = {self.base.kappa:g}", self.q_mixture)
        validate.positive("q_sharp", self.q_sharp)
        kappa = self.base.kappa
        if self.q_sharp > kappa:
            raise ConfigError("q_sharp", f"must be <= kappa = {kappa:g} (winner-take-all case)", self.q_sharp)
        if self.q_sharp < kappa and self.base.wd_eps == 0:
            raise ConfigError("q_sharp", f"must equal kappa = {kappa:g} unless the base config smooths "
                              "the weight decay (wd_eps > 0)", self.q_sharp)
        self.configs()  # validate every configuration now (e.g. q_sharp < kappa needs wd_eps)

    def configs(self) -> dict[str, list[ToyConfig]]:
        out = {}
        starts = (("mixture", self.q_mixture, self.base.w_G2), ("sharp", self.q_sharp, self.sharp_w_G2))
        for name, q, w_G2 in starts:
            out[name] = [self.law.config_at(r * self.law.D_crit, self.base).replace(q=q, w_G2=w_G2,
                                                                                     steps=self.steps)
                         for r in self.d_ratios]
        return out


def semigrok_data(exp: SemigrokExperiment, n_record: int = 200) -> dict[str, object]:
    """Curves and final state per D for both exponents, in one batch. JSON-ready.

    ``settle_change`` is |test loss at the end - at 80% of the steps|: small means stable.
    """
    configs = exp.configs()
    flat = configs["mixture"] + configs["sharp"]
    run = simulate(flat, n_record=n_record)
    _require_converging(run, "semigrok")
    wG, wM = final_weights(run)
    late = int(np.searchsorted(run.steps, int(0.8 * exp.steps)))
    out: dict[str, object] = {"law": dataclasses.asdict(exp.law), "D_crit": exp.law.D_crit,
                              "chance_loss": math.log(exp.base.n_classes),
                              "kappa": exp.base.kappa}
    k = 0
    for name in ("mixture", "sharp"):
        runs = []
        for cfg, ratio in zip(configs[name], exp.d_ratios):
            rec = run.record(k)
            share = float(wG[k] / (wG[k] + wM[k])) if wG[k] + wM[k] > 0 else None
            rec.update(D=ratio * exp.law.D_crit, d_ratio=ratio, P_M=cfg.P_M, q=cfg.q,
                       final_test_loss=rec["test_loss"][-1], final_G_share=share,
                       settle_change=abs(rec["test_loss"][-1] - rec["test_loss"][late]))
            runs.append(rec)
            k += 1
        out[name] = runs
    return out


def _require_converging(run, what: str) -> None:  # noqa: ANN001 - ToyRun
    from circeff.errors import RunError

    if (run.diverged_step >= 0).any():
        i = int(np.flatnonzero(run.diverged_step >= 0)[0])
        raise RunError(f"{what}: diverged (overflow) at step {int(run.diverged_step[i])}; lower lr "
                       f"(got {run.configs[i].lr:g})")
