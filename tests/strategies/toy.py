"""Strategies for the toy model: valid configurations, neighbourhoods of the Figure 2
panels, D.4 case-1/case-2 settings that converge quickly, and bad field values."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from circeff.toy.experiments import FIGURE2_PANELS
from circeff.toy.simulate import ToyConfig

# Fields a neighbourhood perturbs, each by a factor in [1 - rel, 1 + rel].
NEIGHBOURHOOD_FIELDS = ("P_G", "P_M", "alpha", "lr", "w_G2", "w_M2")


def factor(rel: float) -> st.SearchStrategy[float]:
    return st.floats(1.0 - rel, 1.0 + rel)


@st.composite
def perturbation(draw, rel: float = 0.2) -> dict[str, float]:
    """One multiplicative factor per neighbourhood field."""
    return {name: draw(factor(rel)) for name in NEIGHBOURHOOD_FIELDS}


def perturb(config: ToyConfig, factors: dict[str, float], *, keep_equal_speeds: bool = False) -> ToyConfig:
    """``config`` with each neighbourhood field multiplied by its factor.

    ``keep_equal_speeds`` keeps w_G2 = w_M2 (panel (c)'s defining property)."""
    changes = {k: getattr(config, k) * f for k, f in factors.items()}
    if keep_equal_speeds:
        changes["w_G2"] = changes["w_M2"]
    return config.replace(**changes)


@st.composite
def figure2_neighbourhoods(draw, rel: float = 0.2, size: int = 4, steps: int = 50_000
                           ) -> dict[str, list[ToyConfig]]:
    """``size`` perturbed copies of each Figure 2 panel (the same perturbations for all three)."""
    factors = draw(st.lists(perturbation(rel), min_size=size, max_size=size))
    return {key: [perturb(cfg, f, keep_equal_speeds=(key == "c")).replace(steps=steps) for f in factors]
            for key, (_, cfg) in FIGURE2_PANELS.items()}


@st.composite
def case2_configs(draw, steps: int = 20_000) -> ToyConfig:
    """q > kappa (D.4 case 2) with large alpha and lr so that 2 x 10^4 steps converge.

    The efficiency ratio and r = q/kappa are bounded so that the predicted ratio
    (P_M/P_G)^(q kappa/(q - kappa)) stays within about [1/15, 15]: a circuit with a tiny
    optimal weight converges too slowly for a test.
    """
    kappa = draw(st.floats(0.8, 1.6))
    r = draw(st.floats(1.4, 3.0))
    P_G = draw(st.floats(0.8, 1.5))
    rho = draw(st.floats(0.6, 1.6))
    return ToyConfig(P_G=P_G, P_M=rho * P_G, kappa=kappa, q=r * kappa,
                     alpha=draw(st.floats(0.05, 0.15)), lr=0.05, w_G2=1.0, w_M2=1.0,
                     n_classes=draw(st.integers(3, 200)), steps=steps)


@st.composite
def case1_configs(draw, steps: int = 20_000) -> ToyConfig:
    """q <= kappa (D.4 case 1), P_G <= 0.7 P_M, equal speeds (w_G2 = w_M2).

    q = kappa needs no smoothing; q < kappa uses wd_eps = 1e-3 (the documented treatment of
    the singular gradient). Equal speeds, because with q < kappa every corner is a local
    minimum and a slow G never overtakes an M that was learned first.
    """
    kappa = draw(st.floats(1.0, 2.0))
    boundary = draw(st.booleans())
    q = kappa if boundary else draw(st.floats(0.5, 0.95)) * kappa
    P_M = draw(st.floats(0.8, 2.5))
    return ToyConfig(P_G=draw(st.floats(0.3, 0.7)) * P_M, P_M=P_M, kappa=kappa, q=q,
                     alpha=draw(st.floats(0.02, 0.1)), lr=0.05, w_G2=1.0, w_M2=1.0,
                     wd_eps=0.0 if boundary else 1e-3, steps=steps)


# (field, bad value): every one must be refused with an error naming the field.
BAD_VALUES: list[tuple[str, object]] = [
    ("n_classes", 1), ("n_classes", 0), ("n_classes", 2.5),
    ("P_G", 0.0), ("P_G", -1.0), ("P_M", 0.0), ("P_M", -2.0),
    ("kappa", 0.0), ("kappa", -1.2), ("q", 0.0), ("q", -2.0),
    ("alpha", -0.1), ("lr", 0.0), ("lr", -0.01), ("steps", 0), ("steps", -5),
    ("P_G", math.nan), ("lr", math.inf), ("w_G2", math.nan), ("wd_eps", -1e-3),
]
