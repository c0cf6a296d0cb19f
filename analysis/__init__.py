"""Prediction against measurement: statistics and figures for the paper's predictions.

Pure functions over flat tables (pandas DataFrames, one row per trained network or per
evaluation); the experiments that produce the tables live in ``circeff.empirical.experiments``.

- :mod:`circeff.analysis.efficiency` - P1: shared-kappa fits of ``logit = (norm / P(D))^kappa``
  per circuit, the trend of P with D, the verdict, and the efficiency crossover (D_crit).
- :mod:`circeff.analysis.dcrit` - P2/P3: D_crit as the midpoint of the ungrokking transition,
  its dependence on weight decay, and whether two D_crit estimates agree.
- :mod:`circeff.analysis.semigrok` - P4: classify test-accuracy trajectories (grokked, semi,
  ungeneralised, unsettled) and mark transient plateaus.
- :mod:`circeff.analysis.allocation` - Theorem D.4's predicted G:M allocation (through
  :mod:`circeff.theory.optima`) against measured ratios; Figure 10a's monotonicity verdict.
- :mod:`circeff.analysis.plots` - figures; they take data and return a matplotlib Figure.
- :mod:`circeff.analysis.stats` - intervals, bootstrap helpers, JSON-safe result records.

Every result is a frozen dataclass with ``to_dict()`` (plain JSON data, nan and inf as None);
every random draw takes a ``seed`` argument; bad input raises
:class:`circeff.errors.ConfigError` naming the field.
"""
