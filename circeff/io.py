"""Atomic writes for results: a kill never leaves a half-written file."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from circeff.errors import PathError, WriteError


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and parents).

    A file where the folder should be is bad input (:class:`PathError`, exit code 2); a folder
    the file system will not create or let us write (:class:`WriteError`, exit code 1).
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise PathError(p, f"must be a folder, but {p} is a file")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(p, f"out folder {p}: cannot create it ({exc.strerror or type(exc).__name__})") from None
    if not os.access(p, os.W_OK):
        raise WriteError(p, f"out folder {p}: not writable")
    return p


def _default_mode() -> int:
    # mkstemp creates files 0600; results are meant to be shared, so honour the umask like open() does.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    target = Path(path)
    ensure_dir(target.parent)
    if target.is_dir():
        raise PathError(target, f"must be a file, but {target} is a folder")
    tmp: str | None = None
    try:
        # mkstemp inside the try: a folder that refuses new files (/proc, read-only) is a clean error.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, target)
    except OSError as exc:
        _discard(tmp)
        raise WriteError(target, f"{target}: cannot write ({exc.strerror or type(exc).__name__})") from None
    except BaseException:
        _discard(tmp)
        raise
    return target


def _discard(tmp: str | None) -> None:
    if tmp is not None:
        with contextlib.suppress(OSError):
            Path(tmp).unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (NaN is refused, never written)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def write_csv(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]],
              fieldnames: list[str] | None = None) -> Path:
    """Atomically write flat rows as CSV."""
    import io as _io

    rows = list(rows)
    if fieldnames is None:
        fieldnames = list(rows[0].keys()) if rows else []
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buf.getvalue())
