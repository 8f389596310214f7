"""The loss maths against values computed by hand (the arithmetic is in the comments)."""

import math
from pathlib import Path

import pytest
import torch

from grpo.loss import (
    LossInputError,
    Normalisers,
    adapt_entropy_coef,
    high_entropy_mask,
    policy_loss,
    tis_weights,
    variants_table,
    zero_at_zero_advantage,
)
from r1kit.learner.kl import kl_k1, kl_k2, kl_k3, mismatch_stats

# Two sequences: the first has 2 completion tokens, the second 1 (then padding).
MASK = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
ADV = torch.tensor([1.0, -3.0])
NORM = Normalisers(num_tokens=3, num_sequences=2, max_completion_len=4)
GSPO = {"aggregation": "grpo", "ratio_level": "sequence"}
ON_POLICY = torch.zeros(2, 2)  # ratio 1 everywhere: per-token loss = -A: seq0 [-1, -1], seq1 [3]


def _loss(logp, old, aggregation="dapo", **kw):
    return policy_loss(logp, old, ADV, MASK, NORM, aggregation=aggregation, **kw)


def _grad(logp_values, old, aggregation="dapo", **kw):
    """Gradient of the loss with respect to logprobs given as nested lists."""
    logp = torch.tensor(logp_values, requires_grad=True)
    _loss(logp, old, aggregation, **kw)[0].backward()
    return logp.grad


def test_dapo_divides_the_token_sum_by_the_batch_token_count():
    assert _loss(ON_POLICY, ON_POLICY, "dapo")[0].item() == pytest.approx((-1 - 1 + 3) / 3)


def test_bnpo_equals_dapo_with_batch_wide_normalisers():
    assert _loss(ON_POLICY, ON_POLICY, "bnpo")[0].item() == pytest.approx((-1 - 1 + 3) / 3)


def test_grpo_averages_the_per_sequence_means():
    # seq0 mean (-1 - 1) / 2 = -1; seq1 mean 3 / 1 = 3; summed over 2 sequences / 2
    assert _loss(ON_POLICY, ON_POLICY, "grpo")[0].item() == pytest.approx((-1 + 3) / 2)


def test_dr_grpo_divides_by_sequences_times_max_completion_length():
    # token sum 1 / (2 sequences x 4 max new tokens)
    assert _loss(ON_POLICY, ON_POLICY, "dr_grpo")[0].item() == pytest.approx(1 / 8)


def test_positive_advantage_is_clipped_above_one_plus_eps_high():
    logp = torch.tensor([[math.log(1.5), 0.0], [0.0, 0.0]])
    # seq0 token0: min(1.5 * 1, 1.28 * 1) = 1.28; token1: 1; seq1: min(1 * -3, 1 * -3) = -3
    loss, _ = _loss(logp, ON_POLICY, epsilon_low=0.2, epsilon_high=0.28)
    assert loss.item() == pytest.approx(-(1.28 + 1 - 3) / 3)


def test_gradient_is_zero_where_positive_advantage_is_clipped():
    grad = _grad([[math.log(1.5), 0.0], [0.0, 0.0]], ON_POLICY)
    assert grad[0, 0] == 0.0
    assert grad[0, 1] == pytest.approx(-1 / 3)  # d(-r A / 3)/d logp = -r A / 3 = -1/3


def test_negative_advantage_is_clipped_below_one_minus_eps_low():
    logp = torch.tensor([[0.0, 0.0], [math.log(0.5), 0.0]])
    # seq1: min(0.5 * -3, 0.8 * -3) = -2.4 -> loss +2.4; seq0: -1 - 1
    loss, _ = _loss(logp, ON_POLICY, epsilon_low=0.2, epsilon_high=0.28)
    assert loss.item() == pytest.approx((-1 - 1 + 2.4) / 3)


def test_gradient_is_zero_where_negative_advantage_is_clipped():
    assert _grad([[0.0, 0.0], [math.log(0.5), 0.0]], ON_POLICY)[1, 0] == 0.0


