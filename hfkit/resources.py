"""Files shipped inside the package: the model-card templates and the recipes with their demo data.

Their editable sources are the top-level `model_cards/` and `recipes/` folders; pyproject.toml maps
them into the package (`hfkit.model_cards`, `hfkit.shipped_recipes`), so an installed wheel has
them wherever it runs, and they are read through importlib.resources.
"""

from __future__ import annotations

from contextlib import contextmanager
from importlib import resources
from pathlib import Path


@contextmanager
def model_card_template(name: str):
    """A real file path for the template `name` (e.g. adapter_card.md.j2)."""
    with resources.as_file(resources.files("hfkit.model_cards") / name) as path:
        yield Path(path)


def shipped_root() -> Path:
    """The folder the shipped recipes are in (the checkout's recipes/ for an editable install)."""
    return Path(str(resources.files("hfkit.shipped_recipes")))


def shipped_recipe(name: str | Path) -> Path | None:
    """A shipped recipe by its name as `hfkit recipes` lists it (generation/demo.yaml, also written
    recipes/generation/demo.yaml), so that name works from any folder; None when there is none."""
    parts = Path(name).parts
    parts = parts[1:] if parts[:1] == ("recipes",) else parts
    if len(parts) != 2 or not parts[1].endswith(".yaml"):
        return None
    path = shipped_root() / parts[0] / parts[1]
    return path if path.is_file() else None


def shipped_recipes() -> list[Path]:
    """Every shipped recipe file (recipes/<task>/*.yaml), as paths that `hfkit train` can read."""
    root = resources.files("hfkit.shipped_recipes")
    found = []
    for task in sorted(root.iterdir(), key=lambda p: p.name):
        if task.is_dir():
            found += [Path(str(entry)) for entry in sorted(task.iterdir(), key=lambda p: p.name)
                      if entry.name.endswith(".yaml")]
    return found
