"""Length rewards: DAPO's soft overlong penalty, and a cosine length-scaled correctness reward."""

from __future__ import annotations

import math

from rewards.math import verify
from rewards.text import as_text


def overlong_penalty(
    prompts: list,
    completions: list,
    max_length: int = 512,
    cache_length: int = 128,
    completion_ids: list | None = None,
    **_,
) -> list[float]:
    """DAPO (Yu et al., 2025): 0 up to max_length - cache_length tokens, then falling linearly
    to -1 at max_length (and -1 beyond). Lengths are tokens when `completion_ids` is passed
    (the trainer always passes it), else characters / 4 as a rough token count."""
    if not 0 < cache_length <= max_length:
        raise ValueError(
            f"length reward: need 0 < cache_length <= max_length, "
            f"got cache_length={cache_length}, max_length={max_length}"
        )
    lengths = _lengths(completions, completion_ids)
    start = max_length - cache_length
    return [0.0 if n <= start else max(-1.0, (start - n) / cache_length) for n in lengths]


def cosine_length_reward(
    prompts: list,
    completions: list,
    answer: list,
    max_length: int = 512,
    correct: tuple[float, float] = (2.0, 1.0),
    wrong: tuple[float, float] = (-10.0, 0.0),
    completion_ids: list | None = None,
    **_,
) -> list[float]:
    """Cosine-scaled correctness (Yeo et al., 2025, "Demystifying Long CoT"): a correct answer
    earns more when short, a wrong one is penalised less when long (it kept thinking)."""
    if max_length <= 0:
        raise ValueError(f"cosine_length reward: max_length must be positive, got {max_length}")
    lengths = _lengths(completions, completion_ids)
    scores = []
    for gold, completion, n in zip(answer, completions, lengths, strict=True):
        at_short, at_long = correct if verify(gold, completion) else wrong
        progress = min(n, max_length) / max_length
        scores.append(at_long + 0.5 * (at_short - at_long) * (1 + math.cos(math.pi * progress)))
    return scores


def _lengths(completions: list, completion_ids: list | None) -> list[int]:
    """Tokens when the trainer passes `completion_ids`, else characters / 4 as a rough count."""
    if completion_ids is not None:
        return [len(ids) for ids in completion_ids]
    return [len(as_text(c)) // 4 for c in completions]
