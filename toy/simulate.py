"""Gradient descent on the toy's four subweights, for a batch of configurations at once.

A batch of B configurations runs as ONE float64 numpy computation over arrays of shape
``[B]``; the gradient of the four subweights is written out by hand (see
:func:`circeff.toy.circuits.subweight_grad` for the same formula, unvectorised). Curves
are recorded only at log-spaced steps that always include step 0 and the last step.

Defaults are the paper's Table 1 (Figure 2a). Choices the paper leaves open (documented here and in
:class:`ToyConfig`): ``steps = 50_000`` (at the defaults test loss has fallen by step
~10^4 and the weights have converged by ~4 x 10^4); weight decay is ``alpha/q`` times the
q-norm (equal to the paper's ``alpha/2`` at q = 2).

Divergence: after every block of at most ``CHECK_EVERY`` steps the subweights are checked;
a configuration whose subweights are not finite or exceed ``OVERFLOW_BOUND`` in absolute
value is replayed from the last good state one step at a time to find the first bad step,
then frozen (its learning rate set to 0) and reported in ``ToyRun.diverged_step``. Its
recorded curves end before that step; nothing after it is ever written.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from circeff import validate
from circeff.errors import ConfigError, RunError
from circeff.toy import circuits
from circeff.toy.metrics import fit_step, grokking_step

# |subweight| above this counts as divergence. It keeps w = w1 * w2 <= 1e100, so w * w in the
# gradient stays finite; every converging run of the toy has subweights of order 10 or less.
OVERFLOW_BOUND = 1e50
# Divergence is checked at least this often (and at every recording step).
CHECK_EVERY = 256
SUBWEIGHTS = ("w_G1", "w_G2", "w_M1", "w_M2")


@dataclass(frozen=True)
class ToyConfig:
    """One configuration of the toy model (Section 3, Appendix C of the paper). Defaults: Figure 2a (Table 1).

    ``steps`` (50 000) is our choice: the paper's step count is not stated in the text we work from. ``wd_eps`` (0: exact
    norm) smooths ``|w|`` to ``sqrt(w^2 + wd_eps^2)`` in the weight decay; it is required
    (> 0) when ``kappa > q``, where the exact gradient is singular at w = 0 (see
    :mod:`circeff.toy.circuits`).
    """

    n_classes: int = 113     # labels (the paper's "q" in Appendix C; we write n)
    P_G: float = 1.0         # parameter norm of G at unit weight (lower = more efficient)
    P_M: float = 2.0         # parameter norm of M at unit weight
    kappa: float = 1.2       # parameter norm of w C is |w|^(1/kappa) P
    q: float = 2.0           # weight-decay norm exponent (2 = standard weight decay)
    alpha: float = 0.005     # weight-decay strength
    lr: float = 0.01         # gradient-descent learning rate (lambda)
    steps: int = 50_000      # gradient steps (not recovered from the paper; our choice)
    w_G1: float = 0.0        # initial subweights: w_G = w_G1 * w_G2, w_M = w_M1 * w_M2
    w_G2: float = 0.005      # small: G is learned slowly
    w_M1: float = 0.0
    w_M2: float = 1.0
    wd_eps: float = 0.0      # smoothing of |w| in the weight decay (0 = exact)

    def __post_init__(self) -> None:
        validate.integer_at_least("n_classes", self.n_classes, 2)
        for name in ("P_G", "P_M", "kappa", "q", "lr"):
            validate.positive(name, getattr(self, name))
        validate.non_negative("alpha", self.alpha)
        validate.integer_at_least("steps", self.steps, 1)
        for name in SUBWEIGHTS:  # any finite real number
            validate.in_range(name, getattr(self, name), -math.inf, math.inf)
        validate.non_negative("wd_eps", self.wd_eps)
        if self.kappa > self.q and self.wd_eps == 0:
            raise ConfigError(
                "kappa",
                f"must be <= q = {self.q:g} unless wd_eps > 0 (the weight-decay gradient "
                f"|w|^(q/kappa - 1) is singular at w = 0 when kappa > q)",
                self.kappa)

    @property
    def decay_exponent(self) -> float:
        """``r = q / kappa``: the weight-decay cost grows as ``|w|^r``."""
        return self.q / self.kappa

    @property
    def initial_subweights(self) -> tuple[float, float, float, float]:
        return (self.w_G1, self.w_G2, self.w_M1, self.w_M2)

    def replace(self, **changes: object) -> ToyConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ToyRun:
    """Recorded curves of a batch. Arrays are ``[B, T]`` over ``steps`` (``[T]``).

    ``diverged_step[i]`` is the first step whose update made configuration i overflow,
    or -1. Entries recorded at or after it are NaN here and never leave this object:
    :meth:`record` cuts them off. ``final_subweights`` of a diverged configuration is its
    last good state (checked before the block of steps in which it diverged).
    """

    configs: tuple[ToyConfig, ...]
    steps: NDArray[np.int64]
    w_G: NDArray[np.float64]
    w_M: NDArray[np.float64]
    train_loss: NDArray[np.float64]
    test_loss: NDArray[np.float64]
    diverged_step: NDArray[np.int64]
    final_subweights: NDArray[np.float64]  # [B, 4]: w_G1, w_G2, w_M1, w_M2 at the end

    def __len__(self) -> int:
        return len(self.configs)

    def diverged(self, i: int) -> bool:
        return bool(self.diverged_step[i] >= 0)

    def record(self, i: int) -> dict[str, object]:
        """JSON-ready curves of configuration ``i`` (cut before divergence, never NaN)."""
        keep = slice(None)
        if self.diverged(i):
            keep = self.steps < self.diverged_step[i]
        steps = self.steps[keep]
        train, test = self.train_loss[i, keep], self.test_loss[i, keep]
        n = self.configs[i].n_classes
        return {
            "config": dataclasses.asdict(self.configs[i]),
            "steps": [int(t) for t in steps],
            "train_loss": train.tolist(),
            "test_loss": test.tolist(),
            "w_G": self.w_G[i, keep].tolist(),
            "w_M": self.w_M[i, keep].tolist(),
            "fit_step": fit_step(steps, train, n),
            # a run cut short by divergence has no lasting generalisation to report
            "grokking_step": None if self.diverged(i) else grokking_step(steps, train, test, n),
            "diverged_step": int(self.diverged_step[i]) if self.diverged(i) else None,
        }


def record_steps(steps: int, n_record: int = 200) -> NDArray[np.int64]:
    """About ``n_record`` log-spaced steps in [0, steps], always including 0 and ``steps``."""
    validate.integer_at_least("steps", steps, 1)
    validate.integer_at_least("n_record", n_record, 2)
    inner = np.round(np.geomspace(1, steps, n_record - 1)).astype(np.int64)
    return np.unique(np.concatenate([[0], inner, [steps]]))


class _BatchParams:
    """Per-configuration constants as ``[B]`` arrays, folded for the inner loop."""

    def __init__(self, configs: Sequence[ToyConfig]) -> None:
        def col(name: str) -> NDArray[np.float64]:
            return np.array([getattr(c, name) for c in configs], dtype=np.float64)

        n, P_G, P_M = col("n_classes"), col("P_G"), col("P_M")
        kappa, q, alpha, lr = col("kappa"), col("q"), col("alpha"), col("lr")
        self.n_classes = n
        self.log_n1 = np.log(n - 1)
        self.lr = lr
        # lr * dL_wd/dw = lr * (alpha/kappa) * P^q * w * (w^2 + eps^2)^(r/2 - 1), r = q/kappa
        self.lr_A_G = lr * alpha / kappa * P_G ** q
        self.lr_A_M = lr * alpha / kappa * P_M ** q
        self.half_r_minus_1 = (q / kappa) / 2 - 1
        self.eps2 = np.maximum(col("wd_eps"), circuits.EPS_FLOOR) ** 2

    def subset(self, idx: NDArray[np.int64]) -> _BatchParams:
        sub = object.__new__(_BatchParams)
        for key, value in vars(self).items():
            setattr(sub, key, value[idx])
        return sub

    def freeze(self, idx: NDArray[np.int64]) -> None:
        """Stop configurations ``idx`` from moving (after divergence)."""
        for key in ("lr", "lr_A_G", "lr_A_M"):
            getattr(self, key)[idx] = 0.0


def _advance(state: NDArray[np.float64], p: _BatchParams, n_steps: int,
             work: NDArray[np.float64]) -> None:
    """``n_steps`` plain gradient-descent steps on ``state`` ([4, B], in place).

    The hand-written gradient (``u = lr |dL_train/ds|``, ``F = lr dL/dw``)::

        s   = w_G1 w_G2 + w_M1 w_M2
        u   = lr / (1 + exp(s - log(n - 1)))
        F_G = lr_A_G * w_G * (w_G^2 + eps^2)^(r/2 - 1) - u       (same for M)
        w_G1 -= w_G2 F_G ;  w_G2 -= w_G1 F_G                      (simultaneously)
    """
    a, b, c, d = state
    wG, wM, u, fG, fM, t1, t2 = work
    for _ in range(n_steps):
        np.multiply(a, b, out=wG)
        np.multiply(c, d, out=wM)
        np.add(wG, wM, out=u)
        u -= p.log_n1
        np.exp(u, out=u)          # overflow to inf is fine: u becomes lr / inf = 0
        u += 1.0
        np.divide(p.lr, u, out=u)
        for w, f, lr_A in ((wG, fG, p.lr_A_G), (wM, fM, p.lr_A_M)):
            np.multiply(w, w, out=f)
            f += p.eps2
            np.power(f, p.half_r_minus_1, out=f)
            f *= w
            f *= lr_A
            f -= u
        np.multiply(b, fG, out=t1)
        np.multiply(a, fG, out=t2)
        a -= t1
        b -= t2
        np.multiply(d, fM, out=t1)
        np.multiply(c, fM, out=t2)
        c -= t1
        d -= t2


def _bad(state: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Per configuration: any subweight non-finite or beyond OVERFLOW_BOUND."""
    return ~(np.abs(state) <= OVERFLOW_BOUND).all(axis=0)  # NaN compares False


