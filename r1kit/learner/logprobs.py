"""Log-probs and entropy of sampled tokens, computed a chunk of tokens at a time.

The full-vocabulary float32 logits of a whole micro-batch ([tokens, vocab], 49,152 wide for
SmolLM2) are the learner's largest tensor. Here only one chunk's logits exist at a time, in
the forward pass and (recomputed under activation checkpointing) in the backward pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch.utils.checkpoint import checkpoint


def token_logprobs(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    head: Callable[[torch.Tensor], torch.Tensor],
    temperature: float,
    chunk: int,
    entropy_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per token: log-prob of `targets` under softmax(head(hidden) / temperature), and the
    entropy of that distribution (no graph, a diagnostic, unless `entropy_grad`: a loss with
    an entropy bonus differentiates it).

    hidden: [N, H] (or logits with `head` the identity); targets: [N]. chunk: tokens per
    chunk, 0 for all at once.
    """
    if chunk <= 0 or len(hidden) <= chunk:
        return _logprobs(hidden, targets, head, temperature, entropy_grad)
    parts = []
    for start in range(0, len(hidden), chunk):
        rows = slice(start, start + chunk)
        args = (hidden[rows], targets[rows], head, temperature, entropy_grad)
        # Checkpointing keeps only this chunk's inputs for the backward pass, not its logits.
        parts.append(
            checkpoint(_logprobs, *args, use_reentrant=False)
            if torch.is_grad_enabled()
            else _logprobs(*args)
        )
    logprobs, entropy = zip(*parts, strict=True)
    return torch.cat(logprobs), torch.cat(entropy)


def _logprobs(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    head: Callable[[torch.Tensor], torch.Tensor],
    temperature: float,
    entropy_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    log_probs = torch.log_softmax(head(hidden).float() / temperature, dim=-1)
    logprobs = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    with contextlib.nullcontext() if entropy_grad else torch.no_grad():
        entropy = -(log_probs.exp() * log_probs).sum(-1)
    return logprobs, entropy
