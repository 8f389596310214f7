"""Traces files in the layouts other tools publish, written by the tests themselves."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig


def arithmetic_messages(count: int) -> list[dict]:
    """OpenR1-Math-style rows: a `messages` list, the reasoning inside <think>."""
    rows = []
    for i in range(count):
        a, b = 10 + i, 3 + 2 * i
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"What is {a} + {b}?"},
                    {
                        "role": "assistant",
                        "content": f"<think>{a} plus {b} is {a + b}.</think> "
                        f"<answer>{a + b}</answer>",
                    },
                ],
                "source": "another-tool",
            }
        )
    return rows


def write_jsonl(path, rows: list[dict]):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def messages_file(tmp_path):
    return write_jsonl(tmp_path / "traces.jsonl", arithmetic_messages(6))


def random_model(vocab_size: int, layers: int, seed: int = 0, kind=LlamaConfig):
    """A small random model of `kind`'s architecture: a vocabulary of `vocab_size` tokens
    (few enough that sampled tokens cover it) and `layers` decoder layers."""
    torch.manual_seed(seed)
    config = kind(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=0,
    )
    return AutoModelForCausalLM.from_config(config).eval()
