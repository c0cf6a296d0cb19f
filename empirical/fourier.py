"""The trigonometric / memorisation logit decomposition of the paper's Appendix B.

Collect a model's logits for every input ``(a, b)`` and every label ``c`` into a tensor
``F[a, b, c]`` of shape ``(P, P, P)``. The generalising circuit of modular addition (Nanda et
al. 2023) produces logits that depend on the inputs and the label only through
``s = (a + b - c) mod P``, as sums of ``cos(2 pi k s / P)`` and ``sin(2 pi k s / P)``. So:

* **trigonometric logits** = orthogonal projection of ``F`` (in ``R^{P^3}``, Frobenius inner
  product) onto the span ``W`` of the ``P - 1`` vectors ``cos/sin(2 pi k (a + b - c) / P)``,
  ``k = 1 .. (P - 1) / 2``;
* **memorisation logits** = ``F`` minus the trigonometric logits.

How it is computed (never a ``P^3 x (P - 1)`` matrix)
------------------------------------------------------
For odd ``P`` the functions ``cos/sin(2 pi k s / P)``, ``k = 1 .. (P - 1) / 2``, are a basis of
the zero-mean functions on ``Z_P`` (discrete Fourier basis without the constant). Hence

    W = { x : x[a, b, c] = h((a + b - c) mod P)  with  sum_s h(s) = 0 }.

Let ``U`` be all functions of ``s`` (no zero-mean condition) and ``L_s`` the level set
``{(a, b, c) : a + b - c = s mod P}``. Every level set has exactly ``P^2`` points: for each of
the ``P^2`` pairs ``(a, b)`` exactly one ``c`` (namely ``a + b - s``) lies in it. The indicator
vectors ``1_{L_s}`` are therefore orthogonal with equal squared norm ``P^2`` and form an
orthogonal basis of ``U``, so

    proj_U F = sum_s <F, 1_{L_s}> / P^2 * 1_{L_s} = g((a + b - c) mod P),
    g(s)     = mean of F over L_s   (the "diagonal mean" along a + b - c).

The constant vectors lie in ``U`` and ``W`` is the orthogonal complement of the constants
inside ``U``, so ``proj_W = proj_U - proj_const``. The projection onto the constants is the
global mean of ``F``, which equals ``mean_s g(s)`` because all level sets have the same size.
Therefore

    trig[a, b, c] = g((a + b - c) mod P) - mean(g).

That is two gathers of ``P^3`` entries: O(P^3) time, no matrix. The per-frequency split of the
projection comes from the FFT of ``g`` (see :func:`decompose`).

Even ``P``: the paper only uses odd primes. For even ``P`` the zero-mean functions on ``Z_P``
also contain the Nyquist mode ``cos(pi s) = (-1)^s`` (``k = P / 2``; its sine vanishes), so
``W`` is still all zero-mean functions of ``s`` (dimension ``P - 1``) and the formula above holds
unchanged; frequency ``P / 2`` contributes one direction instead of two.

Extra vocabulary: a transformer's unembedding also scores the non-number tokens (``+``, ``=``),
so its logits have shape ``(P, P, V)`` with ``V > P``. :func:`decompose` accepts that and keeps
the first ``P`` label columns, which are the numbers ``0 .. P - 1`` in the task's vocabulary.

Arrays: inputs may be numpy arrays or torch tensors (any device, any float dtype); everything
is computed in float64 and returned as read-only numpy arrays. This module imports no torch and
knows nothing about the training engine.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from circeff.errors import ConfigError
from circeff.validate import in_range, integer_at_least

__all__ = [
    "CircuitProxies",
    "FourierDecomposition",
    "addition_labels",
    "correct_class_proxies",
    "decompose",
    "trig_share",
]


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FourierDecomposition:
    """Result of :func:`decompose` for one logits tensor (all arrays read-only, float64).

    Attributes:
        modulus: ``P``.
        trig: ``[P, P, P]`` trigonometric logits (projection onto ``W``).
        mem: ``[P, P, P]`` memorisation logits, ``logits - trig`` (on the first ``P`` label
            columns).
        frequencies: ``[K]`` the frequencies ``k = 1 .. floor(P / 2)``.
        frequency_norms: ``[K]`` Frobenius norm (in ``R^{P^3}``) of the projection of the logits
            onto the span of ``cos/sin(2 pi k (a + b - c) / P)`` for each ``k``. The squares add
            up to ``||trig||^2`` (the directions are orthogonal).
        key_frequencies: the fewest frequencies, largest norm first, whose squared norms cover
            at least ``key_coverage`` of ``||trig||^2``; empty if ``trig`` is zero.
        key_coverage: the coverage used for ``key_frequencies``.
        trig_fraction: ``||trig||^2 / ||F||^2`` (raw Frobenius; 0 for an all-zero ``F``). For
            iid Gaussian logits its expectation is ``(P - 1) / P^3``.
        trig_share: ``||trig||^2 / ||F - mean_c F||^2`` where ``mean_c F`` is the per-input mean
            over labels (0 if that is zero). This is "the fraction of the logit norm in the
            trigonometric subspace" used to accept G-only networks (Section 5.1: > 95%). For iid
            Gaussian logits its expectation is ``1 / P^2``.
    """

    modulus: int
    trig: np.ndarray
    mem: np.ndarray
    frequencies: np.ndarray
    frequency_norms: np.ndarray
    key_frequencies: tuple[int, ...]
    key_coverage: float
    trig_fraction: float
    trig_share: float

    def top_frequencies(self, n: int) -> tuple[int, ...]:
        """The ``n`` frequencies with the largest projection norm, largest first."""
        integer_at_least("n", n, 0)
        order = np.argsort(-self.frequency_norms, kind="stable")[:n]
        return tuple(int(k) for k in self.frequencies[order])


@dataclass(frozen=True)
class CircuitProxies:
    """Correct-class circuit-strength proxies of Appendix B / Figure 9.

    ``trig_*`` is the proxy for the generalising circuit G, ``mem_*`` for the memorising
    circuit M: the mean over a split of the trigonometric (memorisation) logit at the correct
    label. A split with no examples gives ``nan``. Known flaw (paper): when both circuits are
    present the trig proxy overestimates G and underestimates M.
    """

    trig_train: float
    trig_test: float
    mem_train: float
    mem_test: float
    n_train: int
    n_test: int


# ---------------------------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------------------------


def _to_numpy(x: Any) -> np.ndarray:
    """numpy view of an array or torch tensor (detached, on the CPU); no torch import needed."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _logits_cube(logits: Any) -> np.ndarray:
    """float64 ``[P, P, P]`` from ``[P, P, V]`` logits, ``V >= P`` (first ``P`` label columns)."""
    arr = _to_numpy(logits)
    if arr.ndim != 3 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 2 or arr.shape[2] < arr.shape[0]:
        raise ConfigError("logits", "must have shape (P, P, V) with P >= 2 and V >= P", tuple(arr.shape))
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ConfigError("logits", "must be a real-valued array", str(arr.dtype))
    p = arr.shape[0]
    cube = np.asarray(arr[:, :, :p], dtype=np.float64)
    if not np.all(np.isfinite(cube)):
        raise ConfigError("logits", "must be finite (no nan or inf)", "non-finite values")
    return cube


