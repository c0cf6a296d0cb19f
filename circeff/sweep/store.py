"""An idempotent result store: one folder per run, keyed by a hash of its full config.

Layout of a store root::

    ROOT/
      runs/<run_id>/config.json   the full config (canonical JSON; its hash is <run_id>)
      runs/<run_id>/...           whatever the work function writes (metrics.csv, checkpoints)
      runs/<run_id>/done.json     written atomically LAST, once the run has finished
      runs/<run_id>/failed.json   the one-line error of the last failed attempt (if any)
      results.csv                 every finished run's metric rows plus its config fields
      results.parquet             the same table, only when pyarrow is installed

A run's status is read from its files, never from a database, so that a killed sweep is
resumed by running it again: finished runs (``done.json``) are skipped, runs that left a
checkpoint resume from it, and the rest start afresh.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import io
import json
import math
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from circeff.errors import ConfigError, RunError
from circeff.io import atomic_write_bytes, atomic_write_text, ensure_dir, read_json, write_json

RUNS_DIR = "runs"
CONFIG_FILE = "config.json"
DONE_FILE = "done.json"
FAILED_FILE = "failed.json"
METRICS_FILE = "metrics.csv"
LOCK_FILE = ".lock"
RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
# How many hex digits of the sha256 name a run folder: 16 digits = 64 bits, so a
# collision needs about 4e9 runs in one store.
RUN_ID_DIGITS = 16
# Files whose presence means "a checkpoint exists, resume from it". The engine writes
# `checkpoint.safetensors` (earlier versions `checkpoint.pt`); any name starting with
# `checkpoint` counts so that a renamed or sharded checkpoint is still found.
CHECKPOINT_GLOB = "checkpoint*"


class RunStatus(str, enum.Enum):
    NEW = "new"
    RESUMABLE = "resumable"
    DONE = "done"


def config_to_dict(config: Any) -> dict[str, Any]:
    """The config as a plain JSON-able dict (a dataclass via ``dataclasses.asdict``)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        data = dataclasses.asdict(config)
    elif isinstance(config, Mapping):
        data = dict(config)
    else:
        raise TypeError(f"a run config must be a dataclass instance or a mapping, not {type(config).__name__}")
    # Round-trip through JSON so tuples become lists, enums/paths strings: the dict we
    # hash is exactly the dict that config.json holds.
    return json.loads(canonical_json(data))


def _json_default(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"config value {value!r} of type {type(value).__name__} is not JSON-serialisable")


def canonical_json(data: Any) -> str:
    """Sorted keys, no whitespace, NaN refused: equal configs give equal text."""
    try:
        return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False,
                          default=_json_default, ensure_ascii=True)
    except ValueError:
        raise ConfigError("config", "must contain only finite numbers (NaN/inf cannot be stored)",
                          data) from None


def config_hash(config: Any) -> str:
    """Stable short id of a config: sha256 of its canonical JSON, first 16 hex digits."""
    text = canonical_json(config_to_dict(config))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:RUN_ID_DIGITS]


@dataclasses.dataclass(frozen=True)
class StoredRun:
    """One run folder as found on disk."""

    run_id: str
    path: Path
    config: dict[str, Any]
    status: RunStatus


class RunStore:
    """A folder of runs keyed by config hash. Creating the object writes nothing."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -- paths and status -------------------------------------------------------------
    @property
    def runs_root(self) -> Path:
        return self.root / RUNS_DIR

    def run_dir(self, config: Any) -> Path:
        return self.runs_root / config_hash(config)

    def status(self, config: Any) -> RunStatus:
        return status_of(self.run_dir(config))

    # -- writing ----------------------------------------------------------------------
    def prepare(self, config: Any) -> Path:
        """Create the run folder and its config.json (atomically); returns the folder.

        An existing folder is checked, never overwritten: its config.json must hash to
        its name, or the store is corrupt and we refuse to mix results into it.
        """
        path = self.run_dir(config)
        config_file = path / CONFIG_FILE
        if config_file.exists():
            _check_folder(path)
            return path
        ensure_dir(path)
        write_json(config_file, config_to_dict(config))
        return path

    # -- reading ----------------------------------------------------------------------
    def runs(self) -> Iterator[StoredRun]:
        """Every run folder with a config.json, checked against its hash (sorted by id)."""
        if not self.runs_root.is_dir():
            return
        for path in sorted(self.runs_root.iterdir()):
            if not path.is_dir():
                continue
            if not (path / CONFIG_FILE).exists():
                # Killed between mkdir and writing config.json: nothing ran there yet.
                continue
            config = _check_folder(path)
            yield StoredRun(path.name, path, config, status_of(path))

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold ROOT/.lock while running: a second sweep on the same store fails at once.

        flock is released by the kernel when the process dies (even by kill -9), so a
        stale lock never blocks a rerun.
        """
        import fcntl

        ensure_dir(self.root)
        fh = open(self.root / LOCK_FILE, "a+")
        try:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise RunError(f"store {self.root} is in use by another sweep; wait for it to "
                               "finish (or stop it) before running this one") from None
            yield
        finally:
            fh.close()

    def verify(self) -> int:
        """Check every run folder against its hash; returns the number of runs."""
        return sum(1 for _ in self.runs())

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in RunStatus}
        for run in self.runs():
            out[run.status.value] += 1
        return out


