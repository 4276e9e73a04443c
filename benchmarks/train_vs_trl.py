"""`hfkit train` vs TRL's SFTTrainer: non-padding tokens/s of LoRA training, and hfkit's CPU MFU.

Same model (the real SmolLM2-135M-Instruct, offline), same data, same LoRA (r=8 on q_proj and
v_proj, alpha 16, dropout 0), batch 8, the same number of steps, loss on the completion only on
both sides. Each run is a fresh process; the runs are interleaved (round 1: A B C D E, round 2:
E D C B A, ...) and every number is the median over rounds.

Settings:
- `hfkit`: `hfkit train` with hfkit's defaults (length-grouped batches as padding-free rows, each
  example's attention by itself; the frozen LoRA base in bf16 where the hardware computes bf16
  natively, as on these AVX512-BF16 CPUs).
- `hfkit_padded`: the same with `data.packing: none` (length-grouped batches padded to their longest:
  hfkit's default on a CPU before padding-free rows got variable-length sdpa).
- `hfkit_checkpointing`: the same with `training.gradient_checkpointing: true` (hfkit's opt-in memory
  lever, off by default as in TrainingArguments): `checkpointing_speed_ratio` = its tokens/s / hfkit's.
- `trl_default_fp32`: `SFTTrainer(model=<folder>)` with SFTConfig's defaults: fp32 weights, which
  TRL trains with bf16 autocast (SFTConfig's `bf16` defaults to True) and gradient checkpointing
  (SFTConfig's default), random batches padded to the batch's longest, max_length 1024.
- `trl_default_bf16`: the same with bf16 weights (`model_init_kwargs={"dtype": "bfloat16"}`).
- `trl_padding_free`: `padding_free=True` (and `max_length=None`, which TRL requires without
  packing): each batch is one flattened row with position_ids that restart per example.
- `trl_bfd`: `packing=True` (best-fit-decreasing packing into rows of max_length 1024,
  padding-free).
  Both variants load bf16 weights by default (the faster dtype here; `--variants-dtype float32`
  for TRL's fp32 default) and keep TRL's other defaults.
TRL's own settings otherwise stay at their defaults; only `max_steps`, the batch size, `seed`,
`save_strategy="no"`, `report_to="none"` and, without a GPU, `use_cpu=True` are set (SFTConfig's
default `bf16=True` raises "Your setup doesn't support bf16/gpu" on a CPU-only machine otherwise).

Data: SYNTHETIC. The comparison is meant for WMT en-ro pairs, which cannot be downloaded offline, so 128
deterministic "translate English to Romanian" prompt/completion pairs are generated: English-like
parliamentary sentences and a made-up word-by-word "Romanian" (with some diacritics; it takes
about twice the English side's tokens, as real Romanian does with this English BPE). Total lengths (prompt + completion +
EOS, in SmolLM2 tokens) follow a log-normal (median ~140) clipped to 40-500; the JSON reports the
actual spread. Written as JSONL {prompt, completion} to a temporary folder that both sides read.

Timing: a callback stamps `time.perf_counter()` at the end of every optimizer step (benchmarks/
step_timer.py patches `transformers.Trainer` in the child process; hfkit's code is untouched).
The first `--warmup` steps are excluded: the clock runs from the end of step `warmup` to the end of
step `warmup + steps`, so it covers whole iterations (data loading, collation, forward, backward,
optimizer step) and nothing else (no model loading, tokenisation or evaluation).

Batches differ by design (hfkit groups them by length, TRL draws them at random, bfd packs rows of
up to 1024 tokens, so its steps carry ~6x the tokens of the others); tokens/s compares them fairly.

Tokens: counted the same way on both sides, from the tensors each batch actually feeds the model:
the non-padding tokens of prompt + completion + EOS (row sums of attention_mask; for padding-free
and packed batches, the lengths of the flattened sequences). tokens/s = tokens in the timed steps /
timed seconds.

Keys: `train_vs_trl_default` = hfkit tokens/s / `trl_default_fp32` tokens/s;
`train_vs_trl_best` = hfkit tokens/s / the fastest TRL setting of this run.

MFU: `cpu_mfu` = hfkit's achieved training FLOP/s / this machine's bf16 matmul FLOP/s
(benchmarks/cpu_flops.py: a 2048² `torch.matmul`, median of several after warm-up, measured right
before and right after each hfkit run; their mean is that run's peak), median over rounds. Model FLOPs
of LoRA training with a frozen base, counted per sequence of s real tokens with t target
positions (positions whose next-token label counts), L layers, hidden d, attention width
a = heads·head_dim, vocabulary V:
- linear layers, P = L·(d·a + 2·d·kv_heads·head_dim + a·d + 3·d·ffn) weights: 2·P·s forward and
  2·P·s backward to the activations (frozen weights get no weight gradient); minus the input
  gradient of layer 0's q/k/v projections (2·s·(d·a + 2·d·kv·head_dim)), which nothing needs
  because the embedding output carries no gradient;
- attention scores and values: 4·a·s² per layer forward (QKᵀ and AV, every token against the
  whole sequence, the PaLM convention, causal mask not halved), 8·a·s² backward;
- LM head (tied, 2·d·V per position): forward and backward to the hidden state on the t target
  positions only (the logits the loss needs); the embedding lookup has no matmul FLOPs;
- LoRA adapters: 6 × LoRA params per token (forward, input gradient, weight gradient).
Norms, activations, softmax, RoPE and the optimizer are not counted. Padding counts nowhere.
`cpu_mfu_lm_head_all_positions` counts the LM head on all s positions instead (what a model that
builds every position's logits executes).

    python benchmarks/train_vs_trl.py [--steps 6] [--warmup 2] [--repeats 2]
                                      [--settings hfkit,trl_default_fp32] [--examples 128] [--max-tokens 500]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import OFFLINE, report, smollm2_folder

import cpu_flops
import step_timer

HERE = Path(__file__).resolve().parent
BATCH = 8
LORA = {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
HFKIT_MAX_LENGTH = 512  # above every example (<= 500 tokens + EOS): nothing is truncated
SETTINGS = ["hfkit", "hfkit_padded", "hfkit_checkpointing", "trl_default_fp32", "trl_default_bf16", "trl_padding_free", "trl_bfd"]

# Runs hfkit's own CLI (`python -m hfkit ...`) with the step clock installed first.
HFKIT_CHILD = f"""
import runpy, sys
sys.path.insert(0, {str(HERE)!r})
import step_timer
step_timer.install()
sys.argv = ["hfkit", *sys.argv[1:]]
runpy.run_module("hfkit", run_name="__main__", alter_sys=True)
"""

TRL_CHILD = f"""
import json, sys
sys.path.insert(0, {str(HERE)!r})
import step_timer
step_timer.install()
import torch
from datasets import load_dataset
from peft import LoraConfig
from trl import SFTConfig, SFTTrainer
folder, data, out, max_steps, setting, variants_dtype = sys.argv[1:7]
dtype = {{"model_init_kwargs": {{"dtype": variants_dtype}}}} if variants_dtype != "float32" else {{}}
extra = {{
    "trl_default_fp32": {{}},
    "trl_default_bf16": {{"model_init_kwargs": {{"dtype": "bfloat16"}}}},
    "trl_padding_free": {{"padding_free": True, "max_length": None, **dtype}},
    "trl_bfd": {{"packing": True, "packing_strategy": "bfd", **dtype}},
}}[setting]
args = SFTConfig(output_dir=out, max_steps=int(max_steps), per_device_train_batch_size={BATCH}, seed=0,
                 save_strategy="no", report_to="none",
                 # SFTConfig's default bf16=True fails its own check on a machine without a GPU unless use_cpu is set
                 use_cpu=not torch.cuda.is_available(), **extra)
