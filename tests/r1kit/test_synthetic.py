from fractions import Fraction
from functools import reduce
from itertools import permutations, product
from operator import add, mul, sub, truediv

from r1kit.recipe import ArithmeticConfig, CountdownConfig
from r1kit.synthetic import arithmetic_problem, builtin_task, countdown_problem


def test_arithmetic_is_a_pure_function_of_seed_and_index():
    cfg = ArithmeticConfig(digits=2, operators="+-", operands=3)
    assert arithmetic_problem(cfg, 0, 5) == arithmetic_problem(cfg, 0, 5)
    assert arithmetic_problem(cfg, 0, 5) != arithmetic_problem(cfg, 1, 5)


def test_arithmetic_answer_is_correct():
    row = arithmetic_problem(ArithmeticConfig(digits=3, operators="*", operands=2), 0, 0)
    a, b = row["prompt"].removeprefix("What is ").removesuffix("?").split(" * ")
    assert int(row["answer"]) == int(a) * int(b)


def left_to_right_values(nums: list[int]) -> set[Fraction]:
    """Every value of some order of `nums` (all >= 1) combined left to right with + - * /."""
    return {
        reduce(
            lambda value, step: step[0](value, step[1]),
            zip(ops, order[1:], strict=True),
            Fraction(order[0]),
        )
        for order in permutations(nums)
        for ops in product((add, sub, mul, truediv), repeat=len(nums) - 1)
    }


def test_countdown_target_is_reachable_and_in_range():
    cfg = CountdownConfig(numbers=3, max_number=10, max_target=50)
    for i in range(20):
        row = countdown_problem(cfg, 0, i)
        assert 1 <= row["target"] <= 50
        assert len(row["nums"]) == 3
        assert row["target"] in left_to_right_values(row["nums"])
        assert str(row["target"]) == row["answer"]


def test_training_stream_never_yields_a_held_out_question():
    task = builtin_task("arithmetic", ArithmeticConfig(digits=1), CountdownConfig(), 0, 30)
    held_out = {row["prompt"] for row in task.eval_rows}
    train = [task.train_row(i) for i in range(500)]
    assert any(row is None for row in train)  # 1-digit sums collide often: they are skipped
    assert not {row["prompt"] for row in train if row} & held_out
