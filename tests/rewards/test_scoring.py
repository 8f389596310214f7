import math
import os
import time

import numpy as np
import pytest

from rewards.registry import RewardError, load_reward
from rewards.scoring import RewardFailure, RewardPool, WeightedReward, score
from tests.rewards.conftest import linux_only, live_workers

MARGIN_S = 5.0  # slack for a loaded machine


def _constant(value):
    return lambda prompts, completions, **kw: [value] * len(completions)


def _lenient(name, fn, **options):
    """A reward whose failures never stop the batch, to look at how they are recorded."""
    return WeightedReward(name, fn, max_failure_frac=1.0, **options)


def _file_reward(tmp_path, body: str, name: str = "reward"):
    path = tmp_path / f"{name}.py"
    path.write_text(f"import os, time\n\ndef {name}(prompts, completions, **kw):\n{body}")
    return load_reward(f"{path}:{name}")


@pytest.fixture(scope="module")
def pool():
    with RewardPool(2) as shared:
        yield shared


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


def test_a_reward_raising_on_one_sample_fails_only_that_sample():
    def fragile(prompts, completions, **kw):
        return [1.0 / len(c) for c in completions]

    scores = score([WeightedReward("fragile", fragile)], ["q"] * 3, ["ok", "", "a"], {})
    assert scores.per_reward["fragile"] == [0.5, None, 1.0]
    [failure] = scores.failures["fragile"]
    assert (failure.index, failure.kind) == (1, "error")
    assert "ZeroDivisionError" in failure.detail
    assert scores.stats()["reward/fragile/failed"] == 1


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, np.float32("nan"), "0.5", True, np.bool_(True), 10**400, 1j],
    ids=["nan", "inf", "-inf", "np-nan", "str", "bool", "np-bool", "huge-int", "complex"],
)
def test_a_value_that_is_not_a_finite_number_is_a_failure_not_a_score(value):
    reward = _lenient("bad", lambda p, c, **kw: [1.0, value])
    scores = score([reward], ["q", "q"], ["x", "y"], {})
    assert scores.per_reward["bad"] == [1.0, None] and scores.total == [1.0, 0.0]
    assert [(f.index, f.kind) for f in scores.failures["bad"]] == [(1, "invalid")]


@pytest.mark.parametrize("value", [np.float32(0.5), np.float64(0.5), np.int64(2), 3])
def test_numpy_and_int_scores_are_accepted_as_floats(value):
    scores = score([WeightedReward("np", _constant(value))], ["q"], ["x"], {})
    assert scores.per_reward["np"] == [float(value)]
    assert type(scores.per_reward["np"][0]) is float and scores.failures["np"] == []


@pytest.mark.parametrize(
    ("returned", "message"),
    [([1.0], "returned 1 values for 2 completions"), (3.0, "returned float for 2 completions")],
    ids=["short", "scalar"],
)
def test_a_wrong_length_return_fails_the_whole_call(returned, message):
    scores = score([_lenient("bad", lambda p, c, **kw: returned)], ["q"] * 2, ["x", "y"], {})
    assert scores.per_reward["bad"] == [None, None]
    assert {(f.kind, f.detail) for f in scores.failures["bad"]} == {("invalid", message)}


def test_failing_on_too_much_of_a_batch_raises_naming_the_reward_and_a_sample():
    def picky(prompts, completions, **kw):
        return [1.0 if c == "good" else math.nan for c in completions]

    completions = ["good", "The answer is forty-two", "bad", "bad"]
    with pytest.raises(RewardFailure) as caught:
        score([WeightedReward("picky", picky)], ["What is 6 x 7?"] * 4, completions, {})
    message = str(caught.value)
    assert isinstance(caught.value, RewardError)
    assert "'picky' failed on 3 of 4 samples" in message and "3 invalid" in message
    assert "sample 1: returned nan" in message
    assert "'The answer is forty-two'" in message and "'What is 6 x 7?'" in message


def test_failing_on_exactly_the_allowed_share_does_not_raise():
    reward = WeightedReward("half", lambda p, c, **kw: [1.0, math.inf], max_failure_frac=0.5)
    scores = score([reward], ["q"] * 2, ["x", "y"], {})
    assert len(scores.failures["half"]) == 1


def test_no_failure_allowed_raises_on_the_first():
    reward = WeightedReward("strict", lambda p, c, **kw: [1.0] * 9 + [math.nan], max_failure_frac=0)
    with pytest.raises(RewardFailure, match="failed on 1 of 10"):
        score([reward], ["q"] * 10, ["x"] * 10, {})