def test_ratio_moving_against_the_advantage_is_never_clipped():
    # A = +1 at ratio 0.5 and A = -3 at ratio 1.5: the min keeps r A, so the gradient flows
    grad = _grad([[math.log(0.5), 0.0], [math.log(1.5), 0.0]], ON_POLICY)
    assert grad[0, 0] == pytest.approx(-0.5 * 1 / 3)  # -r A / 3
    assert grad[1, 0] == pytest.approx(-1.5 * -3 / 3)


def test_clip_counts_only_count_tokens_whose_gradient_is_clipped():
    # seq0 token0 ratio 1.5 with A > 0: clipped high; token1 ratio 0.5 with A > 0: not clipped
    # seq1 ratio 0.5 with A < 0: clipped low
    logp = torch.log(torch.tensor([[1.5, 0.5], [0.5, 1.0]]))
    _, stats = _loss(logp, ON_POLICY)
    assert (stats["clip_high_count"], stats["clip_low_count"]) == (1, 1)


def test_stats_are_sums_over_the_masked_tokens():
    logp = torch.log(torch.tensor([[1.5, 0.5], [2.0, 9.0]]))  # 9.0 is padding
    _, stats = _loss(logp, ON_POLICY)
    assert stats["token_count"] == 3
    assert stats["ratio_sum"] == pytest.approx(1.5 + 0.5 + 2.0)


def test_masked_garbage_gives_a_finite_loss_and_no_gradient():
    logp = torch.tensor([[0.0, 0.0], [0.0, -math.inf]], requires_grad=True)
    ref = torch.tensor([[0.0, 0.0], [0.0, math.inf]])
    loss, _ = _loss(logp, ON_POLICY, beta=0.1, ref_logprobs=ref)
    loss.backward()
    assert loss.item() == pytest.approx((-1 - 1 + 3) / 3)
    assert logp.grad[1, 1] == 0.0


def test_kl_k3_matches_its_formula():
    # d = ref - logp = log 0.3 - log 0.1 = log 3: exp(d) - d - 1 = 3 - log 3 - 1
    kl = kl_k3(torch.log(torch.tensor([0.1])), torch.log(torch.tensor([0.3])))
    assert kl.item() == pytest.approx(2 - math.log(3), rel=1e-5)


def test_kl_k3_is_nonnegative():
    torch.manual_seed(0)
    assert torch.all(kl_k3(torch.randn(1000) * 3, torch.randn(1000) * 3) >= 0)


def test_kl_k1_and_k2_match_their_formulas():
    logp, ref = torch.log(torch.tensor([0.1])), torch.log(torch.tensor([0.3]))
    assert kl_k1(logp, ref).item() == pytest.approx(math.log(0.1 / 0.3))
    assert kl_k2(logp, ref).item() == pytest.approx(math.log(0.1 / 0.3) ** 2 / 2)


def test_kl_k3_is_zero_for_identical_policies():
    logp = torch.randn(50)
    assert kl_k3(logp, logp).abs().max() == 0


def test_beta_adds_the_kl_term_aggregated_like_the_surrogate():
    ref = torch.full((2, 2), math.log(2.0))  # k3 = exp(log 2) - log 2 - 1 = 1 - log 2 per token
    loss, stats = _loss(ON_POLICY, ON_POLICY, beta=0.5, ref_logprobs=ref)
    # surrogate (-1 - 1 + 3) / 3, plus 0.5 x three tokens of k3 / 3
    assert loss.item() == pytest.approx(1 / 3 + 0.5 * (1 - math.log(2)))
    assert stats["kl_sum"] == pytest.approx(3 * (1 - math.log(2)), rel=1e-5)


def test_beta_without_reference_logprobs_is_rejected():
    with pytest.raises(LossInputError, match="beta > 0 needs ref_logprobs"):
        _loss(ON_POLICY, ON_POLICY, beta=0.1)


def test_token_tis_weights_multiply_each_tokens_surrogate():
    weights = torch.tensor([[0.5, 2.0], [1.5, 7.0]])  # 7.0 sits on padding
    loss, _ = _loss(ON_POLICY, ON_POLICY, tis_weights=weights)
    # token losses [-1 x 0.5, -1 x 2], [3 x 1.5]
    assert loss.item() == pytest.approx((-0.5 - 2 + 4.5) / 3)


