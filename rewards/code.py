"""The `code` reward: extract the program from each completion and run the row's tests on it.

Test formats and their columns are described in rewards/code_tests.py. Every test runs in
its own sandboxed process (rewards/sandbox.py); all tests of all completions share one pool.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import Future
from typing import Literal

from rewards.code_tests import Case, CodeRewardError, cases
from rewards.sandbox import Budget, Job, SandboxPool
from rewards.text import as_text

Extract = Literal["last_block", "first_block", "whole"]
FENCE = re.compile(r"```([^\n`]*)\n(.*?)(?:```|\Z)", re.S)
PYTHON_FENCES = ("", "python", "python3", "py")


def extract_code(completion: str | list | dict, mode: Extract = "last_block") -> str:
    """The program in a completion, looked for after the last </think>: its last (or first)
    ```python block (an unclosed one runs to the end), or the whole answer when it has no
    block or mode is "whole"."""
    if mode not in ("last_block", "first_block", "whole"):
        raise CodeRewardError(
            f"extract mode must be last_block, first_block or whole, not {mode!r}"
        )
    text = as_text(completion).rpartition("</think>")[2]
    blocks = [body for lang, body in FENCE.findall(text) if lang.strip().lower() in PYTHON_FENCES]
    if mode == "whole" or not blocks:
        return re.sub(r"</?answer>", "", text).strip("\n")
    return blocks[0] if mode == "first_block" else blocks[-1]


def code_reward(
    prompts: list,
    completions: list,
    mode: Literal["fraction", "all"] = "fraction",
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    stop_at_first_failure: bool = False,
    extract: Extract = "last_block",
    workers: int = 4,
    completion_timeout_s: float | None = 60.0,
    **columns,
) -> list[float | None]:
    """Per completion, the share of its row's tests passed ("fraction") or 1/0 for passing
    them all ("all"); None for a row without tests. Tests after a first failure count as
    failed and are skipped when `stop_at_first_failure` (implied by "all"). A completion's
    tests together get `completion_timeout_s` of wall-clock time from the first one's start
    (None: no overall deadline); those cut or not started by then fail."""
    if mode not in ("fraction", "all"):
        raise CodeRewardError(f"code reward: mode must be fraction or all, not {mode!r}")
    if completion_timeout_s is not None and completion_timeout_s <= 0:
        limit = completion_timeout_s
        raise CodeRewardError(f"code reward: completion_timeout_s must be positive, not {limit}")
    stop = stop_at_first_failure or mode == "all"
    rows = [
        cases(extract_code(completion, extract), {k: v[i] for k, v in columns.items()})
        for i, completion in enumerate(completions)
    ]
    with SandboxPool(workers) as pool:
        budgets = [Budget(completion_timeout_s) if completion_timeout_s else None for _ in rows]
        runs = [
            _submit(pool, row, budget, timeout_s, memory_mb, stop)
            for row, budget in zip(rows, budgets, strict=True)
        ]
        return [_score(row, futures, mode, stop) for row, futures in zip(rows, runs, strict=True)]


def _submit(
    pool: SandboxPool,
    row: list[Case],
    budget: Budget | None,
    timeout_s: float,
    memory_mb: int,
    stop: bool,
) -> list[Future]:
    jobs = [Job(c.source, c.stdin, timeout_s, memory_mb, c.private_input) for c in row]
    futures = [pool.submit(job, budget) for job in jobs]
    if stop:
        for i, (case, future) in enumerate(zip(row, futures, strict=True)):
            future.add_done_callback(_cancel_on_failure(case, futures[i + 1 :]))
    return futures


def _cancel_on_failure(case: Case, later: list[Future]) -> Callable[[Future], None]:
    """A callback that cancels the row's later tests once this one has failed."""

    def on_done(future: Future) -> None:
        if future.cancelled() or not case.passed(future.result()):
            for other in later:
                other.cancel()

    return on_done


def _score(row: list[Case], futures: list[Future], mode: str, stop: bool) -> float | None:
    if not row:
        return None
    passed = 0
    for case, future in zip(row, futures, strict=True):
        ok = not future.cancelled() and case.passed(future.result())
        if not ok and stop:
            break
        passed += ok
    return float(passed == len(row)) if mode == "all" else passed / len(row)
