"""Language identifiers whose model ships inside their package, on the same sentences: accuracy,
speed and memory (how hfkit chose py3langid for data.clean.language and `hfkit data`).

Sentences: benchmarks/data/language_sentences.tsv (252 written for this benchmark: 36 each in
English, German, French, Spanish, Italian, Dutch and Portuguese) plus the 800 English and French
sentences of the translation demo; "3 words" is the first three words of each of the 252, the
length of a short answer. Each identifier runs in a fresh process (its own load time and peak
RSS). `langid` and `lingua-language-detector` are not hfkit dependencies: they are installed here
into a temporary folder when missing (pip, PyPI), and the script says so.

    python benchmarks/language_id.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, python, report

CANDIDATES = {
    "py3langid": ("py3langid", "py3langid==0.4.0"),
    "langid": ("langid", "langid==1.1.6"),
    "lingua": ("lingua", "lingua-language-detector==2.1.1"),  # the newest wheel for Python 3.11 here
    "lingua_low_accuracy": ("lingua", "lingua-language-detector==2.1.1"),
}

MEASURE = """
import json, resource, sys, time
which, sentences_file, demo_file = sys.argv[1:4]
rows = [line.split("\\t") for line in open(sentences_file, encoding="utf-8").read().splitlines()]
short = [(code, " ".join(text.split()[:3])) for code, text in rows]
for line in open(demo_file, encoding="utf-8"):
    pair = json.loads(line)["translation"]
    rows += [("en", pair["en"]), ("fr", pair["fr"])]
started = time.perf_counter()
if which == "py3langid":
    from py3langid.langid import MODEL_FILE, LanguageIdentifier
    model = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    detect = lambda text: model.classify(text)
elif which == "langid":
    from langid.langid import LanguageIdentifier, model as packed
    model = LanguageIdentifier.from_modelstring(packed, norm_probs=True)
    detect = lambda text: model.classify(text)
else:
    from lingua import LanguageDetectorBuilder
    builder = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models()
    detector = (builder.with_low_accuracy_mode() if which.endswith("low_accuracy") else builder).build()
    def detect(text):
        values = detector.compute_language_confidence_values(text)
        return (values[0].language.iso_code_639_1.name.lower(), values[0].value) if values else ("", 0.0)
detect("warm up")
load = time.perf_counter() - started
out = {"load_s": round(load, 2)}
for name, data in (("sentences", rows), ("3_words", short)):
    started = time.perf_counter()
    found = [detect(text) for _, text in data]
    seconds = time.perf_counter() - started
    right = [(p[0] == code, p[1]) for p, (code, _) in zip(found, data)]
    out[f"{name}_accuracy"] = round(sum(ok for ok, _ in right) / len(data), 4)
    out[f"{name}_per_s"] = round(len(data) / seconds)
    out[f"{name}_right_above_0.65"] = round(sum(ok and p >= 0.65 for ok, p in right) / len(data), 4)
out["rows"] = len(rows)
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(json.dumps(out))
"""


def importable(module: str, env: dict) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                          env={**os.environ, **env}).returncode == 0


def main() -> None:
    sentences = REPO / "benchmarks" / "data" / "language_sentences.tsv"
    demo = REPO / "recipes" / "translation" / "data" / "en_fr_train.jsonl"
    results, rows = {}, []
    with tempfile.TemporaryDirectory() as extra:
        for name, (module, requirement) in CANDIDATES.items():
            env = {}
            if not importable(module, env):
                env = {"PYTHONPATH": extra}
            if not importable(module, env):
                print(f"installing {requirement} into a temporary folder (not an hfkit dependency)", file=sys.stderr)
                subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", extra, requirement],
                               check=True)
            measured = python(MEASURE, name, str(sentences), str(demo), env=env)
            results[name] = measured
            rows.append((name, measured["sentences_accuracy"], measured["3_words_accuracy"],
                         measured["sentences_right_above_0.65"], measured["sentences_per_s"], measured["load_s"],
                         measured["peak_rss_mb"]))
    chosen = results["py3langid"]
    summary = {"language_id_accuracy": chosen["sentences_accuracy"],
               "language_id_3_words_accuracy": chosen["3_words_accuracy"],
               "language_id_sentences_per_s": chosen["sentences_per_s"],
               "language_id_vs_lingua_speed": round(chosen["sentences_per_s"] / results["lingua"]["sentences_per_s"], 1),
               "details": results}
    report(summary, rows, ("identifier", "accuracy, 1,052 sentences", "accuracy, 3 words (252)",
                           "right with p >= 0.65", "sentences/s", "load s", "peak RSS MB"))
    print(json.dumps({"sentences": chosen["rows"]}), file=sys.stderr)


if __name__ == "__main__":
    main()
