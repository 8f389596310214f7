import pytest

from rewards.format import format_reward

GOOD = "<think>3 + 4 = 7</think> <answer>7</answer>"


@pytest.mark.parametrize("strict", [True, False])
def test_well_formed_completion_scores_one(strict):
    assert format_reward(["q"], [GOOD], strict=strict) == [1.0]


def test_prefilled_think_in_the_prompt_counts_as_opened():
    prompt = "<|im_start|>assistant\n<think>"
    assert format_reward([prompt], ["3 + 4 = 7</think> <answer>7</answer>"]) == [1.0]
    assert format_reward(["plain prompt"], ["3 + 4 = 7</think> <answer>7</answer>"]) == [0.0]


def test_strict_rejects_text_around_the_template_lenient_accepts_it():
    text = "Sure! " + GOOD + " Hope this helps."
    assert format_reward(["q"], [text], strict=True) == [0.0]
    assert format_reward(["q"], [text], strict=False) == [1.0]


@pytest.mark.parametrize(
    "text",
    [
        "<answer>7</answer>",
        "<think>7</think>",
        "<answer>7</answer><think>x</think>",
        "<think>a</think><answer></answer>",
    ],
)
def test_incomplete_or_out_of_order_scores_zero(text):
    assert format_reward(["q"], [text]) == [0.0]


def test_partial_credit_counts_tags_in_order():
    texts = ["<think>a</think> 7", "<think>a</think> <answer>7", GOOD, "no tags"]
    assert format_reward(["q"] * 4, texts, partial=True) == [0.5, 0.75, 1.0, 0.0]


def test_chat_message_completions_are_accepted():
    assert format_reward(
        [[{"role": "user", "content": "q"}]], [[{"role": "assistant", "content": GOOD}]]
    ) == [1.0]
