"""Advantage estimators: GRPO's group-relative replacement for a value model, by name.

`learner.advantage_scale` picks one; `register_advantage(name)` adds another: a function of
the [num_groups, G] rewards (and eps) returning their [num_groups, G] advantages.
"""

from __future__ import annotations

import torch

from r1kit.registry import Registry


class AdvantageError(ValueError):
    """Rewards that cannot be split into groups, or an unknown estimator."""


ADVANTAGES = Registry("learner.advantage_scale", AdvantageError)
register_advantage = ADVANTAGES.register


@register_advantage("group")
def group_scaled(grouped: torch.Tensor, eps: float) -> torch.Tensor:
    """r - mean(group), divided by the group's std (DeepSeekMath's GRPO)."""
    return _centred(grouped) / (grouped.std(dim=1, keepdim=True) + eps)


@register_advantage("batch")
def batch_scaled(grouped: torch.Tensor, eps: float) -> torch.Tensor:
    """r - mean(group), divided by the whole batch's std."""
    return _centred(grouped) / (grouped.reshape(-1).std() + eps)


@register_advantage("none")
def unscaled(grouped: torch.Tensor, eps: float) -> torch.Tensor:
    """r - mean(group), not scaled (Dr. GRPO: a small std over-weights easy and hard prompts)."""
    return _centred(grouped)


def _centred(grouped: torch.Tensor) -> torch.Tensor:
    return grouped - grouped.mean(dim=1, keepdim=True)


def _grouped(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """[num_groups, group_size] view of the flat rewards, after checking they fit."""
    if rewards.dim() != 1:
        raise AdvantageError(f"rewards must be 1-D, got shape {tuple(rewards.shape)}")
    if group_size < 1 or rewards.numel() % group_size:
        raise AdvantageError(
            f"{rewards.numel()} rewards cannot be split into groups of {group_size}"
        )
    return rewards.view(-1, group_size)


def group_advantages(
    rewards: torch.Tensor, group_size: int, scale: str = "group", eps: float = 1e-4
) -> torch.Tensor:
    """Each completion's advantage over its group, by the estimator named `scale`.

    `rewards` holds the G completions of each prompt contiguously. Stds are unbiased (as in
    TRL); groups whose rewards are all equal get exactly 0.
    """
    estimator = ADVANTAGES.pick(scale)
    grouped = _grouped(rewards, group_size)
    if group_size == 1:
        return torch.zeros_like(rewards)  # a lone completion has no group to compare with
    centred = estimator(grouped, eps)
    # Exact zeros even where rounding leaves the mean a hair off the equal rewards.
    flat = zero_variance_groups(rewards, group_size)
    return torch.where(flat[:, None], torch.zeros_like(centred), centred).flatten()


def zero_variance_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """[num_groups] True where all G rewards are equal: those groups carry no signal."""
    grouped = _grouped(rewards, group_size)
    return (grouped == grouped[:, :1]).all(dim=1)
