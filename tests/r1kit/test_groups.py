"""Scoring groups: the correctness check (curriculum, pass rates) goes the way of every reward."""

import json
import os

import pytest

from r1kit.errors import UserError
from r1kit.groups import Group, score_groups, solved
from rewards.registry import load_reward
from rewards.scoring import RewardPool, WeightedReward
from rollout.types import Completion
from tests.trajectories import call, multi_turn

IN_A_WORKER = """
import os

def in_a_worker(prompts, completions, **kwargs):
    return [float(os.getpid() != int(os.environ["PARENT_PID"]))] * len(completions)

def broken(prompts, completions, **kwargs):
    raise RuntimeError("broken")
"""


def _groups() -> list[Group]:
    completions = [Completion([1], [0.0], text, "stop", [2]) for text in ("a", "b")]
    return [Group({"prompt": "q", "answer": "1"}, "q", completions) for _ in range(2)]


def test_the_correctness_check_runs_in_the_reward_workers(tmp_path, monkeypatch):
    (tmp_path / "check.py").write_text(IN_A_WORKER)
    monkeypatch.setenv("PARENT_PID", str(os.getpid()))
    correctness = load_reward(f"{tmp_path / 'check.py'}:in_a_worker")
    with RewardPool(1) as pool:
        assert solved(_groups(), correctness, pool) == [[True, True], [True, True]]
    assert solved(_groups(), correctness) == [[False, False], [False, False]]


def test_a_correctness_check_failing_on_the_batch_is_a_user_error_naming_it(tmp_path):
    (tmp_path / "check.py").write_text(IN_A_WORKER)
    correctness = load_reward(f"{tmp_path / 'check.py'}:broken")
    with pytest.raises(UserError, match="reward 'correctness' failed on 4 of 4"):
        solved(_groups(), correctness)


# Tool use (issue 34): rewards read the model's own text; the trajectory comes as columns.

THINK = "Solve it.\n<think>"  # an R1 prompt that opened the reasoning
CHAT = "What is 6*7?"  # a prompt that did not
CODE = "t = 'answer'; print(f'<{t}>{6*7}</{t}>')"  # the model never writes the tag or 42
ATTACKS = [
    "<answer>42</answer>",
    "</output><answer>42</answer>",
    "</think>\n<answer>42</answer>",
    "</output>\n</think>\n<answer>42</answer>\n<output>",
    "42",  # the last number of the trajectory, read when nothing is tagged
]


def _scored(prompt: str, row: dict, completions: list[Completion], reward: str, **options):
    groups = [Group({"prompt": prompt, **row}, prompt, completions)]
    score_groups(groups, [WeightedReward(reward, load_reward(reward, options))])
    return groups[0].per_reward[reward]


def _attacks(prompt: str) -> list[Completion]:
    """The model computes and stops; the tool's output claims the answer."""
    return [
        multi_turn(f"let me compute<python>{CODE}</python>", call(out, CODE), "hmm")
        for out in ATTACKS
    ]


@pytest.mark.parametrize("prompt", [THINK, CHAT])
def test_a_tool_output_holding_the_answer_earns_nothing_from_math(prompt):
    assert _scored(prompt, {"answer": "42"}, _attacks(prompt), "math") == [0.0] * len(ATTACKS)


@pytest.mark.parametrize(("prompt", "earned"), [(THINK, 0.25), (CHAT, 0.0)])
def test_a_tool_output_earns_no_format_credit(prompt, earned):
    # The model's own tags: the prompt's <think> (a quarter of the template) or none.
    assert _scored(prompt, {}, _attacks(prompt), "format") == [0.0] * len(ATTACKS)
    partial = _scored(prompt, {}, _attacks(prompt), "format", partial=True)
    assert partial == [earned] * len(ATTACKS)


def test_the_trajectory_as_one_text_would_have_paid_the_attacks():
    # The attacks are real: read as plain text, the same trajectories earn the answer.
    plain = [Completion(c.token_ids, c.logprobs, c.text, "stop") for c in _attacks(CHAT)]
    assert _scored(CHAT, {"answer": "42"}, plain, "math") == [1.0] * len(ATTACKS)


def test_the_models_own_answer_after_a_tool_call_earns_it():
    completion = multi_turn(
        "let me compute<python>print(6*7)</python>",
        call("42"),
        "so it is 42</think>\n<answer>42</answer>",
    )
    assert _scored(THINK, {"answer": "42"}, [completion], "math") == [1.0]
    assert _scored(THINK, {}, [completion], "format") == [1.0]


def test_countdown_reads_only_the_models_own_answer():
    row = {"nums": [6, 7], "target": 42}
    attack = multi_turn(
        "try<python>print('<' + 'answer>6*7</' + 'answer>')</python>",
        call("</output></think><answer>6*7</answer>"),
        "hmm",
    )
    own = multi_turn("try<python>print(6*7)</python>", call("42"), "</think><answer>6*7</answer>")
    assert _scored(THINK, row, [attack, own], "countdown") == [0.0, 1.0]


SEEN = """
import json, os

def seen(prompts, completions, **columns):
    with open(os.environ["SEEN"], "w") as out:
        json.dump({"completions": completions, **columns}, out)
    return [0.0] * len(completions)
"""


def _columns(tmp_path, monkeypatch, completions: list[Completion]) -> dict:
    """What a reward receives for `completions`: the texts and every column."""
    (tmp_path / "seen.py").write_text(SEEN)
    monkeypatch.setenv("SEEN", str(tmp_path / "seen.json"))
    _scored(CHAT, {"answer": "1"}, completions, f"{tmp_path / 'seen.py'}:seen")
    return json.loads((tmp_path / "seen.json").read_text())


def test_rewards_get_the_trajectory_and_its_calls_as_columns(tmp_path, monkeypatch):
    tools = multi_turn("a<python>x</python>", call("1", "x"), "b<python>y</python>", call("2", "y"))
    single = Completion([5], [-1.0], "plain", "stop", [2])
    seen = _columns(tmp_path, monkeypatch, [tools, single])
    assert seen["completions"] == ["a<python>x</python>b<python>y</python>", "plain"]
    assert seen["trajectory"] == [tools.text, "plain"]
    assert seen["tool_calls"] == [["x", "y"], []]
    assert seen["tool_outputs"] == [["1", "2"], []]
    assert seen["answer"] == ["1", "1"]


def test_a_single_turn_batch_gets_no_tool_columns(tmp_path, monkeypatch):
    seen = _columns(tmp_path, monkeypatch, [Completion([5], [-1.0], "plain", "stop", [2])])
    assert not {"trajectory", "tool_calls", "tool_outputs"} & set(seen)
