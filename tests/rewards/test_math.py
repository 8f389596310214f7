import json
import os
import threading
import time
from pathlib import Path

import pytest

from rewards import sympy_worker
from rewards.math import extract_answer, math_reward, verify

SHARED = Path(
    os.environ.get("R1KIT_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")
)


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<think>maybe 7</think> so it is 9", "9"),
        ("<think>...</think> <answer> 42 </answer>", "42"),
        ("<answer>\\boxed{\\frac{1}{2}}</answer>", "\\frac{1}{2}"),
        ("we get \\boxed{x^{2}+1}, so the total is \\boxed{3}", "3"),
        ("\\boxed{1} and \\boxed{-2}", "1,-2"),
        ("\\fbox{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("The final answer is 17.", "17"),
        ("Natalia sold 72 clips.\n#### 72", "72"),
        ("I counted 3 apples, then 5 more", "5"),
        ("Final Answer: The largest $n$ is 34.", "34"),
        ("so the probability that Alice wins is 2/3. <|im_start|>user", "2/3"),
        ("no answer here at all, none whatsoever friend", None),
    ],
)
def test_extraction_order(completion, expected):
    assert extract_answer(completion) == expected


EQUAL = [
    ("1/2", "0.5"),
    ("\\frac12", "\\frac{1}{2}"),
    ("\\dfrac{3}{4}", "0.75"),
    ("1000", "1,000"),
    ("1000000", "1,000,000"),
    ("5", "5.0"),
    ("-3", "-3"),
    ("$18", "18"),
    ("18 dollars", "18"),
    ("90^\\circ", "90"),
    ("50", "50\\%"),
    ("x^2+2x+1", "(x+1)^2"),
    ("\\sqrt{2}/2", "\\frac{\\sqrt2}{2}"),
    ("2\\pi", "\\pi \\cdot 2"),
    ("\\{3,-3\\}", "x=3 or x=-3"),
    ("\\{1,2,3\\}", "\\{3,2,1\\}"),
    ("(1,2)", "\\left( 1, 2 \\right)"),
    ("[1,2)", "[1, 2)"),
    ("x \\in [2,5)", "[2,5)"),
    ("x = 3", "3"),
    ("x>3", "3<x"),
    ("A", "(A)"),
    ("\\text{(B)}", "B"),
    ("\\text{Evelyn}", "Evelyn"),
    ("east", "\\text{east}"),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1 & 2\\\\ 3 & 4\\end{pmatrix}"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)"),
    ("1", "f(x) = 1"),
    ("[-2,7]", "-2 \\le x \\le 7"),
    ("(-1, 10)", "-1 < a < 10"),
    ("2x+4y-3=0", "y=-\\frac{1}{2}x+\\frac{3}{4}"),
    ("\\{-12,-11\\}", "-12;-11"),
    ("\\{-3,3\\}", "\\pm 3"),
    ("\\frac{1}{2}", "\\\\frac{1}{2}"),
    ("16386.20", "\\$16,\\!386.20"),
    ("(1,2),(3,4)", "(3,4),(1,2)"),
    ("\\{1,2\\}", "\\{1,2,2\\}"),
]
NOT_EQUAL = [
    ("0.5", "50\\%"),  # percent and its decimal: equal only with percent_fraction
    ("1/3", "0.333"),  # a rounded decimal: equal only with approximate
    ("12", "1/2"),
    ("2x", "x^2"),
    ("1/3", "0.33"),
    ("1/3", "0.3"),
    ("(1,2)", "(2,1)"),
    ("[1,2)", "(1,2]"),
    ("\\{1,2\\}", "\\{1,2,3\\}"),
    ("A", "B"),
    ("\\pi", "3.14159"),
    ("x>3", "x<3"),
    ("Evelyn", "Bob"),
    ("100", "1000"),
    ("-3", "3"),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&5\\end{pmatrix}"),
    ("3", "x+1=3"),
    ("2x+4y=3", "x+4y=3"),
    ("[-2,7]", "-2 < x \\le 7"),
    ("(1,2),(3,4)", "(1,2),(4,3)"),
]


@pytest.mark.parametrize(("gold", "pred"), EQUAL)
def test_equivalent_answers_verify(gold, pred):
    assert verify(gold, f"<answer>{pred}</answer>")


@pytest.mark.parametrize(("gold", "pred"), NOT_EQUAL)
def test_different_answers_do_not_verify(gold, pred):
    assert not verify(gold, f"<answer>{pred}</answer>")


