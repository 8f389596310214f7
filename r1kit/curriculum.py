"""Signal where the model is weak: an adaptive curriculum for the built-in tasks, pass-rate
filtering for datasets. Both learn from each step's outcomes (`record`, fed by the trainer
with which completions were correct) and live in the training stream's state_dict, so a
resumed run picks them up where they were.
"""

from __future__ import annotations

from r1kit.recipe import CurriculumConfig


class Curriculum:
    """Difficulty from level 0 (easiest) up to `levels` (the recipe's task): one level up
    each time the running training accuracy over the last `window` completions reaches
    `raise_at`, so the model trains where it is right often enough for groups to disagree."""

    def __init__(self, cfg: CurriculumConfig):
        self.cfg, self.level, self.recent = cfg, 0, []

    def record(self, solved: list[bool]) -> None:
        self.recent = (self.recent + [float(s) for s in solved])[-self.cfg.window :]
        full = len(self.recent) == self.cfg.window
        if self.level < self.cfg.levels and full and accuracy(self.recent) >= self.cfg.raise_at:
            self.level, self.recent = self.level + 1, []

    def state_dict(self) -> dict:
        return {"level": self.level, "recent": list(self.recent)}

    def load_state_dict(self, state: dict) -> None:
        self.level, self.recent = state["level"], list(state["recent"])


class PassRates:
    """Completions sampled and solved per problem (keyed by its question). A problem solved
    always or never after `min_attempts` completions is settled: its group would be flat
    (no advantage), so the stream skips it, as pass-rate filtering does."""

    def __init__(self, min_attempts: int):
        self.min_attempts = min_attempts
        self.counts: dict[str, list[int]] = {}  # question -> [attempts, solved]

    def record(self, question: str, solved: list[bool]) -> None:
        count = self.counts.setdefault(question, [0, 0])
        count[0] += len(solved)
        count[1] += sum(solved)

    def settled(self, question: str) -> bool:
        attempts, solved = self.counts.get(question, (0, 0))
        return attempts >= self.min_attempts and solved in (0, attempts)

    def state_dict(self) -> dict:
        return {"counts": {question: list(c) for question, c in self.counts.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.counts = {question: list(c) for question, c in state["counts"].items()}


def accuracy(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
