"""`translation` and `summarization`: text-to-text with either model family (see hfkit.tasks.pairs).

Translation reads the WMT layout (`{"translation": {"en": ..., "fr": ...}}`, `format: wmt`) or
`source`/`target` columns (`format: pairs`); summarization reads `document`/`summary`. Multilingual
tokenizers (mBART, mBART-50, NLLB, M2M100) get their language codes (`data.source_lang_code` /
`target_lang_code`, else `source_lang` / `target_lang` when those are codes, as run_translation.py
takes them) and generation starts in the target language: with `forced_bos_token_id` when the
tokenizer puts the code first in a target (mBART-50, NLLB, M2M100), or as the decoder start when it
puts it last (mBART).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from hfkit.errors import HfkitError
from hfkit.schema import DataSection, Recipe
from hfkit.tasks.pairs import PairTask

LANGUAGE_NAMES = {
    "ar": "Arabic", "cs": "Czech", "de": "German", "en": "English", "es": "Spanish", "fi": "Finnish",
    "fr": "French", "hi": "Hindi", "it": "Italian", "ja": "Japanese", "nl": "Dutch", "pl": "Polish",
    "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "tr": "Turkish", "uk": "Ukrainian", "zh": "Chinese",
}


class TranslationData(DataSection):
    source_lang: str | None = Field(None, description=(
        "Translation: the source language's key in the WMT layout, e.g. en (a code like en_XX reads en)."))
    target_lang: str | None = Field(None, description="Translation: the target language's key, e.g. ro.")
    source_lang_code: str | None = Field(None, description=(
        "Multilingual tokenizers: the source language code, e.g. en_XX (mBART) or eng_Latn (NLLB)."))
    target_lang_code: str | None = Field(None, description=(
        "Multilingual tokenizers: the target language code; generation starts in that language."))


class TranslationRecipe(Recipe):
    data: TranslationData


def _render(example: dict, template: str, values: dict) -> dict:
    return {"source": template.format(source=example["source"], **values), "target": example["target"]}


class _TextToText(PairTask):
    def text_fields(self) -> tuple[str, ...]:
        return ("source", "target")

    def template_values(self) -> dict[str, str]:
        return {}

    def pairs(self, ds, style: str):
        template = self.template(style)
        values = self.template_values()
        return ds.map(_render, remove_columns=ds.column_names, desc="render prompts",
                      fn_kwargs={"template": template, "values": values})

    def problems(self) -> list[str]:
        template = self.recipe.data.prompt_template
        try:
            if template is not None:
                template.format(source="", **self.template_values())
        except (KeyError, IndexError, ValueError) as err:
            names = ", ".join("{" + k + "}" for k in ["source", *self.template_values()])
            return [f"data.prompt_template: cannot fill {template!r} ({err}); it may use {names}, "
                    "and literal braces must be doubled"]
        return []


class TranslationTask(_TextToText):
    name = "translation"
    formats = ("pairs", "wmt")
    recipe_class = TranslationRecipe
    card_label = "translation"
    seq2seq_pipeline_tag = "translation"
    templates = {
        "seq2seq": "{source}",
        "chat": "Translate from {source_lang} to {target_lang}:\n{source}",
        "plain": "Translate from {source_lang} to {target_lang}:\n{source}\n{target_lang}:\n",
    }

    def fields(self) -> tuple[str, ...]:
        return ("translation",) if self.fmt == "wmt" else ("source", "target")

    def default_metrics(self) -> list[str]:
        return ["sacrebleu", "chrf"]

    def problems(self) -> list[str]:
        data = self.recipe.data
        if not (data.source_lang and data.target_lang):
            return ["data.source_lang / data.target_lang: translation needs both, e.g. en and ro"]
        return super().problems()

    def template_values(self) -> dict[str, str]:
        data = self.recipe.data
        return {"source_lang": _language(data.source_lang), "target_lang": _language(data.target_lang)}

    def convert(self, ds):
        if self.fmt == "pairs":
            return ds
        data = self.recipe.data
        languages = list(ds[0]["translation"].keys()) if len(ds) else []
        keys = {}
        for name in ("source_lang", "target_lang"):
            value = getattr(data, name)
            key = value if value in languages else value.split("_")[0]  # run_translation's en_XX -> en
            if key not in languages:
                raise HfkitError(f"data.{name}: {value!r} is not a key of the translation column "
                                 f"(it has: {', '.join(languages)})")
            keys[name] = key
        return ds.map(_split_translation, remove_columns=["translation"], desc="read the translation pairs",
                      fn_kwargs={"source": keys["source_lang"], "target": keys["target_lang"]})

    # Multilingual tokenizers ---------------------------------------------------------------------
    def setup_tokenizer(self, tokenizer) -> None:
        if not hasattr(tokenizer, "src_lang"):
            return
        tokenizer.src_lang = self._code(tokenizer, "source")
        tokenizer.tgt_lang = self._code(tokenizer, "target")

    def generation_settings(self, tokenizer) -> dict[str, Any]:
        if not hasattr(tokenizer, "tgt_lang"):
            return {}
        code = tokenizer.convert_tokens_to_ids(tokenizer.tgt_lang)
        sample = tokenizer(text_target="a")["input_ids"]
        if sample and sample[0] == code:
            return {"forced_bos_token_id": code}  # mBART-50, NLLB, M2M100: [code] text </s>
        return {"decoder_start_token_id": code}  # mBART: text </s> [code], decoding starts at [code]

    def _code(self, tokenizer, side: str) -> str:
        data = self.recipe.data
        code = getattr(data, f"{side}_lang_code") or getattr(data, f"{side}_lang")
        key = f"data.{side}_lang_code" if getattr(data, f"{side}_lang_code") else f"data.{side}_lang"
        if tokenizer.convert_tokens_to_ids(code) in (None, tokenizer.unk_token_id):
            codes = [t for t in getattr(tokenizer, "additional_special_tokens", []) or [] if "_" in t][:4]
            raise HfkitError(f"{key}: {code!r} is not a language code of {type(tokenizer).__name__}; set "
                             f"data.{side}_lang_code to one, e.g. {', '.join(codes) or 'en_XX'}")
        return code

    def card_languages(self) -> list[str]:
        return [self.recipe.data.source_lang.split("_")[0], self.recipe.data.target_lang.split("_")[0]]


class SummarizationTask(_TextToText):
    name = "summarization"
    formats = ("pairs",)
    card_label = "summarization"
    seq2seq_pipeline_tag = "summarization"
    templates = {
        "seq2seq": "{source}",
        "chat": "Summarize the following text:\n{source}",
        "plain": "Summarize the following text:\n{source}\nSummary:\n",
    }

    def fields(self) -> tuple[str, ...]:
        return ("document", "summary")

    def default_metrics(self) -> list[str]:
        return ["rouge"]

    def convert(self, ds):
        return ds.rename_columns({"document": "source", "summary": "target"})


def _split_translation(example, source: str, target: str) -> dict:
    pair = example["translation"]
    return {"source": pair[source], "target": pair[target]}


def _language(code: str | None) -> str:
    if not code:
        return ""
    return LANGUAGE_NAMES.get(code, LANGUAGE_NAMES.get(code.split("_")[0], code))
