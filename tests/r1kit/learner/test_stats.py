import pytest

from r1kit.learner.objective import Objective
from r1kit.learner.stats import StepStats


class Counting(Objective):
    """Reports its summed token count as is."""

    def loss(self, learner, mb, logprobs, entropy, norm):
        raise AssertionError("not run here")

    def metrics(self, totals):
        return {"tokens": totals["token_count"]}


def test_sums_over_micro_batches_and_the_core_metrics_frame_the_objective_s():
    stats = StepStats()
    stats.add({"loss": 0.5, "token_count": 3.0})
    stats.add({"loss": 0.25, "token_count": 1.0})
    metrics = stats.metrics(Counting(), grad_norm=2.0, lr=1e-6, skipped_frac=0.5)
    assert metrics == {
        "loss": 0.75,
        "tokens": 4.0,
        "grad_norm": 2.0,
        "lr": 1e-6,
        "skipped_frac": 0.5,
    }


def test_aux_loss_is_reported_only_when_there_is_one():
    stats = StepStats()
    assert "aux_loss" not in stats.metrics(Counting(), 1.0, 1.0, 0.0)
    stats.add({"aux_loss": 0.3})
    assert stats.metrics(Counting(), 1.0, 1.0, 0.0)["aux_loss"] == pytest.approx(0.3)
