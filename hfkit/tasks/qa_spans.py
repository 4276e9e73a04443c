"""Extractive QA's span machinery, as transformers' run_qa.py: windows with labels, and the best span.

Question + context are tokenised with `truncation="only_second"` into overlapping windows of
`max_seq_length` tokens that overlap by `doc_stride`, with offset mappings; each window is labelled
with the answer's start/end tokens (the CLS index when the answer is not in it). Answers come from
the best-scoring valid span over an example's windows (`n_best_size`, `max_answer_length`); with
`version_2_with_negative`, the empty answer wins when the null score beats the best span by more
than `null_score_diff_threshold`, and the no-answer probability is sigmoid(null - best span score)
(so squad_v2's best_exact/best_f1 thresholds mean something).
"""

from __future__ import annotations

import math

import numpy as np

EXTRA_COLUMNS = ("example_id", "offset_mapping")  # kept on eval windows for post-processing


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


def best_spans(examples, features, start_logits, end_logits, qa) -> tuple[list[str], list[float]]:
    """Each example's answer (the best valid span over its windows) and its no-answer probability."""
    windows_of: dict[str, list[int]] = {}
    for index, example_id in enumerate(features["example_id"]):
        windows_of.setdefault(example_id, []).append(index)
    offsets_of = features["offset_mapping"]
    answers, no_answer = [], []
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
        if best_score is None:
            probability = 1.0
        else:
            probability = 1.0 / (1.0 + math.exp(min(50.0, float(best_score - null_score))))
        if qa.version_2_with_negative and (best_score is None or null_score - best_score > qa.null_score_diff_threshold):
            best_text = ""
        answers.append(best_text)
        no_answer.append(probability)
    return answers, no_answer


def window_losses(start_logits, end_logits, starts, ends) -> np.ndarray:
    """Each window's loss as the QA heads compute it: mean of the start and end cross-entropies."""
    def cross_entropy(logits, target):
        logits = np.asarray(logits, dtype=np.float64)
        top = logits.max(axis=1, keepdims=True)
        log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        return log_z - logits[np.arange(len(target)), target]

    return (cross_entropy(start_logits, np.asarray(starts)) + cross_entropy(end_logits, np.asarray(ends))) / 2
