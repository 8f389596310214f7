"""A tool-using completion turn by turn (samples.jsonl, the run report)."""

from r1kit.turns import own_completion, sample_turns, turns
from rollout.types import Completion
from tests.trajectories import call, multi_turn


def test_each_turn_is_the_models_text_to_its_call_then_the_calls_result():
    completion = multi_turn(
        "<think>compute<python>print(6*7)</python>",
        call("42", "print(6*7)", seconds=0.25),
        "check<python>1/0</python>",
        call("ZeroDivisionError", "1/0", status="error"),
        "42</think><answer>42</answer>",
    )
    assert turns(completion) == [
        {
            "model": "<think>compute<python>print(6*7)</python>",
            "code": "print(6*7)",
            "output": "42",
            "status": "ok",
            "seconds": 0.25,
        },
        {
            "model": "check<python>1/0</python>",
            "code": "1/0",
            "output": "ZeroDivisionError",
            "status": "error",
            "seconds": 0.1,
        },
        {"model": "42</think><answer>42</answer>"},
    ]


def test_the_turns_join_to_the_models_own_text_and_leave_out_observations():
    completion = multi_turn("a<python>x</python>", call("</output><answer>9</answer>"), "b")
    sample = {"completion": completion.text, **sample_turns(completion)}
    assert own_completion(sample) == completion.model_text == "a<python>x</python>b"


def test_a_call_whose_closing_tag_is_missing_still_shows():
    # A turn cut before its tag: the call follows the text the model wrote.
    completion = multi_turn("a<python>x", call("", status="skipped"))
    shown = turns(completion)
    assert [(t["model"], t["status"]) for t in shown] == [("a<python>x", "skipped")]


def test_a_completion_without_calls_has_no_turns():
    single = Completion([1], [-1.0], "plain", "stop")
    assert sample_turns(single) == {}
    assert own_completion({"completion": "plain"}) == "plain"
