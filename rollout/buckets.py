"""A weight update cut into buckets of bounded size: what the native (CUDA) transfer sends.

Pure and device-agnostic, so it is tested on CPU. A bucket is one contiguous uint8 buffer
holding several tensors back to back, with the names, dtypes, shapes and byte offsets the
receiver unpacks it with: one transfer call per bucket, never one per parameter. Boundaries
follow vLLM's packed transfer (`vllm/distributed/weight_transfer/packed_tensor.py`,
`pack_tensors`: a bucket closes once it holds more than `max_bytes`), because vLLM's NCCL
receiver recomputes them from the names and shapes alone: both sides must agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

BUCKET_BYTES = 1 << 30  # vLLM's default packed buffer (DEFAULT_PACKED_BUFFER_SIZE_BYTES)


@dataclass(frozen=True)
class TensorMeta:
    """One tensor as the receiver sees it before the bytes arrive."""

    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


@dataclass(frozen=True)
class Bucket:
    """Tensors packed back to back in one uint8 buffer: `offsets[i]` is where tensor i starts."""

    tensors: tuple[TensorMeta, ...]

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tensors]

    @property
    def dtype_names(self) -> list[str]:
        """vLLM's spelling of each dtype ("bfloat16"), as its update payloads carry them."""
        return [str(t.dtype).removeprefix("torch.") for t in self.tensors]

    @property
    def shapes(self) -> list[list[int]]:
        return [list(t.shape) for t in self.tensors]

    @property
    def sizes(self) -> list[int]:
        return [t.nbytes for t in self.tensors]

    @property
    def offsets(self) -> list[int]:
        return [sum(self.sizes[:i]) for i in range(len(self.tensors))]

    @property
    def nbytes(self) -> int:
        return sum(self.sizes)


def once_per_storage(
    named_tensors: Iterable[tuple[str, torch.Tensor]],
) -> Iterator[tuple[str, torch.Tensor]]:
    """The stream without a tensor that views memory already sent (a tied lm_head is the
    embedding itself): it is sent once, under its first name; the receiver re-ties it."""
    seen: set[tuple[int, int, tuple[int, ...], torch.dtype]] = set()
    for name, tensor in named_tensors:
        key = (
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tensor.dtype,
        )
        if key in seen:
            continue
        seen.add(key)
        yield name, tensor


def plan_buckets(metas: Iterable[TensorMeta], max_bytes: int = BUCKET_BYTES) -> list[Bucket]:
    """Consecutive tensors grouped in order; a bucket closes once it holds more than
    `max_bytes` (a tensor larger than that travels alone). vLLM's rule, byte for byte."""
    if max_bytes <= 0:
        raise ValueError(f"a bucket needs a positive size, got {max_bytes}")
    buckets, current, size = [], [], 0
    for meta in metas:
        current.append(meta)
        size += meta.nbytes
        if size > max_bytes:
            buckets.append(Bucket(tuple(current)))
            current, size = [], 0
    if current:
        buckets.append(Bucket(tuple(current)))
    return buckets


def describe(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> list[TensorMeta]:
    """What the receiver is told about each tensor (read from shapes, nothing copied)."""
    return [TensorMeta(n, t.dtype, tuple(t.shape)) for n, t in named_tensors]


def pack(
    bucket: Bucket, tensors: list[torch.Tensor], out: torch.Tensor | None = None
) -> torch.Tensor:
    """The bucket's tensors as one uint8 buffer on their device, written into `out` (a uint8
    buffer of `bucket.nbytes`, reused from bucket to bucket) when given."""
    if [tuple(t.shape) for t in tensors] != [m.shape for m in bucket.tensors]:
        raise ValueError(f"the tensors do not match bucket {bucket.names[:3]}...")
    parts = [t.detach().contiguous().view(-1).view(torch.uint8) for t in tensors]
    return torch.cat(parts) if out is None else torch.cat(parts, out=out)
