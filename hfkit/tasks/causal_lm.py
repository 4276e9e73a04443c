"""The `generation` task: causal-LM fine-tuning on raw text, prompt/completion pairs or chat messages.

- `text`: tokenised, EOS after each document, concatenated and cut into `block_size` blocks in one
  pass; the last, shorter block is kept (padded by the collator), so every token is trained on.
- `prompt_completion` and `messages`: prompt tokens get label -100, the target is followed by EOS
  (see hfkit.tasks.decoder). `messages` renders every turn but the last through the tokenizer's chat
  template and trains on the last (assistant) turn. The prompt is used exactly as the data holds it
  (with `chat_template: true`, as a user turn of the chat template).
"""

from __future__ import annotations

from itertools import chain

from hfkit.errors import HfkitError
from hfkit.tasks import decoder
from hfkit.tasks.base import EvalExamples, Task, Tokenized
from hfkit.tasks.common import cache_key, within_model

PACK_VERSION = 2  # part of the packing cache key

_FIELDS = {"prompt_completion": ("prompt", "completion"), "messages": ("messages",), "text": ("text",)}


class GenerationTask(Task):
    name = "generation"
    formats = ("prompt_completion", "messages", "text")
    card_label = "text generation"

    @property
    def group_by_length(self) -> bool:
        return self.fmt != "text"  # packed blocks all have one length

    def fields(self) -> tuple[str, ...]:
        return _FIELDS[self.fmt]

    def default_metrics(self) -> list[str]:
        return [] if self.fmt == "text" else ["exact_match"]

    def problems(self) -> list[str]:
        """Raw text (format text) is scored by eval_loss and perplexity only: nothing is generated,
        and no chat template applies to packed blocks."""
        if self.fmt != "text":
            return []
        found = []
        if self.recipe.eval.metrics:
            found.append(f"eval.metrics: format text is scored by eval_loss and perplexity only (nothing is generated), "
                         f"so {', '.join(self.recipe.eval.metrics)} would score nothing; set eval.metrics: []")
        if self.recipe.data.chat_template:
            found.append("data.chat_template: format text is packed into blocks as it is, no chat template applies; "
                         "remove it (or use format messages)")
        return found

    def loss_examples(self, tokenized: Tokenized) -> int:
        return tokenized.counts["documents"] if self.fmt == "text" else super().loss_examples(tokenized)

    def lengths(self) -> dict[str, int | None]:
        data = self.recipe.data
        return {"data.block_size": data.block_size} if self.fmt == "text" else {"data.max_length": data.max_length}

    def generation_tokens(self, config) -> int | None:
        return None if self.fmt == "text" else decoder.generation_tokens(self.recipe, config)

    @property
    def templated(self) -> bool:
        """Is the prompt rendered by a chat template (which holds its own special tokens)?"""
        return self.fmt == "messages" or bool(self.recipe.data.chat_template)

    def tokenize(self, ds, tokenizer, split: str) -> Tokenized:
        if self.fmt == "text":
            return pack_text(ds, tokenizer, within_model(self.recipe.data.block_size, 1024, tokenizer),
                             self.recipe.data.num_proc)
        return decoder.tokenize_pairs(ds, tokenizer, self.recipe, self.templated, _Renderer(tokenizer, self.fmt,
                                      bool(self.recipe.data.chat_template)), f"generation/{self.fmt}", split)

    def eval_examples(self, ds, tokenizer) -> EvalExamples | None:
        if self.fmt == "text":
            return None
        prompts, targets = _Renderer(tokenizer, self.fmt, bool(self.recipe.data.chat_template))(ds[:len(ds)])
        sources = ds["prompt"] if self.fmt == "prompt_completion" else prompts
        return decoder.generation_examples(ds, tokenizer, self.recipe, self.templated, prompts, targets, sources)

    @property
    def packs(self) -> bool:
        return self.fmt != "text"  # text is cut into full blocks already

    def collator(self, tokenizer, model=None, packing_mode: str = "none", boundaries: bool = False):
        return decoder.collator(tokenizer, model, packing_mode, boundaries)

    def card_prompt(self, tokenizer) -> tuple[str, str]:
        if self.fmt == "messages":
            return "messages", ""
        return ("chat" if self.templated else "plain"), "{text}" if self.fmt == "text" else "{prompt}"

    def card_usage_note(self, tokenizer) -> str:
        if self.fmt == "text":
            return "Trained on plain text: give it text to continue."
        if self.templated:
            return ("Prompt format: the conversation goes through the tokenizer's chat template, "
                    "`tokenizer.apply_chat_template(messages, add_generation_prompt=True)`; the answer ends with "
                    f"`{tokenizer.eos_token}`.")
        return (f"Prompt format: the prompt exactly as in the training data, no template; the answer follows it "
                f"directly and ends with `{tokenizer.eos_token}`.")


class _Renderer:
    """(prompt texts, target texts) for a batch of prompt_completion or messages rows.

    A class, not a closure, so `datasets` can pickle it for `num_proc` workers."""

    def __init__(self, tokenizer, fmt: str, chat_template: bool):
        self.tokenizer, self.fmt, self.chat_template = tokenizer, fmt, chat_template

    def __call__(self, batch: dict) -> tuple[list[str], list[str]]:
        if self.fmt == "messages":
            prompts, targets = [], []
            for messages in batch["messages"]:
                if messages[-1].get("role") != "assistant":
                    raise HfkitError("data: with format messages, the last message of each example must have role "
                                     f"'assistant' (it is the training target); found {messages[-1].get('role')!r}")
                prompts.append(decoder.chat(self.tokenizer, messages[:-1]))
                targets.append(messages[-1]["content"])
            return prompts, targets
        prompts = list(batch["prompt"])
        if self.chat_template:
            prompts = [decoder.chat(self.tokenizer, [{"role": "user", "content": p}]) for p in prompts]
        return prompts, list(batch["completion"])


def pack_text(ds, tokenizer, block_size: int, num_proc: int | None) -> Tokenized:
    """Tokenise documents, EOS after each, concatenate and cut into `block_size` blocks, keeping the
    last partial block: no token is dropped."""
    key = cache_key(ds, tokenizer, PACK_VERSION, "text", block_size)
    docs = ds.map(_tokenize_documents, batched=True, remove_columns=ds.column_names, num_proc=num_proc,
                  fn_kwargs={"tokenizer": tokenizer}, new_fingerprint=key + "-docs", desc="tokenise")
    # One batch per worker: a remainder is only ever left at the very end of a worker's share.
    blocks = docs.map(_pack, batched=True, batch_size=None, num_proc=num_proc, fn_kwargs={"block_size": block_size},
                      new_fingerprint=key + "-pack", desc=f"pack into blocks of {block_size}")
    tokens = sum(len(ids) for ids in docs["input_ids"])
    if len(ds) and not len(blocks):
        raise HfkitError("data: the documents hold no tokens to pack; check the text column")
    return Tokenized(blocks, {"documents": len(ds), "tokens": tokens, "blocks": len(blocks)})


def _tokenize_documents(batch: dict, tokenizer) -> dict:
    ids = tokenizer(batch["text"])["input_ids"]
    eos = tokenizer.eos_token_id  # read once (a per-row read costs ~12 us in transformers 5)
    return {"input_ids": [doc + [eos] for doc in ids]}


def _pack(batch: dict, block_size: int) -> dict:
    stream = list(chain.from_iterable(batch["input_ids"]))
    blocks = [stream[i:i + block_size] for i in range(0, len(stream), block_size)]
    return {"input_ids": blocks, "attention_mask": [[1] * len(b) for b in blocks], "labels": [list(b) for b in blocks]}
