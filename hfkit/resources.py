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


def shipped_recipes() -> list[Path]:
    """Every shipped recipe file (recipes/<task>/*.yaml), as paths that `hfkit train` can read."""
    root = resources.files("hfkit.shipped_recipes")
    found = []
    for task in sorted(root.iterdir(), key=lambda p: p.name):
        if task.is_dir():
            found += [Path(str(entry)) for entry in sorted(task.iterdir(), key=lambda p: p.name)
                      if entry.name.endswith(".yaml")]
    return found
