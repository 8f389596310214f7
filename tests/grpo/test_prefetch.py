from grpo.prefetch import Prefetch, staleness
from r1kit.data import PromptStream
from r1kit.groups import PendingGroups
from rollout.types import Completion


class Sampled:
    """A finished rollout: one completion per prompt, sampled at `version`."""

    def __init__(self, prompts: int, version: int = 0):
        self.groups = [[Completion([1], [0.0], "x", "stop", policy_version=version)]] * prompts

    def result(self):
        return self.groups


def _stream() -> PromptStream:
    return PromptStream([{"prompt": str(i), "answer": str(i)} for i in range(10)], seed=0)


def _submit(rows):
    return PendingGroups(rows, [r["prompt"] for r in rows], Sampled(len(rows)))


def test_position_leaves_out_prefetched_rows_until_they_are_taken():
    stream = _stream()
    stream.take(2)
    before = stream.state_dict()
    prefetch = Prefetch(stream)
    prefetch.start(2, 3, _submit)
    assert stream.state_dict() != before
    assert prefetch.position() == before
    groups = prefetch.take(2)
    assert len(groups) == 3
    assert prefetch.position() == stream.state_dict()


def test_a_round_prefetched_for_another_step_is_not_taken():
    prefetch = Prefetch(_stream())
    assert prefetch.take(1) is None
    prefetch.start(3, 2, _submit)
    assert prefetch.take(2) is None
    assert prefetch.take(3) is not None


def test_staleness_is_the_learner_version_minus_each_completion_s():
    completions = [Completion([1], [0.0], "x", "stop", policy_version=v) for v in (4, 3, 3, 4)]
    assert staleness(4, completions) == {
        "rollout/staleness/mean": 0.5,
        "rollout/staleness/max": 1.0,
    }
