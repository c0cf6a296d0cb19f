"""Build docs/figures/lens/: a Nanda-style Fourier analysis of an exported model, through TransformerLens.

Usage (needs the [lens] extra):

    circeff train --out RUN --p 23 --train-frac 0.6 --steps 1500 --seeds 0 --lr 3e-3 --no-progress
    python docs/scripts/lens_figure.py RUN docs/figures/lens

Writes fourier.png and fourier.json: the norm of the token embedding W_E (element tokens only)
in each Fourier frequency, the same norm for the embedding as seen by the MLP (the residual
stream read by a hook at position 0), the key frequencies, and the largest difference between
TransformerLens's logits and circeff's on all P^2 inputs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch


def fourier_basis(p: int) -> tuple[np.ndarray, list[str]]:
    """Orthonormal rows: constant, then cos(2 pi k x / p) and sin(2 pi k x / p) for k = 1..(p-1)/2."""
    x = np.arange(p)
    rows, names = [np.ones(p)], ["const"]
    for k in range(1, (p - 1) // 2 + 1):
        rows += [np.cos(2 * np.pi * k * x / p), np.sin(2 * np.pi * k * x / p)]
        names += [f"cos {k}", f"sin {k}"]
    basis = np.stack(rows)
    return basis / np.linalg.norm(basis, axis=1, keepdims=True), names


def frequency_norms(matrix: np.ndarray, p: int) -> np.ndarray:
    """Norm of ``matrix`` ([p, d], one row per element) in each frequency k = 1..(p-1)/2 (cos and sin together)."""
    basis, _ = fourier_basis(p)
    coeffs = basis @ matrix                       # [1 + 2K, d]
    per_row = np.linalg.norm(coeffs, axis=1)
    return np.sqrt(per_row[1::2] ** 2 + per_row[2::2] ** 2)


def main(run_dir: str, out_dir: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from circeff.empirical.lens import export_transformer_lens, hooked_transformer, input_tokens, load_model
    from circeff.empirical.model import Transformer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config, params = load_model(run_dir, 0)
    p = config.task.p
    export = export_transformer_lens(run_dir, 0, out / "export")
    model = hooked_transformer(export)
    tokens = input_tokens(config.task)

    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens)
        reference = Transformer.from_params(config.model, config.task, params)(tokens)
    max_diff = float((logits[:, -1] - reference[:, -1]).abs().max())

    # W_E through TransformerLens's parameter names; the embedding as read by a hook
    W_E = model.W_E[:p].detach().numpy()                                 # [p, d_model]
    embed = cache["hook_embed"][:, 0].numpy()                             # token embedding of a, per input
    first_of_each = np.array([int(np.flatnonzero(tokens[:, 0].numpy() == a)[0]) for a in range(p)])
    via_hook = embed[first_of_each]                                       # [p, d_model], row a
    norms_W = frequency_norms(W_E, p)
    norms_hook = frequency_norms(via_hook, p)
    share = norms_W ** 2 / (norms_W ** 2).sum()
    order = np.argsort(-share)
    key = [int(k + 1) for k in order[: int(np.searchsorted(np.cumsum(share[order]), 0.9) + 1)]]

    fig, ax = plt.subplots(figsize=(6, 3))
    ks = np.arange(1, len(norms_W) + 1)
    ax.bar(ks, norms_W, color="tab:blue", label="W_E (model.W_E)")
    ax.plot(ks, norms_hook, "k.", label="hook_embed at position 0")
    ax.set_xlabel("frequency k")
    ax.set_ylabel("norm of W_E in frequency k")
    ax.set_title(f"W_E of a grokked model (P = {p}); key frequencies {sorted(key)}", fontsize=10)
    ax.set_xticks(ks)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "fourier.png", dpi=110)

    summary = {"P": p, "key_frequencies": key, "frequency_norms": [round(float(x), 4) for x in norms_W],
               "top_share": round(float(share[order[0]]), 4),
               "share_in_key_frequencies": round(float(share[[k - 1 for k in key]].sum()), 4),
               "max_abs_logit_diff_tl_vs_circeff": max_diff, "max_abs_logit": float(logits[:, -1].abs().max())}
    (out / "fourier.json").write_text(json.dumps(summary, indent=2) + "\n")
    for f in (out / "export").iterdir():
        f.unlink()
    (out / "export").rmdir()
    print(json.dumps(summary))


if __name__ == "__main__":
    main(*sys.argv[1:3])
