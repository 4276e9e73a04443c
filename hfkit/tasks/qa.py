"""`qa`: question answering, extractive (SQuAD spans) or generative, scored with SQuAD EM/F1.

Data: flat rows (`id`, `question`, `context`, `answers: {text: [...], answer_start: [...]}`) or
SQuAD's nested JSON (flattened on load). Every gold answer must sit at its `answer_start`.

Extractive (`qa.mode: extractive`), as transformers' run_qa.py: question + context with
`truncation="only_second"`, overflowing windows of `max_seq_length` tokens that overlap by
`doc_stride`, offset mappings; start/end labels (the CLS index when the answer is not in a window).
Answers come from the best span across an example's windows (`n_best_size`, `max_answer_length`);
with `version_2_with_negative`, the empty answer wins when the null score beats it by more than
`null_score_diff_threshold`.

Generative (`qa.mode: generative`): the input is a template ("question: ... context: ..."), the
target the first gold answer ("unanswerable" for SQuAD v2 questions without one), trained and
generated like translation/summarization with either model family.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager

import numpy as np

from hfkit.errors import HfkitError
from hfkit.tasks import GenerationInputs, Task
from hfkit.tasks.causal_lm import collator as causal_collator
from hfkit.tasks.causal_lm import pair_generation_inputs, tokenize_pairs
from hfkit.tasks.common import cache_key, decoder_max_length, encoder_max_length, pad_multiple
from hfkit.tasks.text2text import (decoder_lengths, encoder_decoder_lengths, seq2seq_collator, seq2seq_preprocess,
                                   uses_chat_template)

PREPROCESS_VERSION = 1  # part of the cache key: bump when the tokenisation below changes
FIELDS = ("question", "context", "answers")
NO_ANSWER = "unanswerable"  # the generative target of a v2 question without an answer
SEQ2SEQ_TEMPLATE = "question: {question} context: {context}"  # T5's SQuAD format
CHAT_TEMPLATE = "Answer the question with a short span copied from the context.\nContext: {context}\nQuestion: {question}"
_EXTRA_COLUMNS = ("example_id", "offset_mapping")  # kept on eval features for post-processing


def convert(ds, recipe, fmt: str):
    """Give every example an id and check each gold answer sits at its answer_start."""
    if "id" not in ds.column_names:
        ds = ds.add_column("id", [str(i) for i in range(len(ds))])
    for row in ds.select_columns(["id", "context", "answers"]):
        answers = row["answers"] or {}
        texts, starts = answers.get("text") or [], answers.get("answer_start") or []
        if len(texts) != len(starts):
            raise HfkitError(f"data: example {row['id']}: answers has {len(texts)} texts but {len(starts)} answer_start values")
        for text, start in zip(texts, starts):
            found = row["context"][start:start + len(text)]
            if found != text:
                raise HfkitError(f"data: example {row['id']}: answer {text!r} is not at answer_start {start} of its "
                                 f"context (found {found!r}); fix answer_start (a character offset) or the text")
    if not recipe.qa.version_2_with_negative and any(not a["text"] for a in ds["answers"]):
        raise HfkitError("data: some questions have no answer; set qa.version_2_with_negative: true (SQuAD v2)")
    return ds


def default_metrics(recipe) -> list[str]:
    return ["squad_v2"] if recipe.qa.version_2_with_negative else ["squad"]


def metric_inputs(answers: list[str], inputs: GenerationInputs, recipe) -> tuple[list, list]:
    """The shapes of the SQuAD metrics: [{id, prediction_text}], [{id, answers}]."""
    v2 = recipe.qa.version_2_with_negative
    predictions = []
    for answer, reference in zip(answers, inputs.references):
        text = "" if v2 and answer == NO_ANSWER else answer
        predictions.append({"id": reference["id"], "prediction_text": text,
                            **({"no_answer_probability": 0.0} if v2 else {})})
    return predictions, inputs.references


def reference_inputs(ds) -> GenerationInputs:
    """What QA answers are compared with, whatever produced them."""
    return GenerationInputs(prompts=[], references=[{"id": i, "answers": a} for i, a in zip(ds["id"], ds["answers"])],
                            sources=list(ds["question"]))


# Extractive --------------------------------------------------------------------------------------

def extractive_preprocess(ds, tokenizer, recipe, fmt: str):
    """Windows with start/end labels; eval windows also keep their example id and offsets."""
    qa = recipe.qa
    key = cache_key(ds, tokenizer, PREPROCESS_VERSION, qa.max_seq_length, qa.doc_stride)
    return ds.map(windows, batched=True, remove_columns=ds.column_names, num_proc=recipe.data.num_proc,
                  new_fingerprint=key, desc="tokenise into windows",
                  fn_kwargs={"tokenizer": tokenizer, "max_length": qa.max_seq_length, "stride": qa.doc_stride})


def windows(batch, tokenizer, max_length: int, stride: int) -> dict:
    """Tokenise question + context into overlapping windows, label each with the answer's tokens."""
    question_first = tokenizer.padding_side == "right"
    questions = [q.lstrip() for q in batch["question"]]  # leading spaces waste window tokens
    pair = (questions, batch["context"]) if question_first else (batch["context"], questions)
    encoded = tokenizer(*pair, truncation="only_second" if question_first else "only_first", max_length=max_length,
                        stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True)
    context_id = 1 if question_first else 0
    example_of = encoded.pop("overflow_to_sample_mapping")
    encoded["start_positions"], encoded["end_positions"], encoded["example_id"] = [], [], []
    for i, offsets in enumerate(encoded["offset_mapping"]):
        sequence_ids = encoded.sequence_ids(i)
        example = example_of[i]
        start, end = _label_span(offsets, sequence_ids, context_id, batch["answers"][example], encoded["input_ids"][i],
                                 tokenizer.cls_token_id)
        encoded["start_positions"].append(start)
        encoded["end_positions"].append(end)
        encoded["example_id"].append(batch["id"][example])
        # Offsets outside the context are None: post-processing never picks those tokens.
        encoded["offset_mapping"][i] = [o if sequence_ids[k] == context_id else None for k, o in enumerate(offsets)]
    return encoded


