"""The binary-operation tasks of the paper's Appendix A (Figure 8) (Power et al. 2021 family), as a registry.

Every task maps a pair ``(a, b)`` of elements of a set of size ``P`` to ``c = a o b``. The
model reads the four tokens ``a o b =`` and is scored on predicting ``c`` at the last position.

Vocabulary (computed from ``P``, never stored): tokens ``0 .. P-1`` are the elements, token
``P`` is the operation symbol ``o`` and token ``P + 1`` is ``=``; so ``d_vocab = P + 2``. The
answer is always an element, so the model's output vocabulary is ``d_vocab_out = P``.

Tasks (``name``: ``c``):

- ``add``: ``a + b mod P``
- ``sub``: ``a - b mod P``
- ``mul``: ``a * b mod P``
- ``div``: ``a / b mod P`` (``b != 0``; ``P`` prime, so that every ``b != 0`` is invertible)
- ``x2_plus_y2``: ``a^2 + b^2 mod P``
- ``x2_xy_y2``: ``a^2 + ab + b^2 mod P``
- ``x2_xy_y2_x``: ``a^2 + ab + b^2 + a mod P``
- ``x3_xy``: ``a^3 + ab mod P``
- ``div_or_sub``: ``a / b mod P`` if ``b`` is odd, else ``a - b mod P`` (``P`` prime)
- ``perm``: composition in the symmetric group ``S_n``. Here "P" is the group size ``n!``
  (``P = 120`` is ``S_5``, the Power et al. task). Element ``i`` is the ``i``-th permutation of
  ``range(n)`` in lexicographic order (element 0 is the identity), and
  ``c = a o b`` is the permutation ``x -> a[b[x]]`` (apply ``b`` first, then ``a``).

The exact list of the paper's nine other tasks is not stated in the text we work from; this is the
Power et al. 2021 family. Random labels (for memorisation-only networks, prediction P1)
replace every example's label, train and test alike, by a uniform draw with ``label_seed``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy

from circeff.errors import ConfigError
from circeff.validate import integer_at_least, one_of

__all__ = [
    "TASKS",
    "Dataset",
    "Task",
    "TaskConfig",
    "get_task",
    "make_dataset",
    "permutation_table",
    "train_indices",
]

# Largest group / modulus we accept: the dataset has P^2 examples (P = 720 is S_6, 518k pairs).
MAX_P = 1000


@dataclass(frozen=True)
class Task:
    """One binary operation: ``label(a, b, p)`` on int64 arrays, which pairs are valid, and
    what ``P`` must satisfy."""

    name: str
    formula: str
    label: Callable[[np.ndarray, np.ndarray, int], np.ndarray]
    needs_prime: bool = False
    excludes_b_zero: bool = False
    is_permutation_group: bool = False

    def check_p(self, p: object) -> int:
        """Return ``p`` if this task is defined for it, else a ConfigError naming ``p``."""
        p = integer_at_least("p", p, 2)
        if p > MAX_P:
            raise ConfigError("p", f"must be <= {MAX_P} (the dataset has p^2 examples)", p)
        if self.needs_prime and not sympy.isprime(p):
            raise ConfigError("p", f"must be prime for task {self.name!r} (it divides by b)", p)
        if self.is_permutation_group and _factorial_degree(p) is None:
            raise ConfigError("p", "must be a group size n! with n >= 2 for task 'perm' (6, 24, 120, 720)", p)
        return p


def _inverse_table(p: int) -> np.ndarray:
    """``inv[b] = b^{-1} mod p`` for prime ``p`` (``inv[0]`` unused, set to 0)."""
    inv = np.zeros(p, dtype=np.int64)
    inv[1:] = [pow(int(x), -1, p) for x in range(1, p)]
    return inv


def _div(a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    return (a * _inverse_table(p)[b]) % p


def _div_or_sub(a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    return np.where(b % 2 == 1, _div(a, b, p), (a - b) % p)


def _factorial_degree(p: int) -> int | None:
    """``n`` with ``n! == p`` and ``n >= 2``, or None."""
    n, f = 2, 2
    while f < p:
        n += 1
        f *= n
    return n if f == p else None


@lru_cache(maxsize=8)
def permutation_table(p: int) -> np.ndarray:
    """Cayley table ``[P, P]`` of ``S_n`` (``P = n!``): ``table[a, b]`` is the index of ``x -> a[b[x]]``."""
    n = _factorial_degree(p)
    if n is None:
        raise ConfigError("p", "must be a group size n! with n >= 2 for task 'perm'", p)
    perms = np.array(list(itertools.permutations(range(n))), dtype=np.int64)  # [P, n], lexicographic
    composed = perms[:, perms]  # [P, P, n]: composed[a, b, x] = perms[a, perms[b, x]]
    # Read a permutation as a base-n number: the order of these keys is the lexicographic
    # order, so the (already sorted) keys of `perms` turn a permutation into its index.
    place = n ** np.arange(n - 1, -1, -1)
    table = np.searchsorted(perms @ place, composed @ place)
    table.setflags(write=False)
    return table


def _perm(a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    return permutation_table(p)[a, b]


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("add", "a + b mod P", lambda a, b, p: (a + b) % p),
        Task("sub", "a - b mod P", lambda a, b, p: (a - b) % p),
        Task("mul", "a * b mod P", lambda a, b, p: (a * b) % p),
        Task("div", "a / b mod P (b != 0)", _div, needs_prime=True, excludes_b_zero=True),
        Task("x2_plus_y2", "a^2 + b^2 mod P", lambda a, b, p: (a * a + b * b) % p),
        Task("x2_xy_y2", "a^2 + ab + b^2 mod P", lambda a, b, p: (a * a + a * b + b * b) % p),
        Task("x2_xy_y2_x", "a^2 + ab + b^2 + a mod P", lambda a, b, p: (a * a + a * b + b * b + a) % p),
        Task("x3_xy", "a^3 + ab mod P", lambda a, b, p: (a * a % p * a + a * b) % p),
        Task("div_or_sub", "a / b mod P if b odd, else a - b mod P", _div_or_sub, needs_prime=True),
        Task("perm", "composition a o b in S_n, P = n!", _perm, is_permutation_group=True),
    )
}


def get_task(name: object) -> Task:
    """The registry entry for ``name``; a ConfigError naming ``task`` if unknown."""
    return one_of("task", TASKS, name)


@dataclass(frozen=True)
class TaskConfig:
    """Which task, at which ``P``, with true or random labels (shared by every model of a batch).

    Attributes:
        name: a key of :data:`TASKS`.
        p: modulus (or group size for ``perm``).
        random_labels: replace every label (train and test) by a uniform draw; for
            memorisation-only networks (prediction P1). Test accuracy is then chance, 1/P.
        label_seed: seed of that draw (ignored without ``random_labels``).
    """

    name: str = "add"
    p: int = 113
    random_labels: bool = False
    label_seed: int = 0

    def __post_init__(self) -> None:
        get_task(self.name).check_p(self.p)
        if not isinstance(self.random_labels, bool):
            raise ConfigError("random_labels", "must be true or false", self.random_labels)
        integer_at_least("label_seed", self.label_seed, 0)

    @property
    def task(self) -> Task:
        return TASKS[self.name]

    @property
    def op_token(self) -> int:
        return self.p

    @property
    def eq_token(self) -> int:
        return self.p + 1

    @property
    def d_vocab(self) -> int:
        """Input vocabulary: the P elements, the operation symbol and '='."""
        return self.p + 2

    @property
    def d_vocab_out(self) -> int:
        """Output vocabulary: the answer is always one of the P elements."""
        return self.p

    @property
    def n_ctx(self) -> int:
        """Sequence ``a o b =``."""
        return 4

    @property
    def n_examples(self) -> int:
        return self.p * (self.p - 1) if self.task.excludes_b_zero else self.p * self.p


@dataclass(frozen=True, eq=False)
class Dataset:
    """All examples of a task, in the order of (a, b) (a major), valid pairs only.

    ``a``, ``b``, ``labels`` are read-only int64 arrays of length ``n_examples``; the token
    sequence of example ``i`` is ``[a[i], op, b[i], =]``. ``true_labels`` is ``a o b`` even when
    ``labels`` are random.
    """

    config: TaskConfig
    a: np.ndarray
    b: np.ndarray
    labels: np.ndarray
    true_labels: np.ndarray

    def __len__(self) -> int:
        return len(self.a)

    def tokens(self) -> np.ndarray:
        """``[n_examples, 4]`` token ids ``a o b =``."""
        n = len(self.a)
        return np.stack([self.a, np.full(n, self.config.op_token), self.b, np.full(n, self.config.eq_token)], axis=1)


def make_dataset(config: TaskConfig) -> Dataset:
    """Every valid ``(a, b)`` with its label (random labels drawn with ``config.label_seed``)."""
    p = config.p
    a, b = (x.ravel().astype(np.int64) for x in np.meshgrid(np.arange(p), np.arange(p), indexing="ij"))
    if config.task.excludes_b_zero:
        keep = b != 0
        a, b = a[keep], b[keep]
    true_labels = config.task.label(a, b, p).astype(np.int64)
    if config.random_labels:
        labels = np.random.default_rng(config.label_seed).integers(0, p, size=len(a), dtype=np.int64)
    else:
        labels = true_labels
    for arr in (a, b, labels, true_labels):
        arr.setflags(write=False)
    return Dataset(config, a, b, labels, true_labels)


def train_indices(n_examples: int, train_size: int, data_seed: int) -> np.ndarray:
    """Sorted indices of the training examples: the first ``train_size`` of a random
    permutation drawn with ``data_seed``.

    Taking a prefix of one permutation makes the training sets of one ``data_seed`` nested
    (D' < D gives a subset of the D-set), which the ungrokking experiment relies on.
    """
    if not 1 <= train_size <= n_examples:
        raise ConfigError("train_size", f"must be in [1, {n_examples}]", train_size)
    perm = np.random.default_rng(data_seed).permutation(n_examples)
    return np.sort(perm[:train_size])
