"""Distillation's objectives for the learner core: SFT's next-token loss on the reply, and
on-policy distillation's reverse KL to the teacher on the student's own samples.

A new distillation objective is one more `Objective` here (r1kit/learner/objective.py): a
`loss` from the student's per-token log-probs and `metrics` from its summed statistics.
"""

from __future__ import annotations

import torch
from torch import nn

from r1kit.learner.batch import MicroBatch
from r1kit.learner.core import Learner
from r1kit.learner.normalisers import Normalisers
from r1kit.learner.objective import Objective


class NextTokenNLL(Objective):
    """Mean negative log-likelihood per target token (the reply; prompt tokens carry none)."""

    def loss(
        self,
        learner: Learner,
        mb: MicroBatch,
        logprobs: torch.Tensor,
        entropy: torch.Tensor,
        norm: Normalisers,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        loss = -(logprobs * mb.mask).sum() / norm.num_tokens
        return loss, {"nll": loss.item(), "token_count": mb.mask.sum().item()}

    def metrics(self, totals: dict[str, float]) -> dict[str, float]:
        return {"nll": totals["nll"], "tokens": totals["token_count"]}


class ReverseKL(Objective):
    """The per-token policy gradient with advantage A_task - (log p_s - log p_t): its gradient
    is that of the reverse KL to the teacher (plus the task reward's, if any) on the student's
    samples. The teacher scores them with the core's forward, at the sampling temperature."""

    def __init__(self, teacher: nn.Module):
        self.teacher = teacher

    def loss(
        self,
        learner: Learner,
        mb: MicroBatch,
        logprobs: torch.Tensor,
        entropy: torch.Tensor,
        norm: Normalisers,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.no_grad():
            teacher_logprobs = learner.forward(self.teacher, mb)[0]
        gap = (logprobs.detach() - teacher_logprobs) * mb.mask
        # REINFORCE with advantage -gap per token: its gradient is that of the reverse KL.
        advantage = mb.advantages[:, None] - gap
        loss = -(advantage * logprobs * mb.mask).sum() / norm.num_tokens
        return loss, {"kl_sum": gap.sum().item(), "token_count": mb.mask.sum().item()}

    def metrics(self, totals: dict[str, float]) -> dict[str, float]:
        """The sampled reverse KL before the step: mean over tokens of log p_s - log p_t."""
        tokens = max(totals["token_count"], 1.0)
        return {"reverse_kl": totals["kl_sum"] / tokens, "tokens": totals["token_count"]}
