"""Checkpoints: everything a run needs to continue bit-identically, written atomically, pickle-free.

A checkpoint (``DIR/checkpoint.safetensors``) is one safetensors file: the tensors are the
stacked weights (``params.W_E``, ...), the AdamW moments (``exp_avg.*``, ``exp_avg_sq.*``) and
torch's CPU RNG state (``rng_state``, the uint8 tensor ``torch.get_rng_state`` returns); its
string metadata holds, as JSON, the format tag, the config, the step, the AdamW step count,
each model's divergence step and all metric rows so far (NaN, a JSON extension Python
reads, where a value is missing or non-finite). Nothing is unpickled to read it:
``safetensors.safe_open(path, "pt")`` gives the tensors and ``.metadata()`` the JSON, and the
run folder's ``config.json`` beside it is the same config, readable by anyone.

One file (rather than weights and JSON in two) keeps the write atomic: it is built in memory
and written by :func:`circeff.io.atomic_write_bytes` (temporary file, fsync, rename), so a
kill leaves either the previous checkpoint or the new one. Floats in the metadata are JSON
numbers, which Python writes and reads back exactly, so resuming stays bit-identical.

Reading never falls back silently: a file that is not a checkpoint, is truncated, or was
written for a different config raises a one-line :class:`circeff.errors.RunError`. Checkpoints
of earlier versions (``checkpoint.pt``, a torch zip read with ``weights_only=True``) still load.
Rows written by earlier versions (of either format) hold ``""`` for a missing value; they are
read back with NaN there, as rows are written now.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from circeff.empirical.config import TrainConfig
from circeff.empirical.metrics import missing_as_nan
from circeff.empirical.model import WEIGHT_NAMES, Params
from circeff.empirical.optim import AdamWState
from circeff.errors import RunError
from circeff.io import atomic_write_bytes

__all__ = [
    "CHECKPOINT_NAME",
    "Checkpoint",
    "checkpoint_bytes",
    "has_checkpoint",
    "FIELDS_FREE_ON_RESUME",
    "checkpoint_path",
    "load_checkpoint",
    "load_params",
    "save_checkpoint",
]

CHECKPOINT_NAME = "checkpoint.safetensors"
LEGACY_CHECKPOINT_NAME = "checkpoint.pt"  # torch zip (pickle restricted to tensors) of version 1
FORMAT = "circeff-engine-checkpoint"
VERSION = 2
_LEGACY_VERSION = 1
_ZIP_MAGIC = b"PK\x03\x04"
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
    """``path`` itself if it is a file, else the checkpoint in the run folder ``path``
    (``checkpoint.safetensors``, or an earlier version's ``checkpoint.pt``)."""
    p = Path(path)
    if not p.is_dir():
        return p
    if not (p / CHECKPOINT_NAME).exists() and (p / LEGACY_CHECKPOINT_NAME).is_file():
        return p / LEGACY_CHECKPOINT_NAME
    return p / CHECKPOINT_NAME


def has_checkpoint(run_dir: str | Path) -> bool:
    """Whether the folder ``run_dir`` holds a checkpoint (of this or an earlier version)."""
    return checkpoint_path(run_dir).is_file() and Path(run_dir).is_dir()


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous()


def checkpoint_bytes(ckpt: Checkpoint) -> bytes:
    """The safetensors file of ``ckpt`` (tensors, plus the rest as JSON in the metadata)."""
    from safetensors.torch import save

    tensors = {f"params.{n}": _cpu(t) for n, t in ckpt.params.items()}
    tensors |= {f"exp_avg.{n}": _cpu(t) for n, t in ckpt.optimizer.exp_avg.items()}
    tensors |= {f"exp_avg_sq.{n}": _cpu(t) for n, t in ckpt.optimizer.exp_avg_sq.items()}
    tensors["rng_state"] = _cpu(ckpt.rng_state)
    state = {"config": ckpt.config.to_dict(), "step": ckpt.step, "adam_step": ckpt.optimizer.step,
             "diverged": list(ckpt.diverged), "rows": ckpt.rows}
    # allow_nan: a diverged model's metric rows hold NaN; Python's json reads it back as NaN.
    metadata = {"format": FORMAT, "version": str(VERSION), "state": json.dumps(state, allow_nan=True)}
    return save(tensors, metadata=metadata)


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
    return atomic_write_bytes(path, checkpoint_bytes(ckpt))


def _corrupt(path: Path, exc: BaseException) -> RunError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return RunError(f"checkpoint {path} is corrupt or unreadable ({reason[:120]}); "
                    "delete it to start over, or use another --out")


def _read_safetensors(path: Path, data: bytes) -> dict[str, Any]:
    from safetensors.torch import load

    try:
        tensors = load(data)
        header_len = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8:8 + header_len]).get("__metadata__") or {}
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for bad bytes
        raise _corrupt(path, exc) from None
    if metadata.get("format") != FORMAT:
        raise RunError(f"checkpoint {path} is not a circeff engine checkpoint")
    if metadata.get("version") != str(VERSION):
        raise RunError(f"checkpoint {path} has format version {metadata.get('version')}, expected {VERSION}")
    try:
        state = json.loads(metadata["state"])
    except (KeyError, ValueError) as exc:
        raise _corrupt(path, exc) from None
    payload = dict(state, format=FORMAT, version=VERSION)
    for group in ("params", "exp_avg", "exp_avg_sq"):
        payload[group] = {k.split(".", 1)[1]: t for k, t in tensors.items() if k.startswith(group + ".")}
    if "rng_state" in tensors:
        payload["rng_state"] = tensors["rng_state"]
    return payload


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RunError(f"checkpoint {path}: no such file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _corrupt(path, exc) from None
    payload = _read_legacy(path, data) if data[:4] == _ZIP_MAGIC else _read_safetensors(path, data)
    missing = [k for k in ("config", "step", "params", "adam_step", "exp_avg", "exp_avg_sq", "rng_state",
                           "diverged", "rows") if k not in payload]
    if missing or any(n not in payload["params"] for n in WEIGHT_NAMES):
        raise RunError(f"checkpoint {path} is incomplete (missing {', '.join(missing) or 'weights'})")
    return payload


def _read_legacy(path: Path, data: bytes) -> dict[str, Any]:
    """A version-1 checkpoint (torch zip; ``weights_only=True`` unpickles tensors and containers only)."""
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        raise _corrupt(path, exc) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise RunError(f"checkpoint {path} is not a circeff engine checkpoint")
    if payload.get("version") != _LEGACY_VERSION:
        raise RunError(f"checkpoint {path} has format version {payload.get('version')}, expected {VERSION}")
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
        rows=[missing_as_nan(row) for row in payload["rows"]],
    )


def load_params(path: str | Path, device: str | torch.device = "cpu") -> tuple[TrainConfig, Params, int]:
    """``(config, stacked weights, step)`` of a run folder or checkpoint file (for analysis)."""
    ckpt = load_checkpoint(path, device)
    return ckpt.config, ckpt.params, ckpt.step
