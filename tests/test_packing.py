"""Packing keeps the loss exact: packed rows give every target token the loss it has alone."""

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from support import date_rows

from hfkit.models import load_tokenizer
from hfkit.tasks import IGNORE, bind, task_class
from hfkit.tasks.packing import best_fit_decreasing

MESSAGES = [[{"role": "user", "content": f"Say {w} {i} times"}, {"role": "assistant", "content": f"{w} " * (1 + i % 4)}]
            for i, w in enumerate(["hello", "fox", "dog", "March", "tests", "world"])]
PAIRS = [{"source": f"fox {i} " * (1 + i % 3), "target": f"renard {i}"} for i in range(6)]


def make_task(task="generation", fmt="prompt_completion", **data):
    extra = {"source_lang": "en", "target_lang": "fr"} if task == "translation" else {}
    schema = task_class(task).recipe_class
    recipe = schema.model_validate({"task": task, "model": {"name_or_path": "m"},
                                    "data": {"train_file": "t.jsonl", "format": fmt, "max_length": 160, **extra, **data}})
    return bind(recipe, encoder_decoder=False)


CASES = {  # the decoder-only paths: (task, format, rows)
    "prompt_completion": ("generation", "prompt_completion", date_rows(7)),
    "messages": ("generation", "messages", [{"messages": m} for m in MESSAGES]),
    "translation": ("translation", "pairs", PAIRS),
}


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_llama):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    model.train()  # as in training: a model in train mode builds a cache unless told not to
    return model, load_tokenizer(str(tiny_llama), make_task().recipe.model)


