"""Grid files: a JSON description of many run configs, and the kinds of run they name.

A grid file::

    {
      "kind": "train",                         # which registered kind of run
      "base": {"p": 13, "steps": 300},         # fields shared by every run
      "grid": {"seed": [0, 1, 2], "weight_decay": [0.3, 1.0]},   # cartesian product
      "runs": [{"task": "add"}, {"task": "sub"}]                 # optional explicit overrides
    }

expands to ``len(runs or [{}]) * prod(len(v) for v in grid.values())`` configs, each
``base | run | point`` (later wins), deduplicated by config hash. Every config is built
(and so validated by its dataclass) before anything is written, so a bad grid file writes
nothing.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import json
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from circeff.errors import ConfigError, RunError
from circeff.sweep.executors import BatchFn, GroupKey
from circeff.sweep.store import config_hash

GRID_KEYS = ("kind", "base", "grid", "runs")


@dataclasses.dataclass(frozen=True)
class SweepKind:
    """A kind of run a grid can name: how to build its config and how to run a batch of them."""

    name: str
    build_config: Callable[[Mapping[str, Any]], Any]
    batch_fn: BatchFn
    group_key: GroupKey | None = None


# name -> "module:attribute" of a zero-argument function returning a SweepKind. Loaded
# lazily so that `circeff sweep --help` does not import torch.
_KIND_LOADERS: dict[str, str] = {
    "train": "circeff.sweep.engine:train_kind",
}
_KINDS: dict[str, SweepKind] = {}


def register_kind(kind: SweepKind) -> None:
    """Make ``kind`` available to grid files by its name (tests register pure-Python kinds)."""
    _KINDS[kind.name] = kind


def kind_names() -> list[str]:
    return sorted(set(_KIND_LOADERS) | set(_KINDS))


def get_kind(name: object) -> SweepKind:
    if isinstance(name, str) and name in _KINDS:
        return _KINDS[name]
    if not isinstance(name, str) or name not in _KIND_LOADERS:
        raise ConfigError("kind", f"must be one of {', '.join(kind_names())}", name)
    module_name, attr = _KIND_LOADERS[name].split(":")
    try:
        loader = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise RunError(f"kind {name!r} is not available in this installation ({exc})") from None
    kind = loader()
    _KINDS[name] = kind
    return kind


def _wants_tuple(annotation: object) -> bool:
    """Whether a dataclass field is typed as a tuple (JSON has only lists)."""
    if isinstance(annotation, str):
        return annotation.startswith(("tuple", "Tuple", "typing.Tuple"))
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_wants_tuple(a) for a in typing.get_args(annotation))
    return origin is tuple or annotation is tuple


def config_from_mapping(cls: type, data: object) -> Any:
    """Build the frozen dataclass ``cls`` from a JSON object, with one-line errors.

    Unknown and missing fields are named; the dataclass's own ``__post_init__`` checks
    ranges and raises ConfigError itself. Lists become tuples where the field is a tuple.
    """
    if not isinstance(data, Mapping):
        raise ConfigError("config", "must be a JSON object of field: value", data)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise ConfigError(str(key), f"unknown field; allowed: {', '.join(sorted(fields))}")
    for name, f in fields.items():
        if name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(name, "is required")
    kwargs = {}
    for key, value in data.items():
        if isinstance(value, list) and _wants_tuple(fields[key].type):
            value = tuple(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(cls.__name__, " ".join(str(exc).split())) from None


def _expect(field: str, value: object, kind: type, what: str) -> None:
    if not isinstance(value, kind):
        raise ConfigError(field, f"must be {what}", value)


def expand_grid(spec: object) -> tuple[SweepKind, list[Any]]:
    """The kind and the (validated, deduplicated) configs of a parsed grid file."""
    _expect("grid file", spec, dict, "a JSON object with keys kind, base, grid, runs")
    assert isinstance(spec, dict)
    for key in spec:
        if key not in GRID_KEYS:
            raise ConfigError(str(key), f"unknown grid-file key; allowed: {', '.join(GRID_KEYS)}")
    if "kind" not in spec:
        raise ConfigError("kind", f"is required; one of {', '.join(kind_names())}")
    kind = get_kind(spec["kind"])
    base = spec.get("base", {})
    _expect("base", base, dict, "a JSON object of field: value")
    grid = spec.get("grid", {})
    _expect("grid", grid, dict, "a JSON object of field: [values]")
    for field, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid.{field}", "must be a non-empty list of values", values)
    runs = spec.get("runs", [{}])
    if not isinstance(runs, list) or not runs or not all(isinstance(r, dict) for r in runs):
        raise ConfigError("runs", "must be a non-empty list of JSON objects", runs)

    configs: dict[str, Any] = {}
    names = list(grid)
    for run_index, run in enumerate(runs):
        for point in itertools.product(*(grid[n] for n in names)):
            fields = {**base, **run, **dict(zip(names, point))}
            try:
                config = kind.build_config(fields)
            except ConfigError as exc:
                where = f" (run {run_index})" if len(runs) > 1 else ""
                raise ConfigError(f"{exc.field}{where}", exc.allowed, exc.got) from None
            configs.setdefault(config_hash(config), config)
    return kind, list(configs.values())


def load_grid(path: str | Path) -> tuple[SweepKind, list[Any]]:
    """Read and expand a grid file; a missing or malformed file is a one-line ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError("GRID", f"must be a readable JSON grid file ({reason})", str(path)) from None
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError("GRID", f"must be valid JSON (line {exc.lineno}: {exc.msg})", str(path)) from None
    return expand_grid(spec)