@functools.lru_cache(maxsize=4)
def _level_index(p: int) -> np.ndarray:
    """``idx[a * P + b, c] = (a + b - c) mod P``, shape ``[P^2, P]`` (read-only, cached).

    The same table serves both directions of the gather: reading ``F`` along a level set
    (``c = a + b - s`` is the same arithmetic as ``s = a + b - c``) and broadcasting ``g`` back.
    """
    a = np.arange(p)
    t = (a[:, None] + a[None, :]).reshape(-1) % p  # a + b mod P for each input row
    idx = (t[:, None] - a[None, :]) % p
    idx = idx.astype(np.intp)
    idx.setflags(write=False)
    return idx


def _readonly(x: np.ndarray) -> np.ndarray:
    x.setflags(write=False)
    return x


# ---------------------------------------------------------------------------------------------
# The decomposition
# ---------------------------------------------------------------------------------------------


def _diagonal_means(cube: np.ndarray) -> np.ndarray:
    """``g[s]`` = mean of ``F`` over the ``P^2`` points with ``a + b - c = s (mod P)``."""
    p = cube.shape[0]
    idx = _level_index(p)
    rows = cube.reshape(p * p, p)
    # along_level[r, s] = F[a, b, (a + b - s) mod P]: each column s is one level set.
    along_level = np.take_along_axis(rows, idx, axis=1)
    return along_level.mean(axis=0)


