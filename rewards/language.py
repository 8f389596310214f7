"""DeepSeek-R1's language-consistency reward: the share of the reasoning in the target language.

Detection is by script (Unicode ranges), which separates the mixing R1 saw (English
reasoning drifting into Chinese) without a language-ID model; it cannot tell English from
French. Words are the unit: a word counts for the target when all its letters are in the
target script.
"""

from __future__ import annotations

import re

from rewards.text import as_text, prefilled_think

SCRIPTS = {
    "en": r"[A-Za-z]",
    "latin": r"[A-Za-zÀ-ɏ]",
    "zh": r"[\u4e00-\u9fff]",
    "ru": r"[\u0400-\u04ff]",
    "ar": r"[\u0600-\u06ff]",
    "ja": r"[\u3040-\u30ff\u4e00-\u9fff]",
}
WORD = re.compile(r"[^\W\d_]+")


def language_reward(
    prompts: list, completions: list, target: str = "en", **_
) -> list[float | None]:
    """Share of the reasoning's words written in the target script; None without reasoning."""
    if target not in SCRIPTS:
        raise ValueError(
            f"language reward: unknown target {target!r}; choose from {sorted(SCRIPTS)}"
        )
    letter = re.compile(SCRIPTS[target])
    scores: list[float | None] = []
    for prompt, completion in zip(prompts, completions, strict=True):
        words = WORD.findall(_reasoning(prompt, as_text(completion)))
        if not words:
            scores.append(None)
            continue
        scores.append(sum(all(letter.match(ch) for ch in word) for word in words) / len(words))
    return scores


def _reasoning(prompt, text: str) -> str:
    """The text inside <think>...</think> (opened by the prompt when it pre-fills <think>)."""
    if prefilled_think(prompt) and "<think>" not in text:
        text = "<think>" + text
    match = re.search(r"<think>(.*?)(?:</think>|$)", text, re.S)
    return match.group(1) if match else ""
