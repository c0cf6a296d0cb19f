"""Theorem D.1: scaling a perfectly accurate classifier by c > 1 lowers its cross-entropy.

Claims: ``D1`` (L_x(c f) < L_x(f) for c > 1, via dL_x(c f)/dc < 0 for every c > 0) and
``D1.limit`` (L_x(c f) -> 0 as c -> infinity). Both need every margin
``f_y(x) - f_y'(x)`` (y' != y) to be positive; with one negative margin the loss grows
without bound in c, which the falsification routes exhibit.

:func:`check_D1_on_logits` checks the theorem on *any* logit matrix (the toy model and the
transformer layers call it on their own classifiers).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from circeff.errors import ConfigError
from circeff.theory.results import RouteResult, Status

DEFAULT_CS: tuple[float, ...] = (1.001, 1.5, 2.0, 4.0, 10.0)


# ----------------------------------------------------------------------------- numerics
def _as_logits(logits: object, labels: object) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels)
    if f.ndim != 2 or f.shape[1] < 2 or f.shape[0] < 1:
        raise ConfigError("logits", "must be a 2-D array (examples, classes) with >= 2 classes",
                          tuple(f.shape))
    if not np.all(np.isfinite(f)):
        raise ConfigError("logits", "must be finite")
    if y.shape != (f.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ConfigError("labels", f"must be an integer array of shape ({f.shape[0]},)",
                          tuple(y.shape))
    if y.min() < 0 or y.max() >= f.shape[1]:
        raise ConfigError("labels", f"must lie in [0, {f.shape[1] - 1}]")
    return f, y.astype(np.int64)


def margins(logits: object, labels: object) -> np.ndarray:
    """Margins ``f_y(x) - f_y'(x)`` for every wrong class y' (shape ``(N, n - 1)``)."""
    f, y = _as_logits(logits, labels)
    correct = f[np.arange(f.shape[0]), y]
    mask = np.ones_like(f, dtype=bool)
    mask[np.arange(f.shape[0]), y] = False
    return (correct[:, None] - f)[mask].reshape(f.shape[0], f.shape[1] - 1)


def cross_entropy_of_margins(mg: np.ndarray, c: float = 1.0) -> float:
    """``L_x(c f) = mean log(1 + sum_j exp(-c m_j))`` in float64, without overflow."""
    per_example = np.logaddexp(0.0, logsumexp(-c * mg, axis=1))
    return float(per_example.mean())


def cross_entropy(logits: object, labels: object) -> float:
    """Mean cross-entropy of integer labels under the logits (float64)."""
    return cross_entropy_of_margins(margins(logits, labels))


def dloss_dc(mg: np.ndarray, c: float) -> float:
    """``d L_x(c f) / dc = -mean_x sum_j m_j e^{-c m_j} / (1 + sum_j e^{-c m_j})``.

    Computed with signed log-sum-exp so that it neither overflows nor underflows to a
    wrong sign; it is exactly negative when every margin is positive.
    """
    lse_den = np.logaddexp(0.0, logsumexp(-c * mg, axis=1))
    num, sign = logsumexp(-c * mg, b=mg, axis=1, return_sign=True)
    return float(-(sign * np.exp(num - lse_den)).mean())


@dataclass(frozen=True)
class D1LogitsCheck:
    """Theorem D.1 checked on one classifier.

    ``status`` is ``verified`` when the hypothesis (perfect accuracy) holds and the loss
    falls strictly along every c in ``cs``; ``refuted`` when the hypothesis holds and the
    loss does not fall (that would contradict the theorem); ``undecided`` when the
    hypothesis fails (the theorem says nothing) or float64 cannot resolve the decrease.
    """

    perfect_accuracy: bool
    min_margin: float
    cs: tuple[float, ...]
    losses: tuple[float, ...]  # L_x(c f) for c in (1,) + cs
    dloss_dc_at_1: float
    strictly_decreasing: bool
    status: Status
    detail: str

    @property
    def holds(self) -> bool:
        return self.status is Status.VERIFIED

    def to_dict(self) -> dict[str, object]:
        return {"perfect_accuracy": self.perfect_accuracy, "min_margin": self.min_margin,
                "cs": list(self.cs), "losses": list(self.losses),
                "dloss_dc_at_1": self.dloss_dc_at_1,
                "strictly_decreasing": self.strictly_decreasing,
                "status": self.status.value, "detail": self.detail}


def check_D1_on_logits(logits: object, labels: object,
                       cs: Sequence[float] = DEFAULT_CS) -> D1LogitsCheck:
    """Check Theorem D.1 on a logit matrix ``(N, n)`` with integer ``labels`` ``(N,)``.

    Accepts numpy arrays or anything ``np.asarray`` understands (a CPU torch tensor).
    Verifies perfect accuracy (every margin > 0) and that ``L_x(c f) < L_x(f)`` and that
    the loss is strictly decreasing along ``1 < c_1 < c_2 < ...``. The decrease is judged
    per example in log space (``log sum_j exp(-c m_j)``), which stays exact where the loss
    itself underflows to 0 in float64.
    """
    cs_sorted = tuple(sorted(float(v) for v in cs))
    if not cs_sorted or cs_sorted[0] <= 1.0:
        raise ConfigError("cs", "must be a non-empty list of scale factors > 1", cs)
    mg = margins(logits, labels)
    min_margin = float(mg.min())
    perfect = bool(min_margin > 0)
    grid = (1.0,) + cs_sorted
    losses = tuple(cross_entropy_of_margins(mg, c) for c in grid)
    log_u = np.stack([logsumexp(-c * mg, axis=1) for c in grid])  # (len(grid), N)
    steps = np.diff(log_u, axis=0)
    strictly = bool(np.all(steps < 0))
    slope = dloss_dc(mg, 1.0)
    if not perfect:
        status, detail = Status.UNDECIDED, (
            f"hypothesis fails: min margin {min_margin:.3g} <= 0 (theorem does not apply); "
            f"L_x(cf) for c={grid[-1]:g}: {losses[-1]:.4g} vs L_x(f)={losses[0]:.4g}")
    elif strictly:
        status, detail = Status.VERIFIED, (
            f"perfect accuracy (min margin {min_margin:.3g}); L_x(cf) strictly falls from "
            f"{losses[0]:.4g} (c=1) to {losses[-1]:.4g} (c={grid[-1]:g}); dL/dc(1)={slope:.3g}")
    elif np.all(steps <= 0):
        status, detail = Status.UNDECIDED, (
            f"perfect accuracy but float64 cannot resolve the decrease (min margin "
            f"{min_margin:.3g}); L_x(cf) non-increasing")
    else:
        status, detail = Status.REFUTED, (
            f"perfect accuracy (min margin {min_margin:.3g}) yet L_x(cf) rises along c: "
            f"{losses}")
    return D1LogitsCheck(perfect, min_margin, cs_sorted, losses, slope, strictly, status,
                         detail)


def random_perfect_classifier(rng: np.random.Generator, n_examples: int, n_classes: int,
                              ) -> tuple[np.ndarray, np.ndarray]:
    """Random logits whose correct class wins by a margin in roughly [1e-3, 50]."""
    labels = rng.integers(0, n_classes, size=n_examples)
    logits = rng.normal(0.0, 3.0, size=(n_examples, n_classes))
    rows = np.arange(n_examples)
    logits[rows, labels] = -np.inf
    best_wrong = logits.max(axis=1)
    margin = np.exp(rng.uniform(np.log(1e-3), np.log(50.0), size=n_examples))
    logits[rows, labels] = best_wrong + margin
    return logits, labels


# ----------------------------------------------------------------------------- routes
def _margins(negate: str | None):
    """The claim's margins: ``m_j`` for j = 1..K (an indexed family) and the per-example
    loss ``log(1 + sum_j e^{-c m_j})``. Negating "margins" makes m_1 = -mu < 0."""
    import sympy as sp

    from circeff.theory import symbols as S

    j, big_k = sp.symbols("j K", integer=True, positive=True)
    if negate not in (None, "margins"):
        raise ValueError(f"D1 has no hypothesis {negate!r}")
    mi = sp.IndexedBase("m", positive=True)
    terms = sp.Sum(sp.exp(-S.c * mi[j]), (j, 2, big_k + 1))  # the other K wrong classes
    mu = sp.Symbol("mu", positive=True)
    first = sp.exp(S.c * mu) if negate == "margins" else sp.exp(-S.c * mu)
    return sp.log(1 + first + terms)


def symbolic_D1(negate: str | None = None) -> RouteResult:
    """dL/dc < 0 for any number K + 1 of wrong classes: sympy differentiates the claim's
    per-example loss ``log(1 + e^{-c m_1} + sum_{j=2}^{K+1} e^{-c m_j})`` (an indexed
    sum) and decides the sign of the derivative itself."""
    import sympy as sp  # imported here: check_D1_on_logits callers should not pay for sympy

    from circeff.theory import symbols as S

    started = time.perf_counter()
    loss = _margins(negate)
    facts = [S.sign("dL/dc < 0 (any number of wrong classes)", sp.diff(loss, S.c), "negative")]
    return S.route_from_facts(
        facts, "dL_x(cf)/dc < 0 for all c > 0",
        "the loss is a mean over examples of these; integrate dL/dc over [1, c]", started)


def symbolic_D1_limit(negate: str | None = None) -> RouteResult:
    """L_x(cf) -> 0: each example's loss lies between 0 and log(1 + K e^{-c mu}), mu the
    smallest margin; the bound's limit is 0 when mu > 0."""
    import sympy as sp  # imported here: check_D1_on_logits callers should not pay for sympy

    from circeff.theory import symbols as S

    if negate not in (None, "margins"):
        raise ValueError(f"D1.limit has no hypothesis {negate!r}")
    started = time.perf_counter()
    big_k = sp.Symbol("K", positive=True)
    mu = -sp.Symbol("mu", positive=True) if negate == "margins" else sp.Symbol("mu", positive=True)
    d = sp.Symbol("d", nonnegative=True)  # m_j - mu >= 0: mu is the smallest margin
    m_j = mu + d
    bound = sp.log(1 + big_k * sp.exp(-S.c * mu))
    facts = [
        S.equals("lim_{c->oo} log(1 + K e^{-c mu}) = 0", sp.limit(bound, S.c, sp.oo),
                 sp.Integer(0)),
        S.sign("e^{-c m_j} <= e^{-c mu}: exponent difference -c m_j + c mu <= 0",
               sp.expand(-S.c * m_j + S.c * mu), "nonpositive"),
        S.sign("per-example loss >= 0", sp.log(1 + sp.exp(-S.c * m_j)), "nonnegative"),
    ]
    return S.route_from_facts(facts, "L_x(cf) -> 0 as c -> oo",
                              "squeeze: 0 <= L_x(cf) <= log(1 + K e^{-c mu})", started)