def _frequency_norms(g_centred: np.ndarray) -> np.ndarray:
    """Per-frequency Frobenius norms of the projection, from the FFT of ``g``.

    With ``G[k] = sum_s g(s) exp(-2 pi i k s / P)`` the part of ``g`` at frequency ``+-k`` is
    ``(2 / P) Re(G[k] exp(2 pi i k s / P))`` (``(1 / P) G[k] (-1)^s`` at the Nyquist ``k = P/2``).
    Broadcast over ``P^2`` points per level set, Parseval gives the squared norm in ``R^{P^3}``:
    ``P^2 * (2 / P) |G[k]|^2 = 2 P |G[k]|^2`` (``P |G[k]|^2`` at the Nyquist frequency).
    """
    p = g_centred.shape[0]
    spectrum = np.fft.rfft(g_centred)[1:]  # k = 1 .. floor(P / 2)
    weight = np.full(spectrum.shape, 2.0 * p)
    if p % 2 == 0:
        weight[-1] = float(p)  # the Nyquist mode has one direction, cos(pi s)
    return np.sqrt(weight) * np.abs(spectrum)


def _key_frequencies(frequencies: np.ndarray, norms: np.ndarray, coverage: float) -> tuple[int, ...]:
    sq = norms**2
    total = float(sq.sum())
    if total == 0.0:
        return ()
    order = np.argsort(-sq, kind="stable")
    cumulative = np.cumsum(sq[order])
    n = int(np.searchsorted(cumulative, coverage * total, side="left")) + 1
    n = min(n, len(order))
    return tuple(int(k) for k in frequencies[order[:n]])


def _ratio(num: float, den: float) -> float:
    # An all-zero (or all-constant) tensor has nothing to share; call its share 0, not nan.
    return num / den if den > 0.0 else 0.0


