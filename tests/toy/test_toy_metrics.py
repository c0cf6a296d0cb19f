"""Definitions of fit step, grokking step and grokking delay on hand-made curves."""

from __future__ import annotations

import math

from circeff.toy.metrics import fit_step, grokking_delay, grokking_step

N = 113
CHANCE = math.log(N)
STEPS = [0, 1, 10, 100, 1000, 10000]


def test_toy_fit_and_grokking_step_on_a_grokking_curve():
    train = [CHANCE, CHANCE, 3.0, 0.1, 0.05, 0.05]
    test = [CHANCE, CHANCE, 5.0, 7.0, 7.0, 0.1]
    assert fit_step(STEPS, train, N) == 100
    assert grokking_step(STEPS, train, test, N) == 10000
    assert math.isclose(grokking_delay(STEPS, train, test, N), 100.0)


def test_toy_grokking_step_is_none_when_test_loss_never_falls():
    train = [CHANCE, CHANCE, 3.0, 0.1, 0.05, 0.05]
    test = [CHANCE, CHANCE, 5.0, 7.0, 7.0, 6.0]
    assert grokking_step(STEPS, train, test, N) is None
    assert grokking_delay(STEPS, train, test, N) is None


def test_toy_grokking_step_is_none_when_train_loss_never_falls():
    train = [CHANCE] * 6
    assert fit_step(STEPS, train, N) is None
    assert grokking_step(STEPS, train, [0.0] * 6, N) is None


def test_toy_grokking_step_counts_only_after_fitting():
    train = [CHANCE, CHANCE, CHANCE, 0.1, 0.05, 0.05]
    test = [CHANCE, 0.1, CHANCE, 0.1, 0.1, 0.1]   # an early dip before fitting is not grokking
    assert grokking_step(STEPS, train, test, N) == 100


def test_toy_grokking_must_last_until_the_end():
    train = [CHANCE, CHANCE, 3.0, 0.1, 0.05, 0.05]
    test = [CHANCE, CHANCE, 1.0, 0.5, 3.0, 6.0]     # falls, then M takes over again
    assert grokking_step(STEPS, train, test, N) is None
    test = [CHANCE, CHANCE, 1.0, 0.5, 3.0, 0.1]     # falls again and stays: that is the grokking step
    assert grokking_step(STEPS, train, test, N) == 10000
