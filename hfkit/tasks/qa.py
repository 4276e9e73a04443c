"""`qa`: question answering, extractive (SQuAD spans) or generative, scored with SQuAD EM/F1.

Data: flat rows (`id`, `question`, `context`, `answers: {text: [...], answer_start: [...]}`) or
SQuAD's nested JSON (flattened on load). Every gold answer must sit at its `answer_start`.
- Extractive (`qa.mode: extractive`): windows over the context and the best span, as run_qa.py
  (hfkit.tasks.qa_spans).
- Generative (`qa.mode: generative`): question and context in a template, the first gold answer as
  the target (`qa.no_answer_text` for a SQuAD v2 question without one), trained and generated like
  translation with either model family (hfkit.tasks.pairs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from hfkit.json_files import document_version
from hfkit.errors import HfkitError
from hfkit.metrics.squad_answers import normalize_answer
from hfkit.schema import Recipe, Section
from hfkit.tasks.base import EvalExamples, Task, Tokenized
from hfkit.tasks.common import cache_key, example_ids, pad_multiple
from hfkit.tasks.pairs import PairTask
from hfkit.tasks.qa_spans import EXTRA_COLUMNS, best_spans, windows

PREPROCESS_VERSION = 1  # part of the cache key: bump when the tokenisation below changes
FIELDS = ("question", "context", "answers")


class QASection(Section):
    """Question answering: extractive spans (SQuAD) or generated answers."""

    mode: Literal["extractive", "generative"] = Field("extractive", description=(
        "extractive: pick the answer span in the context (SQuAD); generative: write the answer in words."))
    version_2_with_negative: bool | None = Field(None, description=(
        "SQuAD v2: some questions have no answer in the context (scored with squad_v2). Unset: true when a "
        "SQuAD data file says \"version\": \"v2.0\"."))
    max_seq_length: PositiveInt = Field(384, description="Extractive: tokens of one question + context window.")
    doc_stride: PositiveInt = Field(128, description="Extractive: tokens shared by consecutive windows of a long context.")
    n_best_size: PositiveInt = Field(20, description="Extractive: start and end candidates per window.")
    max_answer_length: PositiveInt = Field(30, description="Extractive: the longest answer span, in tokens.")
    null_score_diff_threshold: float = Field(0.0, description=(
        "Extractive v2: answer 'no answer' when its score beats the best span's by more than this."))
    no_answer_text: str = Field("unanswerable", min_length=1, description=(
        "Generative v2: the target of a question without an answer; a generated answer equal to it (case, "
        "punctuation and articles aside) means no answer."))

    @model_validator(mode="after")
    def _stride_fits(self) -> QASection:
        if self.doc_stride >= self.max_seq_length:
            raise ValueError(f"qa.doc_stride ({self.doc_stride}) must be smaller than qa.max_seq_length "
                             f"({self.max_seq_length})")
        return self


class QARecipe(Recipe):
    qa: QASection = Field(default_factory=QASection, description="Question answering options (task: qa).")


class _QA(Task):
    name = "qa"
    formats = ("squad",)
    recipe_class = QARecipe
    card_label = "question answering"
    metric_kind = "squad"

    @classmethod
    def variant(cls, recipe) -> type[Task]:
        return GenerativeQA if recipe.qa.mode == "generative" else ExtractiveQA

    def fields(self) -> tuple[str, ...]:
        return FIELDS

    def text_fields(self) -> tuple[str, ...]:
        return ("question", "context")

    def normalize_fields(self) -> tuple[str, ...]:
        return ("question",)  # the context stays byte for byte: answer_start points into it

    def default_metrics(self) -> list[str]:
        return ["squad_v2"] if self.recipe.qa.version_2_with_negative else ["squad"]

    def convert(self, ds):
        """Give every example an id and check each gold answer sits at its answer_start."""
        if "id" not in ds.column_names:
            ds = ds.add_column("id", [str(i) for i in range(len(ds))])
        for row in ds.select_columns(["id", "context", "answers"]):
            answers = row["answers"] or {}
            texts, starts = (answers.get("text"), answers.get("answer_start")) if isinstance(answers, dict) else (0, 0)
            if not all(isinstance(value, list) or value is None for value in (texts, starts)):
                raise HfkitError(f"data: example {row['id']}: answers must be {{text: [...], answer_start: [...]}} "
                                 f"(SQuAD's layout), not {type(answers).__name__} {str(answers)[:60]!r}; e.g. "
                                 '{"text": ["Lisbon"], "answer_start": [17]}')
            texts, starts = texts or [], starts or []
            if len(texts) != len(starts):
                raise HfkitError(f"data: example {row['id']}: answers has {len(texts)} texts but {len(starts)} "
                                 "answer_start values")
            for text, start in zip(texts, starts):
                found = row["context"][start:start + len(text)]
                if found != text:
                    raise HfkitError(f"data: example {row['id']}: answer {text!r} is not at answer_start {start} of "
                                     f"its context (found {found!r}); fix answer_start (a character offset) or the text")
        if not self.version_2() and any(not a["text"] for a in ds["answers"]):
            if "squad" in (self.recipe.eval.metrics or []):
                raise HfkitError("data: some questions have no answer (SQuAD v2 data), which squad cannot score; set "
                                 "qa.version_2_with_negative: true and eval.metrics: [squad_v2]")
            raise HfkitError("data: some questions have no answer; set qa.version_2_with_negative: true (SQuAD v2)")
        return ds

    def version_2(self) -> bool:
        """`qa.version_2_with_negative`; unset, it is read from the data files' own "version" field
        (SQuAD's official JSON says "v2.0"), once, and kept in the recipe."""
        qa = self.recipe.qa
        if qa.version_2_with_negative is None:
            said = [(path, version) for path, version in squad_versions(self.recipe.data)
                    if str(version).lower().lstrip("v").startswith("2")]
            qa.version_2_with_negative = bool(said)
            if said:
                self.data_notes.append(f"qa.version_2_with_negative: true, as {Path(said[0][0]).name} says "
                                       f"\"version\": {said[0][1]!r}")
        return qa.version_2_with_negative

    def problems(self) -> list[str]:
        if self.recipe.qa.version_2_with_negative:
            return _squad_on_v2(self.recipe, "qa.version_2_with_negative is true")
        return []

    def check_data(self, splits, data) -> list[str]:
        """`squad` cannot score SQuAD v2 data (it needs an answer for every question): refused with the fix."""
        if self.version_2():
            unanswered = {name: sum(not answers["text"] for answers in ds["answers"]) for name, ds in splits.items()}
            reason = next((f"the {name} split has {count} question(s) without an answer"
                           for name, count in unanswered.items() if count), "the data is SQuAD v2")
            problems = _squad_on_v2(self.recipe, reason)
            if problems:
                raise HfkitError(problems[0])
        return []

    def metric_inputs(self, answers: list[str], examples: EvalExamples, extra: dict) -> tuple[list, list]:
        """The shapes of the SQuAD metrics: [{id, prediction_text[, no_answer_probability]}], [{id, answers}]."""
        v2 = self.recipe.qa.version_2_with_negative
        probabilities = extra.get("no_answer_probability") or [0.0] * len(answers)
        predictions = []
        for answer, reference, probability in zip(answers, examples.references, probabilities):
            predictions.append({"id": reference["id"], "prediction_text": answer,
                                **({"no_answer_probability": float(probability)} if v2 else {})})
        return predictions, examples.references


class ExtractiveQA(_QA):
    generates = False
    loss_key = "eval_span_loss"  # the mean start/end cross-entropy over windows: not a token loss
    auto_model = "AutoModelForQuestionAnswering"
    peft_task_type = "QUESTION_ANS"
    pipeline_tag = "question-answering"
    new_heads = ("qa_outputs",)
    group_by_length = False  # windows are near one length already; grouped batches of one context trained worse

    def lengths(self) -> dict[str, int | None]:
        return {"qa.max_seq_length": self.recipe.qa.max_seq_length}

    def tokenize(self, ds, tokenizer, split: str) -> Tokenized:
        """Windows with start/end labels; they also keep their example id and offsets (the collator drops them)."""
        qa = self.recipe.qa
        key = cache_key(ds, tokenizer, PREPROCESS_VERSION, qa.max_seq_length, qa.doc_stride)
        features = ds.map(windows, batched=True, remove_columns=ds.column_names, num_proc=self.recipe.data.num_proc,
                          new_fingerprint=key, desc="tokenise into windows",
                          fn_kwargs={"tokenizer": tokenizer, "max_length": qa.max_seq_length, "stride": qa.doc_stride})
        return Tokenized(features, {"examples": len(ds), "windows": len(features)})

    def eval_examples(self, ds, tokenizer) -> EvalExamples:
        references = reference_list(ds)
        return EvalExamples(prompts=[], references=references, sources=list(ds["question"]),
                            ids=example_ids(ds, [], references))

    def collator(self, tokenizer, model=None):
        return _WindowCollator(tokenizer)

    def answers(self, examples_ds, features, start_logits, end_logits) -> tuple[list[str], dict]:
        answers, no_answer = best_spans(examples_ds, features, start_logits, end_logits, self.recipe.qa)
        return answers, {"no_answer_probability": no_answer}

    def card_usage_note(self, tokenizer) -> str:
        return "Use it with transformers' question-answering pipeline: `pipeline('question-answering', model=...)`."


class _WindowCollator:
    """Pads windows, leaving out the post-processing columns."""

    def __init__(self, tokenizer):
        from transformers import DataCollatorWithPadding

        self.pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_multiple())

    def __call__(self, features: list[dict]) -> dict:
        return self.pad([{k: v for k, v in f.items() if k not in EXTRA_COLUMNS} for f in features])


