"""The typed verdict of a prediction: whether it holds, why, the numbers and the rule used."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from circeff.analysis.stats import to_plain

__all__ = ["Verdict"]


@dataclass(frozen=True)
class Verdict:
    key: str            # 'P1','P2','P3','P4','fig10a','allocation'
    holds: bool
    reason: str
    numbers: dict       # JSON-safe numbers the rule used
    rule: dict          # the rule's parameters

    def to_dict(self) -> dict:
        return to_plain({"key": self.key, "holds": bool(self.holds), "reason": self.reason,
                         "numbers": self.numbers, "rule": self.rule})
