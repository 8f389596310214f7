"""The learner's per-step bookkeeping: sums over micro-batches (and ranks), turned into
metrics once, by the objective for its own statistics and here for the core's."""

from __future__ import annotations

from collections import defaultdict

from r1kit.learner.objective import Objective


class StepStats:
    """Adds up one optimizer step's statistics: the objective's, and the core's `loss` (the
    objective's plus the MoE aux loss) and `aux_loss`."""

    def __init__(self):
        self.totals: defaultdict[str, float] = defaultdict(float)

    def add(self, stats: dict[str, float]) -> None:
        for key, value in stats.items():
            self.totals[key] += value

    def metrics(
        self, objective: Objective, grad_norm: float, lr: float, skipped_frac: float
    ) -> dict[str, float]:
        """The logged metrics; `aux_loss` only for a model that has one."""
        t = self.totals
        metrics = {
            "loss": t["loss"],
            **objective.metrics(t),
            "grad_norm": grad_norm,
            "lr": lr,
            "skipped_frac": skipped_frac,
        }
        if t["aux_loss"]:
            metrics["aux_loss"] = t["aux_loss"]
        return metrics
