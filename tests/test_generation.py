"""Batched, length-sorted, left-padded generation returns what one-at-a-time generation does."""

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hfkit.generation import generate
from hfkit.schema import GenerationSection


def test_batched_generation_matches_one_by_one_and_keeps_order(tiny_llama):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.pad_token = tokenizer.eos_token
    texts = ["March 5", "Write this date as YYYY-MM-DD: the 13th of November, 1903", "hello", "quick brown fox jumps"]
    prompts = [tokenizer(t)["input_ids"] for t in texts]
    settings = GenerationSection(max_new_tokens=5)
    batched = generate(model, tokenizer, prompts, settings, batch_size=3, seed=0)
    for prompt, answer in zip(prompts, batched):
        with torch.inference_mode():
            alone = model.generate(torch.tensor([prompt]), max_new_tokens=5, do_sample=False,
                                   pad_token_id=tokenizer.pad_token_id)
        assert answer == tokenizer.decode(alone[0, len(prompt):], skip_special_tokens=True).strip()
    assert model.training is False  # from_pretrained returns eval mode, and generate restores it


def test_sampling_is_seeded(tiny_llama):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.pad_token = tokenizer.eos_token
    prompts = [tokenizer("hello")["input_ids"]] * 3
    settings = GenerationSection(max_new_tokens=6, do_sample=True, top_k=50, top_p=0.95, temperature=1.5)
    first = generate(model, tokenizer, prompts, settings, batch_size=3, seed=7)
    assert first == generate(model, tokenizer, prompts, settings, batch_size=3, seed=7)


def test_token_budget_batches_never_exceed_the_first_batch():
    from hfkit.generation import token_budget_batches

    lengths = [50, 40, 10, 10, 5, 5, 5, 5, 5, 5, 5, 5]
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches = token_budget_batches(order, lengths, batch_size=2, new_tokens=10)
    assert batches[0] == [0, 1]  # the first batch holds batch_size prompts
    budget = 2 * (50 + 10)
    for batch in batches:
        assert len(batch) * (lengths[batch[0]] + 10) <= budget or len(batch) == 1
    assert [i for batch in batches for i in batch] == order  # every prompt once, in order
    assert max(len(b) for b in batches) > 2  # short prompts share a pass
    assert token_budget_batches([], [], 4, 10) == []
