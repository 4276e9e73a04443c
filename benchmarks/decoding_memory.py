"""hfkit's decoding memory estimate (hfkit.decoding_budget) against the peak RSS beam search really adds.

SmolLM2-135M in float32 (as scoring runs it), 100-token prompts, every answer forced to its full
length; each setting in a fresh process, its peak RSS (VmHWM) reset after the weights load (Linux). The estimate is meant as a floor: a setting it refuses
cannot fit, one it lets through may still not.

    python benchmarks/decoding_memory.py [--settings 4x16x32 4x32x32 8x32x16]   (batch x beams x new tokens)
"""

from __future__ import annotations

import argparse

from common import python, report, smollm2_folder

PROMPT_TOKENS = 100

MEASURE = """
import json, sys
import torch
from transformers import AutoModelForCausalLM, GenerationConfig
folder, batch, beams, new = sys.argv[1], *map(int, sys.argv[2:5])
model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
ids = torch.arange(100, 100 + %d).repeat(batch, 1)
config = GenerationConfig(max_new_tokens=new, min_new_tokens=new, num_beams=beams, do_sample=False,
                          pad_token_id=model.config.eos_token_id, eos_token_id=model.config.eos_token_id)
def status(key):  # kB
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key + ":"))
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) left by loading the weights
before = status("VmRSS")
with torch.inference_mode():
    model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
print(json.dumps({"growth_mb": (status("VmHWM") - before) / 1024}))
""" % PROMPT_TOKENS


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=["4x16x32", "4x32x32", "8x32x16"])
    args = parser.parse_args()
    from transformers import AutoConfig

    from hfkit.decoding_budget import decoder_shape, needed_bytes
    from hfkit.schema import GenerationSection

    folder = smollm2_folder()
    shape = decoder_shape(AutoConfig.from_pretrained(folder))
    rows, ratios = [], []
    for setting in args.settings:
        batch, beams, new = map(int, setting.split("x"))
        estimate = needed_bytes(shape, GenerationSection(num_beams=beams, max_new_tokens=new), batch, PROMPT_TOKENS)
        measured = python(MEASURE, folder, str(batch), str(beams), str(new))["growth_mb"]
        ratios.append(estimate / 2**20 / measured)
        rows.append((batch, beams, new, f"{estimate / 2**20:,.0f}", f"{measured:,.0f}", f"{ratios[-1]:.2f}"))
    result = {"decoding_estimate_vs_peak_growth": round(min(ratios), 3)}
    report(result, rows, ("batch", "beams", "new tokens", "estimate (MB)", "peak RSS growth (MB)", "estimate / growth"))
    return result


if __name__ == "__main__":
    main()