def numeric_D1(seed: int, n_instances: int = 200) -> RouteResult:
    """Seeded random perfect classifiers: strict decrease along c and dL/dc(1) < 0."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    worst_slope = -np.inf
    for i in range(n_instances):
        n_ex, n_cls = int(rng.integers(1, 40)), int(rng.integers(2, 30))
        logits, labels = random_perfect_classifier(rng, n_ex, n_cls)
        res = check_D1_on_logits(logits, labels)
        worst_slope = max(worst_slope, res.dloss_dc_at_1)
        if res.status is not Status.VERIFIED or not res.dloss_dc_at_1 < 0:
            return RouteResult("numeric", Status.REFUTED if res.status is Status.REFUTED
                               else Status.FAILED, f"instance {i}: {res.detail}",
                               {"seed": seed, "instance": i},
                               counterexample={"logits": logits, "labels": labels},
                               seconds=time.perf_counter() - started)
    return RouteResult("numeric", Status.VERIFIED,
                       f"{n_instances} seeded perfect classifiers: L_x(cf) strictly falls for "
                       f"c in {DEFAULT_CS}; max dL/dc(1) = {worst_slope:.3g} < 0",
                       {"seed": seed, "n_instances": n_instances, "cs": DEFAULT_CS,
                        "max_dloss_dc_at_1": worst_slope},
                       seconds=time.perf_counter() - started)


def numeric_D1_limit(seed: int, n_instances: int = 50) -> RouteResult:
    """L_x(cf) at c = 1e1 ... 1e6 falls below 1e-12 on seeded perfect classifiers."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    cs = 10.0 ** np.arange(1, 7)
    worst = 0.0
    for i in range(n_instances):
        logits, labels = random_perfect_classifier(rng, int(rng.integers(1, 20)),
                                                   int(rng.integers(2, 20)))
        mg = margins(logits, labels)
        tail = [cross_entropy_of_margins(mg, c) for c in cs]
        worst = max(worst, tail[-1])
        if tail[-1] > 1e-12 or np.any(np.diff(tail) > 0):
            return RouteResult("numeric", Status.FAILED,
                               f"instance {i}: L_x(cf) at c=1e6 is {tail[-1]:.3g}",
                               {"seed": seed}, seconds=time.perf_counter() - started)
    return RouteResult("numeric", Status.VERIFIED,
                       f"{n_instances} seeded perfect classifiers: L_x(cf) at c=1e6 <= "
                       f"{worst:.3g}, non-increasing over c=1e1..1e6",
                       {"seed": seed, "cs": cs, "max_loss_at_1e6": worst},
                       seconds=time.perf_counter() - started)


