"""Keeping secrets out of what hfkit writes and prints: tokens, passwords, credentialed URLs.

Anything shaped like a Hub token (hf_...), any value under a key that names a secret (token,
password, secret, api_key, ...) and the user:password part of a URL are replaced by '***' wherever
a recipe, a command line or a message is written: recipe.yaml, env.json, metrics.json, model cards,
the TrainingArguments Trainer pickles (training_args.bin).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# Hub tokens are hf_ and 34 letters and digits; 20 or more keeps folder names like hf_experiments
# readable. No word boundary before it: `run_with_hf_...` or `x_hf_...` hide a token as well.
_TOKEN_LIKE = re.compile(r"hf_[A-Za-z0-9]{20,}")
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@")
# hub_token, token, password, api_key, ... (not max_new_tokens or pad_token_id)
_SECRET_KEY = re.compile(r"(?:^|[_.-])(?:token|password|passwd|secret|api[_-]?key|credentials?)$", re.IGNORECASE)


def redact_text(text: str) -> str:
    """Hide token-shaped strings and URL credentials in free text (messages, arguments)."""
    return _URL_CREDENTIALS.sub(r"\g<scheme>***@", _TOKEN_LIKE.sub("hf_***", text))


def redact_arg(arg: str) -> str:
    """A command-line argument with its secret hidden (`training.hub_token=...` -> `...=***`)."""
    key, sep, _ = arg.partition("=")
    if sep and _SECRET_KEY.search(key):
        return f"{key}=***"
    return redact_text(arg)


def redact_value(value: Any, key: str = "") -> Any:
    """A nested structure with every secret value replaced."""
    if isinstance(value, dict):
        return {k: redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v, key) for v in value]
    if isinstance(value, str):
        return "***" if _SECRET_KEY.search(key) and value else redact_text(value)
    return value


def redacted_yaml(recipe) -> str:
    """The resolved recipe as YAML, secrets replaced."""
    return yaml.safe_dump(redact_value(recipe.model_dump(mode="json")), sort_keys=False, allow_unicode=True)
