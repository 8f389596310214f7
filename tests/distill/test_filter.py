import pytest

from distill.filter import select
from distill.recipe import FilterConfig, RewardConfig


def record(problem, completion="<think>x</think> 1", tokens=5, math=1.0, fmt=1.0):
    return {
        "problem": problem,
        "prompt": "q",
        "answer": "1",
        "completion": completion,
        "tokens": tokens,
        "rewards": {"math": math, "format": fmt},
    }


def kept_tokens(records, **options):
    kept, _ = select(records, FilterConfig(**options))
    return [(r["problem"], r["tokens"]) for r in kept]


def test_math_one_is_the_default_test_and_wrong_traces_are_rejected():
    records = [record(0, math=0.0), record(0, tokens=7), record(1, math=0.0)]
    assert kept_tokens(records) == [(0, 7)]


def test_every_listed_reward_must_meet_its_threshold():
    rewards = [RewardConfig(name="math"), RewardConfig(name="format")]
    records = [record(0, fmt=0.4, tokens=3), record(0, fmt=0.6, tokens=4)]
    assert kept_tokens(records, rewards=rewards, accept={"format": 0.5, "math": 1.0}) == [(0, 4)]


def test_at_most_m_per_problem_shortest_first():
    records = [
        record(0, completion=f"<think>{i}</think>", tokens=t) for i, t in enumerate([9, 4, 6])
    ]
    assert kept_tokens(records, max_per_problem=2) == [(0, 4), (0, 6)]
    assert kept_tokens(records, max_per_problem=2, shortest_first=False) == [(0, 9), (0, 4)]
    assert len(kept_tokens(records, max_per_problem=None)) == 3


def test_duplicates_are_kept_once():
    records = [record(0, "<think>a  b</think>", 3), record(0, "<think>a b</think>", 4)]
    assert kept_tokens(records, max_per_problem=None) == [(0, 3)]
    assert len(kept_tokens(records, max_per_problem=None, deduplicate=False)) == 2


def test_length_bounds():
    records = [record(0, f"<think>{t}</think>", t) for t in (2, 5, 50)]
    assert kept_tokens(records, max_per_problem=None, min_tokens=3, max_tokens=10) == [(0, 5)]


def test_the_reasoning_must_be_closed():
    records = [record(0, "<think>never ends", 3), record(0, "<think>ends</think> 1", 8)]
    assert kept_tokens(records) == [(0, 8)]
    assert kept_tokens(records, require_think_close=False) == [(0, 3)]


def test_report_counts_acceptance_per_problem_and_problems_with_none():
    records = [record(0), record(0, math=0.0), record(1, math=0.0)]
    _, report = select(records, FilterConfig())
    assert report["acceptance"] == pytest.approx(1 / 3)
    assert report["problems_without_accepted"] == [1]
    assert report["per_problem"][0] == {"problem": 0, "generated": 2, "accepted": 1, "kept": 1}


def test_accept_must_name_a_listed_reward():
    with pytest.raises(ValueError, match="not in filter.rewards"):
        FilterConfig(accept={"format": 1.0})
