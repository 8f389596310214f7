"""Shared-prefix micro-batches: a prompt's completions in one row, the prompt encoded once.

A row is [prompt, c1[:-1], c2[:-1], ...] with a 4-D attention mask in which each completion
attends to the prompt and causally to itself, never to another completion, and position ids
that restart at len(prompt) for each completion: every completion token then sees exactly
what it sees in its own prompt + completion sequence, and gradients from all completions
flow back through the one copy of the prompt (the Prefix Grouper idea, verl's
`use_prefix_grouper`). A completion's last token is not fed: it predicts nothing we need.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from r1kit.learner.batch import Batch, MicroBatch


def packed_micro_batches(
    batch: Batch, rows: list[int], size: int, max_tokens: int = 0
) -> Iterator[MicroBatch]:
    """Micro-batches of at most `size` completions and (if `max_tokens` > 0) at most
    `max_tokens` padded positions; a group that does not fit is split into several rows, its
    prompt repeated once per row. A single completion longer than the bound gets its own row."""
    pieces = [
        piece for group in _groups(batch, rows) for piece in _split(batch, group, size, max_tokens)
    ]
    pieces.sort(key=lambda piece: _row_length(batch, piece))
    current: list[list[int]] = []
    for piece in pieces:
        completions = sum(map(len, current)) + len(piece)
        # Pieces come shortest first: the new one sets the padded width.
        tokens = (len(current) + 1) * _row_length(batch, piece)
        if current and (completions > size or 0 < max_tokens < tokens):
            yield _collate(batch, current)
            current = []
        current.append(piece)
    if current:
        yield _collate(batch, current)


def additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean attend-mask as the additive float mask that eager and sdpa attention take."""
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
        ~mask, torch.finfo(dtype).min
    )


def _groups(batch: Batch, rows: list[int]) -> list[list[int]]:
    """`rows` grouped by identical prompt, in first-seen order."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i in rows:
        if not batch.prompt_ids[i]:
            raise ValueError(f"sequence {i} has an empty prompt: nothing to share or predict from")
        groups.setdefault(tuple(batch.prompt_ids[i]), []).append(i)
    return list(groups.values())


def _split(batch: Batch, group: list[int], size: int, max_tokens: int) -> list[list[int]]:
    """Consecutive pieces of `group`, each of at most `size` completions and one row of at
    most `max_tokens` positions (0: no bound)."""
    pieces: list[list[int]] = [[]]
    for i in group:
        piece = pieces[-1] + [i]
        if pieces[-1] and (len(piece) > size or 0 < max_tokens < _row_length(batch, piece)):
            pieces.append([i])
        else:
            pieces[-1] = piece
    return pieces


def _row_length(batch: Batch, piece: list[int]) -> int:
    fed = sum(max(len(batch.completion_ids[i]) - 1, 0) for i in piece)
    return len(batch.prompt_ids[piece[0]]) + fed


def _collate(batch: Batch, pieces: list[list[int]]) -> MicroBatch:
    rows = [i for piece in pieces for i in piece]
    window = batch.window(rows)
    width = max(_row_length(batch, piece) for piece in pieces)
    input_ids = torch.zeros(len(pieces), width, dtype=torch.long)
    position_ids = torch.zeros(len(pieces), width, dtype=torch.long)
    # Padding positions attend to themselves only: no fully masked row, no NaN.
    attend = torch.eye(width, dtype=torch.bool).repeat(len(pieces), 1, 1, 1)
    source = torch.full(window.targets.shape, -1, dtype=torch.long)
    b = 0
    for r, piece in enumerate(pieces):
        prompt = batch.prompt_ids[piece[0]]
        p = len(prompt)
        input_ids[r, :p] = torch.tensor(prompt)
        position_ids[r, :p] = torch.arange(p)
        attend[r, 0, :p, :p] = torch.ones(p, p, dtype=torch.bool).tril()
        start = p
        for i in piece:
            completion = batch.completion_ids[i]
            n = len(completion)
            fed = max(n - 1, 0)
            end = start + fed
            input_ids[r, start:end] = torch.tensor(completion[:fed], dtype=torch.long)
            position_ids[r, start:end] = torch.arange(p, p + fed)
            attend[r, 0, start:end, :p] = True
            attend[r, 0, start:end, start:end] = torch.ones(fed, fed, dtype=torch.bool).tril()
            # Token 0 is predicted by the prompt's last position, token k by the fed token k - 1.
            predictors = [p - 1, *range(start, end)][:n]
            if n:
                source[b, source.shape[1] - n :] = r * width + torch.tensor(predictors)
            start, b = end, b + 1
    return MicroBatch(rows, input_ids, attend, position_ids, source, *window.tensors)
