"""The recipe's `training` section is handed to TrainingArguments unchanged; this checks its keys first.

Unknown keys get the closest real field, keys transformers 5 renamed or removed get the new name,
plain int/float/bool fields get a type check (a string learning rate would only fail deep inside
the optimizer), values TrainingArguments accepts but training cannot use are refused, and
`report_to` must name integrations that are installed (Trainer would fail when it starts).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from typing import Any

from hfkit.errors import suggest, suggest_value

# Fields transformers 5 renamed or removed, so an old recipe gets the new name instead of a guess.
TRAINING_RENAMED = {
    "evaluation_strategy": "use 'eval_strategy' (renamed in transformers 5)",
    "no_cuda": "use 'use_cpu' (renamed in transformers 5)",
    "warmup_ratio": "use 'warmup_steps' (transformers 5 removed warmup_ratio)",
    "group_by_length": "use 'train_sampling_strategy: group_by_length' (transformers 5)",
    "overwrite_output_dir": "hfkit never overwrites a run; pass --overwrite to 'hfkit train'",
    "output_dir": "hfkit sets it to the run folder; use output.dir and output.name",
    "logging_dir": "logs go into the run folder (removed in transformers 5)",
    "save_safetensors": "weights are always saved as safetensors (removed in transformers 5)",
    "use_mps_device": "removed in transformers 5; the device is chosen automatically",
    "include_tokens_per_second": "removed in transformers 5",
    # secrets and uploads stay out of recipes (a recipe is written into the run folder and the card):
    "hub_token": "never put a token in a recipe; set HF_TOKEN (or run `hf auth login`) and use hfkit push",
    "push_to_hub": "Trainer would upload the whole run folder itself; use hub.push: true or hfkit push RUN",
    "hub_model_id": "use hub.repo_id (hfkit push uploads the adapter with a model card)",
    # hfkit always generates at evaluation, with the recipe's generation section:
    "predict_with_generate": "hfkit always generates at evaluation; remove it",
    "generation_max_length": "use generation.max_new_tokens",
    "generation_num_beams": "use generation.num_beams",
    "generation_config": "use the generation section",
}


# Keys of the `training` section that hfkit takes out before TrainingArguments sees the rest:
# they configure transformers' EarlyStoppingCallback, which has no TrainingArguments field.
CALLBACK_KEYS = {"early_stopping_patience": int, "early_stopping_threshold": float}


def split_callback_keys(training: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(TrainingArguments keys, callback keys) of a `training` section."""
    return ({k: v for k, v in training.items() if k not in CALLBACK_KEYS},
            {k: v for k, v in training.items() if k in CALLBACK_KEYS})


def training_key_problems(training: dict[str, Any], args_class: type) -> list[str]:
    """Unknown keys and wrongly typed values in the `training` section, and what early stopping needs."""
    fields = {f.name: f for f in dataclasses.fields(args_class) if f.init}
    problems = []
    for key, value in training.items():
        if key in CALLBACK_KEYS:
            if not _type_fits(value, CALLBACK_KEYS[key]) or value is None:
                problems.append(f"training.{key}: expected {_type_name(CALLBACK_KEYS[key])}, got {value!r}")
        elif key in TRAINING_RENAMED:
            problems.append(f"training.{key}: not accepted; {TRAINING_RENAMED[key]}")
        elif key not in fields:
            problems.append(f"training.{key}: not a {args_class.__name__} field{suggest(key, list(fields))}")
        elif not _type_fits(value, fields[key].type):
            problems.append(f"training.{key}: expected {_type_name(fields[key].type)}, got {value!r}")
        elif key == "report_to":
            problems += _reporting_problems(value)
        elif (problem := _value_problem(key, value)) is not None:
            problems.append(f"training.{key}: got {value!r}; {problem}")
    if "early_stopping_patience" in training:
        problems += early_stopping_problems(training)
    return problems


