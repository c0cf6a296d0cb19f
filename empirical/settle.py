"""Settle trained networks at a minimum of the weight-decay objective (used by P1).

Theorem D.4 is about minimisers of ``L(theta) = CE(theta) + (alpha / 2) ||theta||^2``. A
network trained by AdamW to a tiny loss is not near one: once its gradients are far below
Adam's ``eps`` (1e-8), AdamW is gradient descent with learning rate ``lr / eps`` on
``CE + (eps * wd / 2) ||theta||^2``, so the L2 coefficient it settles at is ``eps * wd``
(about 1e-8), and changing ``wd`` by a factor 8 moves the equilibrium logit by only
``log 8`` (measured at P = 23 and 31: the norm moved by about 2%, under AdamW's own 5-10%
oscillation, and the fitted kappa intervals contained 0).

:func:`settle` therefore takes the weights of a trained run and minimises that objective
directly, with full-batch L-BFGS (``torch.optim.LBFGS``, strong-Wolfe line search), for a fixed
number of iterations. Every model runs its own L-BFGS (its own history, line search and step
sizes: summing the models' objectives into one L-BFGS would couple them through one shared
line search), and :func:`settle` runs them side by side: each model's optimiser runs in its
own thread, and whenever every unfinished model has asked for its objective, one batched
evaluation (:func:`circeff.empirical.train.loss_and_grads`) answers all of them. So a model
takes the same steps as alone (:func:`settle_model`), up to the float rounding of a batched
evaluation (the tests bound the difference), and the ladder's numbers are deterministic. The ladder of ``alphas`` is climbed from the smallest up, each rung
starting from the previous rung's weights: a larger alpha is a smaller network on the same
circuit, reached by shrinking.

What it reports per model and rung: the parameter norm, the relative drift of the norm over
the last quarter of the function evaluations (the convergence measure: near a minimum the
norm stops moving), and the stationarity ``||grad L|| / (alpha ||theta||)`` (0 at a minimum;
the weight-decay force sets the scale).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
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


def _objective_and_grads(params: Params, data, config: TrainConfig, alpha: float) -> tuple[Tensor, Params]:
    """``[E]`` float64 objective ``CE + (alpha/2)||theta||^2`` of every model and its gradients."""
    losses, grads = loss_and_grads(params, data, config)
    with torch.no_grad():
        l2 = sum(p.double().pow(2).flatten(1).sum(1) for p in params.values())
        return losses + 0.5 * alpha * l2, {n: grads[n] + alpha * params[n] for n in params}


def _minimise(weights: Params, alpha: float, iterations: int, history_size: int,
              evaluate: Callable[[Params], tuple[float, Params, float]]) -> list[float]:
    """One model's L-BFGS run on ``weights`` (leaves, modified in place); ``evaluate`` gives
    its objective, gradients and norm at given weights. Returns the norm at every evaluation."""
    norms: list[float] = []

    def closure() -> Tensor:
        total, grads, norm = evaluate({n: w.detach() for n, w in weights.items()})
        for n, w in weights.items():
            w.grad = grads[n]
        norms.append(norm)
        return torch.tensor(total, dtype=weights["W_E"].dtype)

    # Tolerances 0: the budget, not a stopping rule, ends the rung, so a rung costs the same
    # whether or not one model's line search stalls (the drift below says how settled it is).
    optimiser = torch.optim.LBFGS(list(weights.values()), lr=1.0, max_iter=iterations,
                                  history_size=history_size, line_search_fn="strong_wolfe",
                                  tolerance_grad=0.0, tolerance_change=0.0)
    optimiser.step(closure)
    return norms


def _trace(model: int, alpha: float, norms: list[float], total: float, grads: Params, norm: float) -> SettleTrace:
    grad_norm = float(torch.sqrt(sum(g.double().pow(2).sum() for g in grads.values())))
    window = norms[int(len(norms) * (1 - DRIFT_WINDOW)):] + [norm]
    drift = abs(window[-1] - window[0]) / norm
    return SettleTrace(model=model, alpha=float(alpha), evaluations=len(norms) + 1, param_norm=norm,
                       norm_drift=float(drift), stationarity=grad_norm / (alpha * norm), objective=float(total))


def settle_model(params: Params, dataset: Dataset, config: TrainConfig, model: int, alpha: float,
                 iterations: int, history_size: int = 50) -> tuple[Params, SettleTrace]:
    """Minimise ``CE + (alpha/2)||theta||^2`` for model ``model`` of a run alone, from ``params``.

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

    def evaluate(current: Params) -> tuple[float, Params, float]:
        total, grads = _objective_and_grads(current, data, one, alpha)
        return float(total[0]), grads, float(param_norm(current)[0])

    weights = {n: p[model:model + 1].detach().clone().requires_grad_() for n, p in params.items()}
    norms = _minimise(weights, alpha, iterations, history_size, evaluate)
    settled = {n: w.detach() for n, w in weights.items()}
    return settled, _trace(model, alpha, norms, *evaluate(settled))


