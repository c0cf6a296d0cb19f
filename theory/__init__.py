"""Theorem checkers for 'Explaining grokking through circuit efficiency' (Appendix D).

Claims with stable ids (:mod:`circeff.theory.claims`): ``D1`` and ``D1.limit`` (scaling a
perfect classifier lowers its loss), ``D2`` (subadditivity of t^r), ``D3`` (the corrected
power-derivative bound) and ``D3.printed`` (the paper's printed form, which is false and is
expected to be refuted), ``D4.case1`` / ``D4.boundary`` / ``D4.case2`` (weight decay makes
the most efficient circuit win, or sets a power law) and ``D4.toy_ratio``. Each has a
symbolic route (sympy) and a numeric route; :func:`circeff.theory.check.run_claims` runs
them, and every claim has a falsification variant that drops one hypothesis and must be
refuted with a printed counterexample.

Public entry points:

- :func:`check_D1_on_logits` (Theorem D.1 on any logit matrix);
- :mod:`circeff.theory.optima` (effective loss, numeric global minimiser, closed form);
- :func:`circeff.theory.check.run_claims`.
"""

from circeff.theory.scaling import D1LogitsCheck, check_D1_on_logits

__all__ = ["D1LogitsCheck", "check_D1_on_logits"]
