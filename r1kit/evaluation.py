"""Evaluation: sample n completions per problem, score them, and summarise as papers do.

pass@k is Chen et al.'s (2021) unbiased estimator, maj@k a majority vote over extracted
answers, and pass@1 comes with a 95% bootstrap confidence interval over problems. The GRPO
trainer's periodic held-out evaluation and `r1kit eval` both call `evaluate`.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from math import comb

from transformers import PreTrainedTokenizerBase

from r1kit.recipe import TemplateConfig
from r1kit.templates import encode, render
from rewards.format import format_reward
from rewards.math import extract_answer
from rewards.math_normalise import normalise
from rewards.registry import RewardFn
from rollout.types import Engine, SamplingParams


@dataclass
class EvalResult:
    summary: dict[str, float]
    samples: list[dict]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples (of n, c correct) is correct, unbiased."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def majority_correct(answers: list[str | None], correct: list[bool]) -> bool:
    """Whether the most frequent extracted answer is a correct one. Ties go to the answer
    seen first, so the vote is deterministic; missing answers never win."""
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return False
    best = max(votes.values())
    winner = next(a for a in answers if a is not None and votes[a] == best)
    return correct[answers.index(winner)]


def bootstrap_ci(values: list[float], seed: int = 0, rounds: int = 1000) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean, resampling problems."""
    if not values:
        return 0.0, 0.0
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=len(values))) / len(values) for _ in range(rounds))
    return means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1]


def summarise(
    correct: list[list[bool]],
    answers: list[list[str | None]],
    lengths: list[int],
    truncated: list[bool],
    formatted: list[bool],
    seed: int = 0,
) -> dict[str, float]:
    """The metrics of a whole evaluation; `correct[i]` holds problem i's n verdicts."""
    n = len(correct[0])
    per_problem = [sum(c) / n for c in correct]
    summary = {"pass@1": sum(per_problem) / len(per_problem)}
    k = 2
    while k <= n:
        summary[f"pass@{k}"] = sum(pass_at_k(n, sum(c), k) for c in correct) / len(correct)
        summary[f"maj@{k}"] = sum(
            majority_correct(a[:k], c[:k]) for a, c in zip(answers, correct, strict=True)
        ) / len(correct)
        k *= 2
    summary["ci_low"], summary["ci_high"] = bootstrap_ci(per_problem, seed)
    summary["mean_length"] = sum(lengths) / len(lengths)
    summary["truncation_rate"] = sum(truncated) / len(truncated)
    summary["format_rate"] = sum(formatted) / len(formatted)
    summary["problems"] = len(correct)
    return summary


def evaluate(
    engine: Engine,
    tokenizer: PreTrainedTokenizerBase,
    template: TemplateConfig,
    rows: list[dict],
    correctness: RewardFn,
    sampling: SamplingParams,
) -> EvalResult:
    """Sample `sampling.n` completions for every row and score them with `correctness`."""
    groups = engine.generate(encode(template, tokenizer, [row["prompt"] for row in rows]), sampling)
    prompts = [render(template, tokenizer, row["prompt"]) for row in rows]
    samples, correct, answers = [], [], []
    for row, prompt, group in zip(rows, prompts, groups, strict=True):
        texts = [c.text for c in group]
        columns = {k: [v] * len(texts) for k, v in row.items() if k != "prompt"}
        verdicts = [
            v is not None and v >= 1.0 for v in correctness([prompt] * len(texts), texts, **columns)
        ]
        extracted = [_answer_key(t) for t in texts]
        formatted = format_reward([prompt] * len(texts), texts)
        correct.append(verdicts)
        answers.append(extracted)
        samples += [
            {
                "prompt": row["prompt"],
                "answer": row.get("answer"),
                "completion": c.text,
                "extracted": a,
                "correct": v,
                "formatted": f == 1.0,
                "tokens": len(c.token_ids),
                "finish_reason": c.finish_reason,
            }
            for c, a, v, f in zip(group, extracted, verdicts, formatted, strict=True)
        ]
    summary = summarise(
        correct,
        answers,
        [s["tokens"] for s in samples],
        [s["finish_reason"] == "length" for s in samples],
        [s["formatted"] for s in samples],
    )
    return EvalResult(summary, samples)


def _answer_key(text: str) -> str | None:
    """The extracted answer in normalised form, so that votes for `1/2` and `\\frac12` agree."""
    answer = extract_answer(text)
    return None if answer is None else normalise(answer)