def status_of(path: Path) -> RunStatus:
    """done.json => DONE; a checkpoint => RESUMABLE; anything else => NEW."""
    if (path / DONE_FILE).exists():
        return RunStatus.DONE
    if path.is_dir() and any(path.glob(CHECKPOINT_GLOB)):
        return RunStatus.RESUMABLE
    return RunStatus.NEW


def _check_folder(path: Path) -> dict[str, Any]:
    """Read config.json and make sure it hashes to the folder's name."""
    try:
        config = read_json(path / CONFIG_FILE)
    except (OSError, ValueError) as exc:
        raise RunError(f"run folder {path}: config.json is unreadable ({exc}); "
                       "delete the folder to rerun that run") from None
    got = hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()[:RUN_ID_DIGITS]
    if got != path.name:
        raise RunError(f"run folder {path}: config.json hashes to {got}, not to the folder name; "
                       "the store was edited by hand or mixes two stores; move that folder away")
    return config


def mark_done(run_dir: str | os.PathLike[str], summary: Any = None) -> Path:
    """Write done.json atomically; this is the LAST write of a finished run."""
    path = Path(run_dir)
    record: dict[str, Any] = {"status": "done", "finished_unix": time.time()}
    if summary is not None:
        record["summary"] = _jsonable(summary)
    (path / FAILED_FILE).unlink(missing_ok=True)
    return write_json(path / DONE_FILE, record)


def mark_failed(run_dir: str | os.PathLike[str], error: str) -> Path:
    """Record the one-line error of a failed attempt (the run stays not-done, so a rerun retries it)."""
    return write_json(Path(run_dir) / FAILED_FILE, {"status": "failed", "error": error,
                                                     "failed_unix": time.time()})


def _jsonable(value: Any) -> Any:
    """Keep what JSON can hold; NaN/inf become None so done.json is always valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if hasattr(value, "item"):  # numpy / torch scalars
        try:
            return _jsonable(value.item())
        except (TypeError, ValueError):
            pass
    return repr(value)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts become dotted columns (``task.p``), lists of dicts indexed ones
    (``runs.0.seed``); other lists become their JSON text (one cell)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for i, item in enumerate(value):
                flat.update(flatten(item, prefix=f"{name}.{i}."))
        elif isinstance(value, list):
            flat[name] = json.dumps(value)
        else:
            flat[name] = value
    return flat


def _run_rows(run: StoredRun, metrics_file: str) -> pd.DataFrame:
    metrics_path = run.path / metrics_file
    if metrics_path.exists() and metrics_path.stat().st_size > 0:
        rows = pd.read_csv(metrics_path)
    else:
        summary = read_json(run.path / DONE_FILE).get("summary")
        rows = pd.DataFrame([flatten(summary)] if isinstance(summary, Mapping) else [{}])
    config_cols = flatten(run.config)
    for name, value in config_cols.items():
        # A metric column wins its name; the config field is then kept as config.<name>.
        column = name if name not in rows.columns else f"config.{name}"
        rows[column] = value
    rows.insert(0, "run_id", run.run_id)
    return rows


def combine(store_root: str | os.PathLike[str], *, metrics_file: str = METRICS_FILE,
            write: bool = True) -> pd.DataFrame:
    """One table of every finished run's metric rows, its config fields as columns.

    Writes ROOT/results.csv (and ROOT/results.parquet when pyarrow is installed)
    atomically and returns the table; ``pandas.read_csv(ROOT/'results.csv')`` loads it.
    Unfinished runs are left out: their rows could still change.
    """
    store = RunStore(store_root)
    frames = [_run_rows(run, metrics_file) for run in store.runs() if run.status is RunStatus.DONE]
    frames = [f for f in frames if not f.empty]
    table = pd.concat(frames, ignore_index=True, sort=False) if frames else pd.DataFrame({"run_id": []})
    if write:
        write_results(store.root, table)
    return table


def write_results(root: Path, table: pd.DataFrame) -> list[Path]:
    written = [atomic_write_text(root / RESULTS_CSV, table.to_csv(index=False, lineterminator="\n"))]
    try:
        import pyarrow  # noqa: F401  (optional: Parquet only when it is installed)
    except ImportError:
        return written
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    written.append(atomic_write_bytes(root / RESULTS_PARQUET, buf.getvalue()))
    return written


def load_results(store_root: str | os.PathLike[str]) -> pd.DataFrame:
    """Load the combined table written by :func:`combine` (Parquet if present, else CSV)."""
    root = Path(store_root)
    if (root / RESULTS_PARQUET).exists():
        return pd.read_parquet(root / RESULTS_PARQUET)
    return pd.read_csv(root / RESULTS_CSV)

