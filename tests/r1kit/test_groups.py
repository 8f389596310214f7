"""Scoring groups: the correctness check (curriculum, pass rates) goes the way of every reward."""

import os

import pytest

from r1kit.errors import UserError
from r1kit.groups import Group, solved
from rewards.registry import load_reward
from rewards.scoring import RewardPool
from rollout.types import Completion

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