def decompose(logits: Any, *, key_coverage: float = 0.9) -> FourierDecomposition:
    """Split logits into trigonometric and memorisation parts (Appendix B).

    Args:
        logits: ``[P, P, V]`` logits indexed ``[a, b, c]``, ``V >= P`` (numpy or torch). Only
            the first ``P`` label columns (the numbers ``0 .. P - 1``) are used; extra
            vocabulary columns such as ``+`` and ``=`` are dropped.
        key_coverage: in ``(0, 1]``; ``key_frequencies`` is the smallest set of frequencies,
            largest first, whose squared projection norms cover this fraction of
            ``||trig||^2``. 0.9 is our choice (the paper's rule was not recorded); use
            :meth:`FourierDecomposition.top_frequencies` for a fixed count instead.

    Returns:
        A :class:`FourierDecomposition`. ``trig + mem`` equals the first ``P`` label columns of
        ``logits`` to rounding.
    """
    in_range("key_coverage", key_coverage, 0.0, 1.0, lo_open=True)
    cube = _logits_cube(logits)
    p = cube.shape[0]

    g = _diagonal_means(cube)
    g_centred = g - g.mean()  # remove the constant direction (proj_W = proj_U - proj_const)
    trig = g_centred[_level_index(p)].reshape(p, p, p)
    mem = cube - trig

    frequencies = np.arange(1, p // 2 + 1)
    norms = _frequency_norms(g_centred)
    trig_sq = float(np.sum(trig**2))
    total_sq = float(np.sum(cube**2))
    # The per-input mean over labels is invisible to softmax (and to accuracy); it is also
    # orthogonal to W (every h in W has zero mean over c for fixed a, b), so removing it only
    # drops from the denominator a part the trig subspace can never hold.
    centred_sq = float(np.sum((cube - cube.mean(axis=2, keepdims=True)) ** 2))

    return FourierDecomposition(
        modulus=p,
        trig=_readonly(trig),
        mem=_readonly(mem),
        frequencies=_readonly(frequencies),
        frequency_norms=_readonly(norms),
        key_frequencies=_key_frequencies(frequencies, norms, key_coverage),
        key_coverage=float(key_coverage),
        trig_fraction=_ratio(trig_sq, total_sq),
        trig_share=_ratio(trig_sq, centred_sq),
    )


def trig_share(logits: Any) -> float:
    """Fraction of the squared logit norm in the trigonometric subspace.

    ``||trig||^2 / ||F - mean_c F||^2``: the squared Frobenius norm after removing each input's
    mean over labels, because softmax ignores that mean. Squared norms are used because they
    add over orthogonal subspaces (trig share + mem share = 1 after centring). A G-only network
    (Section 5.1: "more than 95% of the logit norm in the trigonometric subspace") has a share near 1;
    iid random logits have ``1 / P^2`` on average.
    """
    return decompose(logits).trig_share


# ---------------------------------------------------------------------------------------------
# Circuit-strength proxies (Figure 9)
# ---------------------------------------------------------------------------------------------


def addition_labels(modulus: int) -> np.ndarray:
    """``c*(a, b) = (a + b) mod P`` as an int ``[P, P]`` table."""
    p = integer_at_least("modulus", modulus, 2)
    a = np.arange(p)
    return (a[:, None] + a[None, :]) % p


def _split_mean(values: np.ndarray, mask: np.ndarray) -> float:
    # An empty split (e.g. training on the full dataset leaves no test set) has no mean.
    return float(values[mask].mean()) if mask.any() else float("nan")


def correct_class_proxies(
    decomposition: FourierDecomposition,
    train_mask: Any,
    labels: Any = None,
    *,
    centre: bool = True,
) -> CircuitProxies:
    """Mean correct-class trig and mem logits over the train and the test split.

    Args:
        decomposition: from :func:`decompose`.
        train_mask: bool ``[P, P]``, True where ``(a, b)`` is in the training set; the test split
            is its complement.
        labels: int ``[P, P]`` correct label ``c*(a, b)`` in ``[0, P)``; default ``(a + b) mod P``.
            Pass the random label table for memorisation-only (random-label) networks.
        centre: subtract each input's mean over labels from ``mem`` before reading the correct
            class (``trig`` already has zero mean over labels). Softmax and accuracy ignore that
            mean, so without centring the M proxy would carry an arbitrary per-input offset. The
            paper does not say which it used; ``centre=False`` reads the raw memorisation logits.
            With centring, ``trig + mem`` proxies add up to the mean centred correct logit.
    """
    p = decomposition.modulus
    mask = _to_numpy(train_mask)
    if mask.shape != (p, p) or mask.dtype != np.bool_:
        raise ConfigError("train_mask", f"must be a bool array of shape ({p}, {p})",
                          f"{mask.dtype} {tuple(mask.shape)}")
    table = addition_labels(p) if labels is None else _to_numpy(labels)
    if table.shape != (p, p) or not np.issubdtype(table.dtype, np.integer):
        raise ConfigError("labels", f"must be an integer array of shape ({p}, {p})",
                          f"{table.dtype} {tuple(table.shape)}")
    if table.min() < 0 or table.max() >= p:
        raise ConfigError("labels", f"must lie in [0, {p})", (int(table.min()), int(table.max())))

    mem = decomposition.mem
    if centre:
        mem = mem - mem.mean(axis=2, keepdims=True)
    pick = table[:, :, None]
    trig_correct = np.take_along_axis(decomposition.trig, pick, axis=2)[:, :, 0]
    mem_correct = np.take_along_axis(mem, pick, axis=2)[:, :, 0]
    test_mask = ~mask
    return CircuitProxies(
        trig_train=_split_mean(trig_correct, mask),
        trig_test=_split_mean(trig_correct, test_mask),
        mem_train=_split_mean(mem_correct, mask),
        mem_test=_split_mean(mem_correct, test_mask),
        n_train=int(mask.sum()),
        n_test=int(test_mask.sum()),
    )
