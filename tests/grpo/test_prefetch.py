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


def _submit(rows, version: int = 0):
    return PendingGroups(rows, [r["prompt"] for r in rows], Sampled(len(rows), version))


def test_position_leaves_out_prefetched_rows_until_they_are_taken():
    stream = _stream()
    stream.take(2)
    before = stream.state_dict()
    prefetch = Prefetch(stream)
    prefetch.start(2, 3, _submit)
    assert stream.state_dict() != before
    assert prefetch.position() == before
    groups = prefetch.take(2, version=1, bound=1)
    assert len(groups) == 3
    assert prefetch.position() == stream.state_dict()


def test_a_round_prefetched_for_another_step_is_not_taken():
    prefetch = Prefetch(_stream())
    assert prefetch.take(1, 0, 1) is None
    prefetch.start(3, 2, _submit)
    assert prefetch.take(2, 0, 1) is None
    assert prefetch.take(3, 0, 1) is not None


def test_the_queue_runs_k_steps_ahead_up_to_the_last_step():
    prefetch = Prefetch(_stream())
    assert list(prefetch.ahead(1, depth=3, last=10)) == [2, 3, 4]
    for step in (2, 3, 4):
        prefetch.start(step, 1, _submit)
    prefetch.take(2, 0, 3)
    assert list(prefetch.ahead(2, depth=3, last=10)) == [5]
    assert list(prefetch.ahead(2, depth=3, last=4)) == []


def test_rounds_up_to_the_bound_behind_are_taken_older_ones_dropped_and_counted():
    prefetch = Prefetch(_stream())
    for step in (1, 2, 3):
        prefetch.start(step, 2, _submit)  # all sampled at version 0
    assert prefetch.take(1, version=1, bound=2) is not None
    assert prefetch.take(2, version=2, bound=2) is not None
    assert prefetch.take(3, version=3, bound=2) is None
    assert prefetch.dropped == 1


def test_saved_rounds_come_back_as_many_versions_behind_with_their_stream_positions():
    stream = _stream()
    prefetch = Prefetch(stream)
    prefetch.start(3, 2, lambda rows: _submit(rows, version=6))
    prefetch.start(4, 2, lambda rows: _submit(rows, version=7))
    prefetch.dropped = 2
    state, position = prefetch.state_dict(version=8), prefetch.position()
    assert [r.pending for r in prefetch.rounds] == [None, None]  # waited for

    restored = Prefetch(stream)
    restored.load_state_dict(state, version=1)  # a fresh engine after a resume
    assert restored.position() == position and restored.dropped == 2
    assert staleness(1, restored.take(3, 1, 2)[0].completions)["rollout/staleness/max"] == 2
    groups = restored.take(4, 1, 2)
    assert [g.row for g in groups] == [g.row for g in prefetch.rounds[1].groups]
    assert groups[0].completions[0].policy_version == 0


def test_a_cut_step_drops_the_rounds_and_rewinds_the_stream():
    stream = _stream()
    prefetch = Prefetch(stream)
    before = prefetch.position()
    prefetch.start(2, 3, _submit)
    prefetch.cancel(before)
    assert prefetch.rounds == [] and stream.state_dict() == before


def test_staleness_is_the_learner_version_minus_each_completion_s():
    completions = [Completion([1], [0.0], "x", "stop", policy_version=v) for v in (4, 3, 3, 4)]
    assert staleness(4, completions) == {
        "rollout/staleness/mean": 0.5,
        "rollout/staleness/max": 1.0,
    }