def test_a_long_example_is_shortened_in_the_message():
    reward = WeightedReward("bad", _constant("x"))
    with pytest.raises(RewardFailure) as caught:
        score([reward], ["q"], ["a" * 10_000], {})
    assert len(str(caught.value)) < 600


def test_an_empty_batch_scores_nothing():
    scores = score([WeightedReward("a", _constant(1.0))], [], [], {})
    assert scores.total == [] and scores.per_reward["a"] == []


@linux_only
def test_a_pool_spreads_a_file_reward_over_its_reused_workers(tmp_path, pool):
    reward = WeightedReward(
        "pid", _file_reward(tmp_path, "    return [os.getpid()] * len(completions)\n")
    )
    # A worker an earlier test retired is replaced at the next call: fill the pool first.
    score([reward], ["q"], ["x"], {}, pool=pool)
    workers = live_workers()
    first = score([reward], ["q"] * 4, ["x"] * 4, {}, pool=pool).per_reward["pid"]
    second = score([reward], ["q"] * 4, ["x"] * 4, {}, pool=pool).per_reward["pid"]
    assert set(first) | set(second) <= workers and live_workers() == workers


def test_a_pool_gives_the_same_scores_as_in_process(pool):
    reward = WeightedReward("math", load_reward("math"))
    completions = ["<answer>4</answer>", "<answer>5</answer>", "<answer>4.0</answer>"]
    columns = {"answer": ["4"] * 3}
    pooled = score([reward], ["q"] * 3, completions, columns, pool=pool)
    assert pooled.total == score([reward], ["q"] * 3, completions, columns).total == [1, 0, 1]


def test_a_hanging_reward_costs_its_chunk_only_and_returns_by_its_deadline(tmp_path, pool):
    body = "    if 'hang' in completions:\n        time.sleep(3600)\n"
    body += "    return [1.0] * len(completions)\n"
    reward = _lenient("hang", _file_reward(tmp_path, body), timeout_s=0.5)
    score([reward], ["q"] * 2, ["x"] * 2, {}, pool=pool)  # workers ready: time the deadline only
    start = time.monotonic()
    scores = score([reward], ["q"] * 4, ["a", "b", "c", "hang"], {}, pool=pool)
    assert time.monotonic() - start < 0.5 + MARGIN_S
    assert scores.per_reward["hang"] == [1.0, 1.0, None, None]
    assert [(f.index, f.kind) for f in scores.failures["hang"]] == [(2, "timeout"), (3, "timeout")]
    assert scores.stats()["reward/hang/failed"] == 2


def test_a_reward_hanging_on_most_of_a_batch_raises(tmp_path, pool):
    reward = WeightedReward("hang", _file_reward(tmp_path, "    time.sleep(3600)\n"), timeout_s=0.5)
    with pytest.raises(RewardFailure, match=r"'hang' failed on 2 of 2 samples .*2 timeout"):
        score([reward], ["q"] * 2, ["x", "y"], {}, pool=pool)


def test_a_reward_killing_its_worker_is_a_crash(tmp_path, pool):
    reward = _lenient("exits", _file_reward(tmp_path, "    os._exit(1)\n"))
    scores = score([reward], ["q"] * 2, ["x", "y"], {}, pool=pool)
    assert {f.kind for f in scores.failures["exits"]} == {"crash"}
    after = score([WeightedReward("format", load_reward("format"))], ["q"], ["x"], {}, pool=pool)
    assert after.per_reward["format"] == [0.0]


def test_invalid_values_are_refused_in_workers_too(tmp_path, pool):
    reward = _lenient(
        "nan", _file_reward(tmp_path, "    return [float('nan')] * len(completions)\n")
    )
    scores = score([reward], ["q"] * 2, ["x", "y"], {}, pool=pool)
    assert scores.per_reward["nan"] == [None, None]
    assert {f.kind for f in scores.failures["nan"]} == {"invalid"}


def test_a_reward_that_cannot_travel_to_workers_is_named(pool):
    with pytest.raises(RewardError, match="reward 'inline' cannot be sent to a worker"):
        score([WeightedReward("inline", _constant(1.0))], ["q"], ["x"], {}, pool=pool)


def test_no_pool_scores_in_this_process():
    scores = score([WeightedReward("pid", lambda p, c, **kw: [os.getpid()])], ["q"], ["x"], {})
    assert scores.per_reward["pid"] == [os.getpid()]