def _first_bad_step(saved: NDArray[np.float64], p: _BatchParams, t0: int,
                    n_steps: int) -> NDArray[np.int64]:
    """Replay from ``saved`` one step at a time; the step number at which each went bad."""
    state = saved.copy()
    work = np.empty((7, state.shape[1]))
    first = np.full(state.shape[1], -1, dtype=np.int64)
    for k in range(1, n_steps + 1):
        _advance(state, p, 1, work)
        newly = _bad(state) & (first < 0)
        first[newly] = t0 + k
        if (first >= 0).all():
            break
    # The replay repeats the same arithmetic, so every configuration is found; should one not
    # be, the end of the block is still a correct upper bound for its divergence step.
    first[first < 0] = t0 + n_steps
    return first


def simulate(configs: ToyConfig | Sequence[ToyConfig], *, n_record: int = 200,
             initial_subweights: NDArray[np.float64] | None = None,
             progress: bool = False, progress_desc: str = "toy") -> ToyRun:
    """Run every configuration for its ``steps`` (all must share ``steps``) as one batch.

    ``initial_subweights`` (``[B, 4]``) overrides the configs' initial subweights, e.g. to
    continue from the end of another run. ``progress`` shows a tqdm bar over step blocks.
    """
    if isinstance(configs, ToyConfig):
        configs = (configs,)
    configs = tuple(configs)
    validate.non_empty("configs", configs)
    steps = configs[0].steps
    if any(c.steps != steps for c in configs):
        raise ConfigError("steps", "must be the same for every configuration of a batch",
                          sorted({c.steps for c in configs}))
    B = len(configs)
    p = _BatchParams(configs)
    if initial_subweights is None:
        state = np.array([c.initial_subweights for c in configs], dtype=np.float64).T.copy()
    else:
        init = np.asarray(initial_subweights, dtype=np.float64)
        if init.shape != (B, 4) or not np.isfinite(init).all():
            raise ConfigError("initial_subweights", f"must be a finite array of shape ({B}, 4)",
                              init.shape)
        state = init.T.copy()
    rec = record_steps(steps, n_record)
    out = {k: np.full((B, rec.size), np.nan) for k in ("w_G", "w_M", "train_loss", "test_loss")}
    diverged = np.full(B, -1, dtype=np.int64)
    work = np.empty((7, B))

    def write(j: int) -> None:
        ok = diverged < 0
        wG, wM = state[0] * state[1], state[2] * state[3]
        n = p.n_classes
        out["w_G"][ok, j] = wG[ok]
        out["w_M"][ok, j] = wM[ok]
        out["train_loss"][ok, j] = np.logaddexp(0.0, p.log_n1 - (wG + wM))[ok]
        test = np.logaddexp(0.0, wM - wG)
        many = n > 2  # the n - 2 untouched labels
        test[many] = np.logaddexp(test[many], np.log(n[many] - 2) - wG[many])
        out["test_loss"][ok, j] = test[ok]

    bounds = np.union1d(rec, np.arange(0, steps + 1, CHECK_EVERY))
    bar = _progress_bar(steps, progress, progress_desc)
    write(0)
    j = 1
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for t0, t1 in zip(bounds[:-1], bounds[1:]):
            saved = state.copy()
            _advance(state, p, int(t1 - t0), work)
            bad = _bad(state) & (diverged < 0)
            if bad.any():
                idx = np.flatnonzero(bad)
                diverged[idx] = _first_bad_step(saved[:, idx], p.subset(idx), int(t0), int(t1 - t0))
                state[:, idx] = saved[:, idx]
                p.freeze(idx)
            if j < rec.size and t1 == rec[j]:
                write(j)
                j += 1
            bar.update(int(t1 - t0))
    bar.close()
    return ToyRun(configs=configs, steps=rec, diverged_step=diverged,
                  final_subweights=state.T.copy(), **out)


def simulate_one(config: ToyConfig, **kwargs: object) -> dict[str, object]:
    """Run one configuration; its JSON-ready record. RunError if it diverges."""
    run = simulate(config, **kwargs)  # type: ignore[arg-type]
    if run.diverged(0):
        raise RunError(
            f"diverged: a subweight overflowed (|w| > {OVERFLOW_BOUND:g} or not finite) at step "
            f"{int(run.diverged_step[0])}; lower --lr (got {config.lr:g})")
    return run.record(0)


def _progress_bar(total: int, enabled: bool, desc: str):  # noqa: ANN202 - tqdm type
    from circeff.progress import bar

    return bar(total=total, disable=not enabled, desc=desc, unit="step", unit_scale=True,
                leave=False, mininterval=0.5)


def final_weights(run: ToyRun) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(w_G, w_M)`` at the end of each run of the batch (``[B]`` each)."""
    sw = run.final_subweights
    return sw[:, 0] * sw[:, 1], sw[:, 2] * sw[:, 3]


__all__ = ["CHECK_EVERY", "OVERFLOW_BOUND", "SUBWEIGHTS", "ToyConfig", "ToyRun", "final_weights",
           "record_steps", "simulate", "simulate_one"]
