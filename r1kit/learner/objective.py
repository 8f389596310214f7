"""An objective: what the learner core minimises in one optimizer step.

The core runs the micro-batches (packing, forward, the MoE aux loss, backward, the optimizer
step); an objective turns each forward's outputs into that micro-batch's share of the batch
loss, and says which sequences can have a gradient at all. GRPO's clipped surrogate lives in
grpo/objective.py, SFT's and on-policy distillation's losses in distill/objectives.py. An
objective crosses to learner ranks by pickle: it holds settings, not models of the policy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import torch

from r1kit.learner.batch import Batch, MicroBatch
from r1kit.learner.normalisers import Normalisers

if TYPE_CHECKING:
    from r1kit.learner.core import Learner


class Objective(ABC):
    """One loss over a batch; subclasses implement `loss` and `metrics`."""

    entropy_grad = False  # whether `loss` differentiates the entropy (an entropy bonus)

    def rows(self, batch: Batch) -> list[int]:
        """The sequences whose loss can have a nonzero gradient (the core runs only these;
        all of them unless the objective knows better)."""
        return list(range(len(batch)))

    @abstractmethod
    def loss(
        self,
        learner: Learner,
        mb: MicroBatch,
        logprobs: torch.Tensor,
        entropy: torch.Tensor,
        norm: Normalisers,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """This micro-batch's share of the batch loss (divided by the batch-wide `norm`), and
        its statistics as sums; `logprobs`, `entropy`: [B, C] per completion token (0: none)."""

    @abstractmethod
    def metrics(self, totals: dict[str, float]) -> dict[str, float]:
        """The step's logged metrics from the statistics summed over micro-batches and ranks."""

    def end(self, batch: Batch) -> None:
        """Called after the last micro-batch; GRPO's first pass stores its old log-probs here."""
        return None
