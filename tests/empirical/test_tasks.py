"""Task registry (Appendix A): labels, validity of P, vocabulary, splits, random labels."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from circeff.empirical.config import resolve_train_size
from circeff.empirical.tasks import TASKS, TaskConfig, get_task, make_dataset, permutation_table, train_indices
from circeff.errors import ConfigError
from tests.strategies.empirical import SMALL_PRIMES, task_and_p


def _expected_label(name: str, a: int, b: int, p: int) -> int:
    """The operations written out once more, independently, with Python integers."""
    inv = pow(b, -1, p) if b % p else None
    return {
        "add": lambda: (a + b) % p,
        "sub": lambda: (a - b) % p,
        "mul": lambda: (a * b) % p,
        "div": lambda: (a * inv) % p,
        "x2_plus_y2": lambda: (a**2 + b**2) % p,
        "x2_xy_y2": lambda: (a**2 + a * b + b**2) % p,
        "x2_xy_y2_x": lambda: (a**2 + a * b + b**2 + a) % p,
        "x3_xy": lambda: (a**3 + a * b) % p,
        "div_or_sub": lambda: (a * inv) % p if b % 2 == 1 else (a - b) % p,
    }[name]()


def test_registry_holds_addition_and_nine_other_operations():
    assert "add" in TASKS and len(TASKS) == 10
    assert all(TASKS[name].name == name for name in TASKS)


@given(task_and_p())
def test_labels_are_elements_and_every_valid_pair_appears_once(tp):
    name, p = tp
    data = make_dataset(TaskConfig(name, p))
    assert data.labels.min() >= 0 and data.labels.max() < p
    pairs = set(zip(data.a.tolist(), data.b.tolist()))
    assert len(pairs) == len(data) == TaskConfig(name, p).n_examples
    if TASKS[name].excludes_b_zero:
        assert all(b != 0 for _, b in pairs)


@given(task_and_p(tasks=tuple(n for n in TASKS if n != "perm")), st.data())
def test_labels_are_the_operation(tp, data):
    name, p = tp
    ds = make_dataset(TaskConfig(name, p))
    for i in data.draw(st.lists(st.integers(0, len(ds) - 1), min_size=1, max_size=20)):
        a, b = int(ds.a[i]), int(ds.b[i])
        assert ds.labels[i] == _expected_label(name, a, b, p)


@pytest.mark.parametrize("p", [6, 24])
def test_perm_task_is_the_symmetric_group(p):
    """Identity is element 0, every row and column is a permutation, composition is associative
    and matches composing the permutations by hand."""
    table = permutation_table(p)
    n = {6: 3, 24: 4}[p]
    perms = list(itertools.permutations(range(n)))
    assert (table[0] == np.arange(p)).all() and (table[:, 0] == np.arange(p)).all()
    for row in (*table, *table.T):
        assert sorted(row.tolist()) == list(range(p))
    a, b, c = np.meshgrid(np.arange(p), np.arange(p), np.arange(p), indexing="ij")
    assert (table[table[a, b], c] == table[a, table[b, c]]).all()
    for x, y in [(1, 2), (p - 1, 3), (4, 5)]:
        composed = tuple(perms[x][perms[y][i]] for i in range(n))
        assert perms[table[x, y]] == composed


@pytest.mark.parametrize("name", ["div", "div_or_sub"])
def test_division_tasks_require_prime_p(name):
    with pytest.raises(ConfigError, match="^p: must be prime"):
        TaskConfig(name, 21)
    TaskConfig("add", 21)  # addition is defined for any modulus


def test_perm_requires_factorial_group_size():
    with pytest.raises(ConfigError, match="^p: must be a group size"):
        TaskConfig("perm", 100)


def test_unknown_task_names_the_field():
    with pytest.raises(ConfigError, match="^task: must be one of"):
        get_task("pow")


def test_vocabulary_is_derived_from_p_not_stored():
    cfg = TaskConfig("add", 59)
    assert (cfg.d_vocab, cfg.d_vocab_out, cfg.n_ctx) == (61, 59, 4)
    assert {f.name for f in dataclasses.fields(cfg)} == {"name", "p", "random_labels", "label_seed"}
    tokens = make_dataset(cfg).tokens()
    assert (tokens[:, 1] == 59).all() and (tokens[:, 3] == 60).all()


def test_random_labels_replace_train_and_test_labels_with_seeded_uniform_draws():
    true = make_dataset(TaskConfig("add", 31))
    rand = make_dataset(TaskConfig("add", 31, random_labels=True, label_seed=3))
    again = make_dataset(TaskConfig("add", 31, random_labels=True, label_seed=3))
    other = make_dataset(TaskConfig("add", 31, random_labels=True, label_seed=4))
    assert (rand.labels == again.labels).all() and (rand.labels != other.labels).any()
    assert (rand.true_labels == true.labels).all()
    agreement = (rand.labels == true.labels).mean()
    assert agreement < 0.1  # chance is 1/31
    assert rand.labels.min() >= 0 and rand.labels.max() < 31


@given(st.sampled_from(SMALL_PRIMES), st.integers(0, 10**6), st.data())
def test_training_subsets_are_seeded_and_nested(p, seed, data):
    n = p * p
    small, large = sorted(data.draw(st.lists(st.integers(1, n), min_size=2, max_size=2)))
    s, l_ = train_indices(n, small, seed), train_indices(n, large, seed)
    assert len(s) == small and len(np.unique(s)) == small and (np.diff(s) > 0).all()
    assert set(s.tolist()) <= set(l_.tolist())
    assert (train_indices(n, small, seed) == s).all()


def test_train_size_from_fraction_or_size_with_one_line_errors():
    task = TaskConfig("add", 11)
    assert resolve_train_size(task, 0.5, None) == 60
    assert resolve_train_size(task, None, 121) == 121
    for frac in (0.0, 1.5, -0.1):
        with pytest.raises(ConfigError, match=r"^train_frac: must be in \(0, 1\]"):
            resolve_train_size(task, frac, None)
    with pytest.raises(ConfigError, match="^train_size: must be <= 121"):
        resolve_train_size(task, None, 122)
