"""Link: two circuits on disjoint parameters, settled by the same L-BFGS minimiser the
disjoint experiment uses, end at the split Theorem D.4 predicts (the theory layer's optimum).

Synthetic circuits with known P and kappa: circuit i has a parameter vector v of length
kappa_i and puts ``c_i * prod_j v_j`` on the correct class, with ``c_i`` chosen so that at
balanced components its logit is exactly ``(||v|| / P_i)^kappa_i`` (the curve D.4 assumes;
balanced components are optimal for a fixed norm). The logits of the two circuits add and
their squared norms add, so every assumption of D.4 holds.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from circeff.analysis import allocation as allocation_analysis
from circeff.analysis.allocation import d4_optimum, settled_splits
from circeff.empirical.disjoint import minimise_l2

N_CLASSES = 23
ALPHA = 1e-3


def _logit(v: torch.Tensor, P: float) -> torch.Tensor:
    k = v.numel()
    # at balanced components |v_j| = ||v|| / sqrt(k): prod = (||v|| / sqrt(k))^k
    return torch.prod(v) * (math.sqrt(k) / P) ** k


def _settle_pair(P: tuple[float, float], kappa: tuple[int, int], starts) -> pd.DataFrame:
    def ce_of(blocks):
        s = _logit(blocks[0]["v"], P[0]) + _logit(blocks[1]["v"], P[1])
        logits = torch.zeros(N_CLASSES, dtype=torch.float64)
        logits = torch.cat([s.reshape(1), logits[1:]])
        return torch.nn.functional.cross_entropy(logits[None], torch.tensor([0]))

    rows = []
    for sg, sm in starts:
        blocks = [{"v": torch.full((k,), float(scale), dtype=torch.float64)} for k, scale in zip(kappa, (sg, sm))]
        m = minimise_l2(blocks, ce_of, ALPHA, iterations=100)
        g, mm = (float(_logit(b["v"], p)) for b, p in zip(m.params, P))
        rows.append({"D": 1.0, "seed": 0, "alpha": ALPHA, "scale_G": sg, "scale_M": sm,
                     "objective": m.objective, "g_logit": g, "m_logit": mm})
    return pd.DataFrame(rows)


STARTS = ((3.0, 0.5), (2.0, 2.0), (0.5, 3.0))


@pytest.mark.parametrize("P", [(4.0, 6.0), (6.0, 4.0)])
def test_D4_disjoint_settle_reproduces_winner_take_all(P):
    kappa = (3, 3)  # q = 2 < kappa: case 1
    best = settled_splits(_settle_pair(P, kappa, STARTS)).iloc[0]
    w_G, w_M = d4_optimum(*P, *kappa, alpha=ALPHA, n_classes=N_CLASSES)
    predicted = "G" if w_G > w_M else "M"
    assert best["winner"] == predicted
    loser = min(best["g_logit"], best["m_logit"])
    assert abs(loser) < 0.05 * max(best["g_logit"], best["m_logit"])
    # the winner's logit is the theory's total logit
    assert math.isclose(max(best["g_logit"], best["m_logit"]), max(w_G, w_M), rel_tol=0.02)


def test_D4_disjoint_swapping_P_flips_the_winner():
    kappa = (3, 3)
    a = settled_splits(_settle_pair((4.0, 6.0), kappa, STARTS)).iloc[0]["winner"]
    b = settled_splits(_settle_pair((6.0, 4.0), kappa, STARTS)).iloc[0]["winner"]
    assert {a, b} == {"G", "M"}


def test_D4_disjoint_settle_reproduces_case2_ratio():
    # kappa = 1 < q = 2: both circuits used, ratio (P_M / P_G)^(q kappa / (q - kappa)) = (P_M/P_G)^2
    P = (4.0, 6.0)
    best = settled_splits(_settle_pair(P, (1, 1), ((1.0, 1.0), (3.0, 0.3)))).iloc[0]
    w_G, w_M = d4_optimum(*P, 1.0, 1.0, alpha=ALPHA, n_classes=N_CLASSES)
    assert math.isclose(best["ratio"], w_G / w_M, rel_tol=0.02)
    assert math.isclose(best["ratio"], (6.0 / 4.0) ** 2, rel_tol=0.02)


def test_D4_disjoint_mutated_prediction_is_caught(monkeypatch):
    """Negative control: a prediction that swaps the circuits' P disagrees with the settle."""
    P, kappa = (4.0, 6.0), (3, 3)
    best = settled_splits(_settle_pair(P, kappa, STARTS)).iloc[0]
    real = allocation_analysis.d4_optimum
    monkeypatch.setattr(allocation_analysis, "d4_optimum",
                        lambda P_G, P_M, *a, **k: real(P_M, P_G, *a, **k))
    w_G, w_M = allocation_analysis.d4_optimum(*P, *kappa, alpha=ALPHA, n_classes=N_CLASSES)
    assert ("G" if w_G > w_M else "M") != best["winner"]
