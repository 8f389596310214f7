"""A vLLM worker extension whose weight updates can be broken on purpose, for the sync-check tests.

vLLM imports it by name (`worker_extension_cls="tests.grpo.vllm_sabotage.BreakableSync"`) in its
own spawned process, which inherits this process's `sys.path`; the driver picks the breakage
with `llm.collective_rpc("break_updates", args=(how,))`.
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file, save_file

from rollout.vllm_worker import WeightSync

UNTIED_LM_HEAD = "untied_lm_head"  # reload, but leave the tied lm_head on the old weights
SKIPPED_TENSOR = "skipped_tensor"  # reload every tensor but SKIPPED
BREAKAGES = (UNTIED_LM_HEAD, SKIPPED_TENSOR)
# A whole vLLM layer's only weight: vLLM keeps that layer's old weights (a partly loaded
# layer, such as one of q/k/v in the fused qkv_proj, would be left with garbage instead).
SKIPPED = "model.layers.1.mlp.down_proj.weight"


class BreakableSync(WeightSync):
    """WeightSync whose updates, once `break_updates(how)` is called, are broken that way."""

    breakage: str | None = None

    def break_updates(self, how: str | None) -> None:
        """Break every later update the way `how` names (one of BREAKAGES); None: mend them."""
        if how not in (None, *BREAKAGES):
            raise ValueError(f"unknown breakage {how!r}; choose {BREAKAGES}")
        self.breakage = how

    def reload_from(self, directory: str) -> None:
        if self.breakage == UNTIED_LM_HEAD:
            self.reload_weights(weights_path=directory, is_checkpoint_format=True)
            return
        if self.breakage == SKIPPED_TENSOR:
            _drop(Path(directory), SKIPPED)
        super().reload_from(directory)


def _drop(directory: Path, name: str) -> None:
    """Remove tensor `name` from the safetensors shards of `directory`, in place."""
    for shard in directory.glob("*.safetensors"):
        tensors = load_file(shard)
        if tensors.pop(name, None) is not None:
            save_file(tensors, shard)
