"""`translation` and `summarization`: text-to-text with either model family.

After loading, every example is a (`source`, `target`) pair (the WMT layout and the summarization
columns are converted first). Then:
- encoder-decoder models (T5, BART, Marian, mBART, bert2bert): `source_prefix` + source is the
  encoder input (`max_source_length`), the target the labels (`max_target_length`, ending in EOS),
  `DataCollatorForSeq2Seq` pads labels with -100, `Seq2SeqTrainer` trains;
- decoder-only models: a prompt template turns the source into a prompt (inside the tokenizer's
  chat template when it has one) and the causal-LM path trains on the target only.
Evaluation always generates (what `predict_with_generate` does), with the recipe's decoding settings.
"""

from __future__ import annotations

import dataclasses

from hfkit.errors import HfkitError
from hfkit.tasks import GenerationInputs, Task
from hfkit.tasks.causal_lm import collator as causal_collator
from hfkit.tasks.causal_lm import pair_generation_inputs, tokenize_pairs
from hfkit.tasks.common import cache_key, decoder_max_length, encoder_max_length, pad_multiple

PREPROCESS_VERSION = 1  # part of the cache key: bump when the tokenisation below changes
IGNORE = -100

TEMPLATES = {
    "translation": "Translate from {source_lang} to {target_lang}:\n{source}",
    "summarization": "Summarize the following text:\n{source}",
}
LANGUAGE_NAMES = {
    "ar": "Arabic", "cs": "Czech", "de": "German", "en": "English", "es": "Spanish", "fi": "Finnish",
    "fr": "French", "hi": "Hindi", "it": "Italian", "ja": "Japanese", "nl": "Dutch", "pl": "Polish",
    "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "tr": "Turkish", "uk": "Ukrainian", "zh": "Chinese",
}
_FIELDS = {
    "translation": {"pairs": ("source", "target"), "wmt": ("translation",)},
    "summarization": {"pairs": ("document", "summary")},
}
TEXT_FIELDS = ("source", "target")


def convert(ds, recipe, fmt: str):
    """Bring any layout to (source, target) columns, before cleaning."""
    if recipe.task == "summarization":
        return ds.rename_columns({"document": "source", "summary": "target"})
    if fmt == "pairs":
        return ds
    data = recipe.data
    languages = ds[0]["translation"].keys() if len(ds) else []
    for key in ("source_lang", "target_lang"):
        if getattr(data, key) not in languages:
            raise HfkitError(f"data.{key}: {getattr(data, key)!r} is not a key of the translation column "
                             f"(it has: {', '.join(languages)})")
    return ds.map(_split_translation, remove_columns=["translation"], desc="read the translation pairs",
                  fn_kwargs={"source_lang": data.source_lang, "target_lang": data.target_lang})


def _split_translation(example, source_lang: str, target_lang: str) -> dict:
    pair = example["translation"]
    return {"source": pair[source_lang], "target": pair[target_lang]}


# Encoder-decoder -------------------------------------------------------------------------------

def seq2seq_preprocess(ds, tokenizer, recipe, fmt: str):
    data = recipe.data
    source_length = encoder_max_length(recipe, tokenizer)
    key = cache_key(ds, tokenizer, PREPROCESS_VERSION, data.source_prefix, source_length, data.max_target_length)
    return ds.map(_encode_seq2seq, batched=True, remove_columns=ds.column_names, num_proc=data.num_proc,
                  new_fingerprint=key, desc="tokenise",
                  fn_kwargs={"tokenizer": tokenizer, "prefix": data.source_prefix,
                             "max_source_length": source_length, "max_target_length": data.max_target_length})


def _encode_seq2seq(batch, tokenizer, prefix: str, max_source_length: int, max_target_length: int) -> dict:
    inputs = tokenizer([prefix + s for s in batch["source"]], max_length=max_source_length, truncation=True)
    targets = tokenizer(text_target=batch["target"])["input_ids"]
    inputs["labels"] = [ending_in_eos(ids, tokenizer.eos_token_id, max_target_length) for ids in targets]
    return inputs


def ending_in_eos(ids: list[int], eos: int | None, max_length: int) -> list[int]:
    """Truncate to `max_length` keeping a final EOS, so the model learns to stop; T5 and BART
    tokenizers add one themselves, tokenizers without a post-processor do not."""
    if eos is None:
        return ids[:max_length]
    body = ids[:-1] if ids and ids[-1] == eos else ids
    return body[:max_length - 1] + [eos]


