"""Built-in synthetic training tasks (arithmetic, Countdown): endless, seeded, resumable by index.

Rows come out as the data module's rows do: `prompt`, `answer`, and task columns.
Problem `i` of a task is a pure function of (seed, i), so a data position is just an integer
and the held-out set (a separate stream) can be excluded from training exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from fractions import Fraction

from r1kit.errors import UserError
from r1kit.recipe import ArithmeticConfig, CountdownConfig

HELD_OUT_STREAM = 1_000_003  # seed offset of the held-out stream


def arithmetic_problem(cfg: ArithmeticConfig, seed: int, index: int) -> dict:
    """`a op b [op c ...]` with `cfg.digits`-digit operands; the answer is an integer."""
    rng = random.Random(f"arithmetic/{seed}/{index}")
    low, high = 10 ** (cfg.digits - 1) if cfg.digits > 1 else 0, 10**cfg.digits - 1
    numbers = [rng.randint(low, high) for _ in range(cfg.operands)]
    ops = [rng.choice(cfg.operators) for _ in range(cfg.operands - 1)]
    expression = " ".join(
        [str(numbers[0])] + [f"{op} {n}" for op, n in zip(ops, numbers[1:], strict=True)]
    )
    answer = eval(expression, {"__builtins__": {}})  # only digits and + - * built above
    return {"prompt": f"What is {expression}?", "answer": str(answer)}


def countdown_problem(cfg: CountdownConfig, seed: int, index: int) -> dict:
    """TinyZero's Countdown: a target reachable from the numbers, each used exactly once."""
    rng = random.Random(f"countdown/{seed}/{index}")
    while True:
        numbers = [rng.randint(1, cfg.max_number) for _ in range(cfg.numbers)]
        target = _random_value(numbers, rng)
        if target is not None and target.denominator == 1 and 1 <= target <= cfg.max_target:
            break
    question = (
        f"Using the numbers {numbers}, create an equation that equals {target}. "
        "You can use basic arithmetic operations (+, -, *, /) and each number exactly once."
    )
    return {"prompt": question, "answer": str(target), "nums": numbers, "target": int(target)}


def _random_value(numbers: list[int], rng: random.Random) -> Fraction | None:
    """Combine the numbers in random order with random operators; None on division by zero."""
    order = rng.sample(numbers, len(numbers))
    value = Fraction(order[0])
    for n in order[1:]:
        op = rng.choice("+-*/")
        if op == "/" and n == 0:
            return None
        value = {"+": value + n, "-": value - n, "*": value * n, "/": value / n}[op]
    return value


class GeneratedTask:
    """An endless task: training rows skip every question of the held-out set."""

    def __init__(self, make: Callable[[int, int], dict], seed: int, eval_size: int):
        self.make = make
        self.seed = seed
        self.eval_rows = [make(seed + HELD_OUT_STREAM, i) for i in range(eval_size)]
        self._held_out = {row["prompt"] for row in self.eval_rows}

    def train_row(self, index: int) -> dict | None:
        """Row `index` of the training stream, or None when it collides with the held-out set."""
        row = self.make(self.seed, index)
        return None if row["prompt"] in self._held_out else row


def builtin_task(
    name: str, arithmetic: ArithmeticConfig, countdown: CountdownConfig, seed: int, eval_size: int
) -> GeneratedTask:
    if name == "arithmetic":
        return GeneratedTask(lambda s, i: arithmetic_problem(arithmetic, s, i), seed, eval_size)
    if name == "countdown":
        return GeneratedTask(lambda s, i: countdown_problem(countdown, s, i), seed, eval_size)
    raise UserError(f"unknown built-in task {name!r}; built-in tasks: {', '.join(BUILTIN_TASKS)}")


def easier(
    arithmetic: ArithmeticConfig, countdown: CountdownConfig, levels: int
) -> tuple[ArithmeticConfig, CountdownConfig]:
    """The tasks `levels` curriculum levels easier: a digit fewer per level (arithmetic), a
    number fewer (countdown). The recipe checked that the source's task stays valid."""
    return (
        arithmetic.model_copy(update={"digits": arithmetic.digits - levels}),
        countdown.model_copy(update={"numbers": countdown.numbers - levels}),
    )


BUILTIN_TASKS = ("arithmetic", "countdown")