lora = LoraConfig(task_type="CAUSAL_LM", r={LORA["r"]}, lora_alpha={LORA["alpha"]}, lora_dropout={LORA["dropout"]},
                  target_modules={LORA["target_modules"]})
trainer = SFTTrainer(model=folder, args=args, train_dataset=load_dataset("json", data_files=data, split="train"),
                     peft_config=lora)
metrics = trainer.train().metrics
print(json.dumps({{"samples_per_second": metrics["train_samples_per_second"]}}))
"""

# ---------------------------------------------------------------- synthetic en -> "ro" pairs

SUBJECTS = ["the council", "the commission", "the european parliament", "our committee", "the minister",
            "the government", "many citizens", "member states", "the rapporteur", "this house", "the report",
            "the new agreement", "local authorities", "the court of auditors", "small businesses", "farmers",
            "the presidency", "young people", "the regional office", "the national bank"]
VERBS = ["has adopted", "will discuss", "supports", "rejected", "must consider", "has proposed", "welcomes",
         "calls for", "is concerned about", "voted against", "has examined", "strongly opposes", "will review",
         "asked for", "presented", "cannot accept", "should finance", "has delayed", "recommends", "approved"]
OBJECTS = ["a new regulation on energy", "the annual budget", "the agreement on trade", "stronger protection for "
           "workers", "the reform of the pension system", "clear rules for public procurement", "the directive on "
           "water quality", "a common position on migration", "better access to education", "the transport "
           "strategy", "the funds for rural development", "the proposal on data protection", "lower taxes on "
           "labour", "the report on human rights", "measures against fraud", "the programme for research",
           "a plan for cleaner cities", "the rules on state aid", "more support for hospitals", "the fisheries "
           "policy"]
TAILS = ["", "", " in the coming months", " before the end of the year", " despite strong opposition",
         " for the first time since 2007", ", according to the latest figures", " after a long debate",
         " in close cooperation with the member states", " without any further delay", " at its meeting in "
         "brussels", ", as the treaty requires", " on behalf of all citizens", " in spite of the crisis"]
SYLLABLES = ["ta", "re", "ști", "ul", "pa", "că", "ne", "mi", "lor", "te", "tu", "ri", "si", "an", "ea", "de",
             "co", "va", "pro", "in", "ma", "ră", "to", "li", "ce", "ga", "zi", "bu", "con", "na", "ter", "sa"]
ENDINGS = ["", "", "ul", "a", "ii", "ului", "ele", "ă"]
PROMPT = "Translate from English to Romanian.\nEnglish: {english}\nRomanian:"


def pseudo_romanian(word: str) -> str:
    """A made-up, deterministic 'translation' of one English word (punctuation kept)."""
    core = word.strip(".,")
    if not core or core.isdigit():
        return word
    rng = random.Random("ro:" + core)  # seeded by the word itself: the same word always maps the same way
    made = "".join(rng.choice(SYLLABLES) for _ in range(max(1, round(len(core) / 3.2)))) + rng.choice(ENDINGS)
    return made + word[len(word.rstrip(".,")):]


def sentence(rng: random.Random) -> str:
    text = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(TAILS)}."
    return text[0].upper() + text[1:]


def pair(words: list[str]) -> dict:
    english = " ".join(words)
    english = english if english.endswith(".") else english.rstrip(",") + "."
    return {"prompt": PROMPT.format(english=english),
            "completion": " " + " ".join(pseudo_romanian(w) for w in english.split())}


def synthetic_pairs(tokenizer, count: int, max_tokens: int, seed: int = 0) -> list[dict]:
    """`count` unique pairs; each one's prompt + completion + EOS is as long as a log-normal draw allows."""
    rng = random.Random(seed)
    rows, seen = [], set()

    def tokens(row: dict) -> int:
        return len(tokenizer(row["prompt"] + row["completion"])["input_ids"]) + 1  # + EOS

    while len(rows) < count:
        target = int(min(max(math.exp(rng.gauss(math.log(140), 0.7)), 40), max_tokens))
        words: list[str] = []
        while tokens(pair(words)) < target:  # whole sentences until past the target, then cut back word-wise
            words += sentence(rng).split()
        low, high = 1, len(words)  # the longest prefix of words that fits the target
        while low < high:
            mid = (low + high + 1) // 2
            low, high = (mid, high) if tokens(pair(words[:mid])) <= target else (low, mid - 1)
        while tokens(pair(words[:low])) < 40 and low < len(words):  # the shortest stay at 40 tokens or more
            low += 1
        row = pair(words[:low])
        if row["prompt"] not in seen:
            seen.add(row["prompt"])
            rows.append(row | {"tokens": tokens(row)})
    return rows


