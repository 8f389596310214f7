"""The `code` reward: extract the program from a completion and run it against the row's tests.

Test formats, chosen by the row's columns:
- HumanEval: `test` (defines `check(candidate)`) and `entry_point`; the program is the
  problem's `humaneval_prompt` (the function header, when the completion is only a body)
  plus the completion, then `check(entry_point)`.
- MBPP: `test_list` (assert statements) and optional `test_setup_code`, run after the program.
- stdin/stdout (APPS, CodeContests, LiveCodeBench): `tests`, a list (or JSON string) of
  `{"input": ..., "output": ...}`; outputs are compared line by line, ignoring surrounding
  whitespace.
Every test runs in its own sandboxed process (rewards.sandbox), in parallel up to `workers`.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from rewards.sandbox import run_python
from rewards.text import as_text

FENCE = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)```", re.S)


def extract_code(
    completion: str, mode: Literal["last_block", "first_block", "whole"] = "last_block"
) -> str:
    """The program in a completion: a fenced ```python block after </think> (the last by
    default); the whole answer when there is no fence."""
    text = as_text(completion)
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    blocks = FENCE.findall(text)
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
    extract: Literal["last_block", "first_block", "whole"] = "last_block",
    workers: int = 4,
    **columns,
) -> list[float | None]:
    """Share of the row's tests the program passes (mode "fraction") or 1/0 for all of them
    ("all"); None for a row without tests."""
    jobs = [
        _programs(extract_code(c, extract), {k: v[i] for k, v in columns.items()})
        for i, c in enumerate(completions)
    ]

    def run(programs: list[tuple[str, str, str | None]]) -> float | None:
        if not programs:
            return None
        passed = 0
        for source, stdin, expected in programs:
            result = run_python(source, stdin, timeout_s, memory_mb)
            ok = result.status == "ok" and (
                expected is None or _same_output(result.stdout, expected)
            )
            passed += ok
            if not ok and (stop_at_first_failure or mode == "all"):
                break
        return float(passed == len(programs)) if mode == "all" else passed / len(programs)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, jobs))


def _programs(code: str, row: dict) -> list[tuple[str, str, str | None]]:
    """(source, stdin, expected stdout or None) per test of the row's format."""
    if row.get("test") and row.get("entry_point"):
        header = row.get("humaneval_prompt") or ""
        body = code if f"def {row['entry_point']}" in code else header + code
        return [(f"{body}\n\n{row['test']}\n\ncheck({row['entry_point']})\n", "", None)]
    if row.get("test_list"):
        setup = row.get("test_setup_code") or ""
        return [(f"{code}\n\n{setup}\n\n{test}\n", "", None) for test in row["test_list"]]
    cases = row.get("tests")
    if isinstance(cases, str):
        cases = json.loads(cases)
    return [(code, case["input"], case["output"]) for case in cases or []]


def _same_output(got: str, expected: str) -> bool:
    return [line.strip() for line in got.strip().splitlines()] == [
        line.strip() for line in str(expected).strip().splitlines()
    ]
