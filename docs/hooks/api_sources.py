"""Let mkdocstrings find ``circeff.theory`` and the other repo-root packages.

The package layout maps repo-root folders into one namespace with setuptools
``package-dir`` (``theory/`` -> ``circeff.theory``, ``toy/`` -> ``circeff.toy``, ...).
griffe, which mkdocstrings uses to read docstrings, looks for ``circeff/theory/`` on disk
and does not follow that mapping (neither through the editable-install finder nor by
inspection, which only sees imported attributes). So before mkdocstrings starts, this
hook stages the packages as one ordinary ``circeff/`` tree of symlinks, built from
pyproject.toml's ``[tool.setuptools]`` table (so it follows the packaging, never a copy
of it), and points the python handler's ``paths`` at it. It works without installing the
package at all, which keeps the docs build independent of how (or whether) it is installed.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import tomllib
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority

ROOT = Path(__file__).resolve().parents[2]


def package_dirs(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, Path]:
    """Every package name listed in pyproject.toml -> the folder that holds its modules."""
    table = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]
    mapping: dict[str, str] = table.get("package-dir", {})
    out: dict[str, Path] = {}
    for name in table["packages"]:
        # nearest mapped ancestor (or the package itself), then the remaining parts
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            prefix = ".".join(parts[:i])
            if prefix in mapping:
                out[name] = ROOT / mapping[prefix] / Path(*parts[i:])
                break
        else:
            out[name] = ROOT / Path(*parts)
    return out


def stage(dest: Path) -> dict[str, Path]:
    """Symlink every package's ``.py`` files into ``dest/<dotted/path>/``."""
    packages = package_dirs()
    for name, src in packages.items():
        if not (src / "__init__.py").is_file():
            raise PluginError(f"api_sources: package {name} has no {src / '__init__.py'}")
        target = dest / Path(*name.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for module in src.glob("*.py"):
            (target / module.name).symlink_to(module)
    return packages


@event_priority(100)  # before mkdocstrings reads its handler configuration
def on_config(config):
    staged = Path(tempfile.mkdtemp(prefix="circeff-docs-api-"))
    atexit.register(shutil.rmtree, staged, ignore_errors=True)
    stage(staged)
    handlers = config["plugins"]["mkdocstrings"].config["handlers"]
    handlers.setdefault("python", {})["paths"] = [str(staged)]
    return config
