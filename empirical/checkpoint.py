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

Snapshots (``train(..., snapshot_every=N)``, ``circeff train --snapshot-every N``,
``circeff experiment progress``) use the same format without the optimiser: one safetensors
file per kept step, ``DIR/snapshots/step_XXXXXXXX.safetensors``, whose tensors are the stacked
weights (``params.W_E``, ...) and whose metadata holds the format tag
(``circeff-params-snapshot``, version 2), the config, the step and the metric rows of every
model at that step. Each file is complete on its own; ``DIR/snapshots/index.csv`` lists them,
one row per model and snapshot: ``step``, ``file`` and the columns of metrics.csv
(:data:`SNAPSHOT_INDEX_COLUMNS`), and can always be rebuilt from the files
(:func:`rebuild_snapshot_index`). Snapshots of earlier versions (``step_XXXXXXXX.pt``, a torch
zip with the weights, the step and the config, read with ``weights_only=True``) still load; they
are not listed in the index (they carry no metrics).
"""

from __future__ import annotations

import io
import json
import pickle
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from circeff.empirical.config import TrainConfig
from circeff.empirical.metrics import METRIC_COLUMNS, csv_rows, missing_as_nan
from circeff.empirical.model import WEIGHT_NAMES, Params
from circeff.empirical.optim import AdamWState
from circeff.errors import ConfigError, RunError
from circeff.io import atomic_write_bytes, write_csv

__all__ = [
    "CHECKPOINT_NAME",
    "Checkpoint",
    "checkpoint_bytes",
    "has_checkpoint",
    "FIELDS_FREE_ON_RESUME",
    "checkpoint_path",
    "checkpoint_step",
    "load_checkpoint",
    "load_params",
    "save_checkpoint",
    "SNAPSHOT_DIR",
    "SNAPSHOT_INDEX",
    "SNAPSHOT_INDEX_COLUMNS",
    "Snapshot",
    "list_steps",
    "load_snapshot",
    "prune_snapshots",
    "read_snapshot",
    "read_snapshot_index",
    "rebuild_snapshot_index",
    "save_snapshot",
    "snapshot_files",
    "snapshot_path",
    "write_snapshot_index",
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
    return _canonical(save(tensors, metadata=metadata))


def _canonical(data: bytes) -> bytes:
    """The same safetensors file with its JSON header in one fixed order.

    safetensors writes the header's metadata in hash-map order, which changes from one call to
    the next; sorted keys make the file a function of its contents, so that a resumed run
    writes byte-identical files. Readers see the same header (offsets are relative to the
    data, which is untouched).
    """
    n = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8:8 + n]), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    raw = header.encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # safetensors pads the header to a multiple of 8 bytes
    return len(raw).to_bytes(8, "little") + raw + data[8 + n:]


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
    return atomic_write_bytes(path, checkpoint_bytes(ckpt))


def _corrupt(path: Path, exc: BaseException, what: str = "checkpoint", resuming: bool = False) -> RunError:
    """One line naming the file and what to do. Training commands (resuming) take the run
    folder as ``--out``; the commands that only read a run (``analyze``, ``export``) take it as
    an argument, so the advice names no flag there."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if resuming:
        advice = "delete it to start this run over from step 0, or train into another --out"
    elif what == "snapshot":
        advice = "delete it (the other snapshots and the run's checkpoint stay usable)"
    else:
        advice = "its run cannot be read: delete the file and rerun the command that trained the run"
    return RunError(f"{what} {path} is corrupt or unreadable ({reason[:120]}); {advice}")


def _load_safetensors(path: Path, data: bytes, what: str, resuming: bool) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and the string metadata of a safetensors file (one-line RunError if bad)."""
    from safetensors.torch import load

    try:
        tensors = load(data)
        header_len = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8:8 + header_len]).get("__metadata__") or {}
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for bad bytes
        raise _corrupt(path, exc, what, resuming) from None
    return tensors, metadata


def _require_format(path: Path, metadata: Mapping[str, str], fmt: str, version: int, what: str,
                    kind: str) -> None:
    """A RunError unless the file's metadata names this format and version."""
    if metadata.get("format") != fmt:
        raise RunError(f"{what} {path} is not a circeff {kind}")
    if metadata.get("version") != str(version):
        raise RunError(f"{what} {path} has format version {metadata.get('version')}, expected {version}")