# --------------------------------------------------------------- falsification (drop margin>0)
def falsify_D1(seed: int, n_tries: int = 500) -> RouteResult:
    """Drop "every margin > 0": search seeded classifiers with one negative margin for a
    c > 1 where L_x(cf) >= L_x(f)."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    for i in range(n_tries):
        n_ex, n_cls = int(rng.integers(1, 6)), int(rng.integers(2, 6))
        logits, labels = random_perfect_classifier(rng, n_ex, n_cls)
        bad = int(rng.integers(0, n_ex))
        wrong = (labels[bad] + 1 + int(rng.integers(0, n_cls - 1))) % n_cls
        logits[bad, wrong] = logits[bad, labels[bad]] + rng.uniform(0.1, 3.0)  # one m < 0
        mg = margins(logits, labels)
        for c in (1.5, 2.0, 4.0, 10.0):
            before, after = cross_entropy_of_margins(mg), cross_entropy_of_margins(mg, c)
            if after >= before:
                cx = {"logits": np.round(logits, 6), "labels": labels, "c": c,
                      "min_margin": float(mg.min()), "L(f)": before, "L(cf)": after}
                return RouteResult(
                    "numeric", Status.REFUTED,
                    f"one negative margin ({mg.min():.3g}): L_x({c:g} f) = {after:.4g} >= "
                    f"L_x(f) = {before:.4g} ({n_ex}x{n_cls} logits, try {i})",
                    {"seed": seed, "tries": i + 1}, counterexample=cx,
                    seconds=time.perf_counter() - started)
    return RouteResult("numeric", Status.VERIFIED,
                       f"no counterexample in {n_tries} tries", {"seed": seed},
                       seconds=time.perf_counter() - started)


def falsify_D1_limit() -> RouteResult:
    """Drop "every margin > 0": one example, logits (0, 1), label 0 (margin -1) gives
    L_x(cf) = log(1 + e^c) -> oo, proved by sympy."""
    import sympy as sp  # imported here: check_D1_on_logits callers should not pay for sympy

    from circeff.theory import symbols as S

    started = time.perf_counter()
    loss = sp.log(1 + sp.exp(S.c))
    limit = sp.limit(loss, S.c, sp.oo)
    values = {float(cv): float(sp.N(loss.subs(S.c, cv))) for cv in (1, 10, 100)}
    cx = {"logits": [[0.0, 1.0]], "labels": [0], "L(cf) at c": values, "limit": str(limit)}
    if limit == sp.oo:
        return RouteResult("symbolic", Status.REFUTED,
                           "logits (0, 1), label 0 (margin -1): L_x(cf) = log(1+e^c) -> oo "
                           "(sympy limit); L at c=1,10,100: "
                           + ", ".join(f"{v:.4g}" for v in values.values()),
                           {}, counterexample=cx, seconds=time.perf_counter() - started)
    return RouteResult("symbolic", Status.UNDECIDED, f"sympy limit gave {limit}", {},
                       seconds=time.perf_counter() - started)
