"""Evaluation: sample n completions per problem, score them, and summarise as papers do.

pass@k is Chen et al.'s (2021) unbiased estimator, maj@k a majority vote over extracted
answers, and pass@1 comes with a 95% bootstrap confidence interval over problems. The GRPO
trainer's periodic held-out evaluation and `r1kit eval` both call `evaluate`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from math import comb

import numpy as np
from transformers import PreTrainedTokenizerBase

from r1kit.errors import UserError
from r1kit.groups import Group, generate_groups, score_groups
from r1kit.recipe import TemplateConfig
from r1kit.tool_metrics import tool_metrics
from r1kit.turns import sample_turns
from rewards.math import extract_answer
from rewards.math_normalise import normalise
from rewards.registry import RewardFn, load_reward
from rewards.scoring import WeightedReward
from rewards.text import prefilled_think
from rollout.types import Engine, SamplingParams


class EvalError(UserError):
    """Inputs an evaluation cannot summarise (no problems, groups of different sizes)."""


@dataclass
class EvalResult:
    """The headline metrics of an evaluation and every scored sample behind them."""

    summary: dict[str, float]
    samples: list[dict]


def sample_counts(n: int) -> list[int]:
    """The k reported for n samples per problem: 1 and the powers of two up to n."""
    return [2**i for i in range(n.bit_length())]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chance that at least one of k samples drawn from n (c of them correct) is correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise EvalError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def majority_answer(answers: list[str | None]) -> str | None:
    """The most frequent answer; among equally frequent ones the first seen wins, so the
    vote is deterministic. Missing answers (None) never win."""
    votes = Counter(a for a in answers if a is not None)
    return votes.most_common(1)[0][0] if votes else None


def majority_correct(answers: list[str | None], correct: list[bool]) -> bool:
    """Whether the majority answer is a correct one."""
    winner = majority_answer(answers)
    return winner is not None and correct[answers.index(winner)]


def bootstrap_ci(
    values: list[float], seed: int = 0, rounds: int = 1000, level: float = 0.95
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of `values` (one value per problem)."""
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(rounds, len(data)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def summarise(
    correct: list[list[bool]],
    answers: list[list[str | None]] | None,
    lengths: list[int],
    truncated: list[bool],
    formatted: list[bool],
    seed: int = 0,
) -> dict[str, float]:
    """The metrics of a whole evaluation; `correct[i]` and `answers[i]` hold problem i's n
    samples. Without `answers` (code tasks) there is no maj@k."""
    if not correct:
        raise EvalError("no problems to evaluate")
    n = len(correct[0])
    if any(len(c) != n for c in correct):
        raise EvalError("every problem needs the same number of samples")
    per_problem = [sum(c) / n for c in correct]
    summary = {"pass@1": sum(per_problem) / len(per_problem)}
    for k in sample_counts(n)[1:]:
        summary[f"pass@{k}"] = float(np.mean([pass_at_k(n, sum(c), k) for c in correct]))
    if answers is not None:
        for k in sample_counts(n)[1:]:
            votes = [majority_correct(a[:k], c[:k]) for a, c in zip(answers, correct, strict=True)]
            summary[f"maj@{k}"] = float(np.mean(votes))
    summary["ci_low"], summary["ci_high"] = bootstrap_ci(per_problem, seed)
    summary["mean_length"] = float(np.mean(lengths))
    summary["truncation_rate"] = float(np.mean(truncated))
    summary["format_rate"] = float(np.mean(formatted))
    summary["problems"] = len(correct)
    return summary


def evaluate(
    engine: Engine,
    tokenizer: PreTrainedTokenizerBase,
    template: TemplateConfig,
    rows: list[dict],
    correctness: RewardFn,
    sampling: SamplingParams,
    vote: bool = True,
    progress: Callable[[int], None] | None = None,
    chunk: int = 64,
) -> EvalResult:
    """Sample `sampling.n` completions per row and score them as training does: rewards see
    the templated prompt and the row's columns; a sample is correct when `correctness` gives
    it 1. `vote=False` (code) leaves out maj@k. Rows go to the engine `chunk` at a time, and
    `progress` hears how many rows each chunk finished. Answers are read from the model's own
    text; a sample that called tools also holds its `turns`."""
    if not rows:
        raise EvalError("no problems to evaluate")
    groups: list[Group] = []
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        groups += generate_groups(engine, tokenizer, template, part, sampling)
        if progress is not None:
            progress(len(part))
    score_groups(groups, [WeightedReward("correct", correctness), _format_judge()])
    samples = [
        {
            "problem": i,
            "prompt": group.row["prompt"],
            "answer": group.row.get("answer"),
            "completion": c.text,
            "extracted": answer_key(group.prompt, c.model_text) if vote else None,
            "correct": v is not None and v >= 1.0,
            "formatted": f == 1.0,
            "tokens": c.model_token_count,
            "finish_reason": c.finish_reason,
            **sample_turns(c),
        }
        for i, group in enumerate(groups)
        for c, v, f in zip(
            group.completions, group.per_reward["correct"], group.per_reward["format"], strict=True
        )
    ]
    summary = summarise(
        _by_problem(samples, "correct", len(rows)),
        _by_problem(samples, "extracted", len(rows)) if vote else None,
        [s["tokens"] for s in samples],
        [s["finish_reason"] == "length" for s in samples],
        [s["formatted"] for s in samples],
        seed=sampling.seed or 0,
    )
    summary |= tool_metrics([c for group in groups for c in group.completions])
    return EvalResult(summary, samples)


def _format_judge() -> WeightedReward:
    return WeightedReward("format", load_reward("format"))


def answer_key(prompt: str, text: str) -> str | None:
    """The extracted answer in normalised form, so that votes for `1/2` and `\\frac12` agree;
    read as the math reward reads it (a prompt that opened `<think>` opened it for the text)."""
    answer = extract_answer("<think>" + text if prefilled_think(prompt) else text)
    return None if answer is None else normalise(answer)


def _by_problem(samples: list[dict], key: str, problems: int) -> list[list]:
    grouped = [[] for _ in range(problems)]
    for sample in samples:
        grouped[sample["problem"]].append(sample[key])
    return grouped
