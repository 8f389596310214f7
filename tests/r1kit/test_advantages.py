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
