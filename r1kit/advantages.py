"""Advantage estimators (no value model), by name, and GRPO's scalings of its advantage.

`learner.advantage` picks the estimator (`register_estimator(name)`: a function of the
[num_groups, G] rewards, the scale's name, eps and k returning their advantages);
`learner.advantage_scale` picks how `grpo` scales (`register_advantage(name)`: a function of
the rewards and eps). Groups whose G rewards are all equal get exactly 0 from every
group-relative estimator.
"""

from __future__ import annotations

from math import comb

import torch

from r1kit.registry import Registry


class AdvantageError(ValueError):
    """Rewards that cannot be split into groups, or an unknown estimator."""


ADVANTAGES = Registry("learner.advantage_scale", AdvantageError)
ESTIMATORS = Registry("learner.advantage", AdvantageError)
register_advantage = ADVANTAGES.register
register_estimator = ESTIMATORS.register


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


@register_estimator("grpo")
def grpo(grouped: torch.Tensor, scale: str, eps: float, k: int) -> torch.Tensor:
    """r - mean(group), scaled by `learner.advantage_scale` (DeepSeekMath's GRPO)."""
    return ADVANTAGES.pick(scale)(grouped, eps)


@register_estimator("rloo")
def leave_one_out(grouped: torch.Tensor, scale: str, eps: float, k: int) -> torch.Tensor:
    """r_i - mean_{j != i} r_j = G / (G - 1) (r_i - mean(group)) (RLOO, Ahmadian et al. 2024)."""
    size = grouped.shape[1]
    return _centred(grouped) * size / (size - 1)


@register_estimator("reinforce_pp")
def reinforce_pp(grouped: torch.Tensor, scale: str, eps: float, k: int) -> torch.Tensor:
    """(r - mean(batch)) / std(batch): REINFORCE++ (Hu 2025), the return normalised batch-wide.

    No group baseline: a group whose rewards are all equal still gets a nonzero advantage.
    """
    flat = grouped.reshape(-1)
    return (grouped - flat.mean()) / (flat.std() + eps)


@register_estimator("reinforce_pp_baseline")
def reinforce_pp_baseline(grouped: torch.Tensor, scale: str, eps: float, k: int) -> torch.Tensor:
    """(r - mean(group)) / std over the batch of those centred values (REINFORCE++-baseline)."""
    centred = _centred(grouped)
    return centred / (centred.reshape(-1).std() + eps)


@register_estimator("grpo_passk")
def pass_at_k(grouped: torch.Tensor, scale: str, eps: float, k: int) -> torch.Tensor:
    """The analytic pass@k advantage (Chen et al. 2025, "Pass@k Training", Sec. 4).

    With c of N completions correct (reward >= 1), the group's pass@k is
    R = 1 - C(N-c, k) / C(N, k) and sigma = sqrt(R (1 - R)); a correct completion gets
    (1 - R) / sigma, a wrong one (1 - R - C(N-c-1, k-1) / C(N-1, k-1)) / sigma. k = 1 is GRPO
    with the population std.
    """
    size = grouped.shape[1]
    correct = grouped >= 1
    rows = []
    for c, row in zip(correct.sum(dim=1).tolist(), correct, strict=True):
        group_pass = 1 - comb(size - c, k) / comb(size, k)
        sigma = (group_pass * (1 - group_pass)) ** 0.5
        if sigma == 0:  # all solved or none: no signal
            rows.append(torch.zeros(size))
            continue
        wrong = (1 - group_pass - comb(size - c - 1, k - 1) / comb(size - 1, k - 1)) / sigma
        rows.append(torch.where(row, (1 - group_pass) / sigma, wrong))
    return torch.stack(rows).to(grouped.dtype)


def _centred(grouped: torch.Tensor) -> torch.Tensor:
    """r - mean(group), exactly 0 in a group whose rewards are all equal (rounding would leave
    the mean a hair off them)."""
    flat = (grouped == grouped[:, :1]).all(dim=1, keepdim=True)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    return torch.where(flat, torch.zeros_like(centred), centred)


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
    rewards: torch.Tensor,
    group_size: int,
    scale: str = "group",
    eps: float = 1e-4,
    estimator: str = "grpo",
    k: int = 1,
) -> torch.Tensor:
    """Each completion's advantage by the estimator named `estimator` (`grpo` scaled by the
    one named `scale`; `grpo_passk` for pass@k).

    `rewards` holds the G completions of each prompt contiguously. Stds are unbiased (as in
    TRL).
    """
    estimate, _ = ESTIMATORS.pick(estimator), ADVANTAGES.pick(scale)
    grouped = _grouped(rewards, group_size)
    if group_size == 1:
        return torch.zeros_like(rewards)  # a lone completion has no group to compare with
    return estimate(grouped, scale, eps, k).flatten()


def zero_variance_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """[num_groups] True where all G rewards are equal: those groups carry no signal."""
    grouped = _grouped(rewards, group_size)
    return (grouped == grouped[:, :1]).all(dim=1)
