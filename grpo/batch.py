"""A batch of scored rollouts, and its micro-batches as padded tensors.

Sequences are left-padded, so every completion ends at the last position: the learner then
asks the model for logits of the last `C` positions only (C = longest completion in the
micro-batch), never for the prompt, which keeps the full-vocabulary logits small.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass
class Batch:
    """Everything the learner needs about N sampled sequences."""

    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    rollout_logprobs: list[list[float]]  # from the engine that sampled them
    advantages: torch.Tensor  # [N]
    loss_mask: list[bool]  # False: the whole sequence is left out (e.g. overlong filtering)
    old_logprobs: list[torch.Tensor] | None = None  # learner's, stored for num_iterations > 1

    def __len__(self) -> int:
        return len(self.completion_ids)

    def num_tokens(self) -> int:
        """Completion tokens that count in the loss: the token-level normaliser."""
        return sum(
            len(ids) for ids, keep in zip(self.completion_ids, self.loss_mask, strict=True) if keep
        )

    def micro_batches(self, size: int) -> Iterator[MicroBatch]:
        """Micro-batches of sequences of similar length (less padding); order is irrelevant
        to the loss because every normaliser is batch-wide."""
        order = sorted(
            range(len(self)), key=lambda i: len(self.prompt_ids[i]) + len(self.completion_ids[i])
        )
        for start in range(0, len(order), size):
            yield self._collate(order[start : start + size])

    def _collate(self, rows: list[int]) -> MicroBatch:
        lengths = [len(self.prompt_ids[i]) + len(self.completion_ids[i]) for i in rows]
        width = max(lengths)
        window = max(len(self.completion_ids[i]) for i in rows)
        input_ids = torch.zeros(len(rows), width, dtype=torch.long)
        attention_mask = torch.zeros(len(rows), width, dtype=torch.long)
        targets = torch.zeros(len(rows), window, dtype=torch.long)
        mask = torch.zeros(len(rows), window)
        rollout = torch.zeros(len(rows), window)
        old = torch.zeros(len(rows), window) if self.old_logprobs is not None else None
        for row, i in enumerate(rows):
            sequence = self.prompt_ids[i] + self.completion_ids[i]
            n = len(self.completion_ids[i])
            input_ids[row, width - len(sequence) :] = torch.tensor(sequence)
            attention_mask[row, width - len(sequence) :] = 1
            if n == 0:
                continue
            targets[row, window - n :] = torch.tensor(self.completion_ids[i])
            mask[row, window - n :] = float(self.loss_mask[i])
            rollout[row, window - n :] = torch.tensor(self.rollout_logprobs[i])
            if old is not None:
                old[row, window - n :] = self.old_logprobs[i]
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        return MicroBatch(
            rows,
            input_ids,
            attention_mask,
            position_ids,
            targets,
            mask,
            rollout,
            old,
            self.advantages[rows],
        )


@dataclass
class MicroBatch:
    """Padded tensors for one forward/backward; `[B, C]` tensors cover the completion window."""

    rows: list[int]  # indices into the Batch
    input_ids: torch.Tensor  # [B, L]
    attention_mask: torch.Tensor  # [B, L]
    position_ids: torch.Tensor  # [B, L]
    targets: torch.Tensor  # [B, C] completion tokens, right-aligned
    mask: torch.Tensor  # [B, C] 1 where a completion token counts
    rollout_logprobs: torch.Tensor  # [B, C]
    old_logprobs: torch.Tensor | None  # [B, C]
    advantages: torch.Tensor  # [B]

    def to(self, device: torch.device) -> MicroBatch:
        moved = {
            k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in vars(self).items()
        }
        return MicroBatch(**moved)
