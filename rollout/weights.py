"""Weights on their way to an engine in another process: safetensors shards in shared memory.

A running vLLM engine reloads from a directory, so an update is written to a fresh directory
under /dev/shm (RAM, no disk I/O), read by the engine, then removed. A process killed while an
update is on its way leaves its directory behind: `remove_stale` sweeps those of dead processes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import save_file

PREFIX = "r1kit-weights-"
SHARD_BYTES = 1 << 30  # one safetensors file per GiB: the stream is never held whole twice


def shm_root() -> Path:
    """/dev/shm where it exists (Linux), else the temp directory."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


@contextmanager
def shared_weights_dir(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> Iterator[Path]:
    """A directory holding the streamed tensors as safetensors shards, removed on exit."""
    directory = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=shm_root()))
    try:
        write_shards(named_tensors, directory)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def write_shards(named_tensors: Iterable[tuple[str, torch.Tensor]], directory: Path) -> int:
    """Write (name, tensor) pairs into `model-<k>.safetensors` files; returns the count written."""
    shard: dict[str, torch.Tensor] = {}
    size = count = files = 0
    seen: set[int] = set()  # safetensors refuses two names on one storage (tied weights)
    for name, tensor in named_tensors:
        if name in shard:
            raise ValueError(f"weight {name!r} sent twice in one update")
        tensor = tensor.detach().to("cpu").contiguous()
        if tensor.untyped_storage().data_ptr() in seen:
            tensor = tensor.clone()
        seen.add(tensor.untyped_storage().data_ptr())
        shard[name] = tensor
        size += tensor.numel() * tensor.element_size()
        count += 1
        if size >= SHARD_BYTES:
            save_file(shard, directory / f"model-{files:05d}.safetensors")
            shard, size, files, seen = {}, 0, files + 1, set()
    if shard:
        save_file(shard, directory / f"model-{files:05d}.safetensors")
    if count == 0:
        raise ValueError("an update needs at least one (name, tensor) pair")
    return count


def remove_stale(root: Path | None = None) -> list[Path]:
    """Remove the weight directories of processes that no longer run; returns what was removed."""
    removed = []
    for path in (root or shm_root()).glob(f"{PREFIX}*"):
        pid = path.name.removeprefix(PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
