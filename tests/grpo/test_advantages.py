import torch

from grpo.advantages import group_advantages, zero_variance_groups


def test_group_scaling_normalises_each_group():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 4.0])
    adv = group_advantages(rewards, group_size=3, scale="group", eps=0.0)
    # group 1: mean 1/3, std (unbiased) sqrt(1/3); group 2: mean 2, std 2
    std1 = (1 / 3) ** 0.5
    expected = torch.tensor([(2 / 3) / std1, (-1 / 3) / std1, (-1 / 3) / std1, -1.0, 0.0, 1.0])
    assert torch.allclose(adv, expected)


def test_zero_variance_groups_get_exactly_zero():
    rewards = torch.tensor([1.0, 1.0, 0.0, 1.0])
    for scale in ("group", "batch", "none"):
        assert group_advantages(rewards, 2, scale)[:2].tolist() == [0.0, 0.0]
    assert zero_variance_groups(rewards, 2).tolist() == [True, False]


def test_none_scaling_only_centres_and_batch_uses_the_batch_std():
    rewards = torch.tensor([1.0, 0.0, 3.0, 1.0])
    assert group_advantages(rewards, 2, "none").tolist() == [0.5, -0.5, 1.0, -1.0]
    batch = group_advantages(rewards, 2, "batch", eps=0.0)
    assert torch.allclose(batch, torch.tensor([0.5, -0.5, 1.0, -1.0]) / rewards.std())
