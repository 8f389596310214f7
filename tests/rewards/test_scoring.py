import os

import pytest

from rewards.registry import RewardError, load_reward
from rewards.scoring import RewardPool, WeightedReward, score


def _constant(value):
    return lambda prompts, completions, **kw: [value] * len(completions)


def test_total_is_the_weighted_sum_and_none_adds_nothing():
    rewards = [
        WeightedReward("a", _constant(1.0), 1.0),
        WeightedReward("b", lambda p, c, **kw: [0.5, None], 2.0),
    ]
    scores = score(rewards, ["q", "q"], ["x", "y"], {})
    assert scores.total == [2.0, 1.0]
    assert scores.per_reward["b"] == [0.5, None]


def test_stats_leave_out_not_applicable_values():
    rewards = [WeightedReward("b", lambda p, c, **kw: [1.0, None, 0.0], 1.0)]
    stats = score(rewards, ["q"] * 3, ["x"] * 3, {}).stats()
    assert stats["reward/b/mean"] == 0.5 and stats["reward/b/std"] == 0.5


def test_columns_reach_the_reward():
    seen = {}

    def reward(prompts, completions, answer, **kw):
        seen["answer"] = answer
        return [0.0] * len(completions)

    score([WeightedReward("r", reward)], ["q"], ["x"], {"answer": ["42"]})
    assert seen["answer"] == ["42"]


def test_a_reward_that_raises_is_named_with_the_sample():
    def fragile(prompts, completions, **kw):
        return [1.0 / len(c) for c in completions]

    with pytest.raises(RewardError, match=r"reward 'fragile' raised ZeroDivisionError.*sample 1"):
        score([WeightedReward("fragile", fragile)], ["q", "q"], ["ok", ""], {})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1.0], "returned 1 values for 2 completions"),
        ([1.0, "high"], "returned 'high' for sample 1"),
        (3.0, "returned float"),
    ],
)
def test_wrong_length_or_type_is_reported(values, message):
    with pytest.raises(RewardError, match=message):
        score([WeightedReward("bad", lambda p, c, **kw: values)], ["q", "q"], ["x", "y"], {})


def test_a_pool_spreads_a_file_reward_over_worker_processes(tmp_path):
    path = tmp_path / "pid.py"
    path.write_text(
        "import os\n\n"
        "def pid(prompts, completions, **kw):\n"
        "    return [float(os.getpid())] * len(completions)\n"
    )
    reward = WeightedReward("pid", load_reward(f"{path}:pid"))
    with RewardPool(2) as pool:
        values = score([reward], ["q"] * 4, ["x"] * 4, {}, pool=pool).per_reward["pid"]
    assert len(values) == 4 and os.getpid() not in values


def test_a_pool_gives_the_same_scores_as_in_process():
    reward = WeightedReward("math", load_reward("math"))
    completions = ["<answer>4</answer>", "<answer>5</answer>", "<answer>2+2</answer>"]
    columns = {"answer": ["4"] * 3}
    with RewardPool(2) as pool:
        pooled = score([reward], ["q"] * 3, completions, columns, pool=pool)
    assert pooled.total == score([reward], ["q"] * 3, completions, columns).total == [1, 0, 1]
