"""The learner's per-step bookkeeping: sums over micro-batches, turned into metrics once."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

# Sums that `policy_loss` returns per micro-batch; per-token means are taken over token_count.
SUMMED_STATS = ("clip_low_count", "clip_high_count", "kl_sum", "ratio_sum", "token_count")


@dataclass
class StepStats:
    """Adds up one optimizer step's micro-batch statistics; `metrics` gives the logged means."""

    totals: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(
            (*SUMMED_STATS, "loss", "entropy_sum", "aux_loss", "mismatch_kl_sum"), 0.0
        )
    )

    def add_loss(self, loss: torch.Tensor, loss_stats: dict[str, float]) -> None:
        self.totals["loss"] += loss.item()
        for key in SUMMED_STATS:
            self.totals[key] += loss_stats[key]

    def add_tokens(self, entropy: torch.Tensor, mismatch_kl: float, mask: torch.Tensor) -> None:
        """Entropy per token, and the mismatch KL (a mean over `mask`), as sums over `mask`."""
        self.totals["entropy_sum"] += (entropy * mask).sum().item()
        self.totals["mismatch_kl_sum"] += mismatch_kl * mask.sum().item()

    def add_aux_loss(self, value: float) -> None:
        self.totals["aux_loss"] += value

    def metrics(self, grad_norm: float, lr: float, skipped_frac: float) -> dict[str, float]:
        """Per-token means over the tokens the learner ran (skipped sequences have none)."""
        t = self.totals
        tokens = max(t["token_count"], 1.0)
        metrics = {
            "loss": t["loss"],
            "kl": t["kl_sum"] / tokens,
            "clip_frac/low": t["clip_low_count"] / tokens,
            "clip_frac/high": t["clip_high_count"] / tokens,
            "ratio": t["ratio_sum"] / tokens,
            "entropy": t["entropy_sum"] / tokens,
            "mismatch_kl": t["mismatch_kl_sum"] / tokens,
            "grad_norm": grad_norm,
            "lr": lr,
            "skipped_frac": skipped_frac,
        }
        if t["aux_loss"]:
            metrics["aux_loss"] = t["aux_loss"]
        return metrics