def token_losses(model, batch) -> torch.Tensor:
    """Per-token loss at every position whose next-token label is set, in row order."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        logits = model(**inputs).logits.float()
    shifted = F.pad(batch["labels"], (0, 1), value=IGNORE)[:, 1:]
    keep = shifted != IGNORE
    return F.cross_entropy(logits[keep], shifted[keep], reduction="none")


def alone(model, rows) -> dict:
    """Each example run by itself: its input ids -> its target-token losses."""
    result = {}
    for row in rows:
        batch = {"input_ids": torch.tensor([row["input_ids"]]), "labels": torch.tensor([row["labels"]])}
        result[tuple(row["input_ids"])] = token_losses(model, batch)
    return result


def segments(batch) -> list[tuple]:
    """(input ids, number of target tokens) of each example in a packed batch, in order."""
    found = []
    for ids, labels, positions in zip(batch["input_ids"].tolist(), batch["labels"].tolist(),
                                      batch["position_ids"].tolist()):
        starts = [i for i, p in enumerate(positions) if p == 0] + [len(positions)]
        for start, end in zip(starts, starts[1:]):
            targets = sum(label != IGNORE for label in labels[start + 1:end])  # shifted: position t predicts t + 1
            if any(label != IGNORE for label in labels[start:end]):  # padding is a label-less segment
                found.append((tuple(ids[start:end]), targets))
    return found


@pytest.mark.parametrize("mode", ["padding_free", "bfd"])
@pytest.mark.parametrize("case", list(CASES))
def test_packed_token_losses_equal_each_example_alone(model_and_tokenizer, case, mode):
    model, tokenizer = model_and_tokenizer
    name, fmt, rows = CASES[case]
    task = make_task(name, fmt, packing=mode)
    plain = task.tokenize(Dataset.from_list(rows), tokenizer, "validation").dataset  # never packed
    train = task.tokenize(Dataset.from_list(rows), tokenizer, "train").dataset
    batch = task.collator(tokenizer, model, mode)([train[i] for i in range(len(train))])
    assert "attention_mask" not in batch and batch["use_cache"] is False
    if mode == "padding_free":
        assert batch["input_ids"].shape[0] == 1
    else:
        assert len(train) < len(plain) and all(n <= 160 for n in train["length"])

    packed = token_losses(model, batch)
    expected = alone(model, [plain[i] for i in range(len(plain))])
    found = segments(batch)
    assert sorted(ids for ids, _ in found) == sorted(expected)  # every example once, every token kept
    offset = 0
    for ids, count in found:
        torch.testing.assert_close(packed[offset:offset + count], expected[ids], atol=1e-4, rtol=0)
        offset += count
    assert offset == len(packed)


@pytest.mark.parametrize("mode", ["padding_free", "bfd"])
def test_packed_batch_loss_equals_the_padded_batch_loss(model_and_tokenizer, mode):
    model, tokenizer = model_and_tokenizer
    task = make_task(packing=mode)
    rows = Dataset.from_list(date_rows(7))
    padded = task.collator(tokenizer, model)([r for r in task.tokenize(rows, tokenizer, "validation").dataset])
    train = task.tokenize(rows, tokenizer, "train").dataset
    packed = task.collator(tokenizer, model, mode)([r for r in train])
    with torch.no_grad():
        torch.testing.assert_close(model(**packed).loss, model(**padded).loss, atol=1e-5, rtol=0)


def test_padding_free_rows_on_variable_length_sdpa_train_as_padded_batches(tiny_llama, monkeypatch):
    """hfkit_sdpa_varlen: one sdpa call per example of a padding-free row (no dense block-diagonal
    product); loss and every gradient equal the padded batch's on sdpa (fp32), and batches without
    boundaries (evaluation) get exactly sdpa's numbers."""
    from transformers import AutoModelForCausalLM
    from transformers.integrations import sdpa_attention

    from hfkit import job, varlen_attention

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    model.train()
    assert model.config._attn_implementation == "sdpa" and varlen_attention.available(model)
    tokenizer = load_tokenizer(str(tiny_llama), make_task().recipe.model)
    task = make_task(packing="padding_free")
    rows = Dataset.from_list(date_rows(7))
    padded = task.collator(tokenizer, model)([r for r in task.tokenize(rows, tokenizer, "validation").dataset])
    train = [r for r in task.tokenize(rows, tokenizer, "train").dataset]

    def loss_and_gradients(batch):
        model.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}

    expected_loss, expected_grads = loss_and_gradients(padded)
    with torch.no_grad():
        eval_loss = model(**padded).loss
    collator = job.train_collator(job.bind(task.recipe), tokenizer, model)  # switches the model
    assert model.config._attn_implementation == varlen_attention.NAME
    packed = collator(train)
    assert packed["cu_seq_lens_q"].tolist()[-1] == packed["input_ids"].shape[1]
    assert packed["cu_seq_lens_q"].diff().tolist() == [len(r["input_ids"]) for r in train]

    calls = []
    original = sdpa_attention.sdpa_attention_forward

    def counted(module, query, key, value, attention_mask, **kwargs):
        calls.append((query.shape[2], attention_mask is None))
        return original(module, query, key, value, attention_mask, **kwargs)

    monkeypatch.setattr(sdpa_attention, "sdpa_attention_forward", counted)
    loss, grads = loss_and_gradients(packed)
    assert len(calls) == model.config.num_hidden_layers * len(train)  # per example, never the whole row
    assert sorted({length for length, _ in calls}) == sorted({len(r["input_ids"]) for r in train})
    assert all(no_mask for _, no_mask in calls)
    torch.testing.assert_close(loss, expected_loss, atol=1e-5, rtol=0)
    for name, gradient in expected_grads.items():
        torch.testing.assert_close(grads[name], gradient, atol=1e-5, rtol=1e-4, msg=name)
    with torch.no_grad():
        assert torch.equal(model(**padded).loss, eval_loss)  # no boundaries: sdpa exactly


def test_padding_free_rows_in_bf16_compute_attention_in_fp32_within_bf16_rounding(tiny_llama):
    from transformers import AutoModelForCausalLM

    from hfkit import job

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.bfloat16)
    model.train()
    tokenizer = load_tokenizer(str(tiny_llama), make_task().recipe.model)
    task = make_task(packing="padding_free")
    rows = Dataset.from_list(date_rows(7))
    padded = task.collator(tokenizer, model)([r for r in task.tokenize(rows, tokenizer, "validation").dataset])
    with torch.no_grad():
        expected = model(**padded).loss.float()
        collator = job.train_collator(job.bind(task.recipe), tokenizer, model)
        packed = model(**collator([r for r in task.tokenize(rows, tokenizer, "train").dataset])).loss.float()
    torch.testing.assert_close(packed, expected, atol=0, rtol=2 ** -7)  # bf16 keeps 8 significant bits


def test_without_position_ids_reset_the_examples_would_mix(model_and_tokenizer):
    # The guard the tests above rely on: a packed row with one running position sequence differs.
    model, tokenizer = model_and_tokenizer
    task = make_task()
    train = task.tokenize(Dataset.from_list(date_rows(3)), tokenizer, "train").dataset
    batch = task.collator(tokenizer, model, "padding_free")([r for r in train])
    running = {**batch, "position_ids": torch.arange(batch["input_ids"].shape[1])[None]}
    assert not torch.allclose(token_losses(model, batch), token_losses(model, running), atol=1e-4)


