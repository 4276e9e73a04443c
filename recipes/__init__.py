"""The shipped recipes and their demo data; installed as the package data `hfkit.shipped_recipes`."""
