"""The toy model's two lookup-table circuits and its losses, as pure functions (the paper's Section 3, Appendix C).

Every training example looks the same to the toy, and so does every test example, so
one example per split stands for the whole split. Without loss of generality the true
label is index ``TRUE_LABEL`` and the memorising circuit's fixed wrong test label is
``WRONG_LABEL``.

- G (generalising): one-hot of the true label on train and on test.
- M (memorising): one-hot of the true label on train, one-hot of a wrong label on test.

Logits are ``w_G * y_G + w_M * y_M``, so the train loss depends on the weights only
through ``s = w_G + w_M`` (the setting of Theorem D.4).

Weight decay models the parameter norm of ``w C`` as ``|w|^(1/kappa) P`` (a kappa-layer
bias-free ReLU MLP scales its output by c^kappa when every parameter scales by c) and
uses the q-norm form of the effective loss (Appendix D, Eq. 6)::

    L_wd = (alpha / q) * ((|w_G|^(1/kappa) P_G)^q + (|w_M|^(1/kappa) P_M)^q)

For q = 2 this is the displayed ``alpha/2`` form of Appendix C, so both readings agree
at the paper's setting. The absolute value keeps the norm defined if a weight crosses
zero (norms are non-negative).

Smoothing (``wd_eps``): with ``r = q/kappa < 1`` the gradient ``|w|^(r-1)`` is infinite at
w = 0, where the toy starts (w_G1(0) = w_M1(0) = 0). A ``wd_eps > 0`` replaces ``|w|``
by ``sqrt(w^2 + wd_eps^2)``: the cost is ``(w^2 + wd_eps^2)^(r/2)`` and its gradient
``r w (w^2 + wd_eps^2)^(r/2 - 1)`` is finite everywhere. With ``wd_eps = 0`` the cost
is exact; :class:`circeff.toy.simulate.ToyConfig` refuses ``kappa > q`` then.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

TRUE_LABEL = 0
WRONG_LABEL = 1
SPLITS = ("train", "test")

# With wd_eps = 0 and r >= 1 the exact gradient at w = 0 is finite (0 for r > 1, the
# one-sided slope for r = 1) but the formula w * (w^2)^(r/2 - 1) reads 0 * inf there.
# Flooring eps at 1e-150 gives exactly 0 at w = 0 and changes nothing for |w| > 1e-140.
EPS_FLOOR = 1e-150


def generalising_circuit(split: str, n_classes: int) -> NDArray[np.float64]:
    """y_G: one-hot of the true label, on both splits. Shape ``[n_classes]``."""
    _check_split(split)
    y = np.zeros(n_classes)
    y[TRUE_LABEL] = 1.0
    return y


def memorising_circuit(split: str, n_classes: int) -> NDArray[np.float64]:
    """y_M: one-hot of the true label on train, of a fixed wrong label on test. Shape ``[n_classes]``."""
    _check_split(split)
    y = np.zeros(n_classes)
    y[TRUE_LABEL if split == "train" else WRONG_LABEL] = 1.0
    return y


def logits(w_G: ArrayLike, w_M: ArrayLike, split: str, n_classes: int) -> NDArray[np.float64]:
    """Logits ``w_G y_G + w_M y_M`` of one example of ``split``. Shape ``[..., n_classes]``."""
    w_G = np.asarray(w_G, dtype=np.float64)[..., None]
    w_M = np.asarray(w_M, dtype=np.float64)[..., None]
    return w_G * generalising_circuit(split, n_classes) + w_M * memorising_circuit(split, n_classes)


def cross_entropy(logits_: ArrayLike, label: int = TRUE_LABEL) -> NDArray[np.float64]:
    """``-log softmax(logits)[label]`` over the last axis, computed stably."""
    z = np.asarray(logits_, dtype=np.float64)
    top = z.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(z - top).sum(axis=-1)) + top[..., 0]
    return lse - z[..., label]


def train_loss(w_G: ArrayLike, w_M: ArrayLike, n_classes: int) -> NDArray[np.float64]:
    """``log(1 + (n - 1) exp(-(w_G + w_M)))``, the cross-entropy of the train logits."""
    s = np.asarray(w_G, dtype=np.float64) + np.asarray(w_M, dtype=np.float64)
    return np.logaddexp(0.0, np.log(n_classes - 1) - s)


def test_loss(w_G: ArrayLike, w_M: ArrayLike, n_classes: int) -> NDArray[np.float64]:
    """``-log(e^w_G / (e^w_G + e^w_M + n - 2))``, the cross-entropy of the test logits."""
    w_G = np.asarray(w_G, dtype=np.float64)
    w_M = np.asarray(w_M, dtype=np.float64)
    out = np.logaddexp(0.0, w_M - w_G)
    if n_classes > 2:  # the n - 2 labels that neither circuit touches
        out = np.logaddexp(out, np.log(n_classes - 2) - w_G)
    return out


# Not a pytest test, although its name starts with "test_" (it is imported into test modules).
test_loss.__test__ = False  # type: ignore[attr-defined]


def train_loss_grad(s: ArrayLike, n_classes: int) -> NDArray[np.float64]:
    """``d/ds log(1 + (n-1) e^-s) = -1 / (1 + e^(s - log(n-1)))`` (always in (-1, 0))."""
    s = np.asarray(s, dtype=np.float64)
    with np.errstate(over="ignore"):  # e^(large) = inf gives the correct limit -0
        return -1.0 / (1.0 + np.exp(s - np.log(n_classes - 1)))


def weight_decay(w_G: ArrayLike, w_M: ArrayLike, P_G: float, P_M: float, kappa: float,
                 q: float, alpha: float, wd_eps: float = 0.0) -> NDArray[np.float64]:
    """``(alpha/q) ((|w_G|^(1/kappa) P_G)^q + (|w_M|^(1/kappa) P_M)^q)`` (smoothed by wd_eps)."""
    return (_norm_cost(w_G, P_G, kappa, q, alpha, wd_eps)
            + _norm_cost(w_M, P_M, kappa, q, alpha, wd_eps))


def weight_decay_grad(w: ArrayLike, P: float, kappa: float, q: float, alpha: float,
                      wd_eps: float = 0.0) -> NDArray[np.float64]:
    """d/dw of ``(alpha/q) P^q (w^2 + eps^2)^(q/(2 kappa))`` = ``(alpha/kappa) P^q w (w^2+eps^2)^(r/2-1)``."""
    w = np.asarray(w, dtype=np.float64)
    r = q / kappa
    eps2 = max(wd_eps, EPS_FLOOR) ** 2
    return (alpha / kappa) * P ** q * w * np.power(w * w + eps2, r / 2 - 1)


def total_loss(w_G: ArrayLike, w_M: ArrayLike, *, n_classes: int, P_G: float, P_M: float,
               kappa: float, q: float, alpha: float, wd_eps: float = 0.0) -> NDArray[np.float64]:
    """What gradient descent minimises: train loss plus weight decay."""
    return train_loss(w_G, w_M, n_classes) + weight_decay(w_G, w_M, P_G, P_M, kappa, q, alpha, wd_eps)


def subweight_grad(subweights: ArrayLike, *, n_classes: int, P_G: float, P_M: float,
                   kappa: float, q: float, alpha: float, wd_eps: float = 0.0) -> NDArray[np.float64]:
    """Gradient of :func:`total_loss` in ``(w_G1, w_G2, w_M1, w_M2)`` (last axis), by the chain rule.

    With ``F_G = dL/dw_G`` and ``w_G = w_G1 w_G2``: ``dL/dw_G1 = w_G2 F_G``, ``dL/dw_G2 = w_G1 F_G``;
    the same for M. This is the reference the vectorised loop in ``simulate`` is tested against.
    """
    sw = np.asarray(subweights, dtype=np.float64)
    a, b, c, d = sw[..., 0], sw[..., 1], sw[..., 2], sw[..., 3]
    w_G, w_M = a * b, c * d
    dLs = train_loss_grad(w_G + w_M, n_classes)
    F_G = dLs + weight_decay_grad(w_G, P_G, kappa, q, alpha, wd_eps)
    F_M = dLs + weight_decay_grad(w_M, P_M, kappa, q, alpha, wd_eps)
    return np.stack([b * F_G, a * F_G, d * F_M, c * F_M], axis=-1)


def _norm_cost(w: ArrayLike, P: float, kappa: float, q: float, alpha: float,
               wd_eps: float) -> NDArray[np.float64]:
    w = np.asarray(w, dtype=np.float64)
    r = q / kappa
    # (w^2 + eps^2)^(r/2) - eps^r keeps the smoothed cost at 0 for w = 0, like the exact one.
    smooth = np.power(w * w + wd_eps ** 2, r / 2) - (wd_eps ** r if wd_eps > 0 else 0.0)
    return (alpha / q) * P ** q * smooth


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
