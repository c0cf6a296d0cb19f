"""The package is self-contained: nothing a user reads points at a document they do not have.

No source file of the package, page of the docs, the README, nor any ``circeff ... --help``
text mentions the working spec ("SPEC"), "the design card", or an issue number ("#7",
"issue 7", "the predictions issue"). Where a setting matters, the text states it in its own
words with the paper's section or figure number (see docs/settings.md).

The tests, scripts and CI files are held to the same rule: they are code a user reads too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATTERNS = [
    re.compile(r"\bSPEC\b"),
    re.compile(r"design[ -]card", re.I),
    re.compile(r"\bissues?\s*#?\d+", re.I),
    re.compile(r"(?<![&\w])#\d{1,3}\b(?![0-9a-fA-F])"),  # "#14" (not "&#124;", not a colour)
    re.compile(r"\bthe \w+ issue\b", re.I),
]


def hits(text: str) -> list[str]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        out += [f"{n}: {m.group(0)!r} in {line.strip()[:100]}" for p in PATTERNS for m in p.finditer(line)]
    return out


def user_facing_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for folder in ("theory", "toy", "empirical", "analysis", "circeff", "benchmarks", "scripts", "tests"):
        files += sorted((ROOT / folder).rglob("*.py"))
    files += sorted((ROOT / "benchmarks").glob("*.sh")) + [ROOT / ".ci" / "run", ROOT / "pyproject.toml"]
    files += sorted(p for p in (ROOT / "docs").rglob("*.md"))
    files += sorted((ROOT / "docs" / "hooks").rglob("*.py")) + sorted((ROOT / "docs" / "scripts").rglob("*.py"))
    return [p for p in files if p.is_file()]


# This file spells out what it looks for, so it is the one file left out.
SELF = Path(__file__).resolve()


@pytest.mark.parametrize("path", [pytest.param(p, id=str(p.relative_to(ROOT)))
                                  for p in user_facing_files() if p != SELF])
def test_no_reference_to_documents_outside_the_package(path):
    found = hits(path.read_text(errors="replace"))
    assert not found, f"{path.relative_to(ROOT)}:\n" + "\n".join(found)


def cli_help_texts() -> dict[str, str]:
    """``--help`` of every command and group of ``circeff``."""
    import typer

    try:  # typer >= 0.22 vendors click under typer._click
        from typer import _click as click
    except ImportError:  # pragma: no cover - older typer
        import click

    from circeff.cli.main import app

    root = typer.main.get_command(app)
    texts: dict[str, str] = {}

    def walk(cmd, ctx):
        parts = [cmd.help or "", cmd.short_help or ""]
        parts += [getattr(p, "help", None) or "" for p in cmd.params]
        if callable(getattr(cmd, "list_commands", None)):
            parts += [(cmd.get_command(ctx, n).help or "") for n in cmd.list_commands(ctx)]
        texts[ctx.command_path] = "\n".join(parts)
        if callable(getattr(cmd, "list_commands", None)):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None:
                    walk(sub, click.Context(sub, info_name=name, parent=ctx))

    walk(root, click.Context(root, info_name="circeff"))
    return texts


def test_cli_help_names_no_outside_document():
    texts = cli_help_texts()
    assert len(texts) > 10  # the walk reached the sub-commands
    bad = {cmd: hits(t) for cmd, t in texts.items() if hits(t)}
    assert not bad, bad


@pytest.mark.parametrize("text", ["see SPEC section 6", "the design card says", "fixed in #14",
                                  "as issue 16 asks", "(the predictions issue)", "Issue #3"])
def test_the_grep_catches_each_kind_of_reference(text):
    # negative control: each pattern finds what it is for
    assert hits(text)


@pytest.mark.parametrize("text", ["TOY_SPECS = {}", "color='#1f77b4'", "&#124;", "spec of the run",
                                  "an issue with the fit", "step 1500"])
def test_the_grep_leaves_ordinary_text_alone(text):
    assert not hits(text)
