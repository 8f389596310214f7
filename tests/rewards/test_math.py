import json
import os
import threading
import time
from pathlib import Path

import mpmath
import pytest

from rewards import math as math_module
from rewards import math_sympy
from rewards.math import DEADLINE_S, OUTCOMES, Outcome, check, math_reward, verify
from rewards.math_extract import Found

SHARED = Path(
    os.environ.get("R1KIT_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")
)


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
    ("(5,8),(8,5)", "(x, y) = (5, 8) \\quad \\text{and} \\quad (8, 5)"),
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


# False positives the issue measured, by kind: each must stay unequal by default.
DECIMAL_APPROXIMATIONS = [
    ("1/3", "0.333"),
    ("\\frac{2}{3}", "0.667"),
    ("\\frac{2}{3}", "0.6666666667"),
    ("\\frac{1}{7}", "0.142857"),
    ("\\frac{1}{3}", "0.33333333333333333333"),
    ("\\pi", "3.14159265358979323846"),
    ("\\pi", "3.14159265358979323846264338327950288419716939937510"),
    ("\\pi", "3.1416"),
    ("\\sqrt{2}", "1.41421356237"),
    ("e", "2.718281828459045"),
    ("\\frac{\\sqrt{3}}{2}", "0.8660254037844386"),
    ("2\\pi", "6.283185307179586"),
]
REPEATED_VALUES = [
    "3, 3",
    "3,3,3",
    "\\{3, 3\\}",
    "3 and 3",
    "x=3 or x=3",
    "\\boxed{3} and \\boxed{3}",
]
PERCENT_AS_DECIMAL = [
    ("50\\%", "0.5"),
    ("12.5\\%", "0.125"),
    ("0.25", "25\\%"),
    ("5\\%", "\\frac{1}{20}"),
    ("0.5", "50 percent"),
]
UNCLOSED_THINK = [
    "<think>the answer is 42",
    "<think>\\boxed{42}",
    "<think><answer>42</answer>",
    "<think>ok</think> <think>42",
]


# What GRPO found on three-digit multiplication (issue 34's baseline): the question restated as
# the answer, which sympy would evaluate to the gold.
UNEVALUATED_ARITHMETIC = [
    ("81162", "162 * 501"),
    ("81162", "162 \\times 501"),
    ("81162", "162\\cdot501"),
    ("81162", "81000 + 162"),
    ("81162", "81163 - 1"),
    ("1024", "2^{10}"),
    ("6", "3!"),
    ("3", "(1 + 2)"),
]


@pytest.mark.parametrize(("gold", "pred"), UNEVALUATED_ARITHMETIC)
def test_arithmetic_left_undone_is_not_a_numeric_answer(gold, pred):
    assert not verify(gold, f"<answer>{pred}</answer>")
    assert not verify(gold, f"<answer>{pred}</answer>", approximate=True)


@pytest.mark.parametrize(("gold", "pred"), [("81162", "81,162"), ("-5", "-5"), ("90", "90^\\circ")])
def test_a_number_written_out_is_still_its_value(gold, pred):
    assert verify(gold, f"<answer>{pred}</answer>")


@pytest.mark.parametrize(("gold", "pred"), DECIMAL_APPROXIMATIONS)
def test_a_decimal_approximation_is_not_an_exact_gold(gold, pred):
    assert not verify(gold, f"<answer>{pred}</answer>")


@pytest.mark.parametrize("pred", REPEATED_VALUES)
def test_a_collection_repeating_the_value_is_not_the_value(pred):
    assert not verify("3", f"<answer>{pred}</answer>")
    assert not verify("3", pred)


@pytest.mark.parametrize(("gold", "pred"), PERCENT_AS_DECIMAL)
def test_a_percentage_is_not_its_decimal_by_default(gold, pred):
    assert not verify(gold, f"<answer>{pred}</answer>")
    assert verify(gold, f"<answer>{pred}</answer>", percent_fraction=True)


@pytest.mark.parametrize("completion", UNCLOSED_THINK)
def test_an_answer_inside_an_unclosed_think_does_not_count(completion):
    assert check("42", completion) is Outcome.NO_ANSWER


