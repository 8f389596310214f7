"""Group-relative advantages: GRPO's replacement for a value model."""

from __future__ import annotations

from typing import get_args

import torch

from r1kit.choices import AdvantageScale


class AdvantageError(ValueError):
    """Rewards that cannot be split into groups, or an unknown scaling."""


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
    rewards: torch.Tensor, group_size: int, scale: AdvantageScale = "group", eps: float = 1e-4
) -> torch.Tensor:
    """A_i = r_i - mean(group of i), divided by the group's std (GRPO), the batch's std, or
    not at all (Dr. GRPO: dividing by a small std over-weights easy and hard prompts).

    `rewards` holds the G completions of each prompt contiguously. Stds are unbiased (as in
    TRL); groups whose rewards are all equal get exactly 0.
    """
    if scale not in get_args(AdvantageScale):
        allowed = get_args(AdvantageScale)
        raise AdvantageError(f"unknown advantage scale {scale!r}; use one of {allowed}")
    grouped = _grouped(rewards, group_size)
    if group_size == 1:
        return torch.zeros_like(rewards)  # a lone completion has no group to compare with
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if scale == "group":
        centred = centred / (grouped.std(dim=1, keepdim=True) + eps)
    elif scale == "batch":
        centred = centred / (rewards.std() + eps)
    # Exact zeros even where rounding leaves the mean a hair off the equal rewards.
    flat = zero_variance_groups(rewards, group_size)
    return torch.where(flat[:, None], torch.zeros_like(centred), centred).flatten()


def zero_variance_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """[num_groups] True where all G rewards are equal: those groups carry no signal."""
    grouped = _grouped(rewards, group_size)
    return (grouped == grouped[:, :1]).all(dim=1)
