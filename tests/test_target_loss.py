"""The LM head on target positions only: the same loss and gradients as the full-logits forward."""

import pytest
import torch
from datasets import Dataset
from support import date_rows

from hfkit import fused_loss
from hfkit.models import load_tokenizer
from hfkit.schema import Recipe
from hfkit.tasks import bind
from hfkit.trainer import TargetOnlyLoss, trainer_class


def lora_model(folder):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear"))
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.02)  # nonzero, so LoRA A gets a gradient too
    return model


def trainer(base, model, tmp_path, **args):
    from transformers import TrainingArguments

    return base(model=model, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", **args))


@pytest.fixture(scope="module")
def batches(tiny_llama):
    recipe = Recipe.model_validate({"task": "generation", "model": {"name_or_path": str(tiny_llama)},
                                    "data": {"train_file": "t.jsonl", "max_length": 64}})
    task = bind(recipe, encoder_decoder=False)
    tokenizer = load_tokenizer(str(tiny_llama), recipe.model)
    rows = date_rows(6)
    rows[1]["prompt"] = "a much longer prompt, so the batch is padded: " + rows[1]["prompt"]
    data = task.tokenize(Dataset.from_list(rows), tokenizer, "train").dataset
    collate = task.collator(tokenizer)
    return [collate([data[i] for i in range(0, 3)]), collate([data[i] for i in range(3, 6)])]


def loss_and_grads(cls, folder, batches, tmp_path, accumulate: bool):
    from transformers import Trainer

    model = lora_model(folder)
    t = trainer(cls(Trainer), model, tmp_path)
    count = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches) if accumulate else None
    losses = []
    for batch in batches if accumulate else batches[:1]:
        loss = t.compute_loss(model, dict(batch), num_items_in_batch=torch.tensor(count) if count else None)
        loss.backward()
        losses.append(loss.detach())
    if cls is trainer_class:  # the loss with its gradient made in the forward pass (hfkit/fused_loss.py) ran
        assert model.get_base_model().loss_function is fused_loss.causal_lm_loss
    return losses, {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("accumulate", [False, True], ids=["mean", "num_items_in_batch"])
def test_target_only_loss_and_gradients_equal_the_full_logits(tiny_llama, batches, tmp_path, accumulate):
    plain, plain_grads = loss_and_grads(lambda base: base, tiny_llama, batches, tmp_path, accumulate)
    ours, our_grads = loss_and_grads(trainer_class, tiny_llama, batches, tmp_path, accumulate)
    assert len(plain) == len(ours) == (2 if accumulate else 1)
    for a, b in zip(plain, ours):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0)
    assert plain_grads.keys() == our_grads.keys()
    for name in plain_grads:
        torch.testing.assert_close(our_grads[name], plain_grads[name], atol=1e-5, rtol=1e-4)


def test_only_target_positions_reach_the_head(tiny_llama, batches, tmp_path):
    from transformers import Trainer

    model = lora_model(tiny_llama)
    seen = []
    head = model.get_base_model().lm_head
    handle = head.register_forward_hook(lambda module, args, output: seen.append(tuple(output.shape)))
    trainer(trainer_class(Trainer), model, tmp_path).compute_loss(model, dict(batches[0]))
    handle.remove()
    targets = int((batches[0]["labels"][:, 1:] != -100).sum())
    assert seen == [(targets, model.config.vocab_size)]  # not [3, length, vocab]


def test_outputs_and_label_smoothing_take_the_usual_path(tiny_llama, batches, tmp_path):
    from transformers import Trainer

    model = lora_model(tiny_llama)
    t = trainer(trainer_class(Trainer), model, tmp_path)
    _, outputs = t.compute_loss(model, dict(batches[0]), return_outputs=True)
    assert outputs.logits.shape[:2] == batches[0]["input_ids"].shape  # evaluation gets every logit
    smoothed = trainer(trainer_class(Trainer), model, tmp_path, label_smoothing_factor=0.1)
    assert not smoothed._selects_logits()
    assert issubclass(trainer_class(Trainer), TargetOnlyLoss)
