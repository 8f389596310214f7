"""Scoring a batch: every reward function over every completion, checked, weighted and summed.

A reward that raises, overruns its deadline, kills its worker or returns something that is not
a finite number fails only for the samples concerned: they get None (left out of its mean, 0
in the total) and are counted. Failing on more than `max_failure_frac` of a batch raises
RewardFailure: a broken reward must stop a run, not steer it.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from rewards.deadline import Outcome, raised
from rewards.registry import RewardError, RewardFn
from rewards.reward_pool import Call, RewardPool
from rewards.text import as_text

__all__ = ["Failure", "RewardFailure", "RewardPool", "Scores", "WeightedReward", "score"]

FailureKind = Literal["error", "invalid", "timeout", "crash"]
TIMEOUT_S = 60.0  # default deadline of one call of a reward on a chunk of a batch
MAX_FAILURE_FRAC = 0.5  # default share of a batch a reward may fail on
_IN_PROCESS = RewardPool(0)


@dataclass
class WeightedReward:
    """A named reward function, its weight in the total, its deadline per call (enforced
    only in a pool with workers) and the share of a batch it may fail on."""

    name: str
    fn: RewardFn
    weight: float = 1.0
    timeout_s: float = TIMEOUT_S
    max_failure_frac: float = MAX_FAILURE_FRAC


@dataclass(frozen=True)
class Failure:
    """Sample `index` got no value from a reward, and why."""

    index: int
    kind: FailureKind
    detail: str


class RewardFailure(RewardError):
    """A reward failed on more than its allowed share of a batch."""


@dataclass
class Scores:
    """One column per reward (None = not applicable or failed), their weighted sum, and the
    failures of each reward."""

    per_reward: dict[str, list[float | None]] = field(default_factory=dict)
    total: list[float] = field(default_factory=list)
    failures: dict[str, list[Failure]] = field(default_factory=dict)

    def stats(self) -> dict[str, float]:
        """Mean and std of each reward over the samples it applies to, and its failure count."""
        out = {}
        for name, values in self.per_reward.items():
            present = [v for v in values if v is not None]
            if present:
                mean = sum(present) / len(present)
                out[f"reward/{name}/mean"] = mean
                out[f"reward/{name}/std"] = math.sqrt(
                    sum((v - mean) ** 2 for v in present) / len(present)
                )
            out[f"reward/{name}/failed"] = float(len(self.failures.get(name, [])))
        return out


def score(
    rewards: list[WeightedReward],
    prompts: list,
    completions: list,
    columns: dict[str, list],
    pool: RewardPool | None = None,
) -> Scores:
    """Call each reward on the batch, split in one contiguous chunk per worker of `pool`
    (in this process without one). Raises RewardFailure for a reward failing too often."""
    chunks = _chunks(len(completions), max(1, pool.size if pool else 1))
    calls = [
        Call(
            partial(
                _score_chunk,
                reward.fn,
                prompts[start:stop],
                completions[start:stop],
                {key: values[start:stop] for key, values in columns.items()},
            ),
            reward.timeout_s,
            f"reward {reward.name!r}",
        )
        for reward in rewards
        for start, stop in chunks
    ]
    outcomes = iter((pool or _IN_PROCESS).run(calls))
    scores = Scores(total=[0.0] * len(completions))
    for reward in rewards:
        values, failures = _gather(chunks, [next(outcomes) for _ in chunks])
        _check_failure_rate(reward, failures, prompts, completions)
        scores.per_reward[reward.name] = values
        scores.failures[reward.name] = failures
        for i, value in enumerate(values):
            if value is not None:
                scores.total[i] += reward.weight * value
    return scores


def _chunks(size: int, parts: int) -> list[tuple[int, int]]:
    """`parts` contiguous (start, stop) ranges covering range(size), none empty."""
    step = math.ceil(size / parts) if size else 0
    return [(start, min(start + step, size)) for start in range(0, size, step or 1)]


def _gather(
    chunks: list[tuple[int, int]], outcomes: list[Outcome]
) -> tuple[list[float | None], list[Failure]]:
    """One column of values and the failures, batch-indexed, from the chunks' outcomes."""
    values: list[float | None] = []
    failures: list[Failure] = []
    for (start, stop), outcome in zip(chunks, outcomes, strict=True):
        if outcome.failure is not None:
            values += [None] * (stop - start)
            failures += [Failure(i, outcome.failure, outcome.detail) for i in range(start, stop)]
        else:
            chunk_values, chunk_failures = outcome.value
            values += chunk_values
            failures += [Failure(start + i, kind, detail) for i, kind, detail in chunk_failures]
    return values, failures