# False negatives the issue measured, by kind: each must now be equal.
REPEATING_DECIMALS = [
    ("\\frac{1}{3}", "0.\\overline{3}"),
    ("\\frac{1}{3}", "0.(3)"),
    ("\\frac{1}{6}", "0.1\\overline{6}"),
    ("\\frac{1}{7}", "0.\\overline{142857}"),
    ("-\\frac{2}{3}", "-0.\\overline{6}"),
    ("\\frac{611}{495}", "1.2(34)"),
]
SCIENTIFIC = [
    ("300000", "3\\times10^{5}"),
    ("300000", "3 \\times 10^5"),
    ("300000", "3e5"),
    ("0.00032", "3.2e-4"),
    ("100000", "10^{5}"),
    ("10^5", "100000"),
    ("1.5\\times10^{3}", "1500"),
    ("2\\cdot10^{-2}", "0.02"),
]
UNITS_AFTER_SYMBOLS = [
    ("\\frac{1}{2}", "\\frac{1}{2} cm"),
    ("5", "5 dollars"),
    ("3\\pi", "3\\pi square units"),
    ("2\\sqrt{3}", "2\\sqrt{3}\\text{ cm}"),
    ("12", "12 m^2"),
    ("\\frac{9}{4}", "\\frac{9}{4} \\text{ inches}"),
    ("7", "7 \\mbox{ apples}"),
]
EVALUATED = [
    ("-1", "i^2"),
    ("-1", "e^{i\\pi}"),
    ("1", "i^4"),
    ("-i", "i^3"),
    ("0", "e^{i\\pi}+1"),
    ("2", "(1+i)(1-i)"),
    ("\\frac{\\sqrt{6}-\\sqrt{2}}{4}", "\\sin\\frac{\\pi}{12}"),
    ("\\frac{3\\pi}{2}", "1.5\\pi"),
]


@pytest.mark.parametrize(
    ("gold", "pred"), REPEATING_DECIMALS + SCIENTIFIC + UNITS_AFTER_SYMBOLS + EVALUATED
)
def test_spellings_the_issue_found_unequal_are_equal(gold, pred):
    assert verify(gold, f"<answer>{pred}</answer>")


def test_exact_constants_that_agree_to_12_digits_are_still_different():
    # e^{pi sqrt(163)} - 640320^3 - 744 is about -7.5e-13: a fixed 1e-12 tolerance called it 0
    assert not verify("e^{\\pi\\sqrt{163}}", "<answer>640320^3+744</answer>")


def test_a_300_decimal_pi_is_compared_beyond_float_range():
    # 10.0**-330 underflows to 0: the comparison must stay in exact arithmetic
    with mpmath.workdps(350):
        pi = mpmath.nstr(mpmath.pi, 301, strip_zeros=False)  # 300 decimals, correctly rounded
    assert not verify("\\pi", f"<answer>{pi}</answer>")
    assert verify("\\pi", f"<answer>{pi}</answer>", approximate=True)


@pytest.mark.parametrize(
    ("gold", "pred"),
    [
        ("1/3", "0.333"),
        ("1/3", "0.3333"),
        ("1/3", "0.3"),  # "to the nearest tenth"
        ("\\pi", "3.14"),
        ("\\sqrt{2}", "1.414"),
        ("4.123105625617661", "\\sqrt{17}"),  # a rounded gold against the exact value
    ],
)
def test_approximate_accepts_the_gold_rounded_to_the_decimals_written(gold, pred):
    assert verify(gold, f"<answer>{pred}</answer>", approximate=True)


@pytest.mark.parametrize(
    ("gold", "pred"),
    [
        ("1/3", "0.334"),  # not the rounding
        ("\\pi", "3.15"),
        ("0.34", "0.3"),  # fewer decimals than the gold writes
        ("1/3", "0"),  # an integer is not a rounded decimal
        ("\\sqrt{2}", "1.4143"),
    ],
)
def test_approximate_rejects_what_is_not_that_rounding(gold, pred):
    assert not verify(gold, f"<answer>{pred}</answer>", approximate=True)


@pytest.mark.parametrize(
    ("gold", "pred", "equal"),
    [
        ("(1,2)", "1, 2", True),  # a bare list against a tuple keeps its order
        ("(1,2)", "2, 1", False),
        ("\\{1,2\\}", "(1,2)", False),  # a set is not a tuple
        ("(1,2)", "\\{1,2\\}", False),
        ("\\{1,2\\}", "2, 1", True),
        ("\\emptyset", "\\{\\}", True),
        ("\\varnothing", "\\emptyset", True),
        ("\\{\\}", "\\{0\\}", False),
        ("\\{\\}", "0", False),
    ],
)
def test_collections_compare_as_collections(gold, pred, equal):
    assert verify(gold, f"<answer>{pred}</answer>") is equal