def _label_span(offsets, sequence_ids, context_id: int, answers: dict, input_ids, cls_token_id) -> tuple[int, int]:
    cls_index = input_ids.index(cls_token_id) if cls_token_id in input_ids else 0
    if not answers["answer_start"]:
        return cls_index, cls_index
    start_char = answers["answer_start"][0]
    end_char = start_char + len(answers["text"][0])
    first = sequence_ids.index(context_id)
    last = len(sequence_ids) - 1 - sequence_ids[::-1].index(context_id)
    if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
        return cls_index, cls_index  # the answer is not (wholly) in this window
    start = first
    while start <= last and offsets[start][0] <= start_char:
        start += 1
    end = last
    while end >= first and offsets[end][1] >= end_char:
        end -= 1
    return start - 1, end + 1


def extractive_collator(tokenizer, model=None):
    from transformers import DataCollatorWithPadding

    pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_multiple())

    def collate(features: list[dict]) -> dict:
        return pad([{k: v for k, v in f.items() if k not in _EXTRA_COLUMNS} for f in features])

    return collate


def extractive_inputs(ds, tokenizer, recipe, fmt: str) -> GenerationInputs:
    return reference_inputs(ds)


def extractive_predict(trainer, prepared, recipe) -> tuple[list[str], float | None]:
    """One `Trainer.predict` pass over the windows gives the loss and the span logits."""
    features = prepared.eval_dataset
    with _in_dataset_order(trainer.args):
        output = trainer.predict(features.remove_columns(list(_EXTRA_COLUMNS)))
    start_logits, end_logits = output.predictions[:2]
    answers = best_spans(prepared.splits[recipe.eval.split], features, start_logits, end_logits, recipe.qa)
    return answers, output.metrics.get("test_loss")


@contextmanager
def _in_dataset_order(args):
    """With `train_sampling_strategy: group_by_length`, Trainer also batches evaluation by length and
    `predict()` returns the logits in that order; the windows' post-processing needs dataset order."""
    chosen = args.train_sampling_strategy
    args.train_sampling_strategy = "sequential"
    try:
        yield
    finally:
        args.train_sampling_strategy = chosen


def best_spans(examples, features, start_logits, end_logits, qa) -> list[str]:
    """Each example's answer: the best-scoring valid span over all its windows (run_qa's post-processing)."""
    windows_of: dict[str, list[int]] = {}
    for index, example_id in enumerate(features["example_id"]):
        windows_of.setdefault(example_id, []).append(index)
    offsets_of = features["offset_mapping"]
    answers = []
    for example in examples.select_columns(["id", "context"]):
        best_text, best_score, null_score = "", None, None
        for index in windows_of.get(example["id"], []):
            offsets, starts, ends = offsets_of[index], start_logits[index], end_logits[index]
            window_null = starts[0] + ends[0]
            null_score = window_null if null_score is None else min(null_score, window_null)
            for start in np.argsort(starts)[-1:-qa.n_best_size - 1:-1]:
                for end in np.argsort(ends)[-1:-qa.n_best_size - 1:-1]:
                    if (start >= len(offsets) or end >= len(offsets) or offsets[start] is None
                            or offsets[end] is None or end < start or end - start + 1 > qa.max_answer_length):
                        continue
                    span_score = starts[start] + ends[end]
                    if best_score is None or span_score > best_score:
                        best_score = span_score
                        best_text = example["context"][offsets[start][0]:offsets[end][1]]
        if qa.version_2_with_negative and (best_score is None or null_score - best_score > qa.null_score_diff_threshold):
            best_text = ""
        answers.append(best_text)
    return answers


