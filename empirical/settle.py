"""Settle trained networks at a minimum of the weight-decay objective (used by P1).

Theorem D.4 is about minimisers of ``L(theta) = CE(theta) + (alpha / 2) ||theta||^2``. A
network trained by AdamW to a tiny loss is not near one: once its gradients are far below
Adam's ``eps`` (1e-8), AdamW is gradient descent with learning rate ``lr / eps`` on
``CE + (eps * wd / 2) ||theta||^2``, so the L2 coefficient it settles at is ``eps * wd``
(about 1e-8), and changing ``wd`` by a factor 8 moves the equilibrium logit by only
``log 8`` (measured at P = 23 and 31: the norm moved by about 2%, under AdamW's own 5-10%
oscillation, and the fitted kappa intervals contained 0).

:func:`settle` therefore takes the weights of a trained run and minimises that objective
directly, with full-batch L-BFGS (``torch.optim.LBFGS``, strong-Wolfe line search), one model
at a time (so a model's result does not depend on which others share its batch), for a fixed
number of iterations. The ladder of ``alphas`` is climbed from the smallest up, each rung
starting from the previous rung's weights: a larger alpha is a smaller network on the same
circuit, reached by shrinking.

What it reports per model and rung: the parameter norm, the relative drift of the norm over
the last quarter of the function evaluations (the convergence measure: near a minimum the
norm stops moving), and the stationarity ``||grad L|| / (alpha ||theta||)`` (0 at a minimum;
the weight-decay force sets the scale).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from circeff.empirical.config import TrainConfig
from circeff.empirical.model import Params, param_norm
from circeff.empirical.tasks import Dataset
from circeff.empirical.train import build_training_data, loss_and_grads
from circeff.validate import integer_at_least, positive

__all__ = ["SettleTrace", "settle", "settle_model"]

# The drift is measured over this last fraction of a rung's function evaluations.
DRIFT_WINDOW = 0.25


@dataclass(frozen=True)
class SettleTrace:
    """One model at one rung: where it ended and how settled it is."""

    model: int
    alpha: float
    evaluations: int
    param_norm: float
    norm_drift: float
    stationarity: float
    objective: float


def _objective_and_grads(params: Params, data, config: TrainConfig, alpha: float) -> tuple[float, Params]:
    losses, grads = loss_and_grads(params, data, config)
    with torch.no_grad():
        l2 = sum(p.double().pow(2).sum() for p in params.values())
        total = float(losses.sum()) + 0.5 * alpha * float(l2)
        return total, {n: grads[n] + alpha * params[n] for n in params}


def settle_model(params: Params, dataset: Dataset, config: TrainConfig, model: int, alpha: float,
                 iterations: int, history_size: int = 50) -> tuple[Params, SettleTrace]:
    """Minimise ``CE + (alpha/2)||theta||^2`` for model ``model`` of a run, from ``params``.

    Args:
        params: the run's stacked weights (not modified).
        dataset: the run's task dataset (its training subset is the model's own).
        config: the run's config.
        model: which model.
        alpha: the L2 coefficient (> 0).
        iterations: L-BFGS iterations (at most 1.25 times as many function evaluations).

    Returns:
        The model's settled weights (stacked with a leading axis of 1) and its trace.
    """
    positive("alpha", alpha)
    integer_at_least("iterations", iterations, 1)
    one = replace(config, runs=(config.runs[model],), chunk_size=None)
    data = build_training_data(dataset, one, params["W_E"].device)
    weights = {n: p[model:model + 1].detach().clone().requires_grad_() for n, p in params.items()}
    norms: list[float] = []

    def closure() -> Tensor:
        current = {n: w.detach() for n, w in weights.items()}
        total, grads = _objective_and_grads(current, data, one, alpha)
        for n, w in weights.items():
            w.grad = grads[n]
        norms.append(float(param_norm(current)[0]))
        return torch.tensor(total, dtype=weights["W_E"].dtype)

    # Tolerances 0: the budget, not a stopping rule, ends the rung, so a rung costs the same
    # whether or not one model's line search stalls (the drift below says how settled it is).
    optimiser = torch.optim.LBFGS(list(weights.values()), lr=1.0, max_iter=iterations,
                                  history_size=history_size, line_search_fn="strong_wolfe",
                                  tolerance_grad=0.0, tolerance_change=0.0)
    optimiser.step(closure)

    settled = {n: w.detach() for n, w in weights.items()}
    total, grads = _objective_and_grads(settled, data, one, alpha)
    norm = float(param_norm(settled)[0])
    grad_norm = float(torch.sqrt(sum(g.double().pow(2).sum() for g in grads.values())))
    window = norms[int(len(norms) * (1 - DRIFT_WINDOW)):] + [norm]
    drift = abs(window[-1] - window[0]) / norm
    return settled, SettleTrace(model=model, alpha=float(alpha), evaluations=len(norms) + 1,
                                param_norm=norm, norm_drift=float(drift),
                                stationarity=grad_norm / (alpha * norm), objective=float(total))


def settle(params: Params, dataset: Dataset, config: TrainConfig, alpha: float, iterations: int,
           history_size: int = 50, on_model: Callable[[int], None] | None = None) -> tuple[Params, list[SettleTrace]]:
    """:func:`settle_model` for every model of a run; returns the stacked settled weights."""
    out = {n: p.detach().clone() for n, p in params.items()}
    traces = []
    for k in range(config.n_models):
        settled, trace = settle_model(params, dataset, config, k, alpha, iterations, history_size)
        for n in out:
            out[n][k] = settled[n][0]
        traces.append(trace)
        if on_model is not None:
            on_model(k)
    return out, traces

