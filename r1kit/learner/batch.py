"""A batch of scored rollouts, and its micro-batches as padded tensors.

Two layouts, one `MicroBatch` type. Plain: one left-padded row per sequence (prompt +
completion). Shared prefix (r1kit/learner/prefix.py): one row per group of completions of one
prompt, the prompt encoded once. Either way the per-completion tensors ([B, C]) are right-aligned
in a window of C = the longest completion, and `source` says which hidden state predicts
each of their tokens, so the learner only ever computes logits for completion tokens.

A multi-turn completion (tool use) holds tool observations among its tokens: they are fed to
the model (later tokens attend to them) but `model_tokens` keeps them out of `mask`, and so out
of every token-level quantity of the loss and of the token-level normaliser.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from r1kit.learner.normalisers import Normalisers
from rollout.types import Completion


@dataclass
class Batch:
    """Everything the learner needs about N sampled sequences."""

    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    rollout_logprobs: list[list[float]]  # from the engine that sampled them
    advantages: torch.Tensor  # [N]
    loss_mask: list[bool]  # False: the whole sequence is left out (e.g. overlong filtering)
    old_logprobs: list[torch.Tensor | None] | None = None  # learner's, for num_iterations > 1
    # Per completion token, whether its policy-gradient term counts (GRPO's entropy_top_q);
    # None: every token. Chosen over the whole batch before it is split.
    selected: list[torch.Tensor] | None = None
    # Per completion token, True where the model wrote it, False in a tool's observation;
    # None: every token is the model's (single-turn).
    model_tokens: list[list[bool]] | None = None

    def __len__(self) -> int:
        return len(self.completion_ids)

    def own_tokens(self, i: int) -> torch.Tensor:
        """[n] bool: which completion tokens of sequence `i` the model wrote itself."""
        if self.model_tokens is None:
            return torch.ones(len(self.completion_ids[i]), dtype=torch.bool)
        return torch.tensor(self.model_tokens[i], dtype=torch.bool)

    def counted(self, i: int) -> torch.Tensor:
        """[n] bool: the completion tokens of sequence `i` that count in the loss: the model's
        own, of a sequence not left out."""
        return self.own_tokens(i) & self.loss_mask[i]

    def num_tokens(self) -> int:
        """Completion tokens that count in the loss: the token-level normaliser."""
        return sum(int(self.counted(i).sum()) for i in range(len(self)))

    def shares_prompts(self) -> bool:
        """Whether some sequences have one prompt (a group of samples): what packing saves."""
        return len({tuple(ids) for ids in self.prompt_ids}) < len(self)

    def normalisers(self, max_completion_len: int) -> Normalisers:
        """The batch-wide normalisers of its loss (ranks and micro-batches hold parts of it)."""
        return Normalisers(max(self.num_tokens(), 1), len(self), max_completion_len)

    def micro_batches(self, size: int, rows: list[int] | None = None) -> Iterator[MicroBatch]:
        """Plain micro-batches of `size` sequences over `rows` (default: all), of similar length
        (less padding); order is irrelevant to the loss because every normaliser is batch-wide."""
        rows = list(range(len(self))) if rows is None else rows
        order = sorted(rows, key=lambda i: len(self.prompt_ids[i]) + len(self.completion_ids[i]))
        for start in range(0, len(order), size):
            yield self._collate(order[start : start + size])

    def _collate(self, rows: list[int]) -> MicroBatch:
        lengths = [len(self.prompt_ids[i]) + len(self.completion_ids[i]) for i in rows]
        width = max(lengths)
        input_ids = torch.zeros(len(rows), width, dtype=torch.long)
        attention_mask = torch.zeros(len(rows), width, dtype=torch.long)
        window = self.window(rows)
        source = torch.full(window.targets.shape, -1, dtype=torch.long)
        for row, i in enumerate(rows):
            sequence = self.prompt_ids[i] + self.completion_ids[i]
            n = len(self.completion_ids[i])
            input_ids[row, width - len(sequence) :] = torch.tensor(sequence)
            attention_mask[row, width - len(sequence) :] = 1
            # The logit at position p predicts token p + 1.
            source[row, source.shape[1] - n :] = row * width + torch.arange(
                width - n - 1, width - 1
            )
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        return MicroBatch(rows, input_ids, attention_mask, position_ids, source, *window.tensors)

    def window(self, rows: list[int]) -> Window:
        """The per-completion tensors of `rows`, right-aligned in the longest one's width."""
        width = max(len(self.completion_ids[i]) for i in rows)
        targets = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width)
        rollout = torch.zeros(len(rows), width)
        old = torch.zeros(len(rows), width) if self.old_logprobs is not None else None
        selected = torch.zeros(len(rows), width, dtype=torch.bool)
        for row, i in enumerate(rows):
            n = len(self.completion_ids[i])
            if n == 0:
                continue
            targets[row, width - n :] = torch.tensor(self.completion_ids[i])
            mask[row, width - n :] = self.counted(i).float()
            rollout[row, width - n :] = torch.tensor(self.rollout_logprobs[i])
            if old is not None and self.old_logprobs[i] is not None:
                old[row, width - n :] = self.old_logprobs[i]
            selected[row, width - n :] = True if self.selected is None else self.selected[i]
        return Window(targets, mask, rollout, old, self.advantages[rows], selected)