def _score_chunk(
    fn: RewardFn, prompts: list, completions: list, columns: dict
) -> tuple[list[float | None], list[tuple[int, FailureKind, str]]]:
    """Call the reward on a chunk (in a worker); when it raises, once per sample, so that
    one bad sample costs only itself. Returns the checked values and the (index, kind,
    detail) of each failure."""
    try:
        returned = fn(prompts, completions, **columns)
    except Exception as err:  # noqa: BLE001 - a user's function: any error is a failure
        if len(completions) == 1:
            return [None], [(0, "error", raised(err))]
        return _one_by_one(fn, prompts, completions, columns)
    if not isinstance(returned, list | tuple) or len(returned) != len(completions):
        got = (
            f"{len(returned)} values"
            if isinstance(returned, list | tuple)
            else type(returned).__name__
        )
        detail = f"returned {got} for {len(completions)} completions"
        return [None] * len(completions), [(i, "invalid", detail) for i in range(len(completions))]
    values, failures = [], []
    for i, value in enumerate(returned):
        try:
            values.append(_as_score(value))
        except ValueError as err:
            values.append(None)
            failures.append((i, "invalid", str(err)))
    return values, failures


def _one_by_one(
    fn: RewardFn, prompts: list, completions: list, columns: dict
) -> tuple[list[float | None], list[tuple[int, FailureKind, str]]]:
    values, failures = [], []
    for i in range(len(completions)):
        one = {key: column[i : i + 1] for key, column in columns.items()}
        [value], failed = _score_chunk(fn, prompts[i : i + 1], completions[i : i + 1], one)
        values.append(value)
        failures += [(i, kind, detail) for _, kind, detail in failed]
    return values, failures


def _as_score(value: object) -> float | None:
    """The value as a float (None stays None); ValueError for bools (a likely bug) and
    anything that is not a finite real number. numpy numbers are real numbers here."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"returned {_short(repr(value))} ({type(value).__name__}); expected a float or None"
        )
    try:
        number = float(value)
    except (OverflowError, TypeError) as err:
        raise ValueError(f"returned {_short(repr(value))}, not a float: {err}") from None
    if not math.isfinite(number):
        raise ValueError(f"returned {number}")
    return number


def _check_failure_rate(
    reward: WeightedReward, failures: list[Failure], prompts: list, completions: list
) -> None:
    if len(failures) <= reward.max_failure_frac * len(completions):
        return
    kinds = ", ".join(f"{n} {kind}" for kind, n in Counter(f.kind for f in failures).items())
    first = failures[0]
    raise RewardFailure(
        f"reward {reward.name!r} failed on {len(failures)} of {len(completions)} samples "
        f"(more than max_failure_frac={reward.max_failure_frac:g}): {kinds}. "
        f"First, sample {first.index}: {first.detail}; "
        f"prompt {_short(as_text(prompts[first.index]))!r}, "
        f"completion {_short(as_text(completions[first.index]))!r}"
    )


def _short(text: str, keep: int = 60) -> str:
    """Its start and end when it is long."""
    return text if len(text) <= 2 * keep else f"{text[:keep]} ... {text[-keep:]}"
