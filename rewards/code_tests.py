"""A dataset row's tests, turned into programs to run in the sandbox and a pass rule for each.

The row's columns decide the format:
- HumanEval: `test` (defines `check(candidate)`) and `entry_point`, with the problem's
  function header in `humaneval_prompt` (put before the code, so a body-only completion works);
- MBPP: `test_list` (assert statements), optional `test_setup_code` (run after the code);
- stdin/stdout (APPS, CodeContests, LiveCodeBench): `tests`, a list of
  `{"input": ..., "output": ...}` or APPS's `{"inputs": [...], "outputs": [...]}`, or either
  as a JSON string.
Assert-style tests run in rewards/code_harness.py, whose exit status is the verdict: the
completion's code goes to it on stdin, the tests on the sandbox's private fd, which the
completion cannot read. Stdin/stdout tests are compared here, outside the sandbox.
"""

from __future__ import annotations

import ast
import builtins
import json
from dataclasses import dataclass
from pathlib import Path

from rewards import code_harness
from rewards.sandbox import ExecResult

HARNESS = Path(code_harness.__file__).read_text("utf-8")


class CodeRewardError(ValueError):
    """The code reward's options, or a row's tests, are malformed."""


@dataclass(frozen=True)
class Case:
    """One program to run and what counts as passing: a clean exit, and the `expected` stdout
    when given (compared as whitespace-separated tokens)."""

    source: str
    stdin: str = ""
    expected: str | None = None
    private_input: str = ""

    def passed(self, result: ExecResult) -> bool:
        if result.status != "ok":
            return False
        return self.expected is None or result.stdout.split() == self.expected.split()


def cases(code: str, row: dict) -> list[Case]:
    """The row's tests run against `code`; empty when the row has none."""
    if row.get("test") and row.get("entry_point"):
        header = (row.get("humaneval_prompt") or "").rstrip("\n")
        # The header runs in the checker too, so the tests' helpers from it (HumanEval/32's
        # `poly`) are the problem's own, not ones the completion redefined.
        entry = row["entry_point"]
        tests = f"{header}\n{_bind(entry)}\n{row['test']}\n\ncheck({entry})\n"
        return [_asserting(f"{header}\n{code}\n", tests)]
    if row.get("test_list"):
        setup = row.get("test_setup_code") or ""
        code = f"{code}\n\n{setup}\n"
        return [_asserting(code, _with_tested_builtin(test)) for test in row["test_list"]]
    return [Case(code, stdin, expected=out) for stdin, out in _stdio_pairs(row.get("tests"))]


def _bind(name: str) -> str:
    """Test code binding `name` to the completion's own (the checker binds none that shadow a
    builtin, or that a header it ran redefined)."""
    return f"\n{name} = __completion__.get({name!r}, {name})\n"


def _with_tested_builtin(test: str) -> str:
    """An assert, preceded by a binding of the function it tests when that is named like a
    builtin (MBPP's `sum`): the innermost named call, so that in `abs(f(x) - y) < 1e-9` the
    builtin `abs` stays the checker's own."""
    try:
        tree = ast.parse(test)
    except SyntaxError:
        return f"{test}\n"  # the checker reports it
    name = _innermost_call(tree)
    return f"{_bind(name)}{test}\n" if name and hasattr(builtins, name) else f"{test}\n"


def _innermost_call(node: ast.AST) -> str | None:
    """The name of the most deeply nested call of a plain name under `node`, the first one
    if several."""
    deepest: tuple[int, str | None] = (0, None)
    stack = [(node, 0)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, ast.Call) and isinstance(current.func, ast.Name):
            depth += 1
            if depth > deepest[0]:
                deepest = (depth, current.func.id)
        stack += [(child, depth) for child in reversed(list(ast.iter_child_nodes(current)))]
    return deepest[1]


def _asserting(code: str, tests: str) -> Case:
    """`tests` run by the harness against `code`, the tests out of the code's reach."""
    return Case(HARNESS, stdin=code, private_input=tests)


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