def early_stopping_problems(training: dict[str, Any]) -> list[str]:
    """What EarlyStoppingCallback needs, said in one line instead of its assertions."""
    eval_strategy = training.get("eval_strategy", "no")
    needed = []
    if eval_strategy not in ("steps", "epoch"):
        needed.append("eval_strategy: steps (or epoch)")
    if not training.get("metric_for_best_model"):
        needed.append("metric_for_best_model (e.g. eval_loss or one of eval.metrics)")
    if not training.get("load_best_model_at_end"):
        needed.append("load_best_model_at_end: true")
    if training.get("save_strategy", "steps") != eval_strategy:
        needed.append(f"save_strategy: {eval_strategy if eval_strategy in ('steps', 'epoch') else 'steps'} (as eval_strategy)")
    elif eval_strategy == "steps" and training.get("save_steps", 500) % (training.get("eval_steps") or training.get("logging_steps", 500)):
        needed.append("save_steps a multiple of eval_steps")
    if not needed:
        return []
    return [f"training.early_stopping_patience: early stopping also needs {'; '.join(needed)}"]


_AT_LEAST_ONE = ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps")


def _value_problem(key: str, value: Any) -> str | None:
    """Values of the right type that would crash, or silently misbehave, once training starts."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    if key in ("learning_rate", "num_train_epochs") and not (math.isfinite(value) and value > 0):
        return "must be a finite number above 0"
    if key in _AT_LEAST_ONE and value < 1:
        return "must be at least 1"
    if key == "max_steps" and (value == 0 or value < -1):  # TrainingArguments reads 0 as "unset": a whole epoch
        return "give the number of steps to train (at least 1), or -1 to train num_train_epochs"
    if key in ("seed", "data_seed") and not (float(value).is_integer() and 0 <= value <= SEED_MAX):
        return f"must be a whole number from 0 to {SEED_MAX} (numpy's seed range, which set_seed uses)"
    return None


SEED_MAX = 2**32 - 1


# report_to name -> (module that must be importable, what to pip install); kubeflow needs no package
REPORTERS = {
    "azure_ml": ("azureml.core", "azureml-core"), "clearml": ("clearml", "clearml"),
    "codecarbon": ("codecarbon", "codecarbon"), "comet_ml": ("comet_ml", "comet-ml"),
    "dagshub": ("dagshub", "dagshub mlflow"), "dvclive": ("dvclive", "dvclive"), "flyte": ("flytekit", "flytekit"),
    "kubeflow": (None, None), "mlflow": ("mlflow", "mlflow"), "neptune": ("neptune", "neptune"),
    "swanlab": ("swanlab", "swanlab"), "tensorboard": ("tensorboard", "tensorboard"),
    "trackio": ("trackio", "trackio"), "wandb": ("wandb", "wandb"),
}


def _reporting_problems(value: Any) -> list[str]:
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    problems = []
    for name in names:
        if name in ("none", "all") or not isinstance(name, str):
            continue
        if name not in REPORTERS:
            problems.append(f"training.report_to: {name!r} is not a reporting integration"
                            f"{suggest_value(name, ['none', 'all', *REPORTERS])}")
            continue
        module, package = REPORTERS[name]
        if module and not _installed(module) and not (name == "tensorboard" and _installed("tensorboardX")):
            problems.append(f"training.report_to: {name} is not installed; pip install {package} "
                            "(or set training.report_to: none)")
    return problems


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a dotted name whose parent package is missing
        return False


_SIMPLE_TYPES = {int: (int,), float: (int, float), bool: (bool,)}


def _type_fits(value: Any, annotation: Any) -> bool:
    """Check the plain int/float/bool fields; richer annotations are left to TrainingArguments."""
    expected = _SIMPLE_TYPES.get(annotation)
    if expected is None or value is None:
        return True
    if annotation is not bool and isinstance(value, bool):
        return False
    return isinstance(value, expected)


def _type_name(annotation: Any) -> str:
    return {int: "an integer", float: "a number", bool: "true or false"}.get(annotation, str(annotation))
