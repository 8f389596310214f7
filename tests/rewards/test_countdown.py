import pytest

from rewards.countdown import countdown_reward, equation_form


def _score(answer: str, nums=(20, 5, 15), target=30) -> float:
    return countdown_reward(
        ["q"], [f"<think>...</think> <answer>{answer}</answer>"], [list(nums)], [target]
    )[0]


def test_equation_using_each_number_once_and_hitting_the_target_scores_one():
    assert _score("20 + 15 - 5") == 1.0
    assert _score("(20 - 15) * 5 + 5 - 5", nums=(20, 15, 5, 5, 5), target=25) == 1.0
    assert _score("20 + 15 - 5 = 30") == 1.0


def test_exact_fractions_are_used():
    assert _score("(5 / 20 + 15 / 20) * 30", nums=(5, 20, 15, 20, 30), target=30) == 1.0


def test_wrong_value_missing_or_reused_numbers_score_zero():
    assert _score("20 + 15 + 5") == 0.0
    assert _score("20 + 10") == 0.0
    assert _score("20 + 20 - 5 - 5", nums=(20, 5, 5), target=30) == 0.0


def test_anything_but_arithmetic_is_refused():
    assert _score("__import__('os').system('true')") == 0.0
    assert _score("2 ** 5") == 0.0
    assert _score("20 + 15 - 5; 1") == 0.0


def test_a_right_expression_with_a_wrong_claimed_value_scores_zero():
    assert _score("20 + 15 - 5 = 31") == 0.0
    assert _score("20 + 15 - 5 = 30 = 31") == 0.0


def test_candidates_in_reasoning_the_prompt_opened_score_zero():
    # Found by training: a prompt that pre-fills <think> left the candidates unclosed, and the
    # first "expr = value" of the reasoning was read as the answer.
    prompt = "<|im_start|>assistant\n<think>"
    reasoning = " 20 + 15 - 5 = 30, 20 - 15 + 5 = 10"
    assert countdown_reward([prompt], [reasoning], [[20, 5, 15]], [30]) == [0.0]
    closed = reasoning + " </think> <answer> 20 + 15 - 5 </answer>"
    assert countdown_reward([prompt], [closed], [[20, 5, 15]], [30]) == [1.0]


def test_only_a_tagged_equation_counts_unless_asked():
    untagged = ["<think>...</think> 20 + 15 - 5"]
    assert countdown_reward(["q"], untagged, [[20, 5, 15]], [30]) == [0.0]
    assert countdown_reward(["q"], untagged, [[20, 5, 15]], [30], answer_tag=False) == [1.0]


def test_valid_score_pays_a_legal_miss_but_never_a_non_equation():
    def scored(answer: str) -> float:
        completion = f"<think>...</think> <answer>{answer}</answer>"
        return countdown_reward(["q"], [completion], [[20, 5, 15]], [30], valid_score=0.1)[0]

    assert scored("20 + 15 - 5") == 1.0
    assert scored("20 + 15 + 5") == 0.1  # every number once, misses the target
    assert scored("20 + 15 - 5 = 31") == 0.1
    assert scored("30") == 0.0  # the target alone is no equation of the numbers
    assert scored("20 + 10") == 0.0
    assert scored("__import__('os')") == 0.0


def test_valid_score_must_stay_below_a_solution():
    with pytest.raises(ValueError, match="valid_score"):
        countdown_reward(["q"], ["x"], [[1, 2]], [3], valid_score=1.0)


@pytest.mark.parametrize(
    ("answer", "form"),
    [
        ("3 + 5 - 2", "a + b - c"),
        ("7+1-4 = 4", "a + b - c"),
        ("(4 * 6) / 3", "a * b / c"),
        ("4 * (6 / 3)", "a * (b / c)"),
        ("12 - (3 + 4)", "a - (b + c)"),
        ("3 \\times 5", "a * b"),
    ],
)
def test_equation_form_abstracts_the_numbers(answer, form):
    assert equation_form(answer) == form


@pytest.mark.parametrize("answer", [None, "x + 1", "3 +", "2 ** 3", "4 / 0"])
def test_equation_form_is_none_for_what_is_not_an_equation(answer):
    assert equation_form(answer) is None