def test_sequence_tis_weights_multiply_every_token_of_their_sequence():
    loss, _ = _loss(ON_POLICY, ON_POLICY, tis_weights=torch.tensor([0.5, 2.0]))
    # token losses [-1 x 0.5, -1 x 0.5], [3 x 2]
    assert loss.item() == pytest.approx((-0.5 - 0.5 + 6) / 3)


def test_tis_weights_leave_the_kl_term_alone():
    ref = torch.full((2, 2), math.log(2.0))
    loss, _ = _loss(ON_POLICY, ON_POLICY, beta=1.0, ref_logprobs=ref, tis_weights=torch.zeros(2))
    assert loss.item() == pytest.approx(1 - math.log(2))  # only the KL: 3 x k3 / 3


def test_gspo_uses_the_length_normalised_sequence_ratio():
    # seq0 token log-ratios 0.2 and -0.1: s0 = exp(0.05); seq1: s1 = exp(0.3)
    logp = torch.tensor([[0.2, -0.1], [0.3, 0.0]])
    loss, _ = _loss(logp, ON_POLICY, **GSPO, epsilon_low=1.0, epsilon_high=1.0)
    s0, s1 = math.exp(0.05), math.exp(0.3)
    assert loss.item() == pytest.approx((-s0 * 1 + s1 * 3) / 2, rel=1e-5)


def test_gspo_clips_the_sequence_ratio():
    # seq0 log-ratios 0.6 and 0: s0 = exp(0.3) = 1.35 > 1.28 with A = 1, so the sequence
    # is clipped at 1.28 although its second token's own ratio is 1; seq1 s1 = 1
    logp = torch.tensor([[0.6, 0.0], [0.0, 0.0]])
    loss, _ = _loss(logp, ON_POLICY, **GSPO, epsilon_low=0.2, epsilon_high=0.28)
    assert loss.item() == pytest.approx((-1.28 + 3) / 2, rel=1e-5)


def test_gspo_clipping_zeroes_the_gradient_of_every_token_in_the_sequence():
    grad = _grad([[0.6, 0.0], [0.0, 0.0]], ON_POLICY, **GSPO)
    assert grad[0].tolist() == [0.0, 0.0]


def test_gspo_gradient_is_the_sequence_level_one_spread_over_tokens():
    # d/d logp_t of -s A with s = exp(mean log r): -A s / |y|, then / 2 sequences
    grad = _grad(
        [[0.2, -0.1], [0.1, 0.0]],
        ON_POLICY,
        **GSPO,
        epsilon_low=1,
        epsilon_high=1,
    )
    s0, s1 = math.exp(0.05), math.exp(0.1)
    expected = torch.tensor([[-s0 / 2 / 2, -s0 / 2 / 2], [3 * s1 / 1 / 2, 0.0]])
    assert torch.allclose(grad, expected)


def test_token_tis_weights_are_capped():
    old = torch.zeros(2, 2)
    rollout = torch.tensor([[-2.0, 0.5], [-0.1, 0.0]])
    # exp(0 - rollout): e^2 = 7.39 -> capped at 2, e^-0.5, e^0.1; padding gets weight 1
    weights = tis_weights(old, rollout, MASK, "token", cap=2.0)
    expected = torch.tensor([[2.0, math.exp(-0.5)], [math.exp(0.1), 1.0]])
    assert torch.allclose(weights, expected)


def test_sequence_tis_weight_is_the_capped_product_of_token_ratios():
    old = torch.zeros(2, 2)
    rollout = torch.tensor([[-1.0, 0.5], [-0.1, 50.0]])  # 50.0 sits on padding
    # seq0: exp(1 - 0.5) = 1.65 (each token alone would be 2.72 and 0.61); seq1: exp(0.1)
    assert torch.allclose(
        tis_weights(old, rollout, MASK, "sequence", cap=2.0),
        torch.tensor([math.exp(0.5), math.exp(0.1)]),
    )
    assert tis_weights(old, rollout, MASK, "sequence", cap=1.5)[0] == 1.5


