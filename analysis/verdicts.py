"""The decision rules of the paper's predictions, listed by key.

Each rule is a pure function that takes a pandas DataFrame and returns a
:class:`~circeff.analysis.rule.Verdict`: whether the prediction holds, why, the numbers the rule
used and the rule's own parameters. Every parameter of a rule is a keyword argument with a
default fixed before any run was looked at (the thresholds it shares with the experiments are
named in :mod:`circeff.thresholds`); ``rule`` in the result records what was applied. Each rule
lives beside the statistics it decides on:

==========  =============================================  ======================================
key         rule                                           what it decides
==========  =============================================  ======================================
P1          :func:`circeff.analysis.efficiency.p1`         M's efficiency rises with D, G's is flat
P2          :func:`circeff.analysis.ungrokking.p2`         ungrokking is a phase transition in D'
P3          :func:`circeff.analysis.ungrokking.p3`         D_crit does not depend on weight decay
P4          :func:`circeff.analysis.semigrokking.p4`       runs memorise, then semi-grok after a delay
fig10a      :func:`circeff.analysis.fig10.fig10a`          the G:M logit ratio rises with D
==========  =============================================  ======================================

A rule is only worth stating if data that contradict the prediction make it say no. For every
rule :mod:`circeff.analysis.controls` simulates tables of the run's own design under a named
alternative (and under the paper's hypothesis) and measures how often the rule accepts the
alternative (false accept) and rejects the hypothesis (false reject).

Beside the rules: :func:`threshold_bracket` checks the order D_down <= D_cross <= D_up of the
three dataset-size thresholds (ungrokking, efficiency crossover, grokking from scratch).
"""

from __future__ import annotations

from collections.abc import Callable

from circeff.analysis.efficiency import P1_COLUMNS, p1
from circeff.analysis.fig10 import FIG10A_COLUMNS, fig10a
from circeff.analysis.rule import Verdict
from circeff.analysis.semigrokking import LABELS as P4_LABELS
from circeff.analysis.semigrokking import P4_COLUMNS, P4Rule, p4, threshold_bracket
from circeff.analysis.ungrokking import P2_COLUMNS, p2, p3

__all__ = ["FIG10A_COLUMNS", "P1_COLUMNS", "P2_COLUMNS", "P4_COLUMNS", "P4_LABELS", "P4Rule", "RULES", "Verdict",
           "fig10a", "p1", "p2", "p3", "p4", "threshold_bracket"]

RULES: dict[str, Callable[..., Verdict]] = {"P1": p1, "P2": p2, "P3": p3, "P4": p4, "fig10a": fig10a}
