import time

import pytest

from rewards.math_extract import after_reasoning, extract_answer, find_answer

N = 100_000  # characters of each adversarial completion


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


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("so \\boxed{255} ... The final answer is $10,455$. I hope it is correct.", "$10,455$"),
        ("The answer is $\\boxed{7}$.", "7"),
        ("Final Answer: The final answer is $28\\%$. I hope it is correct.", "$28\\%$"),
        ("the answer is 3. Check: \\boxed{4}", "4"),
    ],
)
def test_the_later_of_a_box_and_a_stated_answer_wins(completion, expected):
    assert extract_answer(completion) == expected


@pytest.mark.parametrize(
    "completion",
    [
        "<think>the answer is 42",
        "<think>so \\boxed{42}",
        "<think><answer>42</answer>",
        "<think>#### 42",
        "<think>a</think> <think>on second thought \\boxed{42}",
        "<think>a</think><think>b</think> <think>42",
    ],
)
def test_nothing_inside_an_unclosed_think_is_an_answer(completion):
    assert extract_answer(completion) is None
    assert extract_answer(completion, answer_tag=True) is None


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("reasoning</think> <answer>42</answer>", "42"),  # the prompt opened <think>
        ("<think>7</think> \\boxed{42} <think>", "42"),
        ("<think>7</think> the answer is 42. <think>", "42"),
    ],
)
def test_an_answer_outside_the_reasoning_still_counts(completion, expected):
    assert extract_answer(completion) == expected


def test_after_reasoning_cuts_at_a_reopened_think():
    assert after_reasoning("a</think> b <think> c") == " b "


@pytest.mark.parametrize(
    "completion",
    [
        "AZYUK2A",  # a number glued to letters is not a number
        "x2y",
    ],
)
def test_digits_inside_a_word_are_not_the_last_number(completion):
    assert extract_answer(completion) != "2"


@pytest.mark.parametrize(
    "piece",
    [
        "<answer>",
        "</answer>",
        "<answer>\\boxed{",
        "\\boxed{",
        "\\boxed",
        "\\fbox{",
        "\\boxed{1} and ",
        "{",
        "}",
        "$",
        "$$",
        "\\(",
        "\\[",
        "\\)",
        "the answer is ",
        "Final Answer: ",
        "####",
        "<think>",
        "</think>",
        "1,",
        "-.",
        "$1$ ",  # every span and number is a candidate
        "1, not ",
        "\\boxed{1} is wrong ",
        "\\phantom{",
        "{\\color{x}",
        "%",
        "<!--",
    ],
)
def test_extraction_is_linear_on_repeated_tags_and_braces(piece):
    # The quadratic regexes these replaced took 9-29 s on 100k characters of `<answer>` or `\(`.
    # This thread's CPU time: the process's counts threads that earlier tests left working.
    completion = (piece * (N // len(piece) + 1))[:N]
    start = time.thread_time()
    extract_answer(completion)
    extract_answer(completion, answer_tag=True)
    assert time.thread_time() - start < 1.0  # both calls: each well under the 1 s a call may take


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("The answer is 13, not 12.", "13"),
        ("The answer is $13$ rather than $12$.", "13"),
        ("so 13 (not 12)", "13"),
        ("The answer is not 12 but 13.", "13"),
    ],
)
def test_a_contrast_reads_the_answer_before_it(completion, expected):
    assert extract_answer(completion) == expected


@pytest.mark.parametrize(
    "completion",
    ["The answer is not 12.", "\\boxed{12} is wrong", "<answer>\\neq 12</answer>", "so not 12"],
)
def test_a_negated_answer_is_found_ambiguous_and_extracts_as_none(completion):
    assert find_answer(completion).ambiguous
    assert extract_answer(completion) is None


def test_extraction_reads_only_the_visible_text():
    assert extract_answer("The answer is 13. <!-- \\boxed{12} -->") == "13"
    assert extract_answer("<think>a</think> \\phantom{<answer>12</answer>} 13") == "13"
