"""Appendix B: the trigonometric / memorisation logit decomposition (the paper's Appendix B).

The claims checked here: trig + mem = logits; the trig part is the orthogonal projection onto
the P - 1 Fourier directions of a + b - c (checked against an explicit basis for small P);
logits made of known frequencies come back exactly with their key frequencies; random logits
put the expected fraction of their squared norm in the trig subspace; the correct-class
proxies read G and M as the paper describes.
"""

from __future__ import annotations

import math
import time
import tracemalloc

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from circeff.errors import ConfigError
from circeff.empirical.fourier import (
    FourierDecomposition,
    addition_labels,
    correct_class_proxies,
    decompose,
    trig_share,
)

ODD_MODULI = st.sampled_from([3, 5, 7, 11, 13])
ANY_MODULI = st.sampled_from([2, 3, 4, 5, 6, 7, 11, 13])
SEEDS = st.integers(0, 2**32 - 1)


def level(p: int) -> np.ndarray:
    """s[a, b, c] = (a + b - c) mod P."""
    a = np.arange(p)
    return (a[:, None, None] + a[None, :, None] - a[None, None, :]) % p


def basis(p: int) -> tuple[np.ndarray, np.ndarray]:
    """The explicit Fourier directions as a [P^3, P - 1] matrix and their frequency per column.

    For even P the Nyquist direction cos(pi s) is included (its sine is identically zero).
    Only for small P: this is exactly the matrix the implementation must never build.
    """
    s = level(p).reshape(-1)
    cols, freqs = [], []
    for k in range(1, p // 2 + 1):
        cols.append(np.cos(2 * np.pi * k * s / p))
        freqs.append(k)
        if 2 * k != p:
            cols.append(np.sin(2 * np.pi * k * s / p))
            freqs.append(k)
    return np.stack(cols, axis=1), np.array(freqs)


def trig_logits(p: int, freqs, amps, phases) -> np.ndarray:
    s = level(p)
    return sum(amp * np.cos(2 * np.pi * k * s / p + ph) for k, amp, ph in zip(freqs, amps, phases))


@st.composite
def known_frequency_logits(draw):
    p = draw(st.sampled_from([7, 11, 13, 17, 23]))
    n = draw(st.integers(1, min(3, p // 2)))
    freqs = draw(st.lists(st.integers(1, p // 2), min_size=n, max_size=n, unique=True))
    amps = draw(st.lists(st.floats(1.0, 3.0), min_size=n, max_size=n))
    phases = draw(st.lists(st.floats(0.0, 2 * np.pi), min_size=n, max_size=n))
    return p, freqs, amps, phases


# --------------------------------------------------------------------------------------------
# The decomposition itself
# --------------------------------------------------------------------------------------------


@given(p=ANY_MODULI, extra=st.integers(0, 2), seed=SEEDS, scale=st.floats(1e-3, 1e3))
def test_appB_trig_plus_mem_equals_logits(p, extra, seed, scale):
    logits = scale * np.random.default_rng(seed).standard_normal((p, p, p + extra)) + 5.0 * scale
    d = decompose(logits)
    np.testing.assert_allclose(d.trig + d.mem, logits[:, :, :p], rtol=0, atol=1e-10 * scale)
    assert d.trig.shape == d.mem.shape == (p, p, p)


@given(case=known_frequency_logits())
def test_appB_known_frequencies_decompose_back_exactly(case):
    p, freqs, amps, phases = case
    logits = trig_logits(p, freqs, amps, phases)
    d = decompose(logits, key_coverage=1 - 1e-9)
    np.testing.assert_allclose(d.trig, logits, atol=1e-10)
    np.testing.assert_allclose(d.mem, 0.0, atol=1e-10)
    assert set(d.key_frequencies) == set(freqs)
    assert set(d.top_frequencies(len(freqs))) == set(freqs)
    # A * cos(2 pi k s / P + phase) has squared norm A^2 * P^3 / 2 in R^{P^3}.
    expected = np.zeros(p // 2)
    for k, amp in zip(freqs, amps):
        expected[k - 1] = amp * math.sqrt(p**3 / 2)
    np.testing.assert_allclose(d.frequency_norms, expected, atol=1e-9)
    assert math.isclose(d.trig_share, 1.0, rel_tol=1e-12)
    assert math.isclose(d.trig_fraction, 1.0, rel_tol=1e-12)


@given(case=known_frequency_logits(), seed=SEEDS)
def test_appB_key_frequencies_survive_memorisation_noise(case, seed):
    """Key frequencies are found when the frequencies carry most of the norm."""
    p, freqs, amps, phases = case
    noise = 0.05 * np.random.default_rng(seed).standard_normal((p, p, p))
    d = decompose(trig_logits(p, freqs, amps, phases) + noise)
    assert set(d.top_frequencies(len(freqs))) == set(freqs)
    assert set(d.key_frequencies) <= set(freqs)


@given(p=ODD_MODULI, seed=SEEDS)
def test_appB_trig_is_idempotent_and_mem_orthogonal_to_every_direction(p, seed):
    logits = np.random.default_rng(seed).standard_normal((p, p, p))
    d = decompose(logits)
    np.testing.assert_allclose(decompose(d.trig).trig, d.trig, atol=1e-12)
    np.testing.assert_allclose(decompose(d.mem).trig, 0.0, atol=1e-12)
    directions, _ = basis(p)
    np.testing.assert_allclose(directions.T @ d.mem.reshape(-1), 0.0, atol=1e-10)
    # The constant direction is excluded: trig has zero total (the global mean stays in mem).
    assert abs(d.trig.sum()) < 1e-9


@pytest.mark.parametrize("p", [2, 3, 4, 5, 6, 7])
def test_appB_matches_explicit_basis_projection(p):
    logits = np.random.default_rng(p).standard_normal((p, p, p))
    directions, col_freq = basis(p)
    coef, *_ = np.linalg.lstsq(directions, logits.reshape(-1), rcond=None)
    projection = directions @ coef
    d = decompose(logits)
    np.testing.assert_allclose(d.trig.reshape(-1), projection, atol=1e-12)
    # Per-frequency norms: project onto the one or two columns of each frequency.
    for k, norm in zip(d.frequencies, d.frequency_norms):
        cols = directions[:, col_freq == k]
        c, *_ = np.linalg.lstsq(cols, logits.reshape(-1), rcond=None)
        assert math.isclose(norm, float(np.linalg.norm(cols @ c)), rel_tol=1e-10, abs_tol=1e-12)
    assert math.isclose(float(np.sum(d.frequency_norms**2)), float(np.sum(d.trig**2)), rel_tol=1e-12)


@given(p=ODD_MODULI, seed=SEEDS)
def test_appB_per_input_offsets_only_change_mem(p, seed):
    """Adding r(a, b) to every label's logit (invisible to softmax) leaves trig alone."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((p, p, p))
    offsets = 10.0 * rng.standard_normal((p, p, 1))
    d, shifted = decompose(logits), decompose(logits + offsets)
    np.testing.assert_allclose(shifted.trig, d.trig, atol=1e-10)
    np.testing.assert_allclose(shifted.mem, d.mem + offsets, atol=1e-10)
    assert math.isclose(shifted.trig_share, d.trig_share, rel_tol=1e-9)


@pytest.mark.parametrize("p,draws", [(7, 400), (13, 150)])
def test_appB_random_logits_fraction_matches_expectation(p, draws):
    """iid Gaussian logits: E[||trig||^2 / ||F||^2] = (P - 1) / P^3.

    For an isotropic Gaussian in R^n the squared-norm fraction in a fixed m-dimensional
    subspace is Beta(m/2, (n - m)/2) with mean m/n; here m = P - 1, n = P^3. Against the
    centred norm (n = P^2 (P - 1), the complement of per-input constants, which contains W)
    the mean share is (P - 1) / (P^2 (P - 1)) = 1 / P^2. One draw has relative sd about
    sqrt(2 / (P - 1)); the tolerance is over 4 standard errors of the mean.
    """
    fractions, shares = [], []
    for seed in range(draws):
        d = decompose(np.random.default_rng(seed).standard_normal((p, p, p)))
        fractions.append(d.trig_fraction)
        shares.append(d.trig_share)
    rel_tol = 4 * math.sqrt(2 / (p - 1)) / math.sqrt(draws)
    assert math.isclose(np.mean(fractions), (p - 1) / p**3, rel_tol=rel_tol)
    assert math.isclose(np.mean(shares), 1 / p**2, rel_tol=rel_tol)


def test_appB_random_label_logits_have_small_trig_share():
    """A memorising table of random labels: mean share 1 / P^2 (multinomial level counts)."""
    p, draws = 23, 60
    shares = []
    for seed in range(draws):
        labels = np.random.default_rng(seed).integers(0, p, size=(p, p))
        logits = 4.0 * np.eye(p)[labels]
        shares.append(trig_share(logits))
    assert max(shares) < 0.05  # far below the 0.95 that accepts a G-only network
    assert math.isclose(np.mean(shares), 1 / p**2, rel_tol=4 * math.sqrt(2 / (p - 1)) / math.sqrt(draws))


@pytest.mark.parametrize("p", [5, 11, 113])
def test_appB_perfect_addition_table_is_all_trig(p):
    """The one-hot table of (a + b) mod P is a function of a + b - c: share 1, no memorisation."""
    alpha = 3.0
    logits = alpha * np.eye(p)[addition_labels(p)] + 7.0  # a constant offset is invisible
    d = decompose(logits)
    assert math.isclose(d.trig_share, 1.0, rel_tol=1e-12)
    mask = np.random.default_rng(0).random((p, p)) < 0.3
    proxies = correct_class_proxies(d, mask)
    for value in (proxies.trig_train, proxies.trig_test):
        assert math.isclose(value, alpha * (1 - 1 / p), rel_tol=1e-12)
    for value in (proxies.mem_train, proxies.mem_test):
        assert abs(value) < 1e-12


# --------------------------------------------------------------------------------------------
# Correct-class proxies (Figure 9)
# --------------------------------------------------------------------------------------------


@given(p=ODD_MODULI, seed=SEEDS, fraction=st.floats(0.2, 0.8))
def test_appB_proxies_add_up_to_the_centred_correct_logit(p, seed, fraction):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((p, p, p + 2))
    mask = rng.random((p, p)) < fraction
    mask[0, 0], mask[0, 1] = True, False  # both splits non-empty
    proxies = correct_class_proxies(decompose(logits), mask)
    cube = logits[:, :, :p]
    centred = cube - cube.mean(axis=2, keepdims=True)
    correct = np.take_along_axis(centred, addition_labels(p)[:, :, None], axis=2)[:, :, 0]
    assert math.isclose(proxies.trig_train + proxies.mem_train, correct[mask].mean(), abs_tol=1e-10)
    assert math.isclose(proxies.trig_test + proxies.mem_test, correct[~mask].mean(), abs_tol=1e-10)
    assert (proxies.n_train, proxies.n_test) == (int(mask.sum()), int((~mask).sum()))


def test_appB_known_flaw_memorised_correct_answers_leak_into_trig():
    """G (one frequency, correct logit A cos phi) plus M (beta * one-hot correct answer on the
    training inputs only). M's table is a fraction rho = D / P^2 of the perfect addition table,
    which is all trig, so the proxies come out exactly as (Appendix B's known flaw):
        trig (train and test) = A cos phi + beta rho (1 - 1/P)      (G overestimated)
        mem train             = beta (1 - rho) (1 - 1/P)           (M underestimated)
        mem test              = -beta rho (1 - 1/P)
    """
    p, amp, phase, beta = 31, 2.0, 0.3, 6.0
    mask = np.random.default_rng(1).random((p, p)) < 0.4
    rho = mask.sum() / p**2
    g_part = trig_logits(p, [5], [amp], [phase])
    m_part = beta * np.eye(p)[addition_labels(p)] * mask[:, :, None]
    proxies = correct_class_proxies(decompose(g_part + m_part), mask)
    leak = beta * rho * (1 - 1 / p)
    assert math.isclose(proxies.trig_train, amp * math.cos(phase) + leak, rel_tol=1e-10)
    assert math.isclose(proxies.trig_test, amp * math.cos(phase) + leak, rel_tol=1e-10)
    assert math.isclose(proxies.mem_train, beta * (1 - rho) * (1 - 1 / p), rel_tol=1e-10)
    assert math.isclose(proxies.mem_test, -leak, rel_tol=1e-10)


def test_appB_random_label_memorisation_stays_in_mem_on_train():
    """M memorising random labels on the training inputs hardly leaks into trig: the G proxy
    reads G's own correct logit and M shows on train only."""
    p, amp, phase, beta = 31, 2.0, 0.3, 6.0
    rng = np.random.default_rng(2)
    mask = rng.random((p, p)) < 0.4
    labels = rng.integers(0, p, size=(p, p))
    m_part = beta * np.eye(p)[labels] * mask[:, :, None]
    d = decompose(trig_logits(p, [5], [amp], [phase]) + m_part)
    on_memorised = correct_class_proxies(d, mask, labels)
    on_addition = correct_class_proxies(d, mask)
    assert on_memorised.mem_train > 0.9 * beta * (1 - 1 / p)
    assert abs(on_memorised.mem_test) < 0.05 * beta
    assert math.isclose(on_addition.trig_test, amp * math.cos(phase), abs_tol=0.05 * beta)
    assert d.top_frequencies(1) == (5,)


def test_appB_proxies_centre_flag_and_custom_labels():
    p = 7
    rng = np.random.default_rng(3)
    labels = rng.integers(0, p, size=(p, p))
    logits = 5.0 * np.eye(p)[labels] + 100.0  # random-label memoriser with a large offset
    mask = np.ones((p, p), dtype=bool)
    centred = correct_class_proxies(decompose(logits), mask, labels)
    raw = correct_class_proxies(decompose(logits), mask, labels, centre=False)
    assert math.isnan(centred.trig_test) and math.isnan(centred.mem_test) and centred.n_test == 0
    assert centred.mem_train > 0.8 * 5.0 * (1 - 1 / p)
    # The uncentred proxy also counts the offset (minus the tiny global-mean shift).
    assert math.isclose(raw.mem_train - centred.mem_train, 100.0 + 5.0 / p, rel_tol=1e-12)


# --------------------------------------------------------------------------------------------
# Inputs, outputs, cost
# --------------------------------------------------------------------------------------------


def test_appB_accepts_torch_tensors_and_extra_vocabulary():
    p = 11
    logits = np.random.default_rng(0).standard_normal((p, p, p + 2))
    from_numpy = decompose(logits)
    from_torch = decompose(torch.tensor(logits, dtype=torch.float32))
    assert from_torch.trig.dtype == np.float64
    np.testing.assert_allclose(from_torch.trig, from_numpy.trig, atol=1e-5)
    np.testing.assert_allclose(decompose(logits[:, :, :p]).trig, from_numpy.trig, atol=0)
    mask = torch.zeros((p, p), dtype=torch.bool)
    mask[:5] = True
    a = correct_class_proxies(from_numpy, mask, torch.tensor(addition_labels(p)))
    b = correct_class_proxies(from_numpy, mask.numpy())
    assert a == b


def test_appB_result_is_read_only():
    d = decompose(np.random.default_rng(0).standard_normal((5, 5, 5)))
    assert isinstance(d, FourierDecomposition)
    with pytest.raises(ValueError):
        d.trig[0, 0, 0] = 1.0
    with pytest.raises(AttributeError):
        d.trig_share = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    "call,field",
    [
        (lambda: decompose(np.zeros((5, 5))), "logits"),
        (lambda: decompose(np.zeros((5, 6, 5))), "logits"),
        (lambda: decompose(np.zeros((5, 5, 4))), "logits"),
        (lambda: decompose(np.full((3, 3, 3), np.nan)), "logits"),
        (lambda: decompose(np.zeros((3, 3, 3)), key_coverage=0.0), "key_coverage"),
        (lambda: correct_class_proxies(decompose(np.zeros((3, 3, 3))), np.ones((3, 4), bool)), "train_mask"),
        (lambda: correct_class_proxies(decompose(np.zeros((3, 3, 3))), np.ones((3, 3))), "train_mask"),
        (lambda: correct_class_proxies(decompose(np.zeros((3, 3, 3))), np.ones((3, 3), bool),
                                       np.full((3, 3), 3)), "labels"),
        (lambda: addition_labels(1), "modulus"),
    ],
)
def test_appB_bad_input_names_the_field(call, field):
    with pytest.raises(ConfigError) as err:
        call()
    assert str(err.value).startswith(f"{field}:")
    assert "\n" not in str(err.value)


def test_appB_zero_logits_have_no_share():
    d = decompose(np.zeros((5, 5, 5)))
    assert d.trig_share == 0.0 and d.trig_fraction == 0.0 and d.key_frequencies == ()


def test_appB_P113_decomposition_is_fast_and_never_builds_the_basis():
    """P = 113: well under a second, and memory of a few cubes (the explicit P^3 x (P - 1)
    basis would be 112 cubes, about 1.3 GB)."""
    p = 113
    logits = np.random.default_rng(0).standard_normal((p, p, p + 2))
    decompose(logits)  # warm the index cache
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        decompose(logits)
        best = min(best, time.perf_counter() - start)
    assert best < 1.0, f"decompose took {best:.3f} s at P = 113"
    tracemalloc.start()
    decompose(logits)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8 * p**3 * 8, f"peak {peak / 2**20:.0f} MiB"
