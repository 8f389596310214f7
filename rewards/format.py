"""The R1 format reward: reasoning in <think>...</think>, then <answer>...</answer>."""

from __future__ import annotations

import re

from rewards.math import verify
from rewards.text import as_text, prefilled_think

# The template's four tags each once, in order: a second `</think>` or `<answer>` is not the
# template (a policy that repeats `</think> <answer>` must not be paid for it). Strict: nothing
# around the two blocks. Lenient: text without tags around them.
TEXT = r"(?:(?!</?(?:think|answer)>).)"
STRICT = re.compile(rf"^<think>\n?{TEXT}+?\n?</think>\s*<answer>\n?{TEXT}+?\n?</answer>\s*$", re.S)
LENIENT = re.compile(
    rf"^{TEXT}*?<think>{TEXT}*?</think>{TEXT}*?<answer>{TEXT}+?</answer>{TEXT}*$", re.S
)
REASONING = re.compile(r"<think>(.*?)(?:</think>|<answer>|$)", re.S)
WORDS = re.compile(r"\w+|[+\-*/=]")  # what is compared when checking for a copy


def format_reward(
    prompts: list,
    completions: list,
    strict: bool = False,
    partial: bool = False,
    substantive: bool = False,
    with_answer: bool = False,
    **columns,
) -> list[float]:
    """1.0 when the completion follows the template. When the prompt ends with "<think>"
    (r1_zero template, or a chat template that pre-fills it) the completion starts inside
    the reasoning, so the opening tag is taken from the prompt. With `partial`, each of the
    template's four tags present in order earns 0.25, at most 0.75 short of the whole
    template: a small model that never writes it still gets a gradient towards it. With
    `substantive`, reasoning that is empty or copies the prompt (the system prompt's
    "reasoning process here", the question) earns nothing; with `with_answer`, format counts
    only when the tagged answer equals the row's `answer`: form alone can never outbid
    correctness (docs/rewards.md)."""
    answers = columns.get("answer")
    if with_answer and answers is None:
        raise ValueError("format with_answer needs the row's `answer` column")
    pattern = STRICT if strict else LENIENT
    scores = []
    for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
        text = as_text(completion)
        if prefilled_think(prompt):
            text = "<think>" + text
        full = 1.0 if pattern.match(text) else 0.0
        value = max(full, min(_tags_in_order(text), 3) / 4) if partial else full
        if substantive and value and hollow_reasoning(as_text(prompt), text):
            value = 0.0
        if with_answer and value and not verify(answers[i], text, answer_tag=True):
            value = 0.0
        scores.append(value)
    return scores


def hollow_reasoning(prompt: str, text: str) -> bool:
    """The <think> block is missing, empty, or only repeats words of the prompt in order
    (the system prompt's placeholder, the question): form without reasoning."""
    found = REASONING.search(text)
    words = WORDS.findall(found.group(1).lower()) if found else []
    return not words or f" {' '.join(words)} " in f" {' '.join(WORDS.findall(prompt.lower()))} "


def _tags_in_order(text: str) -> int:
    position, found = 0, 0
    for tag in ("<think>", "</think>", "<answer>", "</answer>"):
        position = text.find(tag, position)
        if position < 0:
            break
        found += 1
    return found