@pytest.mark.parametrize(
    ("gold", "completion"),
    [
        ("\\{\\}", "<answer>\\{1\\}</answer>"),  # raised IndexError
        ("\\{1\\}", "<answer>\\{\\}</answer>"),
        (None, "<answer>1</answer>"),
        ("1", None),
        (1, "<answer>1</answer>"),
        ("1", 5),
        ("1", [{"content": None}]),
        ("1", [{"role": "assistant"}]),
        ("1", object()),
        ("\\frac{1}{0}", "<answer>1/0</answer>"),
        ("x", "<answer>\\frac{}{}</answer>"),
        ("x", "<answer>\\begin{pmatrix}1&2\\end{pmatrix}+x</answer>"),
        ("", ""),
    ],
)
def test_verify_never_raises_on_bad_input(gold, completion):
    assert verify(gold, completion) in (True, False)
    assert isinstance(check(gold, completion), Outcome)


def test_an_internal_error_is_false_and_counted(monkeypatch):
    def broken(*_):
        raise IndexError("list index out of range")

    monkeypatch.setattr(math_module, "equivalent", broken)
    before = OUTCOMES[Outcome.ERROR]
    assert verify("1", "<answer>1</answer>") is False
    assert OUTCOMES[Outcome.ERROR] == before + 1


def test_extraction_time_counts_against_the_deadline(monkeypatch):
    def slow_extraction(*_):
        time.sleep(DEADLINE_S)
        return Found("(x+1)^2")  # needs sympy, and no time is left for it

    monkeypatch.setattr(math_module, "find_answer", slow_extraction)
    start = time.perf_counter()
    assert check("x^2+2x+1", "<answer>(x+1)^2</answer>") is Outcome.TIMEOUT
    assert time.perf_counter() - start < DEADLINE_S + 0.2


