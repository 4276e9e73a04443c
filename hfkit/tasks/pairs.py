"""Tasks whose examples become (source, target) text pairs, trained with either model family.

Translation, summarization and generative QA render each example into a source text and a target
text, then hand the pairs to the model family's tokenisation:
- encoder-decoder (T5, BART, Marian, mBART, bert2bert): hfkit.tasks.seq2seq;
- decoder-only (SmolLM2, GPT-2, Llama): hfkit.tasks.decoder, with the source inside the tokenizer's
  chat template when it has one, or in a plain template that ends with a cue ("French:", "Answer:").
The source is rendered with one of three default templates (or `data.prompt_template`): `seq2seq`
(the encoder's input), `chat` (the user turn) and `plain` (the whole prompt, cue included).
"""

from __future__ import annotations

from typing import ClassVar

from hfkit.tasks import decoder, seq2seq
from hfkit.tasks.base import EvalExamples, Task, Tokenized


class PairTask(Task):
    templates: ClassVar[dict[str, str]]  # style ("seq2seq", "chat", "plain") -> default template

    @classmethod
    def family_matters(cls, recipe) -> bool:
        return True

    # The family decides the transformers classes ------------------------------------------------
    @property
    def auto_model(self) -> str:
        return "AutoModelForSeq2SeqLM" if self.encoder_decoder else "AutoModelForCausalLM"

    @property
    def peft_task_type(self) -> str:
        return "SEQ_2_SEQ_LM" if self.encoder_decoder else "CAUSAL_LM"

    @property
    def pipeline_tag(self) -> str:
        return self.seq2seq_pipeline_tag if self.encoder_decoder else "text-generation"

    seq2seq_pipeline_tag: ClassVar[str] = "text2text-generation"

    def training_args_class(self) -> type:
        from transformers import Seq2SeqTrainingArguments, TrainingArguments

        return Seq2SeqTrainingArguments if self.encoder_decoder else TrainingArguments

    def trainer_class(self) -> type:
        from transformers import Seq2SeqTrainer, Trainer

        return Seq2SeqTrainer if self.encoder_decoder else Trainer

    def lengths(self) -> dict[str, int | None]:
        data = self.recipe.data
        if self.encoder_decoder:
            return {"data.max_source_length": data.max_source_length, "data.max_target_length": data.max_target_length}
        return {"data.max_length": data.max_length}

    @property
    def packs(self) -> bool:
        return not self.encoder_decoder

    def generation_tokens(self, config) -> int | None:
        if not self.encoder_decoder:
            return decoder.generation_tokens(self.recipe, config)
        limit = getattr(config, "max_position_embeddings", None) if config is not None else None
        default = min(1024, limit) if isinstance(limit, int) and limit > 0 else 1024
        return self.recipe.data.max_source_length or default  # the encoder's source, as seq2seq.source_length

    def collator(self, tokenizer, model=None, packing_mode: str = "none", boundaries: bool = False):
        if self.encoder_decoder:
            return seq2seq.collator(tokenizer, model)
        return decoder.collator(tokenizer, model, packing_mode, boundaries)

    # Rendering ----------------------------------------------------------------------------------
    def style(self, tokenizer) -> str:
        if self.encoder_decoder:
            return "seq2seq"
        chosen = self.recipe.data.chat_template
        return "chat" if (bool(tokenizer.chat_template) if chosen is None else chosen) else "plain"

    def template(self, style: str) -> str:
        return self.recipe.data.prompt_template or self.templates[style]

    def pairs(self, ds, style: str):
        """The split as a Dataset of `source` (rendered with `self.template(style)`) and `target`."""
        raise NotImplementedError

    def shown_sources(self, ds) -> list[str]:
        """The human-readable input of each example, for predictions.jsonl."""
        return list(ds["source"])

    def references(self, ds) -> list:
        """The targets exactly as the data holds them: text is scored as written."""
        return list(ds["target"])

    # Tokens -------------------------------------------------------------------------------------
    def tokenize(self, ds, tokenizer, split: str) -> Tokenized:
        style = self.style(tokenizer)
        pairs = self.pairs(ds, style)
        if self.encoder_decoder:
            return seq2seq.tokenize_pairs(pairs, tokenizer, self.recipe, self.decoder_start(tokenizer), split)
        return decoder.tokenize_pairs(pairs, tokenizer, self.recipe, style == "chat", _SourceRenderer(tokenizer, style),
                                      f"{self.name}/{style}", split)

    def eval_examples(self, ds, tokenizer) -> EvalExamples:
        style = self.style(tokenizer)
        pairs = self.pairs(ds, style)
        if self.encoder_decoder:
            return seq2seq.generation_examples(ds, tokenizer, self.recipe, pairs["source"], self.shown_sources(ds),
                                               self.references(ds))
        prompts, targets = _SourceRenderer(tokenizer, style)(pairs[:len(pairs)])
        return decoder.generation_examples(ds, tokenizer, self.recipe, style == "chat", prompts, targets,
                                           self.shown_sources(ds), self.references(ds))

    def decoder_start(self, tokenizer) -> int | None:
        """The token bert2bert's decoder starts from ([CLS]): labels must not repeat it."""
        return tokenizer.bos_token_id if self.recipe.model.encoder_decoder else None

    def card_prompt(self, tokenizer) -> tuple[str, str]:
        style = self.style(tokenizer)
        template = self.template(style)
        for key, value in getattr(self, "template_values", dict)().items():  # e.g. the language names
            template = template.replace("{" + key + "}", value)
        if style == "seq2seq":
            return "encoder", self.recipe.data.source_prefix.replace("{", "{{").replace("}", "}}") + template
        return style, template

    def card_usage_note(self, tokenizer) -> str:
        style = self.style(tokenizer)
        template = self.card_prompt(tokenizer)[1] if style != "seq2seq" else self.template(style)
        if style == "seq2seq":
            prefix = self.recipe.data.source_prefix
            return f"Encoder input: `{prefix!r}` + `{template!r}`." if prefix else f"Encoder input: `{template!r}`."
        wrap = ("as the user turn of the tokenizer's chat template (`apply_chat_template([{'role': 'user', "
                "'content': prompt}], add_generation_prompt=True)`)") if style == "chat" else "as plain text"
        return f"Prompt format: `{template!r}`, {wrap}; the answer ends with `{tokenizer.eos_token}`."


class _SourceRenderer:
    """(prompts, targets) of a batch of pairs: the source as a chat-template user turn, or as it is.

    A class, not a closure, so `datasets` can pickle it for `num_proc` workers."""

    def __init__(self, tokenizer, style: str):
        self.tokenizer, self.style = tokenizer, style

    def __call__(self, batch: dict) -> tuple[list[str], list[str]]:
        sources = list(batch["source"])
        if self.style == "chat":
            sources = [decoder.chat(self.tokenizer, [{"role": "user", "content": s}]) for s in sources]
        return sources, list(batch["target"])