def write_data(folder: Path, rows: list[dict]) -> None:
    with (folder / "train.jsonl").open("w") as f:
        for row in rows:
            f.write(json.dumps({"prompt": row["prompt"], "completion": row["completion"]}) + "\n")
    # hfkit evaluates after training: one tiny validation row keeps that short (and keeps all training rows)
    (folder / "validation.jsonl").write_text(json.dumps(pair("The vote will take place tomorrow.".split())) + "\n")


# ---------------------------------------------------------------- runs


def child(code: str, args: list[str], log: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                            env={**os.environ, **OFFLINE, "BENCH_STEP_LOG": str(log)})
    if result.returncode != 0:
        raise SystemExit(f"benchmark run failed:\n{result.stderr[-4000:]}")
    return result


def write_recipe(folder: Path, model: str, max_steps: int, name: str = "hfkit", data: dict | None = None,
                 **training) -> Path:
    """hfkit's recipe of this setting (JSON is YAML) in `folder`, next to the data."""
    recipe = folder / f"{name}.yaml"
    recipe.write_text(json.dumps({
        "task": "generation", "model": {"name_or_path": model},
        "data": {"train_file": "train.jsonl", "validation_file": "validation.jsonl",
                 "max_length": HFKIT_MAX_LENGTH, **(data or {})},
        "peft": LORA,
        "training": {"max_steps": max_steps, "per_device_train_batch_size": BATCH, "save_strategy": "no",
                     "seed": 0, **training},
        "generation": {"max_new_tokens": 1}, "eval": {"metrics": []},
        "output": {"dir": str(folder / "runs"), "name": name, "timestamp": False},
    }))
    return recipe


