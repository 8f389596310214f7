"""A dataset row's tests, turned into programs to run in the sandbox and a pass rule for each.

The row's columns decide the format:
- HumanEval: `test` (defines `check(candidate)`) and `entry_point`, with the problem's
  function header in `humaneval_prompt` (put before the code, so a body-only completion works);
- MBPP: `test_list` (assert statements), optional `test_setup_code` (run after the code);
- stdin/stdout (APPS, CodeContests, LiveCodeBench): `tests`, a list of
  `{"input": ..., "output": ...}` or APPS's `{"inputs": [...], "outputs": [...]}`, or either
  as a JSON string.
Assert-style programs end by printing a random token: a program that exits early with success
(`sys.exit(0)`, `os._exit(0)`) never prints it, so it does not pass.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from rewards.sandbox import ExecResult


class CodeRewardError(ValueError):
    """The code reward's options, or a row's tests, are malformed."""


@dataclass(frozen=True)
class Case:
    """One program to run and what counts as passing: `expected` stdout (compared as
    whitespace-separated tokens) or, for assert-style tests, `token` as the last line."""

    source: str
    stdin: str = ""
    expected: str | None = None
    token: str | None = None

    def passed(self, result: ExecResult) -> bool:
        if result.status != "ok":
            return False
        if self.expected is not None:
            return result.stdout.split() == self.expected.split()
        return result.stdout.rstrip().rpartition("\n")[2] == self.token


def cases(code: str, row: dict) -> list[Case]:
    """The row's tests run against `code`; empty when the row has none."""
    if row.get("test") and row.get("entry_point"):
        header = (row.get("humaneval_prompt") or "").rstrip("\n")
        return [_asserting(f"{header}\n{code}\n\n{row['test']}\n\ncheck({row['entry_point']})")]
    if row.get("test_list"):
        setup = row.get("test_setup_code") or ""
        return [_asserting(f"{code}\n\n{setup}\n\n{test}") for test in row["test_list"]]
    return [Case(code, stdin, expected=out) for stdin, out in _stdio_pairs(row.get("tests"))]


def _asserting(program: str) -> Case:
    token = f"r1kit-passed-{secrets.token_hex(8)}"
    return Case(f"{program}\nprint({token!r})\n", token=token)


def _stdio_pairs(tests: object) -> list[tuple[str, str]]:
    """(stdin, expected stdout) pairs from the accepted shapes of a `tests` column."""
    if not tests:
        return []
    if isinstance(tests, str):
        try:
            tests = json.loads(tests)
        except json.JSONDecodeError as err:
            raise CodeRewardError(f"`tests` is a string but not JSON: {err}") from None
    if isinstance(tests, dict) and {"inputs", "outputs"} <= tests.keys():
        if len(tests["inputs"]) != len(tests["outputs"]):
            raise CodeRewardError("`tests` has a different number of inputs and outputs")
        pairs = zip(tests["inputs"], tests["outputs"], strict=True)
        tests = [{"input": i, "output": o} for i, o in pairs]
    if not isinstance(tests, list) or not all(
        isinstance(t, dict) and {"input", "output"} <= t.keys() for t in tests
    ):
        raise CodeRewardError(
            '`tests` must be a list of {"input": ..., "output": ...} or '
            f'{{"inputs": [...], "outputs": [...]}}, got {str(tests)[:80]!r}'
        )
    return [(_joined(t["input"]), _joined(t["output"])) for t in tests]


def _joined(value: object) -> str:
    """Some datasets store stdin/stdout as a list of lines."""
    return "\n".join(map(str, value)) + "\n" if isinstance(value, list) else str(value)
