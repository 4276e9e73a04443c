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
        assert answer == tokenizer.decode(alone[0, len(prompt):], skip_special_tokens=True)  # nothing stripped
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


SMOLLM2 = {"model_type": "llama", "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
           "hidden_size": 576, "head_dim": 64, "vocab_size": 49152, "max_position_embeddings": 8192}


def test_decoding_that_cannot_fit_in_memory_is_refused_in_one_line():
    """`hfkit eval RUN --decode beam=100000` grew to 17 GB before the kernel killed it."""
    import pytest
    from transformers import LlamaConfig

    from hfkit.decoding_budget import check, decoder_shape, needed_bytes
    from hfkit.errors import HfkitError

    config = LlamaConfig(**SMOLLM2)
    shape = decoder_shape(config)
    assert shape.bytes_per_token() == 2 * 30 * 3 * 64 * 4  # keys and values, every layer, float32
    greedy = GenerationSection(max_new_tokens=64)
    # 8 prompts x 576 tokens: the cache, plus 3 float32 copies of the vocabulary scores per sequence
    assert needed_bytes(shape, greedy, 8, 512) == 8 * 576 * 46080 + 8 * 49152 * 4 * 3
    memory = 20 * 2**30
    check([("generation", greedy), ("--decode beam=4", GenerationSection(num_beams=4))], config, 8, 512, False, memory)
    with pytest.raises(HfkitError) as refused:
        check([("--decode beam=100000", GenerationSection(num_beams=100000))], config, 8, 512, False, memory)
    message = str(refused.value)
    assert message.startswith("--decode beam=100000: 100000 beam(s) x 8 prompts per eval batch x 576 tokens need "
                              "~19.7 TB for the generation cache and scores alone") and "\n" not in message
    most = int(message.split("use at most ")[1].split()[0])  # the largest number of beams that passes
    check([("generation", GenerationSection(num_beams=most))], config, 8, 512, False, memory)
    with pytest.raises(HfkitError, match="generation.num_beams"):
        check([("generation", GenerationSection(num_beams=most + 1))], config, 8, 512, False, memory)
    with pytest.raises(HfkitError, match=r"generation.max_new_tokens: .* use at most \d+ new tokens"):
        check([("generation", GenerationSection(max_new_tokens=10_000_000))], config, 8, 512, False, memory)
    # an encoder-decoder's decoder has a fixed number of positions (BART: 1024)
    with pytest.raises(HfkitError, match="generation.max_new_tokens: 2000 new tokens is more than this model's "
                                         "decoder takes \\(1024 positions\\)"):
        check([("generation", GenerationSection(max_new_tokens=2000))], _bart(), 8, 512, True, memory)
    assert decoder_shape(None) is None  # bert2bert: no single config, nothing estimated


def _bart():
    from transformers import BartConfig

    return BartConfig(vocab_size=50265, d_model=768, decoder_layers=6, decoder_attention_heads=12,
                      max_position_embeddings=1024)
