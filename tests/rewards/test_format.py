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


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize(
    "text",
    [
        "<think>7</think> <answer>7 </think> <answer>7</answer>",  # seen in training
        "<think>a</think> </think> <answer>7</answer>",
        "<think>a <answer>7</answer></think> <answer>7</answer>",
        "<think>a</think> <answer>7</answer> <answer>8</answer>",
    ],
)
def test_a_repeated_tag_is_not_the_template(text, strict):
    assert format_reward(["q"], [text], strict=strict) == [0.0]


def test_partial_credit_for_all_four_tags_stays_below_the_template():
    repeated = "<think>7</think> <answer>7 </think> <answer>7</answer>"
    assert format_reward(["q"], [repeated], partial=True) == [0.75]


def test_partial_credit_counts_tags_in_order():
    texts = ["<think>a</think> 7", "<think>a</think> <answer>7", GOOD, "no tags"]
    assert format_reward(["q"] * 4, texts, partial=True) == [0.5, 0.75, 1.0, 0.0]


def test_chat_message_completions_are_accepted():
    assert format_reward(
        [[{"role": "user", "content": "q"}]], [[{"role": "assistant", "content": GOOD}]]
    ) == [1.0]


R1_PROMPT = (
    "The reasoning process and answer are enclosed within <think> </think> and <answer> "
    "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> "
    "answer here </answer>.\nUser: What is 23 + 45?\nAssistant: <think>"
)
PLACEHOLDER_COPY = " reasoning process here </think> <answer> 25 </answer>"  # the issue-19 hack


@pytest.mark.parametrize(
    "completion",
    [
        PLACEHOLDER_COPY,
        " Reasoning process here. </think> <answer> 25 </answer>",
        "</think> <answer> 25 </answer>",
        "   </think> <answer> 25 </answer>",
        " What is 23 + 45? </think> <answer> 25 </answer>",
        " 23 + 45 </think> <answer> 68 </answer>",
    ],
)
def test_substantive_pays_nothing_for_hollow_reasoning(completion):
    assert format_reward([R1_PROMPT], [completion], partial=True) == [1.0]  # the hack pays
    assert format_reward([R1_PROMPT], [completion], partial=True, substantive=True) == [0.0]


def test_substantive_pays_nothing_for_hollow_partial_form():
    assert format_reward([R1_PROMPT], [" reasoning process here </think>"], partial=True) == [0.5]
    hollow = [" reasoning process here </think>"]
    assert format_reward([R1_PROMPT], hollow, partial=True, substantive=True) == [0.0]


@pytest.mark.parametrize(
    "completion",
    [" 23 + 45 = 68 </think> <answer> 68 </answer>", " add 3 and 5, carry </think> <answer> 6"],
)
def test_substantive_keeps_credit_for_real_reasoning(completion):
    plain = format_reward([R1_PROMPT], [completion], partial=True)
    assert format_reward([R1_PROMPT], [completion], partial=True, substantive=True) == plain
    assert plain[0] > 0


def test_with_answer_counts_format_only_with_the_right_tagged_answer():
    completions = [
        " 23 + 45 = 68 </think> <answer> 68 </answer>",
        " 23 + 45 = 25 </think> <answer> 25 </answer>",
        " 23 + 45 = 68 </think> 68",
    ]
    scores = format_reward(
        [R1_PROMPT] * 3, completions, partial=True, with_answer=True, answer=["68"] * 3
    )
    assert scores == [1.0, 0.0, 0.0]


def test_with_answer_without_an_answer_column_is_refused():
    with pytest.raises(ValueError, match="answer"):
        format_reward([R1_PROMPT], [PLACEHOLDER_COPY], with_answer=True)