def seq2seq_generation_inputs(ds, tokenizer, recipe, fmt: str) -> GenerationInputs:
    data = recipe.data
    prompts = tokenizer([data.source_prefix + s for s in ds["source"]], max_length=encoder_max_length(recipe, tokenizer),
                        truncation=True)["input_ids"]
    return GenerationInputs(prompts=prompts, references=[t.strip() for t in ds["target"]], sources=list(ds["source"]))


def seq2seq_collator(tokenizer, model=None):
    from transformers import DataCollatorForSeq2Seq

    # With the model, the collator also builds decoder_input_ids from the labels.
    return DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=IGNORE, pad_to_multiple_of=pad_multiple())


# Decoder-only ----------------------------------------------------------------------------------

def decoder_preprocess(ds, tokenizer, recipe, fmt: str):
    data = recipe.data
    return tokenize_pairs(as_prompts(ds, recipe), tokenizer, "prompt_completion", uses_chat_template(recipe, tokenizer),
                          decoder_max_length(recipe, tokenizer), data.num_proc)


def decoder_generation_inputs(ds, tokenizer, recipe, fmt: str) -> GenerationInputs:
    return pair_generation_inputs(as_prompts(ds, recipe), tokenizer, "prompt_completion",
                                  uses_chat_template(recipe, tokenizer), sources=ds["source"])


def uses_chat_template(recipe, tokenizer) -> bool:
    chosen = recipe.data.chat_template
    return bool(tokenizer.chat_template) if chosen is None else chosen


def as_prompts(ds, recipe):
    """(source, target) -> (prompt, completion) through the task's prompt template."""
    template = recipe.data.prompt_template or TEMPLATES[recipe.task]
    values = {"source_lang": _language(recipe.data.source_lang), "target_lang": _language(recipe.data.target_lang)}
    try:
        template.format(source="", **values)
    except (KeyError, IndexError, ValueError) as err:
        raise HfkitError(f"data.prompt_template: cannot fill {template!r} ({err}); it may use {{source}}, "
                         "{source_lang} and {target_lang}, and literal braces must be doubled") from None
    return ds.map(_render, remove_columns=ds.column_names, desc="render prompts",
                  fn_kwargs={"template": template, "values": values})


def _render(example, template: str, values: dict) -> dict:
    return {"prompt": template.format(source=example["source"], **values), "completion": example["target"]}


def _language(code: str | None) -> str:
    return LANGUAGE_NAMES.get(code, code) if code else ""


# The tasks -------------------------------------------------------------------------------------

def encoder_decoder_lengths(recipe) -> dict:
    return {"data.max_source_length": recipe.data.max_source_length, "data.max_target_length": recipe.data.max_target_length}


def decoder_lengths(recipe) -> dict:
    return {"data.max_length": recipe.data.max_length}


def _seq2seq_args():
    from transformers import Seq2SeqTrainingArguments

    return Seq2SeqTrainingArguments


def _seq2seq_trainer():
    from transformers import Seq2SeqTrainer

    return Seq2SeqTrainer


def _trainer():
    from transformers import Trainer

    return Trainer


def _for_model(recipe) -> Task:
    from hfkit.models import is_encoder_decoder

    task = TASKS[recipe.task]
    if is_encoder_decoder(recipe.model):
        return task
    return dataclasses.replace(task, auto_model="AutoModelForCausalLM", peft_task_type="CAUSAL_LM",
                               preprocess=decoder_preprocess, generation_inputs=decoder_generation_inputs,
                               collator=causal_collator, trainer_class=_trainer, for_model=None,
                               lengths=decoder_lengths)


def _make(name: str, metrics: list[str]) -> Task:
    fields = _FIELDS[name]
    return Task(
        name=name,
        formats=tuple(fields),
        fields=lambda fmt: fields[fmt],
        text_fields=lambda fmt: TEXT_FIELDS,
        default_metrics=lambda recipe: list(metrics),
        auto_model="AutoModelForSeq2SeqLM",
        peft_task_type="SEQ_2_SEQ_LM",
        preprocess=seq2seq_preprocess,
        collator=seq2seq_collator,
        generation_inputs=seq2seq_generation_inputs,
        training_args_class=_seq2seq_args,
        trainer_class=_seq2seq_trainer,
        convert=convert,
        for_model=_for_model,
        needs_languages=name == "translation",
        lengths=encoder_decoder_lengths,
    )


TASKS = {
    "translation": _make("translation", ["sacrebleu", "chrf"]),
    "summarization": _make("summarization", ["rouge"]),
}