@pytest.mark.parametrize("level", ["token", "sequence"])
def test_tis_weights_never_exceed_the_cap(level):
    torch.manual_seed(0)
    old, rollout = torch.randn(8, 16) * 3, torch.randn(8, 16) * 3
    assert tis_weights(old, rollout, torch.ones(8, 16), level, cap=1.7).max() <= 1.7


def test_mismatch_stats_match_their_definitions():
    old = torch.zeros(2, 2)
    rollout = torch.tensor([[0.1, -0.3], [0.2, 99.0]])  # 99.0 sits on padding
    stats = mismatch_stats(old, rollout, MASK)
    k3 = sum(math.exp(r) - r - 1 for r in (0.1, -0.3, 0.2))  # d = rollout - old
    assert stats["kl"] == pytest.approx(k3 / 3, rel=1e-5)
    assert stats["mean_abs_diff"] == pytest.approx((0.1 + 0.3 + 0.2) / 3)
    assert stats["max_abs_diff"] == pytest.approx(0.3)
    assert stats["token_count"] == 3


def test_mismatch_is_zero_when_engine_and_learner_agree():
    logp = torch.randn(2, 2)
    stats = mismatch_stats(logp, logp, MASK)
    assert (stats["kl"], stats["mean_abs_diff"], stats["max_abs_diff"]) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("aggregation", "ratio_level", "policy", "clip_ratio_c", "top_q"),
    [("grpo", "token", "clip", None, 1.0), ("dapo", "token", "clip", None, 1.0)]
    + [("bnpo", "token", "clip", None, 1.0), ("dr_grpo", "token", "clip", None, 1.0)]
    + [("grpo", "sequence", "clip", None, 1.0), ("dapo", "token", "clip", 1.5, 1.0)]
    + [("dapo", "token", "cispo", None, 1.0), ("dapo", "token", "sapo", None, 1.0)]
    + [("dapo", "token", "clip", None, 0.4), ("grpo", "sequence", "clip", None, 0.4)],
)
def test_micro_batches_add_up_to_the_whole_batch(
    aggregation, ratio_level, policy, clip_ratio_c, top_q
):
    torch.manual_seed(0)
    logp = torch.randn(4, 3, requires_grad=True)
    old, ref = (logp + 0.3 * torch.randn(2, 4, 3)).detach()
    adv, weights = torch.randn(4), torch.rand(4, 3) * 2
    mask = torch.tensor([[1.0, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]])
    norm = Normalisers(num_tokens=mask.sum().item(), num_sequences=4, max_completion_len=3)
    # The top-q tokens are chosen over the whole batch, then split with it.
    selected = high_entropy_mask(torch.rand(4, 3), mask, top_q)

    def loss(rows: slice) -> torch.Tensor:
        return policy_loss(
            logp[rows],
            old[rows],
            adv[rows],
            mask[rows],
            norm,
            aggregation=aggregation,
            ratio_level=ratio_level,
            policy=policy,
            clip_ratio_c=clip_ratio_c,
            beta=0.1,
            ref_logprobs=ref[rows],
            tis_weights=weights[rows],
            selected=selected[rows],
        )[0]

    whole = loss(slice(0, 4))
    (whole_grad,) = torch.autograd.grad(whole, logp)
    split = loss(slice(0, 1)) + loss(slice(1, 4))
    (split_grad,) = torch.autograd.grad(split, logp)
    assert split.item() == pytest.approx(whole.item(), abs=1e-6)
    assert torch.allclose(split_grad, whole_grad, atol=1e-6)


def test_cispo_clips_the_detached_weight_and_keeps_every_tokens_gradient():
    # ratios e^0.5 = 1.65 (clipped to 1.28) and e^-0.5 = 0.61 (clipped to 0.8) on seq0 (A = 1);
    # seq1 (A = -3) at ratio 1. Value -clip(r) A; gradient wrt logp -clip(r) A, never 0.
    logp = [[0.5, -0.5], [0.0, 0.0]]
    loss, _ = _loss(torch.tensor(logp), ON_POLICY, policy="cispo")
    assert loss.item() == pytest.approx((-1.28 - 0.8 + 3) / 3)
    grad = _grad(logp, ON_POLICY, policy="cispo")
    assert torch.allclose(grad, torch.tensor([[-1.28, -0.8], [3.0, 0.0]]) / 3)