def test_best_fit_decreasing_fills_bins_and_keeps_every_item():
    lengths = [9, 2, 7, 3, 3, 5, 1, 8, 4, 10]
    bins = best_fit_decreasing(lengths, 10)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 10 for b in bins)
    assert len(bins) == 6  # sum 52 -> at least 6 bins of 10


def test_packing_is_refused_where_it_does_not_apply():
    from hfkit.errors import HfkitError

    with pytest.raises(HfkitError, match="data.packing: bfd packs decoder-only"):
        from hfkit import job

        job.bind(make_task(fmt="text", packing="bfd").recipe)


@pytest.mark.parametrize("mode", ["padding_free", "bfd"])
def test_hfkit_trains_packed_and_scores_unpacked(tiny_llama, tmp_path, mode):
    from support import record_of, tiny_recipe

    from hfkit.cli import main

    recipe = tiny_recipe(tmp_path, tiny_llama, train_rows=24, eval_rows=6)
    assert main(["train", str(recipe), f"data.packing={mode}", "data.max_length=128", "eval.baseline=false"]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    record = record_of(run)
    assert record.train.steps == 3 and record.final.loss_tokens and record.final.examples == 6
    if mode == "bfd":
        assert 0 < record.data["preparation"]["train"]["packed_rows"] < 24
    else:  # the rows' examples go through sdpa one by one; what is saved names no hfkit attention
        assert record.attention == "hfkit_sdpa_varlen"
        configs = list(run.rglob("*config.json"))
        assert configs and not any("hfkit_sdpa_varlen" in path.read_text() for path in configs)


FAMILIES = {  # tiny configs of decoder families users fine-tune (random weights: only equality matters)
    "gpt2": ("GPT2Config", {"n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 64}),
    "qwen2": ("Qwen2Config", {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                              "num_key_value_heads": 2, "intermediate_size": 64}),
    "mistral": ("MistralConfig", {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                                  "num_key_value_heads": 2, "intermediate_size": 64}),
    "gemma": ("GemmaConfig", {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                              "num_key_value_heads": 2, "intermediate_size": 64, "head_dim": 8}),
    "phi3": ("Phi3Config", {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                            "num_key_value_heads": 2, "intermediate_size": 64, "pad_token_id": 0}),
    "opt": ("OPTConfig", {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "ffn_dim": 64,
                          "word_embed_proj_dim": 32}),
    "gpt_neox": ("GPTNeoXConfig", {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                                   "intermediate_size": 64}),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_per_example_sdpa_keeps_each_example_alone_in_every_sdpa_family(family):
    """`data.packing: auto` trains these families padding-free: each example's logits in the row equal
    its logits alone (no token sees another example), through hfkit_sdpa_varlen."""
    import transformers

    from hfkit import varlen_attention
    from hfkit.tasks.packing import flatten

    torch.manual_seed(0)
    config_class, kwargs = FAMILIES[family]
    model = transformers.AutoModelForCausalLM.from_config(getattr(transformers, config_class)(vocab_size=100, **kwargs))
    model.eval()
    assert varlen_attention.available(model)
    features = [{"input_ids": list(range(1, 1 + n)), "labels": list(range(1, 1 + n))} for n in (5, 9, 7)]
    with torch.no_grad():
        alone = torch.cat([model(input_ids=torch.tensor([f["input_ids"]])).logits[0] for f in features])
        varlen_attention.enable(model)
        row = {k: v for k, v in flatten(features, boundaries=True).items() if k != "labels"}
        packed = model(**row).logits[0]
    assert model.config._attn_implementation == varlen_attention.NAME
    torch.testing.assert_close(packed, alone, atol=1e-5, rtol=0)


def test_auto_keeps_padded_batches_for_a_model_on_eager_attention():
    # BLOOM runs eager attention (alibi): a packed row would mix its examples, so auto stays padded.
    import transformers

    from hfkit import varlen_attention
    from hfkit.tasks.packing import resolve

    model = transformers.AutoModelForCausalLM.from_config(
        transformers.BloomConfig(hidden_size=32, n_layer=2, n_head=4, vocab_size=100))
    assert model.config._attn_implementation == "eager"
    assert not varlen_attention.available(model) and resolve("auto", varlen_attention.available(model)) == "none"
