from rewards.countdown import countdown_reward


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
