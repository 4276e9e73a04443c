"""`hfkit recipes`: recipes listed by a name that works from here, their task, model and whether
they run offline (read as plain YAML: no model or data is touched)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from hfkit import resources
from hfkit.errors import HfkitError
from hfkit.models import ALIASES


def recipe_lines(folder: Path | None = None) -> list[str]:
    """The lines `hfkit recipes` prints: the shipped recipes (a header says where they are, and their
    names work from any folder) or those under `folder`."""
    header = []
    if folder is not None:
        files = sorted(folder.rglob("*.yaml")) if folder.is_dir() else []
        if not files:
            raise HfkitError(f"no recipes (*.yaml) under {folder}")
        names = [os.path.relpath(path) for path in files]
    else:
        files, root = resources.shipped_recipes(), resources.shipped_root()
        local = Path("recipes").resolve() == root.resolve()  # in the checkout: the paths as they are
        names = [os.path.relpath(path) if local else str(path.relative_to(root)) for path in files]
        header = [f"Shipped with hfkit ({root}); train one by its name, e.g. hfkit train {names[0]}"]
    rows = [(name, *describe(path)) for name, path in zip(names, files)]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return header + [("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + f"  {row[3]}").rstrip()
                     for row in rows]


def describe(path: Path) -> tuple[str, str, str]:
    """(task, model, "runs offline" or "needs the Hub") of a recipe file; both models of a bert2bert; for
    a study file, "study", its recipe and searched keys, and whether that recipe runs offline."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if "search" in raw:  # a study file (hfkit study): its recipe and the keys it searches
            recipe = Path(path).parent / str(raw.get("recipe"))
            offline = describe(recipe)[2] if recipe.is_file() else ""
            return "study", f"{raw.get('recipe', '?')}: {', '.join(map(str, raw['search']))}", offline
        model, data = raw.get("model") or {}, raw.get("data") or {}
        names = ([model["encoder_decoder"].get("encoder"), model["encoder_decoder"].get("decoder")]
                 if isinstance(model.get("encoder_decoder"), dict) else [model.get("name_or_path")])
    except (yaml.YAMLError, AttributeError, UnicodeDecodeError, TypeError):
        return "", "", f"(not a valid recipe: run hfkit validate {path})"
    local = all(isinstance(name, str) and (name in ALIASES or (Path(path).parent / name).expanduser().exists())
                for name in names)
    offline = "runs offline" if local and not data.get("dataset") else "needs the Hub"
    return str(raw.get("task", "?")), " + ".join(str(name) for name in names), offline
