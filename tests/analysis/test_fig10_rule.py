"""Figure 10a: the measured G:M ratios and the one rule that decides whether they rise with D."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from circeff.analysis.fig10 import fig10a, measured_ratios
from circeff.errors import ConfigError
from tests.strategies.analysis import ratio_rows

D_10A = (50, 100, 200, 400, 800, 1600, 3200)


def test_measured_ratio_conventions_for_non_positive_logits():
    rows = [{"D": 10, "seed": 0, "g_logit": 2.0, "m_logit": 0.5},
            {"D": 10, "seed": 1, "g_logit": 2.0, "m_logit": -0.1},
            {"D": 10, "seed": 2, "g_logit": -1.0, "m_logit": 0.5},
            {"D": 10, "seed": 3, "g_logit": -1.0, "m_logit": 0.0}]
    out = measured_ratios(rows)
    assert out["ratio"].tolist() == [4.0, np.inf, 0.0]
    assert out["seed"].tolist() == [0, 1, 2]


def test_fig10a_holds_for_a_rising_ratio():
    rows = measured_ratios(ratio_rows(lambda D: (D / 50) ** 2, D_values=D_10A, seed=5))
    v = fig10a(rows)
    assert v.holds
    assert v.numbers["spearman"]["value"] == pytest.approx(stats.spearmanr(rows["D"], rows["ratio"])[0])
    assert v.numbers["spearman"]["method"] == "Fisher z" and v.numbers["spearman"]["level"] == 0.95
    assert v.numbers["n"] == len(rows)


@pytest.mark.parametrize("ratio_of_D", [lambda D: 3.0, lambda D: 1e4 / D])
def test_fig10a_fails_for_flat_or_falling_ratios(ratio_of_D):
    rows = measured_ratios(ratio_rows(ratio_of_D, D_values=D_10A, noise_sd=0.5, seed=6))
    assert not fig10a(rows).holds


def test_fig10a_interval_narrows_with_more_networks():
    def width(n_seeds):
        rows = measured_ratios(ratio_rows(lambda D: D**0.3, D_values=D_10A, n_seeds=n_seeds,
                                          noise_sd=1.0, seed=7))
        rho = fig10a(rows).numbers["spearman"]
        return rho["hi"] - rho["lo"]

    assert width(40) < 0.6 * width(4)


def test_fig10a_bad_input_is_one_line_errors():
    with pytest.raises(ConfigError) as exc:
        measured_ratios([{"D": 1, "seed": 0, "g_logit": 1.0}])
    assert exc.value.field == "m_logit"
    with pytest.raises(ConfigError) as exc:
        fig10a([{"D": 1, "seed": 0}])
    assert exc.value.field == "ratio"
