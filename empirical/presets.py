"""Named settings for ``circeff train --preset NAME`` (explicit options override them).

- ``paper``: the paper's setting (SPEC section 6): modular addition at P = 113, 30% of the
  pairs for training, AdamW lr 1e-3, betas 0.9/0.98, weight decay 1.0, full batch. 40 000
  steps (Nanda et al. 2023's run length; grokking there completes well before).
- ``cpu``: the same phenomenon small enough for a laptop: see the measured numbers in its
  description (P, training fraction and step count were chosen by running it on 2 CPU cores).
"""

from __future__ import annotations

from dataclasses import dataclass

from circeff.errors import ConfigError

__all__ = ["PRESETS", "Preset", "get_preset"]


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    task: str
    p: int
    train_frac: float
    steps: int
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    lr: float = 1e-3
    weight_decay: float = 1.0
    log_every: int = 100
    checkpoint_every: int = 1000


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="cpu",
            description=(
                "modular addition, P = 59, 50% of pairs, 3000 steps, the paper's optimiser "
                "(lr 1e-3, wd 1.0): memorises within a few hundred steps, groks later"),
            task="add", p=59, train_frac=0.5, steps=3000, log_every=50, checkpoint_every=500),
        Preset(
            name="paper",
            description="modular addition, P = 113, 30% of pairs, 40000 steps, lr 1e-3, wd 1.0 (SPEC section 6)",
            task="add", p=113, train_frac=0.3, steps=40_000, seeds=(0,), log_every=100, checkpoint_every=1000),
    )
}


def get_preset(name: object) -> Preset:
    if not isinstance(name, str) or name not in PRESETS:
        raise ConfigError("preset", f"must be one of {', '.join(PRESETS)}", name)
    return PRESETS[name]
