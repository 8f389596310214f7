"""Async one-step-off-policy rollouts: the next step's first sampling round starts on the
rollout workers before this step learns, so that generation overlaps the learner.

Its completions come from the weights before this step's update: one policy version behind
the learner (`staleness`). Until they are taken the prompt stream is ahead by their rows;
`position()` is where it stood before them: what a checkpoint saves and a cut step rewinds
to, so that a resumed run draws those rows again (sampled then with the newer weights).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from r1kit.data import PromptStream
from r1kit.groups import Group, PendingGroups
from rollout.types import Completion


@dataclass
class Prefetched:
    step: int
    position: dict  # the stream's position before these rows were drawn
    groups: PendingGroups


class Prefetch:
    """At most one step's first sampling round, submitted ahead of its step."""

    def __init__(self, stream: PromptStream):
        self.stream = stream
        self.next: Prefetched | None = None

    def start(self, step: int, rows: int, submit: Callable[[list[dict]], PendingGroups]) -> None:
        """Draw `rows` rows for `step` and `submit` them for sampling."""
        position = self.stream.state_dict()
        self.next = Prefetched(step, position, submit(self.stream.take(rows)))

    def take(self, step: int) -> list[Group] | None:
        """The groups prefetched for `step` (waiting until they are sampled), else None."""
        if self.next is None or self.next.step != step:
            return None
        groups = self.next.groups.result()
        self.next = None
        return groups

    def position(self) -> dict:
        """The stream's position, leaving out rows prefetched but not yet taken."""
        return self.next.position if self.next else self.stream.state_dict()


def staleness(version: int, completions: list[Completion]) -> dict[str, float]:
    """How many weight updates behind `version` (the learner's, as last sent to the
    engine) the completions were sampled: mean and max."""
    behind = [version - c.policy_version for c in completions]
    return {
        "rollout/staleness/mean": sum(behind) / max(len(behind), 1),
        "rollout/staleness/max": float(max(behind, default=0)),
    }
