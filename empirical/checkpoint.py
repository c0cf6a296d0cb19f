"""Checkpoints: everything a run needs to continue bit-identically, written atomically.

A checkpoint (``DIR/checkpoint.pt``) holds the config, the step, the stacked weights, the
AdamW moments and step count, torch's RNG state, each model's divergence step and all metric
rows so far. It is written with ``torch.save`` into memory and then by
:func:`circeff.io.atomic_write_bytes` (temporary file, fsync, rename), so a kill leaves either
the previous checkpoint or the new one. It is read with ``weights_only=True`` (no code runs).

Reading never falls back silently: a file that is not a checkpoint, is truncated, or was
written for a different config raises a one-line :class:`circeff.errors.RunError`.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from circeff.empirical.config import TrainConfig
from circeff.empirical.model import WEIGHT_NAMES, Params
from circeff.empirical.optim import AdamWState
from circeff.errors import RunError
from circeff.io import atomic_write_bytes

__all__ = [
    "CHECKPOINT_NAME",
    "Checkpoint",
    "FIELDS_FREE_ON_RESUME",
    "checkpoint_path",
    "load_checkpoint",
    "load_params",
    "save_checkpoint",
]

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = "circeff-engine-checkpoint"
VERSION = 1
# Resuming may extend a run (steps), checkpoint at another rhythm, or move it to another
# device (then the continuation is exact only to float rounding). Everything else must match.
FIELDS_FREE_ON_RESUME = ("steps", "checkpoint_every", "device")


@dataclass
class Checkpoint:
    config: TrainConfig
    step: int
    params: Params
    optimizer: AdamWState
    rng_state: torch.Tensor
    diverged: list[int | None]
    rows: list[dict[str, Any]]


def checkpoint_path(path: str | Path) -> Path:
    """``path`` itself if it is a file, else ``path/checkpoint.pt`` (a run folder)."""
    p = Path(path)
    return p / CHECKPOINT_NAME if p.is_dir() else p


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": ckpt.config.to_dict(),
        "step": ckpt.step,
        "params": {n: t.detach().cpu() for n, t in ckpt.params.items()},
        "adam_step": ckpt.optimizer.step,
        "exp_avg": {n: t.cpu() for n, t in ckpt.optimizer.exp_avg.items()},
        "exp_avg_sq": {n: t.cpu() for n, t in ckpt.optimizer.exp_avg_sq.items()},
        "rng_state": ckpt.rng_state,
        "diverged": list(ckpt.diverged),
        "rows": ckpt.rows,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RunError(f"checkpoint {path}: no such file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunError(f"checkpoint {path} is corrupt or unreadable ({reason[:120]}); "
                       "delete it to start over, or use another --out") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise RunError(f"checkpoint {path} is not a circeff engine checkpoint")
    if payload.get("version") != VERSION:
        raise RunError(f"checkpoint {path} has format version {payload.get('version')}, expected {VERSION}")
    missing = [k for k in ("config", "step", "params", "adam_step", "exp_avg", "exp_avg_sq", "rng_state",
                           "diverged", "rows") if k not in payload]
    if missing or any(n not in payload["params"] for n in WEIGHT_NAMES):
        raise RunError(f"checkpoint {path} is incomplete (missing {', '.join(missing) or 'weights'})")
    return payload


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu",
                    expected: TrainConfig | None = None) -> Checkpoint:
    """Read a checkpoint; with ``expected``, refuse one written for a different config.

    Fields in :data:`FIELDS_FREE_ON_RESUME` may differ; any other difference is a RunError
    naming the fields.
    """
    path = checkpoint_path(path)
    payload = _read(path)
    try:
        config = TrainConfig.from_dict(payload["config"])
    except (TypeError, KeyError, ValueError) as exc:
        raise RunError(f"checkpoint {path}: its config cannot be read ({exc})") from None
    if expected is not None:
        diff = expected.differences(config, ignore=FIELDS_FREE_ON_RESUME)
        if diff:
            raise RunError(f"checkpoint {path} was written by a different config (differs in: "
                           f"{', '.join(diff)}); use the same options to resume, or another --out")
    to = dict(device=device)
    return Checkpoint(
        config=config,
        step=int(payload["step"]),
        params={n: payload["params"][n].to(**to) for n in WEIGHT_NAMES},
        optimizer=AdamWState(int(payload["adam_step"]),
                             {n: payload["exp_avg"][n].to(**to) for n in WEIGHT_NAMES},
                             {n: payload["exp_avg_sq"][n].to(**to) for n in WEIGHT_NAMES}),
        rng_state=payload["rng_state"],
        diverged=list(payload["diverged"]),
        rows=list(payload["rows"]),
    )


def load_params(path: str | Path, device: str | torch.device = "cpu") -> tuple[TrainConfig, Params, int]:
    """``(config, stacked weights, step)`` of a run folder or checkpoint file (for analysis)."""
    ckpt = load_checkpoint(path, device)
    return ckpt.config, ckpt.params, ckpt.step
