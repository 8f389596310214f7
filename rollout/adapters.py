"""LoRA adapter-only updates: the adapter written as peft's files in shared memory, and the
`LoRARequest` generation uses, with a new id per policy version.

A new id (not vLLM's `load_inplace`) so that prefixes cached under the previous adapter are
never reused: vLLM's prefix cache keys blocks by adapter id. The previous adapter is removed
from the engine and its directory deleted once the new one is loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from rollout.weights import PREFIX, shm_root


def write_adapter(
    named_tensors: Iterable[tuple[str, torch.Tensor]], config: dict[str, Any], directory: Path
) -> int:
    """peft's two files (adapter_model.safetensors, adapter_config.json) in `directory`, as
    `PeftModel.save_pretrained` writes them and vLLM's LoRA loader reads them; returns the
    number of tensors."""
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in named_tensors}
    if not tensors:
        raise ValueError("an adapter update needs at least one (name, tensor) pair")
    save_file(tensors, directory / "adapter_model.safetensors")
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=1))
    return len(tensors)


class AdapterSlot:
    """The adapter an engine samples with: `replace` writes the new one and returns its
    `(name, id, path)` for a `LoRARequest`; `old` is the one it replaced, to remove."""

    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.version = 0
        self.directory: Path | None = None
        self.old: tuple[int, Path] | None = None

    def replace(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> tuple[str, int, str]:
        directory = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-adapter-", dir=shm_root()))
        write_adapter(named_tensors, self.config, directory)
        if self.directory is not None:
            self.old = (self.version, self.directory)
        self.version, self.directory = self.version + 1, directory
        return f"policy-v{self.version}", self.version, str(directory)

    def drop_old(self) -> int | None:
        """Delete the replaced adapter's files; returns its id (for the engine to unload)."""
        if self.old is None:
            return None
        version, directory = self.old
        shutil.rmtree(directory, ignore_errors=True)
        self.old = None
        return version

    def close(self) -> None:
        self.drop_old()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
