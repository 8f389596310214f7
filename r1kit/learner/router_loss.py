"""Load-balancing loss for MoE routers that do not compute one themselves (DeepSeek-V3)."""

from __future__ import annotations

import torch


def balance_loss(
    router_logits: tuple[torch.Tensor, ...], top_k: int, token_mask: torch.Tensor
) -> torch.Tensor:
    """DeepSeek-V3's balance loss, over the micro-batch's real tokens, averaged over layers.

    Per layer, with sigmoid affinities s (normalised over experts to s') for T tokens, E experts:
        f_i = E / (K T) * (tokens whose top-K includes expert i),   P_i = mean_t s'_{i,t}
        L   = sum_i f_i P_i        (1 when routing is perfectly balanced, larger otherwise)
    f is a count, so the gradient flows through P only, as in the paper.
    """
    keep = token_mask.reshape(-1).bool()
    losses = []
    for logits in router_logits:
        scores = logits[keep].float().sigmoid()  # [T, E]
        tokens, experts = scores.shape
        chosen = torch.zeros_like(scores).scatter_(1, scores.topk(top_k, dim=-1).indices, 1.0)
        f = chosen.sum(0) * experts / (top_k * tokens)
        p = (scores / scores.sum(-1, keepdim=True)).mean(0)
        losses.append((f * p).sum())
    return torch.stack(losses).mean()
