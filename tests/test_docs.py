"""The documentation builds strictly: no broken link, no unresolved API identifier, no public
module without an API section, no unknown generated-content marker.

``mkdocs build --strict`` runs into a temporary folder (about 10-20 s). Skipped, with the
reason, when the docs extra is not installed (``pip install -e '.[docs]'``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NEEDED = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "pymdownx")


def _missing() -> list[str]:
    out = []
    for name in NEEDED:
        try:
            if importlib.util.find_spec(name) is None:
                out.append(name)
        except ModuleNotFoundError:
            out.append(name)
    return out


pytestmark = pytest.mark.skipif(
    bool(_missing()),
    reason=f"docs extra not installed (missing {', '.join(_missing())}): pip install -e '.[docs]'")


def _build(config: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config),
                           "-d", str(site)], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=600)


def test_docs_build_strict(tmp_path):
    proc = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    site = tmp_path / "site"
    theory = (site / "theory" / "d3" / "index.html").read_text()
    # the registry's claims and the checker's recorded counterexample made it into the page
    assert "D3.printed" in theory and "refuted" in theory
    cli = (site / "cli" / "index.html").read_text()
    assert "circeff theory optimum" in cli and "--n-classes" in cli
    api = (site / "api" / "theory" / "index.html").read_text()
    assert 'id="circeff.theory.optima.minimise"' in api
    assert (site / "javascripts" / "vendor" / "mathjax" / "tex-mml-chtml.js").is_file()


def test_docs_build_fails_on_a_broken_link(tmp_path):
    """--strict with our config is what catches a broken link: a copy of the site with one
    bad link must fail. The copy sits in a tree of symlinks to the repository, so the
    hooks find pyproject.toml, the packages and the tests as usual."""
    for entry in ROOT.iterdir():
        if entry.name not in ("docs", "site", ".git"):
            (tmp_path / entry.name).symlink_to(entry)
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text() + "\nSee [nowhere](no-such-page.md).\n")
    proc = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode != 0
    assert "no-such-page.md" in proc.stdout + proc.stderr


def _hook(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_hook_{name}", ROOT / "docs" / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_missing_api_page_fails_the_build(tmp_path):
    """A public module without a '::: module' section stops the build (checked without a build)."""
    from mkdocs.exceptions import PluginError

    generated = _hook("generated")
    generated.check_api_coverage({"docs_dir": str(ROOT / "docs")})  # the real pages are complete
    api = tmp_path / "api"
    api.mkdir()
    for page in (ROOT / "docs" / "api").glob("*.md"):
        (api / page.name).write_text(page.read_text().replace("::: circeff.theory.optima\n", ""))
    with pytest.raises(PluginError, match="circeff.theory.optima"):
        generated.check_api_coverage({"docs_dir": str(tmp_path)})


def test_docs_api_sources_follow_pyproject():
    """The staged tree for griffe maps every package of pyproject.toml to a folder with an
    __init__.py (theory/ -> circeff.theory, ...)."""
    dirs = _hook("api_sources").package_dirs()
    assert dirs["circeff.theory"] == ROOT / "theory"
    assert dirs["circeff.empirical.experiments"] == ROOT / "empirical" / "experiments"
    assert all((d / "__init__.py").is_file() for d in dirs.values())


def test_docs_verdict_renders_per_D_rows_as_their_own_table(tmp_path, monkeypatch):
    generated = _hook("generated")
    summary = {"verdicts": {"allocation": {
        "holds": False, "reason": "case 1", "q": 2.0,
        "rows": [{"D": 20.0, "predicted": "M takes all", "predicted_ratio": 0.0},
                 {"D": 500.0, "predicted": "G takes all", "predicted_ratio": None}]}}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    monkeypatch.setattr(generated, "DATA", tmp_path)
    text = generated.render_verdict("allocation")
    assert "| q | 2 |" in text.replace("2.0", "2")
    assert "| D | predicted | predicted\\_ratio |" in text
    assert "| 500 | G takes all | — |" in text
    assert "| rows |" not in text  # not squeezed into one cell of the quantity table


def test_docs_markers_read_the_full_run_with_at_full(tmp_path, monkeypatch):
    """``@full`` reads summary_full.json (the full run); no ``@``, the quick run's summary.json;
    a stage's own verdicts (Figure 8's per task) are listed after the paper's."""
    generated = _hook("generated")
    quick = {"verdicts": {"P2": {"holds": True, "reason": "quick reason"}}}
    full = {"verdicts": {"P2": {"holds": False, "reason": "full reason"}},
            "stage_verdicts": {"P2 sub": {"holds": True, "reason": "sub reason"}}}
    (tmp_path / "summary.json").write_text(json.dumps(quick))
    (tmp_path / "summary_full.json").write_text(json.dumps(full))
    monkeypatch.setattr(generated, "DATA", tmp_path)
    assert "quick reason" in generated.render_verdict_summary("") and "full reason" not in generated.render_verdict_summary("")
    text = generated.render_verdict_summary("@full")
    assert "full reason" in text and "sub reason" in text and "quick reason" not in text
    assert "full reason" in generated.render_verdict("@full P2")
    with pytest.raises(Exception, match="unknown run"):
        generated.render_verdict("@paper P2")


def test_docs_stage_tables_and_csv_markers(tmp_path, monkeypatch):
    """``stage-tables`` picks a stage's tables by title start; ``csv`` renders a recorded CSV; a
    missing file or stage says how to make it instead of failing silently."""
    generated = _hook("generated")
    summary = {"stages": {"semigrokking": {"tables": [
        {"title": "Runs by class and size", "header": ["D", "semi"], "rows": [[300, 2]]},
        {"title": "The threshold from both sides", "header": ["quantity", "value"], "rows": [["D_up", "340"]]},
        {"title": "Runs (class by the P4 rule)", "header": ["run"], "rows": [["D00300_s0"]]}]}}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    monkeypatch.setattr(generated, "DATA", tmp_path)
    text = generated.render_stage_tables("semigrokking Runs by|The threshold")
    assert "| 300 | 2 |" in text and "| D\\_up | 340 |" in text and "D00300" not in text
    assert "D00300" in generated.render_stage_tables("semigrokking")
    assert "absent" in generated.render_stage_tables("ungrokking")
    (tmp_path / "t.csv").write_text("D,final_test_acc,class\n163.0,0.0104965,ungeneralised\n")
    monkeypatch.setattr(generated, "DOCS", tmp_path)
    table = generated.render_csv("t.csv")
    assert "| D | final\\_test\\_acc | class |" in table and "| 163 | 0.0105 | ungeneralised |" in table
    assert "Not yet" in generated.render_csv("missing.csv")
