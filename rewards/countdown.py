"""Countdown (TinyZero): the answer must be an equation of the given numbers hitting the target."""

from __future__ import annotations

import ast
import operator
import re
from fractions import Fraction

from rewards.math import extract_answer
from rewards.text import continued

OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def countdown_reward(
    prompts: list,
    completions: list,
    nums: list,
    target: list,
    answer_tag: bool = True,
    valid_score: float = 0.0,
    **_,
) -> list[float]:
    """1.0 when the answer uses each number exactly once with + - * / and equals the target.
    The answer is the equation inside <answer></answer> after the reasoning (TinyZero's rule);
    `answer_tag: false` also reads an untagged final answer. Reasoning is never the answer: a
    list of candidates inside an unclosed <think> earns nothing. `valid_score` (TinyZero's
    format score, 0.1 there) pays a legal equation of the numbers that misses the target: a
    gradient toward playing the game that, below 1, never outbids a solution."""
    if not 0.0 <= valid_score < 1.0:
        raise ValueError(f"countdown valid_score must be in [0, 1), got {valid_score}")
    scores = []
    for p, c, n, t in zip(prompts, completions, nums, target, strict=True):
        verdict = judge(extract_answer(continued(p, c), answer_tag), n, t)
        scores.append({"solved": 1.0, "legal": valid_score, None: 0.0}[verdict])
    return scores


def judge(answer: str | None, numbers: list[int], target: int) -> str | None:
    """The verdict on an answer: `solved`; `legal` (each number once, + - * / only, but it
    misses the target or claims a value `expr = 31` that is not it); None (no such equation)."""
    if answer is None or len(answer) > 200:
        return None
    answer = answer.replace("\\times", "*").replace("\\div", "/").replace("×", "*")
    expression, *claims = answer.split("=")  # `expr` or `expr = target`
    if not re.fullmatch(r"[\d+\-*/().\s]+", expression):
        return None
    try:
        tree = ast.parse(expression.strip(), mode="eval")
        used: list[int] = []
        value = _evaluate(tree.body, used)
    except (SyntaxError, ValueError, ZeroDivisionError):
        return None
    if sorted(used) != sorted(numbers):
        return None
    hits = value == target and all(claim.strip() == str(target) for claim in claims)
    return "solved" if hits else "legal"


def equation_form(answer: str | None) -> str | None:
    """The equation with its numbers abstracted, in order of appearance: `3 + 5 - 2` and
    `7 + 1 - 4` are both `a + b - c`, `(4 * 6) / 3` is `a * b / c` (Python's minimal brackets);
    None for anything that does not parse as + - * / over numbers. An exploration measure: how
    many different ways of solving the model uses."""
    if answer is None:
        return None
    expression = answer.replace("\\times", "*").replace("\\div", "/").replace("×", "*")
    expression = expression.split("=")[0].strip()
    if not re.fullmatch(r"[\d+\-*/().\s]+", expression):
        return None
    try:
        tree = ast.parse(expression, mode="eval")
        _evaluate(tree.body, [])
    except (SyntaxError, ValueError, ZeroDivisionError):
        return None
    numbers = [node for node in ast.walk(tree) if isinstance(node, ast.Constant)]
    numbers.sort(key=lambda node: node.col_offset)
    for index, node in enumerate(numbers):
        node.value = chr(ord("a") + index) if index < 26 else f"x{index}"
    return ast.unparse(tree).replace("'", "")


def _evaluate(node: ast.AST, used: list[int]) -> Fraction:
    """Exact arithmetic over the parsed expression; anything but numbers and + - * / is refused."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        used.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
        return OPERATORS[type(node.op)](_evaluate(node.left, used), _evaluate(node.right, used))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand, used)
    raise ValueError(f"not allowed in a countdown equation: {ast.dump(node)[:40]}")
