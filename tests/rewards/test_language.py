import pytest

from rewards.language import language_reward


def test_all_english_reasoning_scores_one():
    assert language_reward(["q"], ["<think>add three and four</think><answer>7</answer>"]) == [1.0]


def test_mixed_script_reasoning_scores_its_share():
    assert language_reward(["q"], ["<think>add 三 and 四</think><answer>7</answer>"]) == [0.5]


def test_reasoning_opened_by_the_prompt_is_found():
    assert language_reward(["...<think>"], ["先 add</think><answer>7</answer>"]) == [0.5]


def test_other_target_script():
    assert language_reward(["q"], ["<think>三加四</think>"], target="zh") == [1.0]


def test_no_reasoning_is_not_applicable():
    assert language_reward(["q"], ["<answer>7</answer>"]) == [None]


def test_unknown_target_is_rejected():
    with pytest.raises(ValueError, match="unknown target 'xx'"):
        language_reward(["q"], ["<think>a</think>"], target="xx")