def to_batch(
    completions: Sequence[Completion],
    advantages: torch.Tensor | None = None,
    mask_truncated: bool = False,
    engine_old: bool = False,
) -> Batch:
    """The learner's batch: one sequence per completion, in order (GRPO's groups, on-policy
    samples, SFT examples as completions), with its advantage (None: 0 for every one). With
    `mask_truncated`, completions cut at the token limit are left out of the loss (DAPO's
    overlong filtering); with `engine_old`, the engine's log-probs are the ratio's old policy."""
    return Batch(
        prompt_ids=[c.prompt_token_ids for c in completions],
        completion_ids=[c.token_ids for c in completions],
        rollout_logprobs=[c.logprobs for c in completions],
        advantages=torch.zeros(len(completions)) if advantages is None else advantages,
        # A truncated answer says nothing about its reward.
        loss_mask=[not (mask_truncated and c.finish_reason == "length") for c in completions],
        old_logprobs=[torch.tensor(c.logprobs) for c in completions] if engine_old else None,
        model_tokens=_model_tokens(completions),
    )


def _model_tokens(completions: Sequence[Completion]) -> list[list[bool]] | None:
    """Per completion, which tokens the model wrote; None when every one is single-turn."""
    if all(c.model_tokens is None for c in completions):
        return None
    flags = []
    for i, c in enumerate(completions):
        own = [True] * len(c.token_ids) if c.model_tokens is None else list(c.model_tokens)
        if len(own) != len(c.token_ids):
            raise ValueError(
                f"completion {i} has {len(own)} model_tokens flags for {len(c.token_ids)} tokens"
            )
        flags.append(own)
    return flags


@dataclass
class Window:
    """Per-completion tensors; `[B, C]` ones are right-aligned in the longest completion."""

    targets: torch.Tensor
    mask: torch.Tensor
    rollout_logprobs: torch.Tensor
    old_logprobs: torch.Tensor | None
    advantages: torch.Tensor
    selected: torch.Tensor  # [B, C] bool

    @property
    def tensors(self) -> tuple:
        return (
            self.targets,
            self.mask,
            self.rollout_logprobs,
            self.old_logprobs,
            self.advantages,
            self.selected,
        )


@dataclass
class MicroBatch:
    """Tensors for one forward/backward: R model rows of length L, B completions."""

    rows: list[int]  # indices into the Batch, one per completion
    input_ids: torch.Tensor  # [R, L]
    attention_mask: torch.Tensor  # [R, L] (plain) or [R, 1, L, L] bool (shared prefix)
    position_ids: torch.Tensor  # [R, L]
    source: torch.Tensor  # [B, C] flat index into the [R * L] hidden states; -1: no token
    targets: torch.Tensor  # [B, C] completion tokens, right-aligned
    mask: torch.Tensor  # [B, C] 1 where a token counts: the model's own, in the loss
    rollout_logprobs: torch.Tensor  # [B, C]
    old_logprobs: torch.Tensor | None  # [B, C]
    advantages: torch.Tensor  # [B]
    selected: torch.Tensor  # [B, C] bool: the tokens whose policy-gradient term counts

    def to(self, device: torch.device) -> MicroBatch:
        moved = {
            k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in vars(self).items()
        }
        return MicroBatch(**moved)
