"""hfkit: fine-tune and evaluate Hugging Face models from one recipe file."""

__version__ = "0.1.0"
