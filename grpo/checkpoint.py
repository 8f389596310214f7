"""Checkpoints: a Hugging Face model directory plus everything needed to resume exactly.

checkpoints/step-N/  model.safetensors, config.json, tokenizer files  (loads in transformers)
                     trainer_state.pt: optimizer, scheduler, LoRA adapter, data position, RNG
A checkpoint is written to a temporary directory and renamed, so a kill mid-save never
leaves a half checkpoint that `--resume` would pick up.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file

from grpo.components import Components


def save_model(path: Path, parts: Components) -> None:
    """A plain Hugging Face model directory (LoRA merged) that transformers and vLLM load."""
    model = parts.learner.model
    weights = {name: tensor.clone() for name, tensor in parts.learner.named_weights()}
    base = model.get_base_model() if parts.learner.is_lora else model
    base.save_pretrained(path, state_dict=weights)
    parts.tokenizer.save_pretrained(path)


def save_checkpoint(path: Path, parts: Components, step: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(tmp, parts)
    model = parts.learner.model
    state = {
        "step": step,
        "learner": parts.learner.state_dict(),
        "adapter": _adapter_state(model) if parts.learner.is_lora else None,
        "data": parts.stream.state_dict(),
        "rng": {"python": random.getstate(), "torch": torch.get_rng_state()},
    }
    torch.save(state, tmp / "trainer_state.pt")
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def load_checkpoint(path: Path, parts: Components) -> int:
    """Restore weights, optimizer, schedule, data position and RNG; return the step."""
    state = torch.load(path / "trainer_state.pt", weights_only=False)
    model = parts.learner.model
    if state["adapter"] is not None:
        model.load_state_dict(state["adapter"], strict=False)
    else:
        weights = load_file(path / "model.safetensors")
        missing, unexpected = model.load_state_dict(weights, strict=False)
        tied = set(getattr(model, "_tied_weights_keys", None) or [])
        if unexpected or set(missing) - tied - {"lm_head.weight"}:
            raise RuntimeError(f"checkpoint {path} does not match the model: missing {missing}")
    parts.learner.load_state_dict(state["learner"])
    parts.stream.load_state_dict(state["data"])
    random.setstate(state["rng"]["python"])
    torch.set_rng_state(state["rng"]["torch"])
    return state["step"]


def _adapter_state(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
