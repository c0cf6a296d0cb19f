"""The import graph has no arrow back up a layer.

Layers, lowest first (a module may import its own layer and any layer below, never above):

    0  core         circeff.errors, circeff.validate, circeff.io, circeff.thresholds, circeff.progress
    1  theory       circeff.theory
    2  toy          circeff.toy                (not empirical: the two simulations are separate)
    2  empirical    circeff.empirical          (the engine, tasks, Fourier analysis, backend)
    3  analysis     circeff.analysis           (fits and figures; may link theory, toy, empirical)
    4  experiments  circeff.empirical.experiments  (run the engine, judge with analysis),
                    circeff.empirical.presets      (their named settings)
    5  app          circeff.sweep, circeff.reproduce, circeff.report, circeff.cli, circeff.presets

Every ``import`` is counted, including the ones inside functions (a lazy import is still an
arrow). Run: ``python -m pytest tests/test_layers.py -q``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"theory": "circeff.theory", "toy": "circeff.toy", "empirical": "circeff.empirical",
           "analysis": "circeff.analysis", "circeff": "circeff"}

# (prefix, layer name, rank); the longest matching prefix decides
LAYERS = [
    ("circeff.errors", "core", 0), ("circeff.validate", "core", 0), ("circeff.io", "core", 0),
    ("circeff.thresholds", "core", 0), ("circeff.progress", "core", 0),
    ("circeff.theory", "theory", 1),
    ("circeff.toy", "toy", 2),
    ("circeff.empirical", "empirical", 2),
    ("circeff.analysis", "analysis", 3),
    ("circeff.empirical.experiments", "experiments", 4),
    ("circeff.empirical.presets", "experiments", 4),  # named settings of the experiments
    ("circeff", "app", 5),
]
# layers of one rank that must not import each other
SEPARATE = {("toy", "empirical"), ("empirical", "toy")}


def layer_of(module: str) -> tuple[str, int] | None:
    best = None
    for prefix, name, rank in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, name, rank)
    return None if best is None else (best[1], best[2])


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    head = FOLDERS[parts[0]]
    return ".".join([head, *parts[1:]])


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every module a source file imports (absolute names; relative ones resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            # `from circeff import reproduce` imports the submodule
            out += [(node.lineno, f"{name}.{a.name}") for a in node.names if name == "circeff"]
    return out


def arrows_up(sources: list[Path]) -> list[str]:
    bad = []
    for path in sources:
        src = layer_of(module_name(path))
        for lineno, target in imports_of(path):
            dst = layer_of(target)
            if src is None or dst is None or target == "circeff":
                continue
            if dst[1] > src[1] or (src[0], dst[0]) in SEPARATE:
                bad.append(f"{path.relative_to(ROOT)}:{lineno}: {src[0]} imports {target} ({dst[0]})")
    return bad


def package_sources() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


def test_no_import_climbs_back_up_a_layer():
    bad = arrows_up(package_sources())
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_every_package_module_has_a_layer():
    missing = [str(p) for p in package_sources() if layer_of(module_name(p)) is None]
    assert not missing


@pytest.mark.parametrize("folder, line", [
    ("empirical/experiments", "from circeff.sweep.backend import make_trainer\n"),
    ("empirical", "from circeff.analysis.stats import Interval\n"),
    ("theory", "    from circeff.toy.circuits import loss\n"),
    ("toy", "import circeff.empirical.tasks\n"),
])
def test_the_walker_catches_an_arrow_up(tmp_path, monkeypatch, folder, line):
    # negative control: a planted upward import (at module level or inside a function) is found
    target = ROOT / folder / "_planted_layer_probe.py"
    body = f"def f():\n{line}" if line.startswith("    ") else line
    target.write_text(body)
    try:
        assert arrows_up([target]), f"not caught: {line!r} in {folder}"
    finally:
        target.unlink()
