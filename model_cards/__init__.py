"""Model-card templates; installed as the package data `hfkit.model_cards`."""
