"""Theorem D.4's modelling assumption: scaling a circuit's parameters by c scales its
logits by c^kappa.

For a bias-free MLP with k layers and ReLU activations, multiplying every parameter by
c > 0 multiplies the logits by c^k, because ``relu(c z) = c relu(z)`` for c > 0 and every
layer is linear in its weights. So such a circuit has kappa = k, and a weight w on it
(logits scaled by w) costs parameter norm ``w^(1/k) P`` (claim ``D4.homogeneity``).

Where it breaks: biases (the first layer's bias scales with c, not c^2, so from two
layers on the output is no longer homogeneous), softmax attention (the attention pattern
``softmax(c^2 x^T Q^T K x)`` itself changes with c) and c < 0 (``relu(c z) != c relu(z)``).
The symbolic route writes ``relu(z) = (z + |z|)/2`` and lets sympy pull c out of ``|.|``.
"""

from __future__ import annotations

import time

import numpy as np
import sympy as sp

from circeff.theory import symbols as S
from circeff.theory.results import RouteResult, Status

DEPTHS = (1, 2, 3)
WIDTH = 2


def _relu(z: sp.Expr) -> sp.Expr:
    return (z + sp.Abs(z)) / 2


def _softmax_attention_2(x1: sp.Expr, x2: sp.Expr, wq: sp.Expr, wk: sp.Expr, wv: sp.Expr,
                         scale: sp.Expr) -> sp.Expr:
    """Token 1's output of one-head softmax attention over two scalar tokens, with every
    parameter scaled by ``scale``."""
    s1, s2 = (scale * wq * x1) * (scale * wk * x1), (scale * wq * x1) * (scale * wk * x2)
    a1 = sp.exp(s1) / (sp.exp(s1) + sp.exp(s2))
    return scale * wv * (a1 * x1 + (1 - a1) * x2)


def symbolic_network(depth: int, scale: sp.Expr, negate: str | None) -> sp.Expr:
    """The network's first logit with every parameter multiplied by ``scale``."""
    xs = sp.symbols(f"x1:{WIDTH + 1}", real=True)
    h = list(xs)
    for layer in range(depth):
        W = sp.Matrix(WIDTH, WIDTH, lambda i, j: sp.Symbol(f"W{layer}_{i}{j}", real=True))
        b = [sp.Symbol(f"b{layer}_{i}", real=True) for i in range(WIDTH)]
        pre = [sp.factor_terms(sum(scale * W[i, j] * h[j] for j in range(WIDTH))
                               + (scale * b[i] if negate == "bias_free" else 0))
               for i in range(WIDTH)]
        last = layer == depth - 1
        h = pre if last else [_relu(z) for z in pre]
    if negate == "relu":  # a softmax attention layer in front of the readout
        wq, wk, wv = sp.symbols("wq wk wv", real=True)
        return _softmax_attention_2(h[0], h[1], wq, wk, wv, scale)
    return h[0]


def symbolic_D4_homogeneity(negate: str | None = None) -> RouteResult:
    """f(c theta) = c^k f(theta) for bias-free ReLU MLPs with k = 1, 2, 3 layers (width 2).
    Hypotheses: ``bias_free`` (negated: every layer has a bias), ``relu`` (negated: a
    softmax attention layer, degree 3 in its parameters) and ``c_pos`` (negated: c < 0)."""
    if negate not in (None, "bias_free", "relu", "c_pos"):
        raise ValueError(f"D4.homogeneity has no hypothesis {negate!r}")
    started = time.perf_counter()
    c = -S.c if negate == "c_pos" else S.c
    one = sp.Integer(1)
    facts = []
    for k in DEPTHS:
        degree = k + 3 if negate == "relu" else k
        scaled, plain = symbolic_network(k, c, negate), symbolic_network(k, one, negate)
        facts.append(S.identity_or_witness(f"f(c theta) = c^{degree} f(theta), {k} layer(s)",
                                           scaled - c**degree * plain))
    return S.route_from_facts(
        facts, f"scaling every parameter by c > 0 scales the logits by c^k (k = "
        f"{', '.join(map(str, DEPTHS))})",
        "induction on layers: relu(c z) = c relu(z) for c > 0 and each layer is linear in "
        "its weights", started)


# ----------------------------------------------------------------------------- numeric
def mlp(params: list[np.ndarray], x: np.ndarray, biases: list[np.ndarray] | None = None
        ) -> np.ndarray:
    """ReLU MLP logits (no activation after the last layer)."""
    h = x
    for i, W in enumerate(params):
        h = h @ W.T + (0.0 if biases is None else biases[i])
        if i < len(params) - 1:
            h = np.maximum(h, 0.0)
    return h


def attention(params: tuple[np.ndarray, np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    """One-head softmax self-attention over the rows of ``x`` (tokens x features)."""
    wq, wk, wv = params
    scores = (x @ wq.T) @ (x @ wk.T).T
    scores -= scores.max(axis=1, keepdims=True)
    a = np.exp(scores)
    a /= a.sum(axis=1, keepdims=True)
    return a @ (x @ wv.T)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def numeric_D4_homogeneity(seed: int, n_networks: int = 40, variant: str | None = None
                           ) -> RouteResult:
    """Random networks (depth 1..5, width 3..32): ``max |f(c theta) - c^k f(theta)| /
    max |c^k f(theta)|`` for c in (0.3, 2, 7.5). ``variant='bias'`` (ReLU MLPs with
    biases, depth >= 2) and ``variant='softmax'`` (one softmax attention layer, degree 3)
    are the falsifications and must be refuted."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    worst = 0.0
    for i in range(n_networks):
        width, n_in = int(rng.integers(3, 33)), int(rng.integers(2, 9))
        x = rng.normal(size=(16, n_in))
        if variant == "softmax":
            params = tuple(rng.normal(size=(n_in, n_in)) for _ in range(3))
            k = 3
            def f(scale: float) -> np.ndarray:
                return attention(tuple(scale * p for p in params), x)
        else:
            k = int(rng.integers(2 if variant == "bias" else 1, 6))
            dims = [n_in] + [width] * (k - 1) + [5]
            Ws = [rng.normal(size=(dims[j + 1], dims[j])) / np.sqrt(dims[j]) for j in range(k)]
            bs = [rng.normal(size=dims[j + 1]) for j in range(k)] if variant == "bias" else None
            def f(scale: float) -> np.ndarray:
                return mlp([scale * W for W in Ws], x,
                           None if bs is None else [scale * b for b in bs])
        base = f(1.0)
        for c in (0.3, 2.0, 7.5):
            err = _rel(f(c), c**k * base)
            worst = max(worst, err)
            if err > 1e-10:
                return RouteResult(
                    "numeric", Status.REFUTED,
                    f"network {i} ({variant or 'bias-free ReLU'}, degree {k}): "
                    f"|f(c theta) - c^{k} f(theta)| / |c^{k} f| = {err:.3g} at c = {c:g}",
                    {"seed": seed, "network": i},
                    counterexample={"variant": variant, "degree": k, "c": c,
                                    "relative_error": err},
                    seconds=time.perf_counter() - started)
    return RouteResult("numeric", Status.VERIFIED,
                       f"{n_networks} random bias-free ReLU MLPs (1-5 layers, width 3-32): "
                       f"f(c theta) = c^k f(theta) for c in (0.3, 2, 7.5), max relative "
                       f"error {worst:.2g}", {"seed": seed, "max_relative_error": worst},
                       seconds=time.perf_counter() - started)
