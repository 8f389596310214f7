import pytest

from rewards.length import cosine_length_reward, overlong_penalty


@pytest.mark.parametrize(
    ("tokens", "expected"), [(10, 0.0), (384, 0.0), (448, -0.5), (512, -1.0), (600, -1.0)]
)
def test_dapo_soft_overlong_penalty(tokens, expected):
    ids = [[0] * tokens]
    assert overlong_penalty(["q"], ["x"], max_length=512, cache_length=128, completion_ids=ids) == [
        expected
    ]


def test_cosine_reward_prefers_short_correct_and_long_wrong():
    short, long = [[0] * 10], [[0] * 500]
    right, wrong = ["<answer>7</answer>"], ["<answer>8</answer>"]
    assert (
        cosine_length_reward(["q"], right, ["7"], completion_ids=short)[0]
        > cosine_length_reward(["q"], right, ["7"], completion_ids=long)[0]
    )
    assert (
        cosine_length_reward(["q"], wrong, ["7"], completion_ids=long)[0]
        > cosine_length_reward(["q"], wrong, ["7"], completion_ids=short)[0]
    )


def test_without_token_ids_four_characters_count_as_a_token():
    assert overlong_penalty(["q"], ["x" * 4 * 448], max_length=512, cache_length=128) == [-0.5]


def test_a_cache_longer_than_the_budget_is_refused():
    with pytest.raises(ValueError, match="need 0 < cache_length <= max_length"):
        overlong_penalty(["q"], ["x"], max_length=100, cache_length=200)
