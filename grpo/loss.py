"""GRPO policy-loss variants, the k3 KL estimator and truncated importance sampling.

`policy_loss` returns a micro-batch's *contribution* to the batch loss: it divides by the
batch-wide normalisers the caller passes (`Normalisers`), never by its own size, so summing
over micro-batches (and ranks) gives exactly the full-batch loss and gradient.
Formulas and sources: docs/grpo_losses.md.
"""

from __future__ import annotations

from typing import get_args

import torch

from r1kit.choices import LossName, TISLevel
from r1kit.learner.kl import kl_k3
from r1kit.learner.normalisers import LossInputError, Normalisers


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    norm: Normalisers,
    *,
    aggregation: LossName = "dapo",
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.28,
    beta: float = 0.0,
    ref_logprobs: torch.Tensor | None = None,
    tis_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped surrogate (+ beta * k3 KL) over [B, T] tokens; returns (loss, summed stats).

    Per token, with ratio r = pi / pi_old and advantage A of its sequence:
        loss_t = -min(r A, clip(r, 1 - eps_low, 1 + eps_high) A)      (PPO, DAPO clip-higher)
    GSPO replaces r by the sequence's length-normalised ratio exp(mean_t log r_t).
    """
    _check_inputs(logprobs, old_logprobs, advantages, mask, ref_logprobs, tis_weights)
    _check_settings(aggregation, epsilon_low, epsilon_high, beta, ref_logprobs)
    valid = mask.bool()
    # Masked positions may hold garbage (padding, -inf): select them away before any exp.
    log_ratio = torch.where(valid, logprobs - old_logprobs, 0.0)
    if aggregation == "gspo":
        log_ratio = _gspo_token_log_ratio(log_ratio, logprobs, valid)
    ratio = torch.exp(log_ratio)
    adv = advantages[:, None]
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    per_token = -torch.min(ratio * adv, clipped * adv)
    if tis_weights is not None:
        per_token = per_token * (tis_weights if tis_weights.dim() == 2 else tis_weights[:, None])
    kl = torch.zeros_like(per_token)
    if beta > 0:
        kl = kl_k3(torch.where(valid, logprobs, 0.0), torch.where(valid, ref_logprobs, 0.0))
        per_token = per_token + beta * kl
    loss = _aggregate(torch.where(valid, per_token, 0.0), valid, norm, aggregation)
    stats = {
        "token_count": valid.sum().item(),
        "clip_low_count": (valid & (ratio < 1 - epsilon_low) & (adv < 0)).sum().item(),
        "clip_high_count": (valid & (ratio > 1 + epsilon_high) & (adv > 0)).sum().item(),
        "kl_sum": kl.sum().item(),
        "ratio_sum": torch.where(valid, ratio, 0.0).sum().item(),
    }
    return loss, stats


def _gspo_token_log_ratio(
    log_ratio: torch.Tensor, logprobs: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """GSPO-token: log s_i + logp_t - sg[logp_t]. Equal to log s_i in value, and its
    gradient with the per-sequence mean is exactly GSPO's sequence-level gradient."""
    lengths = valid.sum(-1).clamp(min=1)
    seq_log_ratio = (log_ratio.sum(-1) / lengths).detach()
    return torch.where(valid, seq_log_ratio[:, None] + logprobs - logprobs.detach(), 0.0)


def _aggregate(
    per_token: torch.Tensor, valid: torch.Tensor, norm: Normalisers, aggregation: LossName
) -> torch.Tensor:
    """Sum of the (already masked) per-token losses, normalised batch-wide:
    grpo/gspo: mean per sequence, summed / num_sequences (DeepSeekMath's GRPO, GSPO);
    dapo/bnpo: sum / num_tokens of the whole batch (DAPO's token-level loss);
    dr_grpo:   sum / (num_sequences * max_completion_len) (Dr. GRPO: no length bias)."""
    if aggregation in ("grpo", "gspo"):
        per_sequence = per_token.sum(-1) / valid.sum(-1).clamp(min=1)
        return per_sequence.sum() / norm.num_sequences
    if aggregation in ("dapo", "bnpo"):
        return per_token.sum() / norm.num_tokens
    return per_token.sum() / (norm.num_sequences * norm.max_completion_len)


def _check_inputs(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    ref_logprobs: torch.Tensor | None,
    tis_weights: torch.Tensor | None,
) -> None:
    """Raise LossInputError unless every tensor matches logprobs' [B, T]."""
    if logprobs.dim() != 2:
        raise LossInputError(f"logprobs must be [B, T], got shape {tuple(logprobs.shape)}")
    shape, batch = logprobs.shape, logprobs.shape[:1]
    expected = {"old_logprobs": shape, "mask": shape, "advantages": batch}
    given = {"old_logprobs": old_logprobs, "mask": mask, "advantages": advantages}
    if ref_logprobs is not None:
        expected["ref_logprobs"], given["ref_logprobs"] = shape, ref_logprobs
    if tis_weights is not None:
        expected["tis_weights"] = shape if tis_weights.dim() == 2 else batch
        given["tis_weights"] = tis_weights
    for name, tensor in given.items():
        if tensor.shape != expected[name]:
            raise LossInputError(
                f"{name} has shape {tuple(tensor.shape)}, expected {tuple(expected[name])} "
                f"to match logprobs {tuple(shape)}"
            )


def _check_settings(
    aggregation: str,
    epsilon_low: float,
    epsilon_high: float,
    beta: float,
    ref_logprobs: torch.Tensor | None,
) -> None:
    """Raise LossInputError for an unknown aggregation or out-of-range coefficients."""
    if aggregation not in get_args(LossName):
        raise LossInputError(
            f"unknown loss aggregation {aggregation!r}; use one of {get_args(LossName)}"
        )
    if not 0 <= epsilon_low <= 1 or epsilon_high < 0:
        raise LossInputError(
            f"need 0 <= epsilon_low <= 1 and epsilon_high >= 0, got {epsilon_low}, {epsilon_high}"
        )
    if beta < 0:
        raise LossInputError(f"beta (the KL coefficient) must be >= 0, got {beta}")
    if beta > 0 and ref_logprobs is None:
        raise LossInputError("beta > 0 needs ref_logprobs (the reference policy's log-probs)")


def tis_weights(
    old_logprobs: torch.Tensor,
    rollout_logprobs: torch.Tensor,
    mask: torch.Tensor,
    level: TISLevel,
    cap: float,
) -> torch.Tensor:
    """Truncated importance weights min(pi_learner / pi_rollout, cap), detached.

    The rollout engine's numerics differ from the learner's, so "on-policy" samples are
    slightly off-policy (Yao et al., 2025). Token level: [B, T]; sequence level: [B], the
    product of the token ratios, capped once.
    """
    active = [name for name in get_args(TISLevel) if name != "none"]
    if level not in active:
        raise LossInputError(f"unknown TIS level {level!r}; use one of {active}")
    if cap <= 0:
        raise LossInputError(f"TIS cap must be positive, got {cap}")
    if old_logprobs.shape != rollout_logprobs.shape or old_logprobs.shape != mask.shape:
        raise LossInputError(
            f"old_logprobs {tuple(old_logprobs.shape)}, rollout_logprobs "
            f"{tuple(rollout_logprobs.shape)} and mask {tuple(mask.shape)} must have one shape"
        )
    log_w = torch.where(mask.bool(), old_logprobs - rollout_logprobs, 0.0).detach()
    if level == "sequence":
        log_w = log_w.sum(-1)
    return torch.exp(log_w).clamp(max=cap)
