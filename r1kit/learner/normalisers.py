"""The batch-wide normalisers every objective divides by: a micro-batch (or a rank) never
divides by its own size, so micro-batches and ranks add up to the whole batch's loss."""

from __future__ import annotations

from dataclasses import dataclass


class LossInputError(ValueError):
    """Tensors of the wrong shape, or a setting outside its range."""


@dataclass(frozen=True)
class Normalisers:
    """Computed over the whole batch (all micro-batches, all ranks)."""

    num_tokens: float  # completion tokens with mask 1
    num_sequences: int
    max_completion_len: int  # Dr. GRPO's constant: max_new_tokens

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value <= 0:
                raise LossInputError(f"Normalisers.{name} must be positive, got {value}")