def test_sapo_weights_the_gradient_by_the_soft_gate():
    # seq0 (A = 1, tau 1) at r = e^0.5: loss -4 sigmoid(e^0.5 - 1); the gradient wrt logp is
    # -4 s (1 - s) r A (chain rule through r = e^logp). seq1 (A = -3, tau 1.05) on-policy:
    # loss -(4 / 1.05) sigmoid(0) (-3) = 6 / 1.05, gradient -4 * 0.25 * 1 * (-3) = 3.
    logp = [[0.5, 0.0], [0.0, 0.0]]
    r = math.exp(0.5)
    s = 1 / (1 + math.exp(-(r - 1)))
    loss, _ = _loss(torch.tensor(logp), ON_POLICY, policy="sapo")
    assert loss.item() == pytest.approx((-4 * s - 2 + 6 / 1.05) / 3)
    grad = _grad(logp, ON_POLICY, policy="sapo")
    expected = torch.tensor([[-4 * s * (1 - s) * r, -1.0], [3.0, 0.0]]) / 3
    assert torch.allclose(grad, expected)


@pytest.mark.parametrize("policy", ["cispo", "sapo"])
def test_new_policy_losses_are_zero_at_zero_advantage(policy):
    logp = torch.tensor([[0.7, -0.4], [0.3, 9.0]], requires_grad=True)
    loss, _ = policy_loss(logp, ON_POLICY, torch.zeros(2), MASK, NORM, policy=policy)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(logp.grad, torch.zeros(2, 2))
    assert zero_at_zero_advantage(policy)


def test_dual_clip_bounds_the_loss_of_a_negative_advantage():
    # seq1 (A = -3) at r = e^1.5 = 4.48: clip's loss -min(rA, clip(r)A) = 13.4, capped at
    # -c A = 9 with c = 3; its gradient is then 0. seq0 (A > 0) is untouched.
    logp = [[0.0, 0.0], [1.5, 0.0]]
    loss, stats = _loss(torch.tensor(logp), ON_POLICY, clip_ratio_c=3.0)
    assert loss.item() == pytest.approx((-1 - 1 + 9) / 3)
    assert stats["clip_dual_count"] == 1
    assert _grad(logp, ON_POLICY, clip_ratio_c=3.0)[1, 0].item() == 0.0


def test_dual_clip_leaves_ratios_below_c_alone():
    logp = torch.tensor([[0.0, 0.0], [0.5, 0.0]])
    assert torch.equal(_loss(logp, ON_POLICY, clip_ratio_c=3.0)[0], _loss(logp, ON_POLICY)[0])


def test_dual_clip_c_of_at_most_one_is_rejected():
    with pytest.raises(LossInputError, match="clip_ratio_c .* must be > 1"):
        _loss(ON_POLICY, ON_POLICY, clip_ratio_c=1.0)


def test_the_entropy_bonus_subtracts_coef_times_entropy_per_token():
    # entropies [[1, 2], [3, masked 50]], coef 0.1: dapo ((-1 - 0.1) + (-1 - 0.2) + (3 - 0.3)) / 3;
    # d loss / d H = -0.1 / 3 on each real token, 0 on the masked one
    entropy = torch.tensor([[1.0, 2.0], [3.0, 50.0]], requires_grad=True)
    loss, _ = _loss(ON_POLICY, ON_POLICY, entropy=entropy, entropy_coef=0.1)
    assert loss.item() == pytest.approx((-1.1 - 1.2 + 2.7) / 3)
    loss.backward()
    assert torch.allclose(entropy.grad, torch.tensor([[-0.1, -0.1], [-0.1, 0.0]]) / 3)


