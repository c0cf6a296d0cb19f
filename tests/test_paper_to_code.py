"""The "From the paper to the code" page names only paths, tests and commands that exist, and
covers every theorem, figure and prediction; each shared threshold is stated in one place."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

from circeff.cli.main import run

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "paper-to-code.md"
CODE = re.compile(r"`([^`]+)`")


def _cells(column: int) -> list[str]:
    """The backticked items of one column of every table row of the page."""
    items = []
    for line in PAGE.read_text().splitlines():
        cols = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cols) == 5 and not set(cols[0]) <= {"-"} and cols[0] not in ("paper", "what"):
            items += CODE.findall(cols[column])
    return items


def test_every_code_path_exists():
    paths = _cells(1)
    assert len(paths) > 20
    missing = [p for p in paths if not (ROOT / p).is_file()]
    assert not missing


def test_every_test_named_exists():
    tests = _cells(3)
    assert len(tests) > 20
    for item in tests:
        path, _, name = item.partition("::")
        assert (ROOT / path).is_file(), item
        if name:
            defined = {n.name for n in ast.walk(ast.parse((ROOT / path).read_text()))
                       if isinstance(n, ast.FunctionDef)}
            assert name in defined, item


def test_every_docs_page_exists():
    pages = _cells(4)
    assert pages and all((ROOT / "docs" / p).is_file() for p in pages), pages


@pytest.mark.parametrize("command", sorted(set(_cells(2))))
def test_every_command_exists(command, capsys):
    argv = shlex.split(command)
    assert argv[0] == "circeff"
    # --help after the words that name the command: typer answers without running it
    words = [a for a in argv[1:] if not a.startswith("-")][:2]
    assert run([*words[: 2 if argv[1] in ("theory", "toy", "experiment", "analyze") else 1], "--help"]) == 0
    capsys.readouterr()


def test_the_page_covers_every_theorem_figure_and_prediction():
    text = PAGE.read_text()
    for item in ("Theorem D.1", "Lemma D.2", "Lemma D.3", "Theorem D.4", "P1", "P2", "P3", "P4", "Appendix B",
                 *(f"Figure {n}" for n in range(2, 11)), "Figure 1(a)", "Figure 1(b)", "Figure 1(c)"):
        assert item in text, item


def test_the_page_is_in_the_site_navigation():
    assert "paper-to-code.md" in (ROOT / "mkdocs.yml").read_text()


def test_the_G_only_threshold_is_stated_once():
    """0.95 as a trig-share threshold appears in circeff/thresholds.py only; every setting that
    uses it defaults to the named constant."""
    from circeff import thresholds

    assert thresholds.G_ONLY_TRIG_SHARE == 0.95
    stated = []
    for folder in ("analysis", "circeff", "empirical", "toy", "theory"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.arg for a in getattr(getattr(node, "args", None), "args", [])] if isinstance(
                    node, ast.FunctionDef) else []
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    names, values = [node.target.id], [node.value]
                elif isinstance(node, ast.FunctionDef):
                    values = node.args.defaults[-len(names):] if node.args.defaults else []
                    names = names[-len(values):] if values else []
                    values += node.args.kw_defaults
                    names += [a.arg for a in node.args.kwonlyargs]
                else:
                    continue
                for name, value in zip(names, values):
                    if "share" in name and isinstance(value, ast.Constant) and value.value == 0.95:
                        stated.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert not stated
