"""GRPO policy-loss variants, the k3 KL estimator and truncated importance sampling.

Every function returns a micro-batch's *contribution* to the batch loss: it divides by the
batch-wide normalisers the caller passes (`Normalisers`), never by its own size, so summing
over micro-batches (and ranks) gives exactly the full-batch loss and gradient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

Aggregation = Literal["grpo", "dapo", "bnpo", "dr_grpo", "gspo"]


@dataclass(frozen=True)
class Normalisers:
    """Computed over the whole batch (all micro-batches, all ranks)."""

    num_tokens: float  # completion tokens with mask 1
    num_sequences: int
    max_completion_len: int  # Dr. GRPO's constant: max_new_tokens


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimator of KL(pi || ref): exp(d) - d - 1 with d = ref - logp; >= 0."""
    d = ref_logprobs - logprobs
    return torch.exp(d) - d - 1


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    norm: Normalisers,
    *,
    aggregation: Aggregation = "dapo",
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.28,
    beta: float = 0.0,
    ref_logprobs: torch.Tensor | None = None,
    tis_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped surrogate (+ beta * k3 KL) over [B, T] tokens; returns (loss, summed stats).

    Per token, with ratio r = pi/pi_old and advantage A of its sequence:
        loss_t = -min(r A, clip(r, 1 - eps_low, 1 + eps_high) A)      (PPO, DAPO clip-higher)
    GSPO replaces r by the sequence's length-normalised ratio exp(mean_t log r_t).
    """
    mask = mask.float()
    log_ratio = (logprobs - old_logprobs) * mask  # masked first: no exp of padding garbage
    if aggregation == "gspo":
        # GSPO-token: s_i = sg[exp(mean_t log r_t)] * pi_t / sg[pi_t]; equal to s_i in value,
        # its gradient is the sequence-level one spread over the tokens.
        lengths = mask.sum(-1).clamp(min=1)
        seq_log_ratio = (log_ratio.sum(-1) / lengths).detach()
        log_ratio = (seq_log_ratio[:, None] + logprobs - logprobs.detach()) * mask
    ratio = torch.exp(log_ratio)
    adv = advantages[:, None]
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    per_token = -torch.min(ratio * adv, clipped * adv)
    kl = torch.zeros_like(per_token)
    if beta > 0:
        if ref_logprobs is None:
            raise ValueError("policy_loss: beta > 0 needs ref_logprobs")
        kl = kl_k3(logprobs, ref_logprobs) * mask
        per_token = per_token + beta * kl
    if tis_weights is not None:
        per_token = per_token * (tis_weights if tis_weights.dim() == 2 else tis_weights[:, None])
    loss = aggregate(per_token * mask, mask, norm, aggregation)
    stats = {
        "token_count": mask.sum().item(),
        "clip_low_count": ((ratio < 1 - epsilon_low) & (adv < 0) & (mask > 0)).sum().item(),
        "clip_high_count": ((ratio > 1 + epsilon_high) & (adv > 0) & (mask > 0)).sum().item(),
        "kl_sum": kl.sum().item(),
        "ratio_sum": (ratio * mask).sum().item(),
    }
    return loss, stats


def aggregate(
    per_token: torch.Tensor, mask: torch.Tensor, norm: Normalisers, aggregation: Aggregation
) -> torch.Tensor:
    """Sum of masked per-token losses over the micro-batch, normalised batch-wide:
    grpo/gspo: mean per sequence, averaged over sequences (DeepSeekMath's GRPO, GSPO);
    dapo/bnpo: mean over all tokens of the batch (DAPO's token-level loss; with batch-wide
               normalisers TRL's "bnpo" and "dapo" coincide);
    dr_grpo:   sum over tokens / (sequences x max_new_tokens) (Dr. GRPO: no length bias)."""
    if aggregation in ("grpo", "gspo"):
        per_sequence = per_token.sum(-1) / mask.sum(-1).clamp(min=1)
        return per_sequence.sum() / norm.num_sequences
    if aggregation in ("dapo", "bnpo"):
        return per_token.sum() / norm.num_tokens
    if aggregation == "dr_grpo":
        return per_token.sum() / (norm.num_sequences * norm.max_completion_len)
    raise ValueError(f"unknown loss aggregation {aggregation!r}")


def tis_weights(
    old_logprobs: torch.Tensor,
    rollout_logprobs: torch.Tensor,
    mask: torch.Tensor,
    level: Literal["token", "sequence"],
    cap: float,
) -> torch.Tensor:
    """Truncated importance weights pi_learner / pi_rollout, capped (Yao et al., 2025: the
    engine's and the learner's numerics differ, so "on-policy" samples are slightly off-policy).
    Token level: [B, T]; sequence level: [B], the product of the token ratios."""
    log_w = (old_logprobs - rollout_logprobs).detach() * mask
    if level == "token":
        return torch.exp(log_w).clamp(max=cap)
    return torch.exp(log_w.sum(-1)).clamp(max=cap)


def mismatch_stats(
    old_logprobs: torch.Tensor, rollout_logprobs: torch.Tensor, mask: torch.Tensor
) -> dict[str, float]:
    """How far the rollout engine's log-probs are from the learner's on the same tokens."""
    diff = ((old_logprobs - rollout_logprobs) * mask).detach()
    tokens = mask.sum().clamp(min=1)
    return {
        "kl": (kl_k3(old_logprobs.detach(), rollout_logprobs) * mask).sum().item() / tokens.item(),
        "max_abs_diff": diff.abs().max().item() if diff.numel() else 0.0,
    }
