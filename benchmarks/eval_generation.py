"""hfkit's evaluation generation vs `Seq2SeqTrainer.predict(predict_with_generate=True)`.

Both run the same small encoder-decoder, the same 256 mixed-length examples, greedy decoding with
the same limits and the same batch size. The model is a small T5 trained here for two minutes on a
copy task, so its answers end when the input does (an untrained model would always run to the
length limit, hiding the cost of padding). Prints the timings, whether the predictions are
identical, a JSON line and a markdown table.

    python benchmarks/eval_generation.py [--examples 256] [--batch-size 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (DataCollatorForSeq2Seq, PreTrainedTokenizerFast, Seq2SeqTrainer, Seq2SeqTrainingArguments,
                          T5Config, T5ForConditionalGeneration)

from hfkit.generation import generate
from hfkit.schema import GenerationSection

WORDS = [f"w{i}" for i in range(200)]


def make_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate(["<pad>", "</s>", "<unk>", "copy:"] + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def encode(tokenizer, texts: list[str]) -> list[list[int]]:
    return [ids + [tokenizer.eos_token_id] for ids in tokenizer(texts)["input_ids"]]


def train_copy_model(tokenizer, steps: int, seed: int) -> T5ForConditionalGeneration:
    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(tokenizer), d_model=128, d_kv=32, d_ff=512, num_layers=2, num_decoder_layers=2,
                      num_heads=4, dropout_rate=0.0, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id)
    model = T5ForConditionalGeneration(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rng = random.Random(seed)
    model.train()
    for _ in range(steps):
        texts = [sentence(rng, 2, 30) for _ in range(32)]
        sources = tokenizer.pad({"input_ids": encode(tokenizer, [f"copy: {t}" for t in texts])}, return_tensors="pt")
        labels = tokenizer.pad({"input_ids": encode(tokenizer, texts)}, return_tensors="pt")["input_ids"]
        labels[labels == tokenizer.pad_token_id] = -100
        loss = model(**sources, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


def with_trainer(model, tokenizer, sources, targets, batch_size: int, max_new_tokens: int) -> list[str]:
    """The transformers way (run_translation.py): a dataset with labels, predict_with_generate."""
    from datasets import Dataset

    dataset = Dataset.from_dict({"input_ids": sources, "attention_mask": [[1] * len(s) for s in sources],
                                 "labels": targets})
    with tempfile.TemporaryDirectory() as tmp:
        args = Seq2SeqTrainingArguments(output_dir=tmp, per_device_eval_batch_size=batch_size, predict_with_generate=True,
                                        report_to="none", use_cpu=True, disable_tqdm=True)
        trainer = Seq2SeqTrainer(model=model, args=args, processing_class=tokenizer,
                                 data_collator=DataCollatorForSeq2Seq(tokenizer, model=model))
        output = trainer.predict(dataset, max_new_tokens=max_new_tokens, num_beams=1, do_sample=False)
    predictions = output.predictions
    predictions[predictions == -100] = tokenizer.pad_token_id
    return tokenizer.batch_decode(predictions, skip_special_tokens=True)  # as hfkit: nothing stripped


def with_hfkit(model, tokenizer, sources, batch_size: int, max_new_tokens: int) -> list[str]:
    settings = GenerationSection(max_new_tokens=max_new_tokens, num_beams=1, do_sample=False)
    return generate(model, tokenizer, sources, settings, batch_size=batch_size, seed=0)


def timed(fn) -> tuple[float, list[str]]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=1400)  # ~100 s on 2 cores; copies about half exactly
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    tokenizer = make_tokenizer()
    started = time.perf_counter()
    model = train_copy_model(tokenizer, args.train_steps, seed=0)
    train_seconds = time.perf_counter() - started
    rng = random.Random(1)
    texts = [sentence(rng, 2, 30) for _ in range(args.examples)]  # mixed lengths, 3 to 32 tokens
    sources = encode(tokenizer, [f"copy: {t}" for t in texts])
    targets = encode(tokenizer, texts)
    max_new_tokens = 40

    trainer_times, hfkit_times = [], []
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        seconds, trainer_predictions = timed(lambda: with_trainer(model, tokenizer, sources, targets,
                                                                   args.batch_size, max_new_tokens))
        trainer_times.append(seconds)
        seconds, hfkit_predictions = timed(lambda: with_hfkit(model, tokenizer, sources, args.batch_size, max_new_tokens))
        hfkit_times.append(seconds)

    identical = sum(a == b for a, b in zip(trainer_predictions, hfkit_predictions))
    copied = sum(p == t for p, t in zip(hfkit_predictions, texts))
    result = {
        "benchmark": "eval_generation_seq2seq",
        "examples": args.examples,
        "batch_size": args.batch_size,
        "trainer_predict_s": round(statistics.median(trainer_times), 3),
        "hfkit_generate_s": round(statistics.median(hfkit_times), 3),
        "eval_generation_speedup_seq2seq": round(statistics.median(trainer_times) / statistics.median(hfkit_times), 2),
        "identical_predictions": identical,
        "identical_fraction": identical / args.examples,
        "model_copy_accuracy": copied / args.examples,
        "model_train_s": round(train_seconds, 1),
    }
    print(json.dumps(result))
    print()
    print("| method | median seconds | predictions |")
    print("|---|---|---|")
    print(f"| Seq2SeqTrainer.predict(predict_with_generate=True) | {result['trainer_predict_s']} | {args.examples} |")
    print(f"| hfkit generation (length-sorted, token-budget batches) | {result['hfkit_generate_s']} | "
          f"{identical}/{args.examples} identical |")
    print(f"\nspeedup: {result['eval_generation_speedup_seq2seq']}x")
    return result


if __name__ == "__main__":
    main()
