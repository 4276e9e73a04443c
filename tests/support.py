"""Test support: tiny models the tests build themselves, and small data and recipe writers."""

from __future__ import annotations

import json
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

CORPUS = [
    "Write this date as YYYY-MM-DD: March 5, 2021",
    "2021-03-05 1999-12-31 the 13th of November, 1903",
    "January February March April May June July August September October November December",
    "The quick brown fox jumps over the lazy dog. Hello world, hello tests.",
    "question: what is the capital of France? answer: Paris",
]


def make_tokenizer(chat_template: bool = True, pad: bool = False):
    """A byte-level BPE tokenizer with <unk>, <s>, </s> and, unless `pad`, no pad token (hfkit must add one)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    specials = ["<unk>", "<s>", "</s>"] + (["<pad>"] if pad else [])
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(CORPUS * 20, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                        **({"pad_token": "<pad>"} if pad else {}))
    tokenizer.model_max_length = 256
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def make_tiny_llama(folder: Path, seed: int = 0) -> Path:
    """Save a randomly initialised 2-layer, hidden-64 Llama with its tokenizer into `folder`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = make_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_tiny_seq2seq(folder: Path, kind: str, seed: int = 0) -> Path:
    """Save a randomly initialised one-layer T5 or BART (hidden 32) with its tokenizer into `folder`."""
    import torch
    from transformers import BartConfig, BartForConditionalGeneration, T5Config, T5ForConditionalGeneration

    tokenizer = make_tokenizer(chat_template=False, pad=True)
    ids = {"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
    torch.manual_seed(seed)
    if kind == "t5":
        config = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1,
                          num_heads=2, decoder_start_token_id=tokenizer.pad_token_id, **ids)
        model = T5ForConditionalGeneration(config)
    else:
        config = BartConfig(vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
                            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                            decoder_ffn_dim=64, max_position_embeddings=256, bos_token_id=tokenizer.bos_token_id,
                            decoder_start_token_id=tokenizer.eos_token_id, forced_eos_token_id=None, **ids)
        model = BartForConditionalGeneration(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_tiny_bert(folder: Path, seed: int = 0) -> Path:
    """Save a randomly initialised 2-layer, hidden-32 BERT with a small WordPiece tokenizer into `folder`."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertForQuestionAnswering, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(CORPUS * 20 + [QA_CORPUS] * 20, vocab_size=300)
    wordpiece.save_model(str(folder))
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    BertForQuestionAnswering(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


QA_CORPUS = ("Anna Keller was born in Lisbon in 1987. She works as a chemist at the Riverside Hospital. "
             "Where was Anna born? What is her job? Tom plays the violin in Oslo.")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def date_rows(count: int, offset: int = 0) -> list[dict]:
    """Small prompt/completion rows in the demo's shape, all different."""
    return [{"prompt": f"Write this date as YYYY-MM-DD: March {1 + (i % 28)}, {1950 + i}",
             "completion": f"{1950 + i}-03-{1 + (i % 28):02d}"} for i in range(offset, offset + count)]


def tiny_recipe(folder: Path, model: Path, extra: str = "", train_rows: int = 24, eval_rows: int = 6) -> Path:
    """A complete recipe for the tiny Llama with its data files, written into `folder`."""
    write_jsonl(folder / "train.jsonl", date_rows(train_rows))
    write_jsonl(folder / "validation.jsonl", date_rows(eval_rows, offset=1000))
    recipe = folder / "tiny.yaml"
    recipe.write_text(f"""\
task: generation
model:
  name_or_path: {model}
data:
  train_file: train.jsonl
  validation_file: validation.jsonl
  max_length: 64
peft:
  r: 4
  alpha: 8
training:
  max_steps: 3
  per_device_train_batch_size: 4
  per_device_eval_batch_size: 4
  learning_rate: 1e-3
  logging_steps: 1
  save_strategy: "no"
  report_to: none
generation:
  max_new_tokens: 6
eval:
  baseline: true
output:
  dir: {folder / "runs"}
{extra}""", encoding="utf-8")
    return recipe


KILLER = """
import os, signal, sys
import transformers
from transformers import TrainerCallback

class Die(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == int(os.environ["KILL_AT_STEP"]):  # after that step's checkpoint and log line
            os.kill(os.getpid(), signal.SIGKILL)

original_init = transformers.Trainer.__init__
def init_with_death(self, *a, **k):
    original_init(self, *a, **k)
    self.add_callback(Die())
transformers.Trainer.__init__ = init_with_death
from hfkit.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_hfkit(*args, cwd, env_extra=None, **kwargs):
    """`hfkit ARGS` in a fresh, offline process."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "hfkit", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600, **kwargs)


def killed_at(step: int, args: list[str], cwd: Path):
    """`hfkit ARGS` in a fresh process that SIGKILLs itself at the end of training step `step`."""
    import os
    import subprocess
    import sys

    (cwd / "killer.py").write_text(KILLER)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "KILL_AT_STEP": str(step),
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    return subprocess.run([sys.executable, str(cwd / "killer.py"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


def record_of(run: Path):
    """A run folder's metrics.json, read through the run record (as compare and cards read it)."""
    from hfkit.record import read_record

    return read_record(run)


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


SUBJECTS = ["the old lighthouse", "our village library", "the night train", "a small bakery", "the city museum",
            "the mountain hut", "the river ferry", "the school garden", "the corner cafe", "the harbour market"]
DETAILS = ["opens early on weekdays", "was rebuilt after the storm", "is run by volunteers",
           "welcomes visitors all year", "has a view over the valley", "closes for two weeks in August"]
GERMAN = ["Beschreibe den alten Bahnhof in einem Satz.", "Was macht die Bäckerei am Sonntagmorgen?",
          "Erzähl mir etwas über den Hafen der Stadt.", "Wie sieht der Garten hinter der Schule aus?",
          "Warum ist das Museum montags geschlossen?"]
GERMAN_ANSWERS = ["Der alte Bahnhof wurde nach dem Krieg sorgfältig wieder aufgebaut.",
                  "Die Bäckerei verkauft frische Brötchen, bevor die Kirche beginnt.",
                  "Im Hafen liegen viele kleine Fischerboote und ein altes Segelschiff.",
                  "Hinter der Schule wachsen Tomaten, Bohnen und ein paar hohe Sonnenblumen.",
                  "Das Museum bleibt montags zu, weil dann die Ausstellungen gepflegt werden."]
PHRASES = ["buy cheap pills now", "click here to win", "free money for you", "best deal ever today",
           "limited offer act fast"]
JUNK = ["#### @@@@ $$$$ %%%% ^^^^", "&&&& **** (((( )))) !!!!", "<<<< >>>> |||| ~~~~ ====", "++++ //// \\\\\\\\ ;;;; ::::",
        "[[[[ ]]]] {{{{ }}}} ----"]


def clean_rows(count: int, offset: int = 0) -> list[dict]:
    """Distinct prompt/completion rows of plain English prose."""
    rows = []
    for i in range(offset, offset + count):
        subject, detail = SUBJECTS[i % len(SUBJECTS)], DETAILS[(i // len(SUBJECTS)) % len(DETAILS)]
        rows.append({"prompt": f"Tell me one thing about {subject} (note {i}).",
                     "completion": f"People say that {subject} {detail}, according to note {i}."})
    return rows


def steering_rows() -> tuple[list[dict], list[dict]]:
    """(train, validation): 60 clean English training rows plus 5 rows of one repeated phrase, 5 of
    symbol junk and 5 German ones; a validation split holding clean rows and the same kinds of noise."""
    noise = ([{"prompt": f"Write an advert, please (number {i}).", "completion": " ".join([phrase] * 8)}
              for i, phrase in enumerate(PHRASES)]
             + [{"prompt": junk, "completion": JUNK[(i + 2) % len(JUNK)][::-1]} for i, junk in enumerate(JUNK)]
             + [{"prompt": question, "completion": answer} for question, answer in zip(GERMAN, GERMAN_ANSWERS)])
    train = clean_rows(60)
    for i, row in enumerate(noise):  # spread over the file
        train.insert(4 * i + 1, row)
    validation = clean_rows(10, offset=100) + [noise[0], noise[5], noise[10]]
    return train, validation
