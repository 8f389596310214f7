"""Async off-policy rollouts: the first sampling rounds of the next `rollout.max_staleness`
(k) steps are submitted to the rollout workers ahead of their steps, so that generation
overlaps the learner.

A round submitted at step t samples from the weights before step t's update and is taken at
step t + k: k policy versions behind the learner (`staleness`). A round found more than k
versions behind when taken is dropped (its rows skipped) and its step samples anew. Until the
rounds are taken the prompt stream is ahead by their rows; `position()` is where it stood
before them: where a step cut by a stop signal rewinds to. A checkpoint holds the rounds
themselves (`state_dict`: waited for, their completions and the versions they came from), so
a resumed run takes them as the uninterrupted one does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from r1kit.data import PromptStream
from r1kit.groups import Group, PendingGroups
from rollout.types import Completion


@dataclass
class Prefetched:
    step: int
    position: dict  # the stream's position before these rows were drawn
    pending: PendingGroups | None  # None once sampled
    groups: list[Group] | None = None

    def result(self) -> list[Group]:
        """The round's groups, waiting for them the first time."""
        if self.groups is None:
            self.groups, self.pending = self.pending.result(), None
        return self.groups


class Prefetch:
    """The first sampling rounds of the next steps, submitted ahead, oldest first."""

    def __init__(self, stream: PromptStream):
        self.stream = stream
        self.rounds: list[Prefetched] = []
        self.dropped = 0  # rounds taken more than the bound behind, over the whole run

    def ahead(self, step: int, depth: int, last: int) -> range:
        """The steps after `step` (up to `depth` ahead, at most `last`) not yet submitted."""
        first = max([step, *(r.step for r in self.rounds)]) + 1
        return range(first, min(step + depth, last) + 1)

    def start(self, step: int, rows: int, submit: Callable[[list[dict]], PendingGroups]) -> None:
        """Draw `rows` rows for `step` and `submit` them for sampling."""
        position = self.stream.state_dict()
        self.rounds.append(Prefetched(step, position, submit(self.stream.take(rows))))

    def take(self, step: int, version: int, bound: int) -> list[Group] | None:
        """The groups prefetched for `step` (waiting until they are sampled), else None; None
        too when they are more than `bound` versions behind `version`: dropped and counted."""
        if not self.rounds or self.rounds[0].step != step:
            return None
        groups = self.rounds[0].result()  # a stop signal may cut this wait: the round stays
        del self.rounds[0]
        if max(_behind(version, [c for g in groups for c in g.completions]), default=0) > bound:
            self.dropped += 1
            return None
        return groups

    def position(self) -> dict:
        """The stream's position, leaving out rows prefetched but not yet taken."""
        return self.rounds[0].position if self.rounds else self.stream.state_dict()

    def cancel(self, position: dict) -> None:
        """Drop the rounds in flight and put the stream back at `position`."""
        self.rounds = []
        self.stream.load_state_dict(position)

    def state_dict(self, version: int) -> dict:
        """The rounds in flight, waited for, with `version` (the engine's) to rebase them on."""
        rounds = [
            {
                "step": r.step,
                "position": r.position,
                "groups": [_group_state(group) for group in r.result()],
            }
            for r in self.rounds
        ]
        return {"version": version, "rounds": rounds, "dropped": self.dropped}

    def load_state_dict(self, state: dict, version: int) -> None:
        """Rounds saved by `state_dict`, their policy versions rebased on `version` (the
        engine's now), so each is as many versions behind as when it was saved."""
        shift, self.dropped = version - state["version"], state["dropped"]
        self.rounds = [
            Prefetched(r["step"], r["position"], None, [_group(g, shift) for g in r["groups"]])
            for r in state["rounds"]
        ]


def _group_state(group: Group) -> dict:
    """A sampled, not yet scored group as plain data (rewards are scored when it is taken)."""
    return {
        "row": group.row,
        "prompt": group.prompt,
        "completions": [asdict(c) for c in group.completions],
    }


def _group(state: dict, shift: int) -> Group:
    """The group `_group_state` saved, its completions' policy versions moved by `shift`."""
    completions = [Completion(**c) for c in state["completions"]]
    for completion in completions:
        completion.policy_version += shift
    return Group(state["row"], state["prompt"], completions)


def _behind(version: int, completions: list[Completion]) -> list[int]:
    """How many weight updates behind `version` each completion was sampled."""
    return [version - c.policy_version for c in completions]


def staleness(version: int, completions: list[Completion]) -> dict[str, float]:
    """How many weight updates behind `version` (the learner's, as last sent to the
    engine) the completions were sampled: mean and max."""
    behind = _behind(version, completions)
    return {
        "rollout/staleness/mean": sum(behind) / max(len(behind), 1),
        "rollout/staleness/max": float(max(behind, default=0)),
    }
