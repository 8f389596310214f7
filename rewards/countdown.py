"""Countdown (TinyZero): the answer must be an equation of the given numbers hitting the target."""

from __future__ import annotations

import ast
import operator
import re
from fractions import Fraction

from rewards.math import extract_answer

OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def countdown_reward(
    prompts: list, completions: list, nums: list, target: list, **_
) -> list[float]:
    """1.0 when the answer uses each number exactly once with + - * / and equals the target."""
    return [
        float(_solves(extract_answer(c), n, t))
        for c, n, t in zip(completions, nums, target, strict=True)
    ]


def _solves(answer: str | None, numbers: list[int], target: int) -> bool:
    if answer is None or len(answer) > 200:
        return False
    expression = (
        answer.split("=")[0].replace("\\times", "*").replace("\\div", "/").replace("×", "*")
    )
    if not re.fullmatch(r"[\d+\-*/().\s]+", expression):
        return False
    try:
        tree = ast.parse(expression.strip(), mode="eval")
        used: list[int] = []
        value = _evaluate(tree.body, used)
    except (SyntaxError, ValueError, ZeroDivisionError):
        return False
    return sorted(used) == sorted(numbers) and value == target


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