def test_the_entropy_bonus_adds_up_over_micro_batches():
    torch.manual_seed(0)
    entropy = torch.rand(4, 3, requires_grad=True)
    mask = torch.tensor([[1.0, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]])
    norm = Normalisers(num_tokens=9, num_sequences=4, max_completion_len=3)
    logp, adv = torch.zeros(4, 3), torch.randn(4)

    def loss(rows: slice) -> torch.Tensor:
        return policy_loss(
            logp[rows],
            logp[rows],
            adv[rows],
            mask[rows],
            norm,
            entropy=entropy[rows],
            entropy_coef=0.05,
        )[0]

    (whole,) = torch.autograd.grad(loss(slice(0, 4)), entropy)
    (split,) = torch.autograd.grad(loss(slice(0, 1)) + loss(slice(1, 4)), entropy)
    assert torch.allclose(split, whole, atol=1e-7)


# A 2 x 3 batch: 3 and 2 completion tokens (one masked position holding a huge entropy).
MASK_2x3 = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
ENTROPY_2x3 = torch.tensor([[0.1, 0.9, 0.5], [0.7, 0.3, 50.0]])
NORM_2x3 = Normalisers(num_tokens=5, num_sequences=2, max_completion_len=3)


def test_the_top_q_tokens_are_the_highest_entropies_of_the_batch_s_valid_tokens():
    # M = 5 valid tokens, q = 0.4: the ceil(2) = 2 highest, 0.9 and 0.7 (the masked 50 is out)
    keep = high_entropy_mask(ENTROPY_2x3, MASK_2x3, 0.4)
    assert keep.tolist() == [[False, True, False], [True, False, False]]
    assert high_entropy_mask(ENTROPY_2x3, MASK_2x3, 1.0).tolist() == MASK_2x3.bool().tolist()
    # 0.3 x 5 = 1.5 -> 2 tokens; 0.2 x 5 = 1 token
    assert high_entropy_mask(ENTROPY_2x3, MASK_2x3, 0.3).sum() == 2
    assert high_entropy_mask(ENTROPY_2x3, MASK_2x3, 0.2).sum() == 1
    # 0.07 x 100 is 7.000000000000001 in floating point: still 7 tokens, not 8
    assert high_entropy_mask(torch.arange(100.0)[None], torch.ones(1, 100), 0.07).sum() == 7


def test_tokens_tied_with_the_threshold_are_all_kept():
    keep = high_entropy_mask(torch.tensor([[1.0, 2.0, 2.0]]), torch.ones(1, 3), 0.34)
    assert keep.tolist() == [[False, True, True]]


def test_a_top_q_outside_zero_to_one_is_rejected():
    with pytest.raises(LossInputError, match="entropy_top_q must be in"):
        high_entropy_mask(ENTROPY_2x3, MASK_2x3, 0.0)


def test_only_the_selected_tokens_keep_their_surrogate_and_all_count_in_the_normaliser():
    # On-policy (r = 1): per-token loss -A, A = [1, -3]; kept (0, 1) -> -1 and (1, 0) -> 3.
    # dapo: (-1 + 3) / 5, every valid token in the denominator (the paper's 1 / sum |o_i|);
    # grpo: (-1 / 3 + 3 / 2) / 2. Gradient -A / 5 on the kept tokens, 0 elsewhere.
    keep = high_entropy_mask(ENTROPY_2x3, MASK_2x3, 0.4)
    adv = torch.tensor([1.0, -3.0])
    logp = torch.zeros(2, 3, requires_grad=True)
    old = torch.zeros(2, 3)
    loss, _ = policy_loss(logp, old, adv, MASK_2x3, NORM_2x3, selected=keep)
    assert loss.item() == pytest.approx((-1 + 3) / 5)
    loss.backward()
    assert torch.allclose(logp.grad, torch.tensor([[0.0, -1.0, 0.0], [3.0, 0.0, 0.0]]) / 5)
    grpo, _ = policy_loss(old, old, adv, MASK_2x3, NORM_2x3, aggregation="grpo", selected=keep)
    assert grpo.item() == pytest.approx((-1 / 3 + 3 / 2) / 2)


