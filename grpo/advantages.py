"""Group-relative advantages: GRPO's replacement for a value model."""

from __future__ import annotations

from typing import Literal

import torch


def group_advantages(
    rewards: torch.Tensor,
    group_size: int,
    scale: Literal["group", "batch", "none"] = "group",
    eps: float = 1e-4,
) -> torch.Tensor:
    """A_i = r_i - mean(group of i), divided by the group's std (GRPO), the batch's std, or
    not at all (Dr. GRPO: dividing by a small std over-weights easy and hard prompts).
    `rewards` holds the G completions of each prompt contiguously."""
    grouped = rewards.view(-1, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if scale == "group":
        centred = centred / (grouped.std(dim=1, keepdim=True) + eps)
    elif scale == "batch":
        centred = centred / (rewards.std() + eps)
    return centred.flatten()


def zero_variance_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """[num_groups] True where all G rewards are equal: those groups carry no signal."""
    grouped = rewards.view(-1, group_size)
    return (grouped == grouped[:, :1]).all(dim=1)
