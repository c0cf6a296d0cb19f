"""What a stage of ``circeff reproduce`` returns: a :class:`StageResult` of typed parts.

A stage's verdicts are :class:`~circeff.analysis.verdicts.Verdict` objects, its tables
:class:`Table` objects and the numbers later stages read (the D_crit estimates) are
:class:`~circeff.analysis.stats.Interval` objects, so a stage hands the next one typed values,
never a JSON dict to parse back. The stage's ``done.json`` stores the result (:meth:`StageResult.to_dict`)
and a resumed run restores it (:meth:`StageResult.from_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from circeff.analysis.stats import Interval, to_plain
from circeff.analysis.verdicts import Verdict

__all__ = ["StageResult", "Table"]


@dataclass(frozen=True)
class Table:
    """A table for the report: a title, column names and rows of plain values."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    @classmethod
    def of(cls, title: str, header: list[str], rows: list[list[Any]]) -> Table:
        return cls(title, tuple(header), tuple(tuple(r) for r in rows))


@dataclass
class StageResult:
    """One stage: status, timing, figures (caption -> path relative to the out folder),
    verdicts, tables, notes (markdown lines), estimates other stages read, its config, the
    controls of its verdicts (false accept / false reject on its own design) and the settings
    every page states (P, widths, lr, steps, seeds).

    ``earlier_s``: the seconds of earlier calls that finished this stage under rules since
    changed, whose networks this call reused to decide again (0 when it trained everything)."""

    name: str
    status: str = "done"                       # done | failed
    seconds: float = 0.0
    skipped: bool = False
    earlier_s: float = 0.0
    error: str | None = None
    figures: dict[str, str] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    estimates: dict[str, Interval] = field(default_factory=dict)
    config: Any = None
    controls: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status == "done"

    def verdict(self, key: str) -> Verdict | None:
        return next((v for v in self.verdicts if v.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        return to_plain({"name": self.name, "status": self.status, "seconds": self.seconds, "skipped": self.skipped,
                         "earlier_s": self.earlier_s, "error": self.error, "figures": self.figures,
                         "verdicts": [v.to_dict() for v in self.verdicts],
                         "tables": [{"title": t.title, "header": t.header, "rows": t.rows} for t in self.tables],
                         "notes": self.notes, "estimates": {k: iv.to_dict() for k, iv in self.estimates.items()},
                         "config": self.config, "controls": self.controls, "settings": self.settings})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StageResult:
        return cls(
            name=d["name"], status=d["status"], seconds=float(d.get("seconds") or 0.0), skipped=bool(d.get("skipped")),
            earlier_s=float(d.get("earlier_s") or 0.0), error=d.get("error"), figures=dict(d.get("figures") or {}),
            verdicts=[Verdict(**v) for v in d.get("verdicts", [])],
            tables=[Table.of(t["title"], t["header"], t["rows"]) for t in d.get("tables", [])],
            notes=list(d.get("notes", [])),
            estimates={k: Interval.from_dict(v) for k, v in (d.get("estimates") or {}).items()},
            config=d.get("config"), controls=dict(d.get("controls") or {}), settings=dict(d.get("settings") or {}))