def test_the_selection_is_zero_at_zero_advantage_and_leaves_kl_and_entropy_terms_alone():
    keep = high_entropy_mask(ENTROPY_2x3, MASK_2x3, 0.4)
    logp = torch.tensor([[0.3, -0.2, 0.1], [0.5, 0.0, 9.0]], requires_grad=True)
    old, zero = torch.zeros(2, 3), torch.zeros(2)
    loss, _ = policy_loss(logp, old, zero, MASK_2x3, NORM_2x3, selected=keep)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(logp.grad, torch.zeros(2, 3))
    # beta k3 and the entropy bonus are over every valid token, selected or not
    ref = torch.zeros(2, 3)
    options = {"beta": 0.1, "ref_logprobs": ref, "entropy": ENTROPY_2x3, "entropy_coef": 0.1}
    with_keep, _ = policy_loss(logp, old, zero, MASK_2x3, NORM_2x3, selected=keep, **options)
    without, _ = policy_loss(logp, old, zero, MASK_2x3, NORM_2x3, **options)
    assert with_keep.item() == pytest.approx(without.item()) and without.item() != 0


def test_the_adaptive_entropy_coef_moves_by_its_step_towards_the_target():
    # Skywork-OR1: + delta below the target, - delta at or above it, within [0, max]
    assert adapt_entropy_coef(0.01, 0.1, 0.2, 0.005, None) == pytest.approx(0.015)
    assert adapt_entropy_coef(0.01, 0.3, 0.2, 0.005, None) == pytest.approx(0.005)
    assert adapt_entropy_coef(0.01, 0.2, 0.2, 0.005, None) == pytest.approx(0.005)
    assert adapt_entropy_coef(0.003, 0.3, 0.2, 0.005, None) == 0.0
    assert adapt_entropy_coef(0.018, 0.1, 0.2, 0.005, 0.02) == 0.02


def test_an_entropy_bonus_without_entropy_is_rejected():
    with pytest.raises(LossInputError, match="entropy_coef > 0 needs the"):
        _loss(ON_POLICY, ON_POLICY, entropy_coef=0.1)


def test_unknown_aggregation_is_rejected():
    with pytest.raises(LossInputError, match="learner.loss: unknown 'ppo'; registered: bnpo"):
        _loss(ON_POLICY, ON_POLICY, "ppo")


def test_unknown_policy_loss_is_rejected():
    with pytest.raises(LossInputError, match="learner.policy_loss: unknown 'ppo'; registered: "):
        _loss(ON_POLICY, ON_POLICY, policy="ppo")


def test_unknown_ratio_level_is_rejected():
    with pytest.raises(LossInputError, match="learner.ratio_level: unknown 'tok'"):
        _loss(ON_POLICY, ON_POLICY, ratio_level="tok")


def test_the_clipped_surrogate_is_zero_at_zero_advantage():
    assert zero_at_zero_advantage("clip")


def test_the_kl_estimator_is_chosen_by_name():
    # at ratio 1 the loss is only the KL: every token has logp 0 and ref log 2 (d = log 2)
    ref = torch.full((2, 2), math.log(2.0))
    loss, stats = _loss(ON_POLICY, ON_POLICY, beta=1.0, ref_logprobs=ref, kl_estimator="k2")
    assert stats["kl_sum"] == pytest.approx(3 * math.log(2) ** 2 / 2)


def test_mismatched_shapes_are_named():
    with pytest.raises(LossInputError, match=r"advantages has shape \(3,\), expected \(2,\)"):
        policy_loss(ON_POLICY, ON_POLICY, torch.zeros(3), MASK, NORM)


def test_non_positive_normalisers_are_rejected():
    with pytest.raises(LossInputError, match="num_tokens must be positive"):
        Normalisers(num_tokens=0, num_sequences=2, max_completion_len=4)


def test_the_docs_table_of_variants_is_the_registries():
    page = (Path(__file__).parents[2] / "docs" / "grpo_losses.md").read_text()
    shown = page.split("<!-- variants: grpo.loss.variants_table() -->\n")[1].split("<!-- /")[0]
    assert shown == variants_table(), "paste grpo.loss.variants_table() into the docs"
