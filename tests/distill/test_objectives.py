"""Distillation's objectives on hand-computed values: SFT's NLL, on-policy's reverse KL."""

import pytest
import torch

from distill.objectives import NextTokenNLL, ReverseKL
from r1kit.learner.batch import Batch
from r1kit.learner.normalisers import Normalisers

NORM = Normalisers(3, 2, 4)


def _micro_batch(advantages=(0.0, 0.0)):
    """Targets of 2 and 1 tokens: three tokens in the loss, one padding position."""
    batch = Batch(
        prompt_ids=[[1], [2, 3, 4]],  # row 0 the shorter: kept first
        completion_ids=[[5, 6], [7]],
        rollout_logprobs=[[0.0, 0.0], [0.0]],
        advantages=torch.tensor(advantages),
        loss_mask=[True, True],
    )
    mb = next(batch.micro_batches(2))
    assert mb.rows == [0, 1] and mb.mask.tolist() == [[1.0, 1.0], [0.0, 1.0]]
    return mb


class Teacher:
    """A learner whose forward of any model gives these log-probs."""

    def __init__(self, logprobs):
        self.logprobs = torch.tensor(logprobs)

    def forward(self, model, mb):
        return self.logprobs, None, None


def test_nll_is_minus_the_target_logprobs_over_the_batch_tokens():
    logprobs = torch.tensor([[-1.0, -2.0], [-50.0, -3.0]])  # -50: padding, not counted
    loss, stats = NextTokenNLL().loss(None, _micro_batch(), logprobs, torch.zeros(2, 2), NORM)
    assert loss.item() == pytest.approx(6.0 / 3)
    assert stats == {"nll": pytest.approx(2.0), "token_count": 3.0}
    assert NextTokenNLL().metrics(stats) == {"nll": pytest.approx(2.0), "tokens": 3.0}


def test_reverse_kl_follows_the_advantage_minus_the_student_teacher_gap():
    student = torch.tensor([[-1.0, -2.0], [0.0, -3.0]], requires_grad=True)
    teacher = Teacher([[-1.5, -1.0], [7.0, -3.0]])  # gaps 0.5, -1, 0
    mb = _micro_batch(advantages=(1.0, 0.0))
    loss, stats = ReverseKL(teacher=None).loss(teacher, mb, student, torch.zeros(2, 2), NORM)
    # -sum (A - gap) * log p_s / N: (1 - 0.5)(-1) + (1 + 1)(-2) + (0 - 0)(-3) = -4.5
    assert loss.item() == pytest.approx(4.5 / 3)
    loss.backward()
    torch.testing.assert_close(student.grad, -torch.tensor([[0.5, 2.0], [0.0, 0.0]]) / 3)
    assert stats == {"kl_sum": pytest.approx(-0.5), "token_count": 3.0}
    metrics = ReverseKL(teacher=None).metrics(stats)
    assert metrics == {"reverse_kl": pytest.approx(-0.5 / 3), "tokens": 3.0}