class GenerativeQA(_QA, PairTask):
    templates = {
        "seq2seq": "question: {question} context: {context}",  # T5's SQuAD format
        "chat": "Answer the question with a short span copied from the context.\nContext: {context}\nQuestion: {question}",
        "plain": "Context: {context}\nQuestion: {question}\nAnswer:\n",
    }

    def problems(self) -> list[str]:
        found = super().problems()
        template = self.recipe.data.prompt_template
        if template is None:
            return found
        try:
            template.format(question="", context="")
        except (KeyError, IndexError, ValueError) as err:
            found.append(f"data.prompt_template: cannot fill {template!r} ({err}); qa templates may use "
                         "{question} and {context}, and literal braces must be doubled")
        return found

    def pairs(self, ds, style: str):
        return ds.map(_render, remove_columns=ds.column_names, desc="render prompts",
                      fn_kwargs={"template": self.template(style), "no_answer": self.recipe.qa.no_answer_text})

    def shown_sources(self, ds) -> list[str]:
        return list(ds["question"])

    def references(self, ds) -> list:
        return reference_list(ds)

    def metric_inputs(self, answers: list[str], examples: EvalExamples, extra: dict) -> tuple[list, list]:
        if not self.recipe.qa.version_2_with_negative:
            return super().metric_inputs(answers, examples, extra)
        no_answer = normalize_answer(self.recipe.qa.no_answer_text)
        said_none = [normalize_answer(a) == no_answer for a in answers]
        texts = ["" if none else a for a, none in zip(answers, said_none)]
        return super().metric_inputs(texts, examples, {"no_answer_probability": [float(n) for n in said_none]})


def _squad_on_v2(recipe, reason: str) -> list[str]:
    if "squad" not in (recipe.eval.metrics or []):
        return []
    return [f"eval.metrics: squad scores SQuAD v1.1, where every question has an answer, but {reason}; use "
            "squad_v2 (eval.metrics: [squad_v2]), which also scores questions without one"]


def squad_versions(data) -> list[tuple[str, object]]:
    """(path, "version") of each of the recipe's JSON data files that holds one document with a
    top-level "version" (the official SQuAD layout)."""
    found = []
    for path in filter(None, (data.train_file, data.validation_file, data.test_file)):
        version = document_version(Path(path))
        if version is not None:
            found.append((path, version))
    return found


def reference_list(ds) -> list[dict]:
    """What SQuAD metrics compare with: {id, answers} per question."""
    return [{"id": i, "answers": a} for i, a in zip(ds["id"], ds["answers"])]


def _render(example, template: str, no_answer: str) -> dict:
    texts = example["answers"]["text"]
    return {"source": template.format(question=example["question"], context=example["context"]),
            "target": texts[0] if texts else no_answer}
