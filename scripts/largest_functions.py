"""Print the N largest functions of the package's source (lines from ``def`` to the last line).

Usage: ``python scripts/largest_functions.py [N] [ROOT]`` (defaults: 15, the repository root).
Tests, docs and benchmarks are left out: this measures the package a maintainer reads.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE_DIRS = ("analysis", "circeff", "empirical", "theory", "toy")


def functions(root: Path):
    for folder in PACKAGE_DIRS:
        for path in sorted((root / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield node.end_lineno - node.lineno + 1, f"{path.relative_to(root)}:{node.lineno}", node.name


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    root = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).resolve().parents[1]
    for lines, where, name in sorted(functions(root), reverse=True)[:n]:
        print(f"{lines:5d}  {name:36s} {where}")


if __name__ == "__main__":
    main()