def test_a_correct_number_in_the_reasoning_does_not_count():
    assert not verify("72", "<think>48 + 24 = 72</think> <answer>71</answer>")


def test_gold_may_be_a_whole_gsm8k_solution():
    assert verify("She sold 48/2 = <<48/2=24>>24 clips.\n#### 72", "<answer>72</answer>")


@pytest.mark.parametrize(
    "completion",
    [
        "\\boxed{10^{10^{10^{10}}}}",
        "\\boxed{9^{99999999}}",
        "\\boxed{100000!}",
        "\\boxed{" + "(" * 5000 + "1" + ")" * 5000 + "}",
        "<answer>" + "1+" * 50_000 + "1</answer>",
        "x" * 100_000,
        "\\boxed{\\frac{" * 2000,
    ],
)
def test_pathological_inputs_return_false_within_a_second(completion):
    start = time.perf_counter()
    assert verify("2", completion) is False
    assert time.perf_counter() - start < 1.0


def test_sympy_that_runs_too_long_is_cut_off_within_a_second():
    start = time.perf_counter()
    assert verify("2", "<answer>(x+1)^{999}-(x+1)^{998}</answer>") is False
    assert time.perf_counter() - start < 1.0


def test_a_set_of_slow_answers_shares_one_deadline():
    slow = "(x+1)^{999}-(x+1)^{998}, {(x+y+z)}^{200}, (1+\\sqrt{2})^{999}"
    start = time.perf_counter()
    assert verify("\\{a, b, c\\}", f"<answer>\\{{{slow}\\}}</answer>") is False
    assert time.perf_counter() - start < 1.0


def _in_threads(fn, args: list) -> None:
    threads = [threading.Thread(target=fn, args=(a,)) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_concurrent_slow_calls_do_not_wait_for_each_other():
    slow = ["(x+1)^{999}-(x+1)^{998}", "{(x+y+z)}^{200}", "(1+\\sqrt{2})^{999}"]
    _in_threads(lambda _: verify("x", "<answer>x+0</answer>"), slow)  # cold starts, untimed
    walls = []

    def timed(pred: str) -> None:
        start = time.perf_counter()
        verify("2", f"<answer>{pred}</answer>")
        walls.append(time.perf_counter() - start)

    _in_threads(timed, slow)
    assert max(walls) < 1.0, walls


def test_safe_from_threads(monkeypatch):
    # A fresh pool: a worker replaced after the timeouts above may still be importing sympy,
    # and a call that has to wait for one past its deadline answers False by design.
    monkeypatch.setattr(sympy_worker, "_pools", {})
    results = []
    pairs = [("x^2+2x+1", "(x+1)^2"), ("2x", "x^2")] * 4
    _in_threads(lambda pair: results.append(verify(*pair)), pairs)
    assert sorted(results) == [False] * 4 + [True] * 4


def test_math_reward_scores_against_the_answer_column():
    assert math_reward(
        ["q", "q"], ["<answer>4</answer>", "<answer>5</answer>"], answer=["4", "4"]
    ) == [1.0, 0.0]


def test_math_reward_with_answer_tag_ignores_an_untagged_right_answer():
    completions = ["so the answer is 4.", "<think>2+2</think> <answer>4</answer>"]
    assert math_reward(["q", "q"], completions, answer=["4", "4"], answer_tag=True) == [0.0, 1.0]


def test_math_reward_with_answer_tag_ignores_a_tag_inside_the_reasoning():
    completion = "<think> maybe <answer>4</answer> </think> so it is 4"
    assert math_reward(["q"], [completion], answer=["4"], answer_tag=True) == [0.0]


@pytest.mark.skipif(
    not (SHARED / "mathverify_cases.jsonl").is_file(),
    reason="no mathverify_cases.jsonl: set R1KIT_SHARED_DATA or put shared/data beside the repo",
)
def test_agreement_with_math_verify_conformance_cases():
    cases = [
        json.loads(line) for line in (SHARED / "mathverify_cases.jsonl").read_text().splitlines()
    ]
    cases = [c for c in cases if c["kind"] == "verify" and c["equal"] is not None]
    agree = sum(verify(c["gold"], c["pred"]) == c["equal"] for c in cases)
    assert agree / len(cases) >= AGREEMENT_FLOOR, f"{agree}/{len(cases)}"


AGREEMENT_FLOOR = 0.88  # measured 0.90; the misses are documented in docs/rewards.md
