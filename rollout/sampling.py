"""Next-token sampling with the log-probabilities the GRPO learner recomputes."""

from __future__ import annotations

import torch

from rollout.types import SamplingParams


def next_tokens(
    logits: torch.Tensor, sampling: SamplingParams, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Next tokens [B] from logits [B, V], and their log-probs under log_softmax(logits / T).

    The log-probs are taken before top-k/top-p truncation: that is the distribution the learner
    recomputes, so on-policy importance ratios are exactly 1. Temperature 0 is greedy.
    """
    if sampling.temperature == 0:
        log_probs = torch.log_softmax(logits, dim=-1)
        tokens = log_probs.argmax(-1)
    else:
        log_probs = torch.log_softmax(logits / sampling.temperature, dim=-1)
        tokens = _draw(_truncate(log_probs, sampling.top_k, sampling.top_p), generator)
    return tokens, log_probs.gather(-1, tokens[:, None]).squeeze(-1)


def _truncate(log_probs: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Log-probs with the tokens outside the top-k and the top-p nucleus set to -inf."""
    if top_k > 0:
        kth = log_probs.topk(min(top_k, log_probs.shape[-1]), dim=-1).values[:, -1:]
        log_probs = log_probs.masked_fill(log_probs < kth, float("-inf"))
    if top_p < 1.0:
        sorted_lp, order = log_probs.sort(dim=-1, descending=True)
        probs = sorted_lp.exp()
        # Drop a token when the tokens ranked before it already cover top_p of the mass.
        drop = probs.cumsum(-1) - probs > top_p
        log_probs = log_probs.scatter(-1, order, sorted_lp.masked_fill(drop, float("-inf")))
    return log_probs


def _draw(log_probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One token per row from (unnormalised) log-probs, by inverse-CDF sampling.

    One uniform number per row: far cheaper than torch.multinomial over a 50k vocabulary.
    """
    cdf = log_probs.exp().cumsum(-1)
    u = torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device) * cdf[:, -1:]
    # right=True: the first token whose CDF exceeds u, so zero-probability tokens are never drawn.
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp(max=cdf.shape[-1] - 1)
