"""Prediction against measurement: statistics, decision rules and figures for the paper's
predictions.

Pure functions over flat tables (pandas DataFrames, one row per trained network or per
evaluation); the experiments that produce the tables live in ``circeff.empirical.experiments``,
each under the same name as the module here that analyses it.

- :mod:`circeff.analysis.efficiency` - P1: shared-kappa fits of ``logit = (norm / P(D))^kappa``
  per circuit, the trend of P with D, the efficiency crossover, and the P1 rule.
- :mod:`circeff.analysis.ungrokking` - P2/P3: the one D_crit estimator (the ungrokking
  transition's midpoint), the P2 and P3 rules, and whether two D_crit estimates agree.
- :mod:`circeff.analysis.semigrokking` - P4: the one classifier of a run's trajectory
  (grokked, semi, ungeneralised, unsettled; transient plateaus) and the P4 rule.
- :mod:`circeff.analysis.fig10` - Figure 10a: measured G:M ratios and their rule.
- :mod:`circeff.analysis.allocation` - Theorem D.4's predicted G:M allocation (through
  :mod:`circeff.theory.optima`) against disjoint pairs and Figure 10's networks.
- :mod:`circeff.analysis.verdicts` - the rules by key; :mod:`circeff.analysis.rule` - the
  :class:`~circeff.analysis.rule.Verdict` record they share (outcome: holds, does not hold
  or undecided).
- :mod:`circeff.analysis.robustness` - robust or fragile: the same outcome without any one
  seed and under a second order of floating-point sums, a margin of a standard error, two seeds.
- :mod:`circeff.analysis.controls` - false-accept and false-reject rates of every rule.
- :mod:`circeff.analysis.plots` - figures; they take data and return a matplotlib Figure.
- :mod:`circeff.analysis.stats` - the interval record, bootstrap helpers, JSON-safe records.

Every result is a frozen dataclass with ``to_dict()`` (plain JSON data, nan and inf as None);
every random draw takes a ``seed`` argument; bad input raises
:class:`circeff.errors.ConfigError` naming the field. Thresholds shared with the experiments
are named once in :mod:`circeff.thresholds`.
"""
