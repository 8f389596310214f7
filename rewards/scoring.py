"""Scoring a batch: every reward function over every completion, checked, weighted and summed."""

from __future__ import annotations

import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from rewards.registry import RewardError, RewardFn


@dataclass
class WeightedReward:
    """A named reward function and its weight in the total."""

    name: str
    fn: RewardFn
    weight: float = 1.0


@dataclass
class Scores:
    """One column per reward (None = not applicable) and their weighted sum."""

    per_reward: dict[str, list[float | None]] = field(default_factory=dict)
    total: list[float] = field(default_factory=list)

    def stats(self) -> dict[str, float]:
        """Mean and std of each reward over the samples it applies to."""
        out = {}
        for name, values in self.per_reward.items():
            present = [v for v in values if v is not None]
            if present:
                mean = sum(present) / len(present)
                out[f"reward/{name}/mean"] = mean
                out[f"reward/{name}/std"] = math.sqrt(
                    sum((v - mean) ** 2 for v in present) / len(present)
                )
        return out


class RewardPool:
    """Worker processes (spawn) that share out a batch in contiguous chunks, for CPU-heavy
    rewards such as math and code. Rewards must pickle: those from `load_reward` do (they
    travel by name and are loaded again in the worker). With workers <= 1 it runs in-process."""

    def __init__(self, workers: int):
        self.workers = workers
        self.executor = (
            ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            if workers > 1
            else None
        )

    def __call__(self, fn: RewardFn, prompts: list, completions: list, columns: dict) -> list:
        if self.executor is None or len(completions) < 2:
            return fn(prompts, completions, **columns)
        size = math.ceil(len(completions) / self.workers)
        futures = [
            self.executor.submit(
                _call_chunk,
                fn,
                prompts[start : start + size],
                completions[start : start + size],
                {k: v[start : start + size] for k, v in columns.items()},
            )
            for start in range(0, len(completions), size)
        ]
        return [value for future in futures for value in future.result()]

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)

    def __enter__(self) -> RewardPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def score(
    rewards: list[WeightedReward],
    prompts: list,
    completions: list,
    columns: dict[str, list],
    pool: RewardPool | None = None,
) -> Scores:
    """Call each reward on the whole batch (spread over `pool` when given); a missing value
    (None) adds 0 to the total."""
    scores = Scores(total=[0.0] * len(completions))
    for reward in rewards:
        values = _call(reward, prompts, completions, columns, pool or RewardPool(1))
        scores.per_reward[reward.name] = values
        for i, value in enumerate(values):
            if value is not None:
                scores.total[i] += reward.weight * value
    return scores


def _call_chunk(fn: RewardFn, prompts: list, completions: list, columns: dict) -> list:
    """Runs in a pool worker: a module-level function, so it pickles."""
    return list(fn(prompts, completions, **columns))


def _call(
    reward: WeightedReward,
    prompts: list,
    completions: list,
    columns: dict[str, list],
    pool: RewardPool,
) -> list[float | None]:
    try:
        values = pool(reward.fn, prompts, completions, columns)
    except Exception as err:  # a user's function: name it and the sample when we can
        raise RewardError(_blame(reward, prompts, completions, columns, err)) from err
    if not isinstance(values, list | tuple) or len(values) != len(completions):
        got = f"{len(values)} values" if isinstance(values, list | tuple) else type(values).__name__
        raise RewardError(
            f"reward {reward.name!r} returned {got} for {len(completions)} completions"
        )
    for i, value in enumerate(values):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise RewardError(
                f"reward {reward.name!r} returned {value!r} for sample {i}; "
                "expected a float or None (not applicable)"
            )
    return [None if v is None else float(v) for v in values]


def _blame(
    reward: WeightedReward, prompts: list, completions: list, columns: dict, err: Exception
) -> str:
    """Find the first sample the reward fails on, re-running it one sample at a time."""
    for i in range(len(completions)):
        try:
            reward.fn(
                prompts[i : i + 1],
                completions[i : i + 1],
                **{k: v[i : i + 1] for k, v in columns.items()},
            )
        except Exception as sample_err:  # noqa: BLE001 - reported below
            text = str(completions[i])[:120]
            return (
                f"reward {reward.name!r} raised {type(sample_err).__name__}: {sample_err} "
                f"on sample {i} (completion {text!r})"
            )
    return f"reward {reward.name!r} raised {type(err).__name__}: {err}"
