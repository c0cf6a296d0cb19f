"""Loss in float64 and the per-model metric rows of ``metrics.csv``.

Why float64: late in training the loss is tiny, and a cross-entropy computed
in float32 has a floor (``log_softmax`` of the correct class rounds to 0 once its margin is
about 17 nats); gradients then come and go in spikes. So the logits (float32) are converted
to float64 before ``log_softmax``; the gradient goes back to float32 at the same point.

Missing values: a model trained on the whole dataset has no test examples, so its test loss
and test accuracy do not exist. In memory (the rows of :func:`metric_rows`, ``train``'s
result, a checkpoint's rows) they are :data:`MISSING`, a float NaN; metrics.csv writes them
as empty cells (:func:`csv_rows`), as it always has, and ``pandas.read_csv`` reads those back
as NaN. A diverged model's non-finite losses are NaN too, but its test accuracy is a number:
the test accuracy alone tells a missing test set (:func:`has_test_set`), and metrics.csv keeps
writing those losses as ``nan``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from circeff.thresholds import GENERALISED_TEST_ACC, MEMORISED_TRAIN_ACC

__all__ = ["MISSING", "METRIC_COLUMNS", "TEST_COLUMNS", "cross_entropy64", "cross_entropy64_and_grad", "csv_rows",
           "has_test_set", "metric_rows", "milestones", "missing_as_nan", "per_example_loss64"]

METRIC_COLUMNS = [
    "step", "model", "seed", "data_seed", "weight_decay", "train_size",
    "train_loss", "test_loss", "train_acc", "test_acc", "param_norm", "status",
]
# The columns that are missing for a model without test examples.
TEST_COLUMNS = ("test_loss", "test_acc")
# A value that does not exist. One object (math.nan itself), so that rows holding it compare
# equal (containers compare items by identity first; NaN == NaN is False).
MISSING = math.nan


def per_example_loss64(logits: Tensor, labels: Tensor) -> Tensor:
    """``[..., N]`` float64 cross-entropy of every example from ``[..., N, V]`` logits."""
    logprobs = logits.double().log_softmax(dim=-1)
    return -logprobs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)


def cross_entropy64(logits: Tensor, labels: Tensor, weights: Tensor) -> Tensor:
    """``[E]`` float64 weighted cross-entropy per model: ``sum_n weights[e, n] * loss[e, n]``.

    ``weights`` is ``1 / N_e`` on model e's training examples and 0 on padding, so each entry
    is that model's mean training loss.
    """
    return (per_example_loss64(logits, labels) * weights).sum(dim=-1)


@torch.no_grad()
def cross_entropy64_and_grad(logits: Tensor, labels: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`cross_entropy64` and its gradient with respect to the float32 logits, without
    autograd: ``d loss_e / d logits[e, n] = weights[e, n] * (softmax(logits[e, n]) - onehot(label))``,
    computed in float64 and returned in the logits' dtype (as autograd would)."""
    z = logits.double()
    z -= z.amax(dim=-1, keepdim=True)
    correct = z.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    probs = z.exp_()                                   # unnormalised from here on
    total = probs.sum(dim=-1)
    loss = ((total.log() - correct) * weights).sum(dim=-1)
    probs *= (weights / total).unsqueeze(-1)
    probs.scatter_add_(-1, labels.unsqueeze(-1), -weights.unsqueeze(-1))
    return loss, probs.to(logits.dtype)


@torch.no_grad()
def metric_rows(step: int, first_model: int, nll: Tensor, correct: Tensor, train_mask: Tensor,
                norms: Tensor, runs: Sequence, status: Sequence[str]) -> list[dict]:
    """One row per model of a chunk, from its loss and correctness on EVERY example.

    Args:
        nll: ``[Ec, n]`` float64 cross-entropy per example; correct: ``[Ec, n]`` bool (argmax
            of the logits is the label); train_mask: ``[Ec, n]`` bool; norms: ``[Ec]``.
        runs, status: the chunk's RunSpecs and status strings.

    A model with no test examples (D = n) gets :data:`MISSING` (NaN) test values.
    """
    test_mask = ~train_mask
    rows = []
    for i in range(nll.shape[0]):
        n_train, n_test = int(train_mask[i].sum()), int(test_mask[i].sum())
        run = runs[i]
        rows.append({
            "step": step, "model": first_model + i, "seed": run.seed, "data_seed": run.data_seed,
            "weight_decay": run.weight_decay, "train_size": n_train,
            "train_loss": float(nll[i][train_mask[i]].sum()) / n_train,
            "test_loss": float(nll[i][test_mask[i]].sum()) / n_test if n_test else MISSING,
            "train_acc": int(correct[i][train_mask[i]].sum()) / n_train,
            "test_acc": int(correct[i][test_mask[i]].sum()) / n_test if n_test else MISSING,
            "param_norm": float(norms[i]),
            "status": status[i],
        })
    return rows


def has_test_set(row: Mapping[str, Any]) -> bool:
    """Whether the row's model has test examples, i.e. its test values exist. A test accuracy
    (a fraction of test examples) is NaN only when there are none, also for a diverged model."""
    return not math.isnan(row["test_acc"])


def missing_as_nan(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its missing test values as :data:`MISSING`: rows written by earlier
    versions hold ``""`` there, and a NaN read back from JSON is a new NaN object."""
    acc = row["test_acc"]
    if acc == "" or (isinstance(acc, float) and math.isnan(acc)):
        return {**row, "test_loss": MISSING, "test_acc": MISSING}
    return row


def csv_rows(rows: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """The rows as metrics.csv writes them: missing test values as empty cells (other NaN,
    a diverged model's losses, stay NaN and are written as ``nan``)."""
    for row in rows:
        yield row if has_test_set(row) else {**row, **dict.fromkeys(TEST_COLUMNS, "")}


def milestones(rows: Sequence[dict], train_threshold: float = MEMORISED_TRAIN_ACC,
               test_threshold: float = GENERALISED_TEST_ACC) -> list[dict]:
    """Per model: first logged step with train accuracy >= ``train_threshold`` (memorised),
    first with test accuracy >= ``test_threshold`` (generalised; None if never), final accuracies
    (``final_test_acc`` is NaN for a model without test examples).

    Grokking shows as ``generalised_at`` well after ``memorised_at``.
    """
    out: dict[int, dict] = {}
    for row in rows:
        m = out.setdefault(row["model"], {"model": row["model"], "seed": row["seed"],
                                          "weight_decay": row["weight_decay"], "train_size": row["train_size"],
                                          "memorised_at": None, "generalised_at": None})
        if m["memorised_at"] is None and row["train_acc"] >= train_threshold:
            m["memorised_at"] = row["step"]
        if m["generalised_at"] is None and row["test_acc"] >= test_threshold:  # False for NaN
            m["generalised_at"] = row["step"]
        m["final_step"], m["final_train_acc"], m["final_test_acc"] = row["step"], row["train_acc"], row["test_acc"]
        m["status"] = row["status"]
    return [out[k] for k in sorted(out)]
