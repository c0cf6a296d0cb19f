"""The out folder of ``circeff reproduce``: refuse another config's results unless forced, and
delete only what reproduce wrote."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from circeff.analysis.stats import to_plain
from circeff.errors import RunError
from circeff.io import ensure_dir, read_json, write_json
from circeff.reproduce.config import ReproduceConfig, comparable
from circeff.reproduce.stages import STAGES

__all__ = ["CONFIG_FILE", "DECISION_FIELDS", "prepare_out"]

CONFIG_FILE = "reproduce_config.json"
# config fields that only decide verdicts from networks already trained: a folder whose config
# differs from the wanted one only here is kept (its networks are reused, its stages re-decided,
# since their done markers carry the other config's fingerprint)
DECISION_FIELDS = frozenset({"rule", "controls_n"})
# the fields a folder may differ in and keep its networks: none of them changes what trains
_KEEPS_NETWORKS = frozenset({"device", *DECISION_FIELDS})
# the folders of stages before they took their experiments' names (an earlier version's run)
_EARLIER_STAGE_NAMES = ("grokking", "p1", "p2_p3", "p4")


def prepare_out(out: Path, config: ReproduceConfig, force: bool) -> None:
    """Refuse an out folder holding another config's results (or foreign files) unless force.

    A folder whose config differs only in :data:`DECISION_FIELDS` (a newer verdict rule) is
    kept without force: retraining hours of networks to apply a new rule would gain nothing."""
    cfg_file = out / CONFIG_FILE
    wanted = comparable(to_plain(config.to_dict()))
    if cfg_file.is_file():
        try:
            existing = comparable(read_json(cfg_file))
        except (OSError, json.JSONDecodeError):
            existing = None
        if existing != wanted:
            if force:
                _clear(out)
            elif comparable(existing, _KEEPS_NETWORKS) != comparable(wanted, _KEEPS_NETWORKS):
                raise RunError(f"{out} holds results of a different reproduce config "
                               f"({_first_difference(existing, wanted)}); use another --out, or --force to replace them")
            # else only decision rules differ: the trained networks stay, every stage decides again
    elif out.is_dir() and any(out.iterdir()):
        if not force:
            raise RunError(f"{out} is not empty and holds no circeff reproduce results; use an empty "
                           "--out, or --force to write into it")
        _clear(out)
    ensure_dir(out)
    write_json(cfg_file, to_plain(config.to_dict()))


def _clear(out: Path) -> None:
    """Delete what reproduce writes (stage folders, report, summary, config); nothing else."""
    for name in (*(s.name for s in STAGES), *_EARLIER_STAGE_NAMES, "float-order"):
        if (out / name).is_dir():
            shutil.rmtree(out / name)
    for name in (CONFIG_FILE, "report.md", "summary.json"):
        if (out / name).is_file():
            (out / name).unlink()


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else k)
    return f"{path or 'config'}: {a!r} there, {b!r} now" if path else "unreadable config"
