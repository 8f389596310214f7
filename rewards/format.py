"""The R1 format reward: reasoning in <think>...</think>, then <answer>...</answer>."""

from __future__ import annotations

import re

from rewards.text import as_text, prefilled_think

# Strict: exactly the template and nothing around it. Lenient: the two blocks in order,
# anything else allowed around them.
STRICT = re.compile(
    r"^<think>\n?(?:(?!</?think>).)+?\n?</think>\s*<answer>\n?(?:(?!</?answer>).)+?\n?</answer>\s*$",
    re.S,
)
LENIENT = re.compile(
    r"<think>(?:(?!</?think>).)*?</think>.*?<answer>(?:(?!</?answer>).)+?</answer>", re.S
)


def format_reward(
    prompts: list, completions: list, strict: bool = False, partial: bool = False, **_
) -> list[float]:
    """1.0 when the completion follows the template. When the prompt ends with "<think>"
    (r1_zero template, or a chat template that pre-fills it) the completion starts inside
    the reasoning, so the opening tag is taken from the prompt. With `partial`, each of the
    template's four tags present in order earns 0.25: a small model that never writes the
    whole template still gets a gradient towards it."""
    pattern = STRICT if strict else LENIENT
    scores = []
    for prompt, completion in zip(prompts, completions, strict=True):
        text = as_text(completion)
        if prefilled_think(prompt):
            text = "<think>" + text
        full = 1.0 if pattern.search(text) else 0.0
        scores.append(max(full, _tags_in_order(text) / 4) if partial else full)
    return scores


def _tags_in_order(text: str) -> int:
    position, found = 0, 0
    for tag in ("<think>", "</think>", "<answer>", "</answer>"):
        position = text.find(tag, position)
        if position < 0:
            break
        found += 1
    return found
