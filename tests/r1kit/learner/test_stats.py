import pytest
import torch

from r1kit.learner.stats import SUMMED_STATS, StepStats


def _loss_stats(tokens: float) -> dict[str, float]:
    return {**dict.fromkeys(SUMMED_STATS, 1.0), "token_count": tokens, "ratio_sum": tokens}


def test_per_token_means_divide_sums_over_all_micro_batches_by_their_tokens():
    stats = StepStats()
    stats.add_loss(torch.tensor(0.5), _loss_stats(3))
    stats.add_loss(torch.tensor(0.25), _loss_stats(1))
    metrics = stats.metrics(grad_norm=2.0, lr=1e-6, skipped_frac=0.5)
    assert metrics["loss"] == pytest.approx(0.75)
    assert metrics["ratio"] == pytest.approx(1.0)
    assert metrics["clip_frac/low"] == pytest.approx(2 / 4)
    assert (metrics["grad_norm"], metrics["lr"], metrics["skipped_frac"]) == (2.0, 1e-6, 0.5)


def test_entropy_and_mismatch_count_only_masked_tokens():
    stats = StepStats()
    stats.add_loss(torch.tensor(0.0), _loss_stats(2))
    stats.add_tokens(torch.tensor([[9.0, 1.0, 3.0]]), 0.5, torch.tensor([[0.0, 1.0, 1.0]]))
    metrics = stats.metrics(1.0, 1.0, 0.0)
    assert metrics["entropy"] == pytest.approx(2.0)
    assert metrics["mismatch_kl"] == pytest.approx(0.5)


def test_aux_loss_is_reported_only_when_there_is_one():
    stats = StepStats()
    assert "aux_loss" not in stats.metrics(1.0, 1.0, 0.0)
    stats.add_aux_loss(0.3)
    assert stats.metrics(1.0, 1.0, 0.0)["aux_loss"] == pytest.approx(0.3)


def test_an_all_skipped_step_gives_finite_means():
    metrics = StepStats().metrics(0.0, 1.0, 1.0)
    assert metrics["entropy"] == 0.0 and metrics["ratio"] == 0.0
