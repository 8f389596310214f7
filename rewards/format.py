"""The R1 format reward: reasoning in <think>...</think>, then the answer in <answer>...</answer>."""

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


def format_reward(prompts: list, completions: list, strict: bool = False, **_) -> list[float]:
    """1.0 when the completion follows the template. When the prompt ends with "<think>"
    (r1_zero template, or a chat template that pre-fills it) the completion starts inside
    the reasoning, so the opening tag is taken from the prompt."""
    pattern = STRICT if strict else LENIENT
    scores = []
    for prompt, completion in zip(prompts, completions, strict=True):
        text = as_text(completion)
        if prefilled_think(prompt):
            text = "<think>" + text
        scores.append(1.0 if pattern.search(text) else 0.0)
    return scores
