"""Shared by the engine tests: tiny-llama as an HF directory, and policies to update it with."""

import copy

import pytest
import torch

from r1kit.models import load_model


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """tiny-llama saved as a model directory, as vLLM and Ray actors load it."""
    model, tokenizer = load_model("tiny-llama")
    directory = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def perturbed(model, seed: int, scale: float = 0.05):
    """A copy of `model` with every weight moved by Gaussian noise: a clearly new policy."""
    new = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in new.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * scale)
    return new


def lora_merged(model, seed: int):
    """A copy of `model` with a random LoRA adapter merged in, under the plain HF names."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    return get_peft_model(copy.deepcopy(model), config).merge_and_unload()


def forward_logprobs(model, prompt, completion, temperature):
    """log p(completion tokens) under `model` at `temperature`: what the learner recomputes."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt + completion])).logits[0, len(prompt) - 1 : -1]
    log_probs = torch.log_softmax(logits / temperature, -1)
    return log_probs.gather(-1, torch.tensor(completion)[:, None]).squeeze(-1)


def logprob_gap(model, groups, temperature) -> float:
    """Mean |engine log-prob - `model`'s log-prob| over every sampled token."""
    gaps = [
        (
            forward_logprobs(model, c.prompt_token_ids, c.token_ids, temperature)
            - torch.tensor(c.logprobs)
        ).abs()
        for group in groups
        for c in group
    ]
    return torch.cat(gaps).mean().item()
