"""Group-relative advantages against values computed by hand."""

import pytest
import torch

from r1kit.advantages import AdvantageError, group_advantages, zero_variance_groups


def test_group_scaling_divides_by_each_groups_std():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 4.0])
    adv = group_advantages(rewards, group_size=3, scale="group", eps=0.0)
    # group 1: mean 1/3, unbiased std sqrt(((2/3)^2 + 2 (1/3)^2) / 2) = sqrt(1/3)
    # group 2: mean 2, unbiased std sqrt((4 + 0 + 4) / 2) = 2
    std1 = (1 / 3) ** 0.5
    expected = torch.tensor([(2 / 3) / std1, (-1 / 3) / std1, (-1 / 3) / std1, -1.0, 0.0, 1.0])
    assert torch.allclose(adv, expected)


def test_none_scaling_only_centres():
    rewards = torch.tensor([1.0, 0.0, 3.0, 1.0])
    # means 0.5 and 2
    assert group_advantages(rewards, 2, "none").tolist() == [0.5, -0.5, 1.0, -1.0]


def test_batch_scaling_divides_by_the_batch_std():
    rewards = torch.tensor([1.0, 0.0, 3.0, 1.0])
    # batch mean 5/4; squared deviations 1/16 + 25/16 + 49/16 + 1/16 = 76/16; unbiased / 3
    batch_std = (76 / 16 / 3) ** 0.5
    expected = torch.tensor([0.5, -0.5, 1.0, -1.0]) / batch_std
    assert torch.allclose(group_advantages(rewards, 2, "batch", eps=0.0), expected)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_zero_variance_groups_get_exactly_zero(scale):
    # seven copies of 0.1: their float32 mean is 0.1 + 7e-9, a residue the std would amplify
    rewards = torch.cat([torch.full((7,), 0.1), torch.arange(7.0)])
    assert group_advantages(rewards, 7, scale)[:7].tolist() == [0.0] * 7


def test_groups_of_one_give_zero_not_nan():
    assert group_advantages(torch.tensor([1.0, 2.0]), 1).tolist() == [0.0, 0.0]


def test_zero_variance_groups_flags_groups_with_equal_rewards():
    rewards = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0])
    assert zero_variance_groups(rewards, 2).tolist() == [True, False, True]


def test_rewards_that_do_not_split_into_groups_are_rejected():
    with pytest.raises(AdvantageError, match="5 rewards cannot be split into groups of 2"):
        group_advantages(torch.zeros(5), 2)


def test_unknown_scale_is_rejected():
    with pytest.raises(
        AdvantageError,
        match="learner.advantage_scale: unknown 'std'; registered: batch, group, none",
    ):
        group_advantages(torch.zeros(4), 2, "std")


def test_rloo_subtracts_the_mean_of_the_others():
    # group [1, 0, 0]: 1 - 0 = 1, 0 - (1 + 0) / 2 = -0.5 twice; group [2, 2, 2]: 0
    adv = group_advantages(torch.tensor([1.0, 0, 0, 2, 2, 2]), 3, estimator="rloo")
    assert torch.allclose(adv, torch.tensor([1.0, -0.5, -0.5, 0, 0, 0]))


def test_reinforce_pp_normalises_by_the_batch_even_in_flat_groups():
    # batch [1, 1, 0, 0]: mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = sqrt(1/3); group 1 is
    # flat yet gets +0.5 / std (the baseline is the batch's, not the group's)
    adv = group_advantages(torch.tensor([1.0, 1, 0, 0]), 2, eps=0.0, estimator="reinforce_pp")
    std = (1 / 3) ** 0.5
    assert torch.allclose(adv, torch.tensor([0.5, 0.5, -0.5, -0.5]) / std)


def test_reinforce_pp_baseline_centres_per_group_then_scales_by_the_batch():
    # centred [0.5, -0.5, 0, 0]: unbiased std sqrt(0.5 / 3)
    adv = group_advantages(
        torch.tensor([1.0, 0, 3, 3]), 2, eps=0.0, estimator="reinforce_pp_baseline"
    )
    assert torch.allclose(adv, torch.tensor([0.5, -0.5, 0, 0]) / (0.5 / 3) ** 0.5)


def test_pass_at_k_advantage_matches_the_analytic_formula():
    # N = 4, c = 1, k = 2: R = 1 - C(3,2)/C(4,2) = 1/2, sigma = 1/2; correct: (1 - 1/2) / (1/2)
    # = 1; wrong: (1 - 1/2 - C(2,1)/C(3,1)) / (1/2) = (1/2 - 2/3) * 2 = -1/3
    adv = group_advantages(torch.tensor([1.0, 0, 0, 0]), 4, estimator="grpo_passk", k=2)
    assert torch.allclose(adv, torch.tensor([1.0, -1 / 3, -1 / 3, -1 / 3]))


def test_pass_at_one_is_grpo_with_the_population_std():
    rewards = torch.tensor([1.0, 0, 0, 1, 1, 0])
    adv = group_advantages(rewards, 3, estimator="grpo_passk", k=1)
    grouped = rewards.view(2, 3)
    expected = (grouped - grouped.mean(1, keepdim=True)) / grouped.std(1, unbiased=False)[:, None]
    assert torch.allclose(adv, expected.flatten())


@pytest.mark.parametrize("estimator", ["grpo", "rloo", "reinforce_pp_baseline", "grpo_passk"])
def test_group_relative_estimators_give_flat_groups_exactly_zero(estimator):
    adv = group_advantages(torch.tensor([1.0, 1, 1, 0, 0, 0]), 3, estimator=estimator, k=2)
    assert torch.equal(adv, torch.zeros(6))


def test_unknown_estimator_is_rejected():
    with pytest.raises(AdvantageError, match="learner.advantage: unknown 'ppo'; registered: "):
        group_advantages(torch.zeros(4), 2, estimator="ppo")