def _read_safetensors(path: Path, data: bytes, resuming: bool = False) -> dict[str, Any]:
    tensors, metadata = _load_safetensors(path, data, "checkpoint", resuming)
    _require_format(path, metadata, FORMAT, VERSION, "checkpoint", "engine checkpoint")
    try:
        state = json.loads(metadata["state"])
    except (KeyError, ValueError) as exc:
        raise _corrupt(path, exc, "checkpoint", resuming) from None
    payload = dict(state, format=FORMAT, version=VERSION)
    for group in ("params", "exp_avg", "exp_avg_sq"):
        payload[group] = {k.split(".", 1)[1]: t for k, t in tensors.items() if k.startswith(group + ".")}
    if "rng_state" in tensors:
        payload["rng_state"] = tensors["rng_state"]
    return payload


def _read(path: Path, resuming: bool = False) -> dict[str, Any]:
    if not path.is_file():
        raise RunError(f"checkpoint {path}: no such file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _corrupt(path, exc, "checkpoint", resuming) from None
    payload = (_read_legacy(path, data, resuming) if data[:4] == _ZIP_MAGIC
               else _read_safetensors(path, data, resuming))
    missing = [k for k in ("config", "step", "params", "adam_step", "exp_avg", "exp_avg_sq", "rng_state",
                           "diverged", "rows") if k not in payload]
    if missing or any(n not in payload["params"] for n in WEIGHT_NAMES):
        raise RunError(f"checkpoint {path} is incomplete (missing {', '.join(missing) or 'weights'})")
    return payload


def _torch_zip(path: Path, data: bytes, what: str, resuming: bool = False) -> Any:
    """An earlier version's torch zip (``weights_only=True`` unpickles tensors and containers only)."""
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        raise _corrupt(path, exc, what, resuming) from None


def _read_legacy(path: Path, data: bytes, resuming: bool = False) -> dict[str, Any]:
    """A version-1 checkpoint (torch zip)."""
    payload = _torch_zip(path, data, "checkpoint", resuming)
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
    payload = _read(path, resuming=expected is not None)
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


def checkpoint_step(path: str | Path) -> int | None:
    """The step of a run folder's (or file's) checkpoint from its header alone, without reading
    the tensors; ``None`` when there is none or it cannot be told so cheaply (an earlier
    version's file, a damaged header: :func:`load_checkpoint` says what is wrong)."""
    path = checkpoint_path(path)
    try:
        with open(path, "rb") as fh:
            header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
        return int(json.loads(header["__metadata__"]["state"])["step"])
    except (OSError, ValueError, KeyError, TypeError, MemoryError, OverflowError):
        return None


def load_params(path: str | Path, device: str | torch.device = "cpu") -> tuple[TrainConfig, Params, int]:
    """``(config, stacked weights, step)`` of a run folder or checkpoint file (for analysis)."""
    ckpt = load_checkpoint(path, device)
    return ckpt.config, ckpt.params, ckpt.step


# ---------------------------------------------------------------------------------------------
# Snapshots: the weights (no optimiser) at chosen steps, with the metric rows of that step
# ---------------------------------------------------------------------------------------------
SNAPSHOT_DIR = "snapshots"
SNAPSHOT_INDEX = "index.csv"
SNAPSHOT_FORMAT = "circeff-params-snapshot"
SNAPSHOT_VERSION = 2
_LEGACY_SNAPSHOT_VERSION = 1  # step_XXXXXXXX.pt, torch zip, written by circeff experiment progress
SNAPSHOT_SUFFIX = ".safetensors"
_LEGACY_SNAPSHOT_SUFFIX = ".pt"
# One row per model and snapshot: the step, the snapshot's file name (in snapshots/), then
# metrics.csv's columns.
SNAPSHOT_INDEX_COLUMNS = ["step", "file", *[c for c in METRIC_COLUMNS if c != "step"]]
_SNAPSHOT_NAME = re.compile(r"^step_(\d+)\.(safetensors|pt)$")


@dataclass
class Snapshot:
    """The weights of every model of a run at one step (``rows``: metrics.csv's rows of that
    step, one per model; empty for a snapshot of an earlier version)."""

    config: TrainConfig
    step: int
    params: Params
    rows: list[dict[str, Any]] = field(default_factory=list)
    path: Path | None = None


def snapshot_path(run_dir: str | Path, step: int) -> Path:
    """``run_dir/snapshots/step_XXXXXXXX.safetensors``."""
    return Path(run_dir) / SNAPSHOT_DIR / f"step_{int(step):08d}{SNAPSHOT_SUFFIX}"


def snapshot_bytes(config: TrainConfig, params: Params, step: int, rows: Sequence[Mapping[str, Any]] = ()) -> bytes:
    """The safetensors file of a snapshot (weights as tensors; config, step and rows as JSON)."""
    from safetensors.torch import save

    tensors = {f"params.{n}": _cpu(params[n]) for n in WEIGHT_NAMES}
    state = {"config": config.to_dict(), "step": int(step), "rows": [dict(r) for r in rows]}
    metadata = {"format": SNAPSHOT_FORMAT, "version": str(SNAPSHOT_VERSION),
                "state": json.dumps(state, allow_nan=True)}
    return _canonical(save(tensors, metadata=metadata))


def save_snapshot(run_dir: str | Path, config: TrainConfig, params: Params, step: int,
                  rows: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Write the snapshot of ``step`` atomically into ``run_dir/snapshots`` (the index is
    :func:`write_snapshot_index`'s job)."""
    return atomic_write_bytes(snapshot_path(run_dir, step), snapshot_bytes(config, params, step, rows))


def _snapshot_state(path: Path, metadata: Mapping[str, str]) -> dict[str, Any]:
    _require_format(path, metadata, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, "snapshot", "parameter snapshot")
    try:
        state = json.loads(metadata["state"])
        int(state["step"]), state["config"]  # noqa: B018 - both must be there
    except (KeyError, ValueError, TypeError) as exc:
        raise _corrupt(path, exc, "snapshot") from None
    return state


def _config_of(path: Path, data: Mapping[str, Any]) -> TrainConfig:
    try:
        return TrainConfig.from_dict(data)
    except (TypeError, KeyError, ValueError) as exc:
        raise RunError(f"snapshot {path}: its config cannot be read ({exc})") from None


def read_snapshot(path: str | Path, device: str | torch.device = "cpu") -> Snapshot:
    """One snapshot file (this version's safetensors or an earlier version's ``.pt``)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _corrupt(path, exc, "snapshot") from None
    if data[:4] == _ZIP_MAGIC:  # an earlier version's torch zip
        payload = _torch_zip(path, data, "snapshot")
        if not isinstance(payload, dict) or payload.get("format") != SNAPSHOT_FORMAT:
            raise RunError(f"snapshot {path} is not a circeff parameter snapshot")
        if payload.get("version") != _LEGACY_SNAPSHOT_VERSION or any(n not in payload.get("params", {})
                                                                     for n in WEIGHT_NAMES):
            raise RunError(f"snapshot {path} has format version {payload.get('version')}, expected {SNAPSHOT_VERSION}")
        return Snapshot(_config_of(path, payload["config"]), int(payload["step"]),
                        {n: payload["params"][n].to(device) for n in WEIGHT_NAMES}, [], path)
    tensors, metadata = _load_safetensors(path, data, "snapshot", False)
    state = _snapshot_state(path, metadata)
    missing = [n for n in WEIGHT_NAMES if f"params.{n}" not in tensors]
    if missing:
        raise RunError(f"snapshot {path} is incomplete (missing {', '.join(missing)})")
    return Snapshot(_config_of(path, state["config"]), int(state["step"]),
                    {n: tensors[f"params.{n}"].to(device) for n in WEIGHT_NAMES},
                    [missing_as_nan(dict(r)) for r in state.get("rows", [])], path)


def _snapshot_header(path: Path) -> dict[str, Any]:
    """A snapshot's step and rows from its header alone (the tensors are not read)."""
    try:
        with open(path, "rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(header_len))
        metadata = header.get("__metadata__") or {}
    except (OSError, ValueError, AttributeError) as exc:
        raise _corrupt(path, exc, "snapshot") from None
    state = _snapshot_state(path, metadata)
    return {"step": int(state["step"]), "rows": [missing_as_nan(dict(r)) for r in state.get("rows", [])]}


def snapshot_files(run_dir: str | Path) -> dict[int, Path]:
    """step -> snapshot file of a run folder, by step (this version's file where a step has
    both); empty without ``snapshots/``."""
    folder = Path(run_dir) / SNAPSHOT_DIR
    found: dict[int, Path] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        m = _SNAPSHOT_NAME.match(path.name)
        if m and path.is_file():
            step = int(m.group(1))
            if step not in found or path.suffix == SNAPSHOT_SUFFIX:
                found[step] = path
    return dict(sorted(found.items()))


def load_snapshot(run_dir: str | Path, step: int, device: str | torch.device = "cpu") -> Snapshot:
    """The snapshot of ``step``; a ConfigError naming ``step`` and the steps there are otherwise."""
    files = snapshot_files(run_dir)
    if step not in files:
        raise ConfigError("step", f"must be a step with a snapshot in {Path(run_dir) / SNAPSHOT_DIR}: "
                          f"{list_steps(list(files))}", step)
    return read_snapshot(files[step], device)


def list_steps(steps: Sequence[int], most: int = 12) -> str:
    """Steps for a one-line message: all of them, or the first and last few and the count."""
    if not steps:
        return "there are none (train with --snapshot-every N to keep them)"
    if len(steps) <= most:
        return ", ".join(map(str, steps))
    half = most // 2
    return f"{', '.join(map(str, steps[:half]))}, ..., {', '.join(map(str, steps[-half:]))} ({len(steps)} snapshots)"


def write_snapshot_index(run_dir: str | Path, entries: Iterable[tuple[int, str, Sequence[Mapping[str, Any]]]]) -> Path:
    """Write ``snapshots/index.csv`` (atomically) from ``(step, file name, rows)`` entries,
    one row per model and step, by step."""
    rows = [{**row, "step": step, "file": name} for step, name, rs in sorted(entries, key=lambda e: e[0])
            for row in rs]
    return write_csv(Path(run_dir) / SNAPSHOT_DIR / SNAPSHOT_INDEX, csv_rows(rows), fieldnames=SNAPSHOT_INDEX_COLUMNS)


def rebuild_snapshot_index(run_dir: str | Path) -> list[tuple[int, str, list[dict[str, Any]]]]:
    """The index entries of this version's snapshot files (from their headers), written to
    ``snapshots/index.csv``; returns them. Nothing is written without ``snapshots/``."""
    entries = [(step, path.name, _snapshot_header(path)["rows"]) for step, path in snapshot_files(run_dir).items()
               if path.suffix == SNAPSHOT_SUFFIX]
    if (Path(run_dir) / SNAPSHOT_DIR).is_dir():
        write_snapshot_index(run_dir, entries)
    return entries


def read_snapshot_index(run_dir: str | Path) -> list[dict[str, str]]:
    """The rows of ``snapshots/index.csv`` as written (strings; an empty cell is a missing value)."""
    import csv

    path = Path(run_dir) / SNAPSHOT_DIR / SNAPSHOT_INDEX
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def prune_snapshots(run_dir: str | Path, after_step: int) -> list[tuple[int, str, list[dict[str, Any]]]]:
    """Delete this version's snapshots of steps after ``after_step`` (a run restarting from a
    checkpoint at that step writes them again; ``-1``: delete all) and the temporary files of a
    write that was killed, then rebuild the index from the files that stay; returns its entries.

    Snapshots of earlier versions (``.pt``) are left alone.
    """
    folder = Path(run_dir) / SNAPSHOT_DIR
    if not folder.is_dir():
        return []
    for path in folder.iterdir():
        m = _SNAPSHOT_NAME.match(path.name)
        stale = m is not None and path.suffix == SNAPSHOT_SUFFIX and int(m.group(1)) > after_step
        if stale or (path.name.startswith(".step_") and path.name.endswith(".tmp")):
            path.unlink(missing_ok=True)
    return rebuild_snapshot_index(run_dir)
