"""Two circuits on disjoint parameters, adding their logits: the setting of Theorem D.4.

Theorem D.4 assumes circuits whose parameter costs add and whose logits add. Figure 10's
networks share their embeddings, unembedding and MLP neurons between G and M, so the theorem
does not apply to them exactly. Here it does: a G network and an M network, each a complete
1-layer transformer with its own weights, read the same example and their logits are summed::

    logits(x) = f_G(x_G; theta_G) + f_M(x_M; theta_M)
    objective = CE(logits, y) + (alpha / 2) (||theta_G||^2 + ||theta_M||^2)

so the weight-decay cost of the pair is the sum of the two circuits' costs.

The M circuit must fit the same labels as G while being unable to generalise. It is a network
trained on random labels (prediction P1's memorisation-only network): its input ``x_M`` is a
training pair ``(a, b)`` and its label is the random ``r(a, b)``. The G circuit's input ``x_G``
is another pair ``(u, r - u mod P)``, whose true sum is that same label, so G can compute it
with its modular-addition algorithm. Each combined example therefore has one label that both
circuits can produce, G by generalising and M only by memorising.

Everything here works on ONE model's weights (a stacked dict with a leading axis of 1, as
:mod:`circeff.empirical.model` stores them) and on explicit token tensors, so a circuit alone
and the pair use the same code. Minimisation is full-batch L-BFGS with a strong-Wolfe line
search for a fixed number of iterations, as :mod:`circeff.empirical.settle` does for single
networks; the norm's drift over the last quarter of the evaluations says how settled it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from circeff.empirical.batched import final_logits, logits_all
from circeff.empirical.model import Params
from circeff.empirical.fourier import trig_share
from circeff.empirical.tasks import TaskConfig
from circeff.validate import integer_at_least, positive

__all__ = [
    "CircuitInputs",
    "Minimum",
    "SplitResult",
    "centred_correct_logit",
    "circuit_logits",
    "minimise_l2",
    "paired_g_inputs",
    "scaled",
    "settle_alone",
    "settle_pair",
    "single_model_trig_share",
]

# The drift is measured over this last fraction of the function evaluations (as settle.py).
DRIFT_WINDOW = 0.25


@dataclass(frozen=True, eq=False)
class CircuitInputs:
    """The examples one circuit reads: int64 tokens ``a``, ``b`` ``[N]`` and labels ``[N]``."""

    a: Tensor
    b: Tensor
    labels: Tensor


@dataclass(frozen=True, eq=False)
class Minimum:
    """Where one L-BFGS minimisation ended."""

    params: tuple[Params, ...]
    objective: float
    ce: float
    norms: tuple[float, ...]
    norm_drift: float
    evaluations: int


@dataclass(frozen=True)
class SplitResult:
    """The pair settled from one starting split ``(scale_G, scale_M)``.

    ``g_logit`` and ``m_logit``: each circuit's mean label-centred correct logit on the
    combined training examples (they add up to the pair's); ``ratio = g_logit / m_logit``.
    """

    scale_G: float
    scale_M: float
    objective: float
    ce: float
    g_logit: float
    m_logit: float
    g_norm: float
    m_norm: float
    norm_drift: float
    accuracy: float


def circuit_logits(params: Params, inputs: CircuitInputs, task: TaskConfig) -> Tensor:
    """``[N, P]`` logits of one model (leading axis 1) on ``inputs``."""
    return final_logits(params, inputs.a[None], inputs.b[None], task, fold=False)[0]


def centred_correct_logit(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean over examples of the correct logit minus the example's mean logit (softmax ignores
    that mean, so without centring a constant offset would count as circuit output)."""
    correct = logits.gather(1, labels[:, None])[:, 0]
    return (correct - logits.mean(dim=1)).mean()


def scaled(params: Params, factor: float) -> Params:
    return {n: (p * factor).detach().clone() for n, p in params.items()}


def paired_g_inputs(labels: np.ndarray, p: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """G's input pairs ``(u, (label - u) mod P)`` with ``u`` uniform: true sum = the label."""
    u = np.random.default_rng(seed).integers(0, p, size=len(labels))
    return u.astype(np.int64), ((np.asarray(labels) - u) % p).astype(np.int64)


def _sq_norm(params: Params) -> Tensor:
    return sum(t.double().pow(2).sum() for t in params.values())


def minimise_l2(blocks: Sequence[Params], ce_of: Callable[[Sequence[Params]], Tensor], alpha: float,
                iterations: int, history_size: int = 50) -> Minimum:
    """Minimise ``ce_of(blocks) + (alpha/2) sum_b ||block_b||^2`` over every tensor of every block.

    The budget ends the run (tolerances 0), so each minimisation costs the same whatever the
    line search does; the drift of the total norm says how settled the end point is.
    """
    positive("alpha", alpha)
    integer_at_least("iterations", iterations, 1)
    weights = [{n: p.detach().clone().requires_grad_() for n, p in b.items()} for b in blocks]
    leaves = [t for b in weights for t in b.values()]
    norms: list[float] = []

    def closure() -> Tensor:
        for t in leaves:
            t.grad = None
        l2 = sum(_sq_norm(b) for b in weights)
        total = ce_of(weights) + 0.5 * alpha * l2
        total.backward()
        norms.append(float(torch.sqrt(l2.detach())))
        return total.detach().to(leaves[0].dtype)

    opt = torch.optim.LBFGS(leaves, lr=1.0, max_iter=iterations, history_size=history_size,
                            line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0)
    opt.step(closure)
    final = tuple({n: t.detach() for n, t in b.items()} for b in weights)
    with torch.no_grad():
        ce = float(ce_of(final))
        per_block = tuple(float(torch.sqrt(_sq_norm(b))) for b in final)
    total_norm = float(np.sqrt(sum(n * n for n in per_block)))
    window = norms[int(len(norms) * (1 - DRIFT_WINDOW)):] + [total_norm]
    return Minimum(final, ce + 0.5 * alpha * total_norm**2, ce, per_block,
                   abs(window[-1] - window[0]) / max(total_norm, 1e-30), len(norms) + 1)


def _ce(logits: Tensor, labels: Tensor) -> Tensor:
    return F.cross_entropy(logits.double(), labels)


def settle_alone(params: Params, inputs: CircuitInputs, task: TaskConfig, alphas: Sequence[float],
                 iterations: int) -> list[dict]:
    """One circuit alone along the alpha ladder (smallest first, each rung warm-started):
    per rung its norm, mean centred correct logit, accuracy and drift; ``params`` at each rung
    under ``"params"`` (for starting the pair from)."""
    rows = []
    current = params
    for alpha in sorted(alphas):
        m = minimise_l2([current], lambda w: _ce(circuit_logits(w[0], inputs, task), inputs.labels),
                        alpha, iterations)
        current = m.params[0]
        with torch.no_grad():
            logits = circuit_logits(current, inputs, task)
        rows.append({"alpha": float(alpha), "param_norm": m.norms[0],
                     "correct_logit": float(centred_correct_logit(logits, inputs.labels)),
                     "train_acc": float((logits.argmax(1) == inputs.labels).double().mean()),
                     "ce": m.ce, "norm_drift": m.norm_drift, "params": current})
    return rows


def settle_pair(g_params: Params, m_params: Params, g_inputs: CircuitInputs, m_inputs: CircuitInputs,
                task: TaskConfig, alpha: float, iterations: int,
                splits: Sequence[tuple[float, float]]) -> list[SplitResult]:
    """Settle the disjoint pair from each starting split ``(scale_G, scale_M)`` (the circuits'
    weights multiplied by those factors) and measure how the settled logit is split."""
    if not torch.equal(g_inputs.labels, m_inputs.labels):
        raise ValueError("the two circuits must read examples with the same labels")
    labels = g_inputs.labels

    def ce_of(w: Sequence[Params]) -> Tensor:
        return _ce(circuit_logits(w[0], g_inputs, task) + circuit_logits(w[1], m_inputs, task), labels)

    out = []
    for sg, sm in splits:
        m = minimise_l2([scaled(g_params, sg), scaled(m_params, sm)], ce_of, alpha, iterations)
        with torch.no_grad():
            lg, lm = circuit_logits(m.params[0], g_inputs, task), circuit_logits(m.params[1], m_inputs, task)
            acc = float(((lg + lm).argmax(1) == labels).double().mean())
            out.append(SplitResult(float(sg), float(sm), m.objective, m.ce,
                                   float(centred_correct_logit(lg, labels)),
                                   float(centred_correct_logit(lm, labels)),
                                   m.norms[0], m.norms[1], m.norm_drift, acc))
    return out


def single_model_trig_share(params: Params, task: TaskConfig) -> float:
    """Trig share of one model's logits over the whole P x P grid (how G-like it is)."""
    return float(trig_share(logits_all(params, task, model_index=0).cpu().numpy()))
