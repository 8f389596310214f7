"""The loss maths against values computed by hand (the arithmetic is in the comments)."""

import math

import pytest
import torch

from grpo.loss import Normalisers, kl_k3, mismatch_stats, policy_loss, tis_weights

# Two sequences: the first has 2 completion tokens, the second 1 (then padding).
MASK = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
ADV = torch.tensor([1.0, -2.0])
NORM = Normalisers(num_tokens=3, num_sequences=2, max_completion_len=4)


def _loss(logp, old, aggregation, **kw):
    return policy_loss(logp, old, ADV, MASK, NORM, aggregation=aggregation, **kw)


def test_on_policy_aggregations():
    logp = torch.zeros(2, 2)  # ratio 1 everywhere: per-token loss = -A
    # token losses: seq0 [-1, -1], seq1 [+2]
    assert _loss(logp, logp, "dapo")[0].item() == pytest.approx((-1 - 1 + 2) / 3)
    assert _loss(logp, logp, "bnpo")[0].item() == pytest.approx(0.0)
    # grpo: per-sequence means -1 and +2, averaged over 2 sequences
    assert _loss(logp, logp, "grpo")[0].item() == pytest.approx((-1 + 2) / 2)
    # dr_grpo: token sum / (2 sequences x 4 max tokens)
    assert _loss(logp, logp, "dr_grpo")[0].item() == pytest.approx(0 / 8)


def test_positive_advantage_is_clipped_above_one_plus_eps_high():
    old = torch.zeros(2, 2)
    logp = torch.tensor([[math.log(1.5), 0.0], [0.0, 0.0]], requires_grad=True)
    loss, stats = _loss(logp, old, "dapo", epsilon_low=0.2, epsilon_high=0.28)
    # seq0 token0: min(1.5 * 1, 1.28 * 1) = 1.28; token1: 1; seq1: min(1*-2, 1*-2) = -2
    assert loss.item() == pytest.approx(-(1.28 + 1.0 - 2.0) / 3)
    loss.backward()
    assert logp.grad[0, 0] == 0.0  # clipped: no gradient
    assert logp.grad[0, 1] == pytest.approx(-1 / 3)  # d(-r*A)/dlogp = -r*A / 3 = -1/3
    assert stats["clip_high_count"] == 1 and stats["clip_low_count"] == 0


def test_negative_advantage_is_clipped_below_one_minus_eps_low():
    old = torch.zeros(2, 2)
    logp = torch.tensor([[0.0, 0.0], [math.log(0.5), 0.0]], requires_grad=True)
    loss, stats = _loss(logp, old, "dapo", epsilon_low=0.2, epsilon_high=0.28)
    # seq1: min(0.5 * -2, 0.8 * -2) = -1.6  -> loss +1.6; seq0: -1 -1
    assert loss.item() == pytest.approx((-1 - 1 + 1.6) / 3)
    loss.backward()
    assert logp.grad[1, 0] == 0.0 and stats["clip_low_count"] == 1


def test_masked_tokens_contribute_nothing_even_when_garbage():
    old = torch.zeros(2, 2)
    logp = torch.tensor([[0.0, 0.0], [0.0, 1e4]])  # exp(1e4) would overflow if not masked
    loss, _ = _loss(logp, old, "dapo")
    assert torch.isfinite(loss) and loss.item() == pytest.approx(0.0)


def test_kl_k3_is_nonnegative_and_zero_for_identical_policies():
    logp = torch.log(torch.tensor([0.1, 0.5, 0.9]))
    ref = torch.log(torch.tensor([0.3, 0.5, 0.2]))
    assert torch.all(kl_k3(logp, ref) >= 0)
    assert kl_k3(logp, logp).abs().max() == 0
    # d = ref - logp = log 3 for the first: exp(d) - d - 1 = 3 - log 3 - 1
    assert kl_k3(logp, ref)[0].item() == pytest.approx(2 - math.log(3), rel=1e-5)


def test_beta_adds_the_kl_term():
    logp = torch.zeros(2, 2)
    ref = torch.full((2, 2), math.log(2.0))  # k3 = 2 - log 2 - 1 per token
    loss, stats = _loss(logp, logp, "dapo", beta=0.5, ref_logprobs=ref)
    assert loss.item() == pytest.approx(0.5 * (1 - math.log(2)))
    assert stats["kl_sum"] == pytest.approx(3 * (1 - math.log(2)), rel=1e-5)


def test_gspo_uses_the_length_normalised_sequence_ratio():
    old = torch.zeros(2, 2)
    # seq0 token log-ratios 0.2 and -0.1: s0 = exp(0.05); seq1: s1 = exp(0.3)
    logp = torch.tensor([[0.2, -0.1], [0.3, 0.0]])
    loss, _ = _loss(logp, old, "gspo", epsilon_low=1.0, epsilon_high=1.0)
    s0, s1 = math.exp(0.05), math.exp(0.3)
    assert loss.item() == pytest.approx((-s0 * 1 + s1 * 2) / 2, rel=1e-5)


def test_tis_weights_are_capped_at_token_and_sequence_level():
    old = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    rollout = torch.tensor([[-2.0, 0.5], [-0.1, 0.0]])
    token = tis_weights(old, rollout, MASK, "token", cap=2.0)
    assert torch.allclose(token, torch.tensor([[2.0, math.exp(-0.5)], [math.exp(0.1), 1.0]]))
    sequence = tis_weights(old, rollout, MASK, "sequence", cap=2.0)
    # seq0: exp(2 - 0.5) = 4.48 -> capped at 2; seq1: exp(0.1)
    assert torch.allclose(sequence, torch.tensor([2.0, math.exp(0.1)]))


def test_mismatch_is_zero_when_engine_and_learner_agree():
    logp = torch.randn(2, 2)
    assert mismatch_stats(logp, logp, MASK) == {"kl": 0.0, "max_abs_diff": 0.0}


@pytest.mark.parametrize("aggregation", ["grpo", "dapo", "dr_grpo", "gspo"])
def test_micro_batches_add_up_to_the_whole_batch(aggregation):
    torch.manual_seed(0)
    logp = torch.randn(4, 3, requires_grad=True)
    old = (logp + 0.1 * torch.randn(4, 3)).detach()
    adv, mask = torch.randn(4), torch.tensor([[1.0, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]])
    norm = Normalisers(num_tokens=mask.sum().item(), num_sequences=4, max_completion_len=3)
    whole, _ = policy_loss(logp, old, adv, mask, norm, aggregation=aggregation)
    (whole_grad,) = torch.autograd.grad(whole, logp)
    parts = [
        policy_loss(logp[s], old[s], adv[s], mask[s], norm, aggregation=aggregation)[0]
        for s in (slice(0, 1), slice(1, 4))
    ]
    (split_grad,) = torch.autograd.grad(sum(parts), logp)
    assert sum(parts).item() == pytest.approx(whole.item(), abs=1e-6)
    assert torch.allclose(split_grad, whole_grad, atol=1e-6)