class _Rendezvous:
    """Collects the evaluation requests of the models' threads until every unfinished model
    has one, then hands them to the caller of :meth:`serve` as one batch."""

    def __init__(self, n_models: int) -> None:
        self._cond = threading.Condition()
        self._running = n_models
        self._requests: dict[int, Params] = {}
        self._answers: dict[int, tuple[float, Params, float]] = {}
        self._failed = False

    def ask(self, model: int, weights: Params) -> tuple[float, Params, float]:
        with self._cond:
            self._requests[model] = weights
            self._cond.notify_all()
            self._cond.wait_for(lambda: model in self._answers or self._failed)
            if self._failed:
                raise RuntimeError("the batched evaluation failed")
            return self._answers.pop(model)

    def done(self) -> None:
        with self._cond:
            self._running -= 1
            self._cond.notify_all()

    def serve(self, evaluate: Callable[[list[int], list[Params]], list[tuple[float, Params, float]]]) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: len(self._requests) == self._running)
                if self._running == 0:
                    return
                models = sorted(self._requests)
                weights = [self._requests.pop(k) for k in models]
            try:
                answers = evaluate(models, weights)
            except BaseException:
                with self._cond:  # release the waiting threads, then raise here
                    self._failed = True
                    self._cond.notify_all()
                raise
            with self._cond:
                self._answers.update(zip(models, answers, strict=True))
                self._cond.notify_all()


def settle(params: Params, dataset: Dataset, config: TrainConfig, alpha: float, iterations: int,
           history_size: int = 50, on_model: Callable[[int], None] | None = None) -> tuple[Params, list[SettleTrace]]:
    """:func:`settle_model` for every model of a run, side by side; returns the stacked settled
    weights and one trace per model. ``on_model(k)`` is called for every model once all are done."""
    positive("alpha", alpha)
    integer_at_least("iterations", iterations, 1)
    device = params["W_E"].device
    data_of: dict[tuple[int, ...], tuple[TrainConfig, object]] = {}

    def evaluate(models: Sequence[int], weights: Sequence[Params]) -> list[tuple[float, Params, float]]:
        key = tuple(models)
        if key not in data_of:  # the unfinished models only shrink: at most E distinct sets
            sub = replace(config, runs=tuple(config.runs[k] for k in models))
            data_of[key] = (sub, build_training_data(dataset, sub, device))
        sub, data = data_of[key]
        stacked = {n: torch.cat([w[n] for w in weights]) for n in params}
        totals, grads = _objective_and_grads(stacked, data, sub, alpha)
        norms = param_norm(stacked)
        return [(float(totals[i]), {n: g[i:i + 1] for n, g in grads.items()}, float(norms[i]))
                for i in range(len(models))]

    E = config.n_models
    weights = [{n: p[k:k + 1].detach().clone().requires_grad_() for n, p in params.items()} for k in range(E)]
    norms: list[list[float]] = [[] for _ in range(E)]
    errors: list[BaseException] = []
    rendezvous = _Rendezvous(E)

    def run(k: int) -> None:
        try:
            norms[k] = _minimise(weights[k], alpha, iterations, history_size, lambda w: rendezvous.ask(k, w))
        except BaseException as error:  # re-raised below, in the caller's thread
            errors.append(error)
        finally:
            rendezvous.done()

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(E)]
    for t in threads:
        t.start()
    rendezvous.serve(evaluate)
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    settled = {n: torch.cat([w[n].detach() for w in weights]) for n in params}
    final = evaluate(list(range(E)), [{n: w[n].detach() for n in params} for w in weights])
    traces = []
    for k in range(E):
        traces.append(_trace(k, alpha, norms[k], *final[k]))
        if on_model is not None:
            on_model(k)
    return settled, traces