@pytest.mark.parametrize(
    "piece", ["<answer>", "\\(", "\\[", "$", "\\boxed{", "\\boxed{1} and ", "{", "answer is "]
)
def test_a_100k_adversarial_completion_returns_within_the_deadline(piece):
    completion = piece * (100_000 // len(piece))
    start = time.perf_counter()
    assert verify("1", completion) is False
    assert time.perf_counter() - start < DEADLINE_S + 0.2


def test_math_reward_passes_its_options_to_verify():
    completions = ["<answer>0.333</answer>", "<answer>0.5</answer>"]
    golds = ["1/3", "50\\%"]
    assert math_reward(["q", "q"], completions, answer=golds) == [0.0, 0.0]
    assert math_reward(
        ["q", "q"], completions, answer=golds, approximate=True, percent_fraction=True
    ) == [1.0, 1.0]


@pytest.mark.parametrize(
    ("completion", "score"),
    [
        ("so the answer is 42", 0.0),  # still inside the <think> the prompt opened
        ("\\boxed{42}", 0.0),
        ("hmm</think> the answer is 42", 1.0),
        ([{"role": "assistant", "content": "hmm</think> <answer>42</answer>"}], 1.0),
    ],
)
def test_a_prompt_that_opened_think_leaves_the_completion_inside_it(completion, score):
    prompt = "<|im_start|>assistant\n<think>"
    assert math_reward([prompt], [completion], answer=["42"]) == [score]


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
    assert check("2", "<answer>(x+1)^{999}-(x+1)^{998}</answer>") is Outcome.TIMEOUT
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
    monkeypatch.setattr(math_sympy, "_pools", {})
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


AGREEMENT_FLOOR = 0.89  # measured 0.911 (strict); the misses are documented in docs/rewards.md


# Issue 31: answers the completion does not give, by kind, in <answer> and in \boxed.
WRAPS = {"tag": "<answer>{}</answer>", "boxed": "\\boxed{{{}}}"}


@pytest.fixture(params=list(WRAPS), ids=list(WRAPS))
def wrap(request):
    return lambda answer: WRAPS[request.param].format(answer)


NEGATED_AROUND = [
    "The answer is not {}.",
    "The final answer is **NOT** {}",
    "It isn't {}.",
    "It cannot be {}.",
    "It is hardly {}.",
    "It is more than {}.",
    "{} is wrong.",
    "{} is incorrect",
    "{} would be wrong",
    "{}? No.",
    "{}. Nope.",
    "{} -- wait, that's not right.",
    "{}, which is not the answer",
    "{} ❌",
    "{} (just kidding)",
]
NEGATED_INSIDE = ["\\neq 12", "≠ 12", "not 12", "\\text{not } 12", "12 (wrong)", "12? No"]


@pytest.mark.parametrize("around", NEGATED_AROUND)
def test_a_final_answer_the_text_negates_is_ambiguous(wrap, around):
    assert check("12", around.format(wrap("12"))) is Outcome.AMBIGUOUS


@pytest.mark.parametrize("answer", NEGATED_INSIDE)
def test_an_answer_that_negates_itself_is_ambiguous(wrap, answer):
    assert check("12", wrap(answer)) is Outcome.AMBIGUOUS


@pytest.mark.parametrize(
    "completion",
    ["the answer is not 12", "so it is not 12.", "It's not $12$", "12? No.", "12 is wrong"],
)
def test_a_negated_last_number_or_stated_answer_is_ambiguous(completion):
    assert check("12", completion) is Outcome.AMBIGUOUS


@pytest.mark.parametrize(
    ("gold", "completion"),
    [
        ("13", "12 is not prime, so the answer is 13"),
        ("13", "The answer is 13, not 12."),
        ("13", "The answer is $13$ rather than $12$."),
        ("13", "The answer is not 12 but 13."),
        ("13", "12 is wrong; \\boxed{13}"),
        ("13", "Is it 12? No. \\boxed{13}"),
        ("13", "\\boxed{13}. No other value works."),
        ("13", "\\boxed{13}. I hope it is correct."),
        ("13", "\\boxed{13}, which is not divisible by 5."),
        ("2", "Therefore, Zach can have at most $\\boxed{2}$ pencils left over."),  # MATH-500
        ("x \\neq 3", "<answer>x \\neq 3</answer>"),
        ("x \\neq 3", "\\boxed{x \\neq 3}"),
        ("No", "<answer>No</answer>"),
        ("\\text{not possible}", "\\boxed{\\text{not possible}}"),
        ("1000.99", "the number is not 10 which is 1,000.99"),
    ],
)
def test_negation_words_that_do_not_negate_the_final_answer_leave_it(gold, completion):
    assert verify(gold, completion)


HIDDEN_BESIDE_VISIBLE_13 = [
    "\\phantom{12}13",
    "13\\vphantom{12}",
    "13\\hphantom{12}",
    "{\\color{white}12}13",
    "\\textcolor{white}{12}13",
    "\\textcolor[HTML]{FFFFFF}{12}13",
    "\\mathcolor{white}{12}13",
    "13\\iffalse 12\\fi",
    "\\cancel{12}13",
    "\\sout{12} 13",
    "13<!-- 12 -->",
    "13\\scalebox{0}{12}",
    "1\u200b3",
]


@pytest.mark.parametrize("answer", HIDDEN_BESIDE_VISIBLE_13)
def test_invisible_latex_inside_the_answer_is_not_read(wrap, answer):
    assert not verify("12", wrap(answer))
    assert verify("13", wrap(answer))


HIDDEN_FINAL_ANSWER = [
    "\\phantom{{{}}}",
    "\\vphantom{{{}}}",
    "\n% {}",
    "\\newcommand{{\\x}}{{{}}}",
    "\\def\\x{{{}}}",
    "$ % {}\n$",
    "<!-- {} -->",
    "{{\\color{{white}} {}}}",
    "\\textcolor{{white}}{{{}}}",
    "\\iffalse {} \\fi",
    "\\begin{{comment}}{}\\end{{comment}}",
    "~~{}~~",
    "<del>{}</del>",
    '<span style="display:none">{}</span>',
    "<div hidden>{}</div>",
    "<details>{}</details>",
    "<style>{}</style>",
    '<img src="x.png" alt="{}">',
    "![{}](x.png)",
    " [see](https://x.org/{})",
    "\n[1]: {}",
]


@pytest.mark.parametrize("hidden", HIDDEN_FINAL_ANSWER)
def test_an_invisible_final_answer_is_not_taken_over_the_visible_one(wrap, hidden):
    for visible_answer in ("The answer is 13. ", "The answer is 13"):
        completion = visible_answer + hidden.format(wrap("12"))
        assert not verify("12", completion)
        assert verify("13", completion)


@pytest.mark.parametrize(
    "completion",
    [
        "<answer>\u202e21</answer>",
        "\\boxed{1\u20662\u2069}",
        "The answer is 13\\hspace{-3em}\\boxed{12}",
        "<answer>\\llap{12}13</answer>",
    ],
)
def test_text_reordered_or_moved_over_other_text_is_ambiguous(completion):
    assert check("12", completion) is Outcome.AMBIGUOUS
    assert check("21", completion) is Outcome.AMBIGUOUS


@pytest.mark.parametrize(
    ("joined", "spaced"),
    [
        ("12", "1 2"),
        ("1234", "12 34"),
        ("12", "1\\,2"),
        ("12", "1~2"),
        ("12", "1\\ 2"),
        ("12", "1\\quad 2"),
        ("12", "1\u20092"),
        ("1234", "1 2 3 4"),
        ("12", "1\n2"),
        ("12", "1\\phantom{0}2"),  # a phantom keeps its width
        ("10000", "1 0000"),  # thousands come in threes
        ("3.14", "3. 14"),
        ("3.14", "3 .14"),
    ],
)
def test_digits_set_apart_are_not_one_number(wrap, joined, spaced):
    assert not verify(joined, wrap(spaced))
    assert not verify(joined, f"The answer is {spaced}.")


@pytest.mark.parametrize(
    ("gold", "spaced"),
    [
        ("1000000", "1 000 000"),
        ("1000000", "1\\,000\\,000"),
        ("1000000", "1\u2009000\u2009000"),  # thin spaces
        ("1000", "1\u202f000"),  # narrow no-break space
        ("12345.5", "12 345.5"),
    ],
)
def test_digits_grouped_in_threes_are_one_number(wrap, gold, spaced):
    assert verify(gold, wrap(spaced))


@pytest.mark.parametrize(
    "one_element_set",
    ["\\{5\\}", "\\left\\{ 5 \\right\\}", "\\lbrace 5 \\rbrace", "\\{5, 5\\}"],
)
def test_a_set_of_one_element_is_not_its_element(wrap, one_element_set):
    assert not verify("5", wrap(one_element_set))
    assert not verify(one_element_set, wrap("5"))
    assert verify("\\{5\\}", wrap(one_element_set))


@pytest.mark.parametrize(
    ("gold", "completion", "equal"),
    [
        ("5", "<answer>{5}</answer>", False),  # seen as braces: a set
        ("\\{5\\}", "<answer>{5}</answer>", True),
        ("5", "\\boxed{{5}}", True),  # in math, braces only group
        ("5", "<answer>${5}$</answer>", True),
        ("\\{5\\}", "<answer>x \\in \\{5\\}</answer>", True),
    ],
)
def test_plain_braces_are_a_set_where_they_are_seen(gold, completion, equal):
    assert verify(gold, completion) is equal


def test_braces_in_a_math_span_within_prose_only_group():
    assert verify("5", "We checked every case and found ${5}$ in the end")


# Two worked solutions the checker already misread before issue 31: "so our answer is correct"
# after the box is read as the stated answer; two boxes joined by "or" are not one answer.
KNOWN_MISREAD_SOLUTIONS = {"test/number_theory/1000.json", "test/number_theory/459.json"}


@pytest.mark.skipif(
    not (SHARED / "math500.jsonl").is_file() or not (SHARED / "gsm8k_test.jsonl").is_file(),
    reason="no math500.jsonl / gsm8k_test.jsonl: set R1KIT_SHARED_DATA",
)
def test_honest_worked_solutions_still_verify_against_their_answers():
    # The negation, visibility and digit rules must not cost honest answers: 1,819 real
    # solutions (their words around the box included) as completions, about 2 s.
    misread = set()
    for name, key in (("math500.jsonl", "unique_id"), ("gsm8k_test.jsonl", None)):
        for i, line in enumerate((SHARED / name).read_text().splitlines()):
            row = json.loads(line)
            if not verify(row["answer"], row["solution"]):
                misread.add(row[key] if key else f"{name}:{i}")
    assert misread <= KNOWN_MISREAD_SOLUTIONS, misread - KNOWN_MISREAD_SOLUTIONS
