"""KL estimators between two policies' log-probs of the same sampled tokens (Schulman's k1,
k2, k3, by name: `learner.kl_estimator` picks the beta penalty's), and the rollout-engine vs
learner mismatch statistics the learner logs at every step (always k3)."""

from __future__ import annotations

import torch

from r1kit.learner.normalisers import LossInputError
from r1kit.registry import Registry

KL_ESTIMATORS = Registry("learner.kl_estimator", LossInputError)
register_kl = KL_ESTIMATORS.register


@register_kl("k1")
def kl_k1(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Schulman's k1 of KL(pi, ref) per token: logp - ref; unbiased, can be negative."""
    return logprobs - ref_logprobs


@register_kl("k2")
def kl_k2(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Schulman's k2 of KL(pi, ref) per token: (logp - ref)^2 / 2; biased, low variance, >= 0."""
    return (logprobs - ref_logprobs) ** 2 / 2


@register_kl("k3")
def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 of KL(pi, ref) per token: exp(d) - d - 1, d = ref - logp; unbiased, >= 0.

    0 exactly where the two log-probs agree.
    """
    d = ref_logprobs - logprobs
    return torch.exp(d) - d - 1


def mismatch_stats(
    old_logprobs: torch.Tensor, rollout_logprobs: torch.Tensor, mask: torch.Tensor
) -> dict[str, float]:
    """How far the rollout engine's log-probs are from the learner's on the same tokens:
    means over this micro-batch's masked tokens, and their count to weight them by."""
    valid = mask.bool()
    old = torch.where(valid, old_logprobs.detach(), 0.0)
    rollout = torch.where(valid, rollout_logprobs, 0.0)
    diff = (old - rollout).abs()
    kl = kl_k3(old, rollout)  # 0 at masked positions, where both are 0
    tokens = valid.sum().item()
    return {
        "kl": kl.sum().item() / max(tokens, 1),
        "mean_abs_diff": diff.sum().item() / max(tokens, 1),
        "max_abs_diff": diff.max().item() if diff.numel() else 0.0,
        "token_count": tokens,
    }