def run_hfkit(folder: Path, model: str, max_steps: int, name: str = "hfkit", data: dict | None = None,
              **training) -> tuple[dict, dict]:
    recipe = write_recipe(folder, model, max_steps, name, data, **training)
    log = folder / f"{name}-steps.json"
    child(HFKIT_CHILD, ["train", str(recipe), "--overwrite"], log)
    metrics = json.loads((folder / "runs" / name / "metrics.json").read_text())
    return json.loads(log.read_text()), {"samples_per_second": metrics["train"]["samples_per_second"],
                                         "model_dtype": metrics.get("model_dtype")}


def run_trl(folder: Path, model: str, max_steps: int, setting: str, variants_dtype: str) -> tuple[dict, dict]:
    log = folder / f"{setting}-steps.json"
    result = child(TRL_CHILD, [model, str(folder / "train.jsonl"), str(folder / setting), str(max_steps), setting,
                               variants_dtype], log)
    return json.loads(log.read_text()), json.loads(result.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- FLOPs


def model_shape(folder: str) -> dict:
    c = json.loads((Path(folder) / "config.json").read_text())
    head_dim = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
    return {"layers": c["num_hidden_layers"], "hidden": c["hidden_size"], "ffn": c["intermediate_size"],
            "heads": c["num_attention_heads"], "kv_heads": c.get("num_key_value_heads", c["num_attention_heads"]),
            "head_dim": head_dim, "vocab": c["vocab_size"]}


def step_matmul_shapes(m: dict, tokens: int, targets: int) -> list[tuple[int, int, int, int]]:
    """(count, rows, inner, columns) of the frozen projections' forward matmuls of one step: per layer
    q and o (d x a), k and v (d x kv), gate and up (d x ffn), down (ffn x d), and the tied LM head on
    the target positions (d x vocab). Their measured rate is the denominator of cpu_mfu_at_step_shapes."""
    d, a, kv, ffn, layers = m["hidden"], m["heads"] * m["head_dim"], m["kv_heads"] * m["head_dim"], m["ffn"], m["layers"]
    return [(layers, tokens, d, a), (layers, tokens, a, d), (2 * layers, tokens, d, kv), (2 * layers, tokens, d, ffn),
            (layers, tokens, ffn, d), (1, targets, d, m["vocab"])]


def lora_training_flops(lengths: list[int], targets: int, m: dict, r: int, lm_head_all_positions: bool = False) -> float:
    """Model FLOPs of one LoRA step (frozen base, adapters on q_proj and v_proj); see the docstring."""
    d, a, kv = m["hidden"], m["heads"] * m["head_dim"], m["kv_heads"] * m["head_dim"]
    qkv = d * a + 2 * d * kv
    linear = m["layers"] * (qkv + a * d + 3 * d * m["ffn"])
    lora = m["layers"] * r * ((d + a) + (d + kv))  # A: d x r, B: r x out, for q and v
    tokens, squares = sum(lengths), sum(s * s for s in lengths)
    head_positions = tokens if lm_head_all_positions else targets
    forward = 2 * linear * tokens + 4 * m["layers"] * a * squares + 2 * d * m["vocab"] * head_positions
    backward = 2 * (linear - qkv) * tokens + 8 * m["layers"] * a * squares + 2 * d * m["vocab"] * head_positions
    return forward + backward + 6 * lora * tokens


# ---------------------------------------------------------------- main


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of all settings")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--examples", type=int, default=128)
    parser.add_argument("--max-tokens", type=int, default=500, help="longest example (prompt + completion + EOS)")
    parser.add_argument("--variants-dtype", default="bfloat16", choices=["bfloat16", "float32"],
                        help="weights of the padding_free and bfd runs")
    args = parser.parse_args()
    settings = args.settings.split(",")
    unknown = set(settings) - set(SETTINGS)
    if unknown or "hfkit" not in settings:
        raise SystemExit(f"--settings: needs hfkit, among {SETTINGS}; unknown: {sorted(unknown)}")
    from transformers import AutoTokenizer

    model = smollm2_folder()
    shape = model_shape(model)
    rows = synthetic_pairs(AutoTokenizer.from_pretrained(model), args.examples, args.max_tokens)
    lengths = sorted(row["tokens"] for row in rows)
    max_steps = args.warmup + args.steps
    runs: dict[str, list[dict]] = {s: [] for s in settings}
    matmul: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_data(folder, rows)
        for round_index in range(args.repeats):
            order = settings if round_index % 2 == 0 else settings[::-1]
            for setting in order:
                started = time.perf_counter()
                if setting == "hfkit":  # the matmul peak right before and after, for this run's MFU
                    matmul.append(cpu_flops.measure())
                    log, whole = run_hfkit(folder, model, max_steps)
                    matmul.append(cpu_flops.measure())
                    peak = statistics.mean(m["bf16_matmul_flops"] for m in matmul[-2:])
                elif setting == "hfkit_padded":  # the previous CPU default, for padding-free's gain
                    peak = None
                    log, whole = run_hfkit(folder, model, max_steps, setting, {"packing": "none"})
                elif setting == "hfkit_checkpointing":  # what the opt-in memory lever costs in speed
                    peak = None
                    log, whole = run_hfkit(folder, model, max_steps, setting, gradient_checkpointing=True)
                else:  # informational MFU of TRL's runs: against the median peak of the whole run, below
                    peak = None
                    log, whole = run_trl(folder, model, max_steps, setting, args.variants_dtype)
                w = step_timer.window(log, args.warmup, args.steps)
                print(f"round {round_index + 1}: {setting}: {w['tokens'] / w['seconds']:.1f} tokens/s "
                      f"({time.perf_counter() - started:.0f} s in all)", file=sys.stderr, flush=True)
                flops = sum(lora_training_flops(b["lengths"], b["targets"], shape, LORA["r"]) for b in w["batches"])
                flops_all = sum(lora_training_flops(b["lengths"], b["targets"], shape, LORA["r"], True)
                                for b in w["batches"])
                runs[setting].append({
                    "tokens_per_second": w["tokens"] / w["seconds"], "seconds": w["seconds"],
                    "tokens_per_step": w["tokens"] / args.steps, "sequences_per_step": w["sequences"] / args.steps,
                    "targets_per_step": sum(b["targets"] for b in w["batches"]) / args.steps,
                    "padded_tokens_per_step": sum(math.prod(b["shape"]) for b in w["batches"]) / args.steps,
                    "flops_per_second": flops / w["seconds"], "flops_all_per_second": flops_all / w["seconds"],
                    "peak": peak,
                    "whole_run_samples_per_second": whole["samples_per_second"],
                    "frozen_dtype": log.get("frozen_dtype"), "bf16_autocast": log.get("bf16_autocast"),
                    "gradient_checkpointing": log.get("gradient_checkpointing")})

    def median(setting: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[setting])

    step_tokens = round(median("hfkit", "tokens_per_step"))
    step_targets = round(median("hfkit", "targets_per_step"))
    step_rate = cpu_flops.step_shapes_flops(step_matmul_shapes(shape, step_tokens, step_targets))
    bf16_peak = statistics.median(m["bf16_matmul_flops"] for m in matmul)
    fp32_peak = statistics.median(m["fp32_matmul_flops"] for m in matmul)
    for run in (run for setting_runs in runs.values() for run in setting_runs):
        run["mfu"] = run["flops_per_second"] / (run["peak"] or bf16_peak)
        run["mfu_all"] = run["flops_all_per_second"] / (run["peak"] or bf16_peak)
    trl = [s for s in settings if s.startswith("trl_")]
    hfkit_tps = median("hfkit", "tokens_per_second")
    fastest = max(trl, key=lambda s: median(s, "tokens_per_second")) if trl else None
    result = {
        "benchmark": "train_vs_trl", "model": "SmolLM2-135M-Instruct", "batch": BATCH, "lora": LORA,
        "warmup_steps": args.warmup, "timed_steps": args.steps, "repeats": args.repeats,
        "data": {"synthetic": True, "examples": len(rows), "tokens_min": lengths[0],
                 "tokens_median": statistics.median(lengths), "tokens_mean": round(statistics.mean(lengths), 1),
                 "tokens_max": lengths[-1]},
        "trl_variants_dtype": args.variants_dtype,
        **{f"{s}_tokens_per_second": round(median(s, "tokens_per_second"), 1) for s in settings},
        "train_vs_trl_default": (round(hfkit_tps / median("trl_default_fp32", "tokens_per_second"), 3)
                                 if "trl_default_fp32" in runs else None),
        "train_vs_trl_best": round(hfkit_tps / median(fastest, "tokens_per_second"), 3) if fastest else None,
        "trl_fastest_setting": fastest,
        "padding_free_vs_padded_speed": (round(hfkit_tps / median("hfkit_padded", "tokens_per_second"), 3)
                                         if "hfkit_padded" in runs else None),
        "checkpointing_speed_ratio": (round(median("hfkit_checkpointing", "tokens_per_second") / hfkit_tps, 3)
                                      if "hfkit_checkpointing" in runs else None),
        "cpu_bf16_matmul_gflops": round(bf16_peak / 1e9, 1), "cpu_fp32_matmul_gflops": round(fp32_peak / 1e9, 1),
        "cpu_bf16_matmul_gflops_around_each_hfkit_run": [round(m["bf16_matmul_flops"] / 1e9, 1) for m in matmul],
        "hfkit_train_gflops": round(median("hfkit", "flops_per_second") / 1e9, 1),
        "cpu_mfu": round(median("hfkit", "mfu"), 3),
        "cpu_mfu_lm_head_all_positions": round(median("hfkit", "mfu_all"), 3),
        # against what the step's own matmul shapes reach on this machine (bf16, median of 20 each)
        "step_matmul_shapes_gflops": round(step_rate / 1e9, 1),
        "step_matmul_shapes": [list(s) for s in step_matmul_shapes(shape, step_tokens, step_targets)],
        "cpu_mfu_at_step_shapes": round(median("hfkit", "flops_per_second") / step_rate, 3),
        "cpu_mfu_flops_formula": (
            "per sequence of s real tokens, t target positions: 2Ps + 2(P-P_qkv0)s [frozen linear layers, forward + "
            "input gradient, P = L(d*a + 2d*kv*hd + a*d + 3d*ffn)] + 12*L*a*s^2 [attention, 4 forward + 8 backward] "
            "+ 4*d*V*t [tied LM head on target positions, forward + input gradient] + 6*P_lora*s; "
            "achieved FLOP/s over the timed steps / bf16 2048^2 matmul FLOP/s measured around that run; median over rounds"),
        "runs": {s: {k: (round(v, 3) if isinstance(v, float) else v) for k, v in runs[s][0].items()
                     if k in ("frozen_dtype", "bf16_autocast", "gradient_checkpointing")}
                 | {"tokens_per_step": round(median(s, "tokens_per_step"), 1),
                    "padded_tokens_per_step": round(median(s, "padded_tokens_per_step"), 1),
                    "seconds": round(median(s, "seconds"), 2),
                    "mfu": round(median(s, "mfu"), 3),
                    "tokens_per_second_each_round": [round(run["tokens_per_second"], 1) for run in runs[s]],
                    "whole_run_samples_per_second": round(median(s, "whole_run_samples_per_second"), 3)}
                 for s in settings},
    }
    report(result, [(s, round(median(s, "tokens_per_second"), 1), round(median(s, "tokens_per_step"), 1),
                     round(median(s, "padded_tokens_per_step"), 1), result["runs"][s]["frozen_dtype"],
                     result["runs"][s]["mfu"]) for s in settings],
           ("setting", "non-padding tokens/s", "real tokens/step", "tensor positions/step", "frozen weights",
            "model FLOPs / bf16 matmul peak"))
    return result


if __name__ == "__main__":
    main()
