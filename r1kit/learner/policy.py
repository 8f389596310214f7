"""The trainable policy as the recipe describes it: loaded, checkpointed, LoRA-wrapped.

One function for the in-process learner and for every learner rank, so that all of them
start from the same weights (the same seed gives the same LoRA initialisation).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from r1kit.models import load_model
from r1kit.recipe import LoraConfig, Recipe


def load_policy(recipe: Recipe, device: str) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    """The policy model (gradient checkpointing and LoRA as the recipe says) and tokenizer."""
    policy, tokenizer = load_model(recipe.model.name, dtype=recipe.model.dtype, device=device)
    if recipe.model.gradient_checkpointing:
        policy.gradient_checkpointing_enable()  # transformers' default: non-reentrant
    if recipe.model.lora is not None:
        policy = with_lora(policy, recipe.model.lora)
    return policy, tokenizer


def with_lora(model: nn.Module, lora: LoraConfig) -> nn.Module:
    """The model wrapped in trainable LoRA adapters (peft); its base weights frozen."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    config = PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def adapter_weights(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """A peft model's adapter alone, under the names `save_pretrained` writes (vLLM loads them)."""
    from peft import get_peft_model_state_dict

    yield from get_peft_model_state_dict(model).items()


def adapter_config(model: nn.Module) -> dict[str, Any]:
    """A peft model's adapter config as adapter_config.json holds it (sets as sorted lists)."""
    config = model.peft_config["default"].to_dict()
    return {k: sorted(v) if isinstance(v, set) else v for k, v in config.items()}
