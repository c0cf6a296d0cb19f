"""The toy model of Appendix C (Section 3 of the paper): two lookup-table circuits, weights as
products of subweights, q-norm weight decay on a parameter norm |w|^(1/kappa) P, and plain
gradient descent, vectorised over batches of configurations.

Modules: :mod:`~circeff.toy.circuits` (circuits and losses, pure functions),
:mod:`~circeff.toy.simulate` (``ToyConfig``, ``simulate``), :mod:`~circeff.toy.metrics`
(fit and grokking steps), :mod:`~circeff.toy.experiments` (Figure 2, phase diagram),
:mod:`~circeff.toy.dataset` (dataset size: ungrokking, semi-grokking),
:mod:`~circeff.toy.plots` (figures).
"""

from circeff.toy.simulate import ToyConfig, ToyRun, final_weights, record_steps, simulate, simulate_one

__all__ = ["ToyConfig", "ToyRun", "final_weights", "record_steps", "simulate", "simulate_one"]
