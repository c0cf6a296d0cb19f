"""Links between the toy model (circeff.toy) and the theory layer (circeff.theory).

- D.4: the toy's long-run weights converge to the theory layer's optimum for two
  circuits: the power-law ratio when q > kappa, winner-take-all when q <= kappa.
- D.1: on the toy's own train logits, whenever train accuracy is perfect, scaling the
  logits by c > 1 lowers the train loss.
- Figure 2 (a), (b), (c): the qualitative claims hold over a +-20% neighbourhood of the
  panels' parameters (P_G, P_M, alpha, lr, w_G2, w_M2), not just at one point.

Each hypothesis example of the neighbourhood and convergence tests runs a whole batch of
configurations in one vectorised simulation, so these tests draw fewer (larger) examples
than the profile's max_examples: a fifth (D.4) or a tenth (Figure 2) of it, at least 2.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from circeff.theory import optima, scaling
from circeff.toy import circuits
from circeff.toy.metrics import fit_step, grokking_step
from circeff.toy.simulate import ToyConfig, final_weights, simulate
from tests.strategies.toy import case1_configs, case2_configs, figure2_neighbourhoods

BATCHED = settings(max_examples=max(2, settings.default.max_examples // 5))
# a Figure 2 example is 16 perturbed panels x 5 x 10^4 steps (about 1.3 s): a tenth of the profile
PANELS = settings(max_examples=max(2, settings.default.max_examples // 10))


# ---------------------------------------------------------------- Theorem D.4, case 2

@BATCHED
@given(st.lists(case2_configs(), min_size=4, max_size=8))
def test_D4_case2_toy_converges_to_power_law(cfgs):
    run = simulate(cfgs)
    assert not (run.diverged_step >= 0).any()
    w_G, w_M = final_weights(run)
    for i, c in enumerate(cfgs):
        problem = _problem(c)
        assert optima.which_case(c.q, c.kappa) == optima.POWER_LAW
        predicted = optima.predicted_ratio(c.P_G, c.P_M, c.q, c.kappa)   # w_G / w_M
        assert math.isclose(w_G[i] / w_M[i], predicted, rel_tol=1e-6), (c, w_G[i], w_M[i])
        assert_allclose([w_G[i], w_M[i]], optima.closed_form_weights(problem), rtol=1e-6)
        if i == 0:  # the numeric global minimiser (no closed form; ~0.5 s): once per example
            assert_allclose([w_G[i], w_M[i]], optima.minimise(problem).weights, rtol=1e-5)


# ---------------------------------------------------------------- Theorem D.4, case 1

@BATCHED
@given(st.lists(case1_configs(), min_size=4, max_size=8))
def test_D4_case1_toy_winner_takes_all(cfgs):
    run = simulate(cfgs)
    assert not (run.diverged_step >= 0).any()
    w_G, w_M = final_weights(run)
    for i, c in enumerate(cfgs):
        problem = _problem(c)
        assert optima.which_case(c.q, c.kappa) in (optima.WINNER_TAKE_ALL, optima.BOUNDARY)
        assert optima.predicted_ratio(c.P_G, c.P_M, c.q, c.kappa) == math.inf
        # M (less efficient) loses: w_M -> 0. At q = kappa GD hovers at the kink of |w| at 0;
        # q < kappa is smoothed by wd_eps = 1e-3. Measured worst: w_M / w_G ~ 6e-4 after
        # 2 x 10^4 steps, and w_G within 4e-4 of the optimum.
        assert abs(w_M[i]) < 5e-3 * w_G[i], (c, w_G[i], w_M[i])
        best = optima.closed_form_weights(problem)
        assert best[1] == 0.0
        assert math.isclose(w_G[i], best[0], rel_tol=5e-3), (c, w_G[i], best)
        if i == 0:  # the numeric global minimiser (no closed form; ~0.5 s): once per example
            numeric = optima.minimise(problem).weights
            assert numeric[1] < 1e-6 * numeric[0]
            assert math.isclose(w_G[i], numeric[0], rel_tol=5e-3)


# ---------------------------------------------------------------- Theorem D.1 on toy logits

@settings(max_examples=max(5, settings.default.max_examples // 2))
@given(case2_configs(steps=3000), st.floats(1.001, 50.0))
def test_D1_toy_logits_scaling_lowers_train_loss(cfg, c):
    run = simulate(cfg, n_record=40)
    n = cfg.n_classes
    checked = 0
    for w_G, w_M in zip(run.w_G[0], run.w_M[0]):
        logits = circuits.logits(w_G, w_M, "train", n)[None, :]          # [1, n]
        labels = np.array([circuits.TRUE_LABEL])
        if not (logits[0, circuits.TRUE_LABEL] > np.delete(logits[0], circuits.TRUE_LABEL)).all():
            continue                                                     # D.1 needs perfect accuracy
        checked += 1
        before = float(circuits.cross_entropy(logits, circuits.TRUE_LABEL)[0])
        after = float(circuits.cross_entropy(c * logits, circuits.TRUE_LABEL)[0])
        assert after < before or before == 0.0
        check = scaling.check_D1_on_logits(logits, labels, cs=(c,))
        assert check.perfect_accuracy and check.holds, check.detail
    assert checked > 0


# ---------------------------------------------------------------- Figure 2 neighbourhoods

def _panel_metrics(run, i):
    n = run.configs[i].n_classes
    tr, te = run.train_loss[i], run.test_loss[i]
    return fit_step(run.steps, tr, n), grokking_step(run.steps, tr, te, n), tr, te


@PANELS
@given(figure2_neighbourhoods(size=16))
def test_fig2a_grokking_neighbourhood(panels):
    run = simulate(panels["a"])
    for i, cfg in enumerate(panels["a"]):
        fit, grok, train, test = _panel_metrics(run, i)
        chance = math.log(cfg.n_classes)
        assert fit is not None and grok is not None, cfg
        assert grok >= 10 * fit, (cfg, fit, grok)                   # test loss falls LONG after train
        before = test[run.steps < grok]
        assert before.max() > chance, cfg                            # M first: test loss above chance
        assert test[-1] < 0.1 * chance, cfg                          # and then it generalises


@PANELS
@given(figure2_neighbourhoods(size=16))
def test_fig2b_no_grokking_neighbourhood(panels):
    run = simulate(panels["b"])
    for i, cfg in enumerate(panels["b"]):
        fit, grok, train, test = _panel_metrics(run, i)
        chance = math.log(cfg.n_classes)
        assert fit is not None, cfg                                   # train loss does fall
        assert grok is None, (cfg, grok)                              # test loss never does
        assert test[run.steps >= fit].min() > 0.6 * chance, cfg       # not even part-way
        assert run.w_M[i, -1] > run.w_G[i, -1], cfg                     # test argmax stays wrong


@PANELS
@given(figure2_neighbourhoods(size=16))
def test_fig2c_no_delay_neighbourhood(panels):
    run = simulate(panels["c"])
    for i, cfg in enumerate(panels["c"]):
        fit, grok, train, test = _panel_metrics(run, i)
        chance = math.log(cfg.n_classes)
        assert fit is not None and grok is not None, cfg
        assert grok <= 3 * fit, (cfg, fit, grok)                     # test loss falls at once
        assert test.max() <= chance + 1e-9, cfg                       # never above chance
        assert test[-1] < 0.1 * chance, cfg


# ---------------------------------------------------------------- helpers

def _problem(c: ToyConfig) -> optima.OptimumProblem:
    """The D.4 problem (Eq. 6) for the toy's two circuits, in the theory layer's terms."""
    return optima.OptimumProblem(P=(c.P_G, c.P_M), q=c.q, kappa=c.kappa, alpha=c.alpha,
                                 n_classes=c.n_classes)