# Generative --------------------------------------------------------------------------------------

def rendered(ds, recipe, default_template: str):
    """(source, target) rows: the question and context in the template, the first gold answer."""
    template = recipe.data.prompt_template or default_template
    try:
        template.format(question="", context="")
    except (KeyError, IndexError, ValueError) as err:
        raise HfkitError(f"data.prompt_template: cannot fill {template!r} ({err}); qa templates may use "
                         "{question} and {context}, and literal braces must be doubled") from None
    return ds.map(_render, remove_columns=ds.column_names, fn_kwargs={"template": template}, desc="render prompts")


def _render(example, template: str) -> dict:
    texts = example["answers"]["text"]
    return {"source": template.format(question=example["question"], context=example["context"]),
            "target": texts[0] if texts else NO_ANSWER}


def seq2seq_qa_preprocess(ds, tokenizer, recipe, fmt: str):
    return seq2seq_preprocess(rendered(ds, recipe, SEQ2SEQ_TEMPLATE), tokenizer, recipe, fmt)


def seq2seq_qa_inputs(ds, tokenizer, recipe, fmt: str) -> GenerationInputs:
    data = recipe.data
    sources = [data.source_prefix + s for s in rendered(ds, recipe, SEQ2SEQ_TEMPLATE)["source"]]
    prompts = tokenizer(sources, max_length=encoder_max_length(recipe, tokenizer), truncation=True)["input_ids"]
    return dataclasses.replace(reference_inputs(ds), prompts=prompts)


def _as_pairs(ds, recipe):
    pairs = rendered(ds, recipe, CHAT_TEMPLATE)
    return pairs.rename_columns({"source": "prompt", "target": "completion"})


def decoder_qa_preprocess(ds, tokenizer, recipe, fmt: str):
    return tokenize_pairs(_as_pairs(ds, recipe), tokenizer, "prompt_completion", uses_chat_template(recipe, tokenizer),
                          decoder_max_length(recipe, tokenizer), recipe.data.num_proc)


def decoder_qa_inputs(ds, tokenizer, recipe, fmt: str) -> GenerationInputs:
    generated = pair_generation_inputs(_as_pairs(ds, recipe), tokenizer, "prompt_completion",
                                       uses_chat_template(recipe, tokenizer))
    return dataclasses.replace(reference_inputs(ds), prompts=generated.prompts)


# The task ----------------------------------------------------------------------------------------

def _transformers(name: str):
    def load():
        import transformers

        return getattr(transformers, name)

    return load


def _for_model(recipe) -> Task:
    if recipe.qa.mode == "extractive":
        return EXTRACTIVE
    from hfkit.models import is_encoder_decoder

    generative = dataclasses.replace(TASK, predict=None, for_model=None, group_by_length=True)
    if is_encoder_decoder(recipe.model):
        return dataclasses.replace(generative, auto_model="AutoModelForSeq2SeqLM", peft_task_type="SEQ_2_SEQ_LM",
                                   preprocess=seq2seq_qa_preprocess, generation_inputs=seq2seq_qa_inputs,
                                   collator=seq2seq_collator, trainer_class=_transformers("Seq2SeqTrainer"),
                                   lengths=encoder_decoder_lengths)
    return dataclasses.replace(generative, auto_model="AutoModelForCausalLM", peft_task_type="CAUSAL_LM",
                               preprocess=decoder_qa_preprocess, generation_inputs=decoder_qa_inputs,
                               collator=causal_collator, trainer_class=_transformers("Trainer"), lengths=decoder_lengths)


TASK = Task(
    name="qa",
    formats=("squad",),
    fields=lambda fmt: FIELDS,
    optional_fields=("id",),
    text_fields=lambda fmt: ("question", "context"),
    normalize_fields=("question",),  # the context stays byte for byte: answer_start points into it
    default_metrics=default_metrics,
    auto_model="AutoModelForQuestionAnswering",
    peft_task_type="QUESTION_ANS",
    preprocess=extractive_preprocess,
    collator=extractive_collator,
    generation_inputs=extractive_inputs,
    training_args_class=_transformers("Seq2SeqTrainingArguments"),  # a superset: the generative mode may use Seq2SeqTrainer
    trainer_class=_transformers("Trainer"),
    convert=convert,
    for_model=_for_model,
    predict=extractive_predict,
    metric_inputs=metric_inputs,
    lengths=lambda recipe: {"qa.max_seq_length": recipe.qa.max_seq_length},
    group_by_length=False,  # windows are near one length already; grouped batches of one context trained worse
)
EXTRACTIVE = dataclasses.replace(TASK, for_model=None)
