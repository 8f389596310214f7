"""The in-process rollout engine on Hugging Face transformers: a KV-cached sampling loop.

Unlike `model.generate`, a finished sequence leaves the batch (and the KV cache) at once, so
no compute is spent decoding padding, and every sampled token comes with its log-probability
under the sampling distribution (the "old" log-probs of GRPO's importance ratio).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from transformers import Cache, PreTrainedModel, PreTrainedTokenizerBase

from rollout.sampling import next_tokens
from rollout.types import Completion, SamplingParams


class EngineError(ValueError):
    """Input the engine cannot use: empty prompts, unknown or misshapen weights."""


class HFEngine:
    """`generate` samples `n` completions per prompt, at most `batch_size` sequences at once."""

    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, batch_size: int = 64
    ):
        if batch_size < 1:
            raise EngineError(f"batch_size must be at least 1, got {batch_size}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.device = next(model.parameters()).device
        self.eos_ids = _eos_ids(model, tokenizer)
        self.policy_version = 0  # weight updates taken so far

    @torch.inference_mode()
    def generate(
        self, prompt_token_ids: list[list[int]], sampling: SamplingParams
    ) -> list[list[Completion]]:
        """Per prompt, `sampling.n` completions, in the order of the prompts."""
        if any(len(p) == 0 for p in prompt_token_ids):
            raise EngineError("every prompt needs at least one token")
        self.model.eval()  # a model shared with the learner comes back in train mode
        generator = torch.Generator(device=self.device)
        if sampling.seed is None:
            generator.seed()
        else:
            generator.manual_seed(sampling.seed)
        groups: list[list[Completion]] = [[] for _ in prompt_token_ids]
        for chunk in self._chunks(prompt_token_ids, sampling.n):
            prompts = [prompt_token_ids[p] for p, _ in chunk]
            copies = [count for _, count in chunk]
            completions = iter(self._decode(prompts, copies, sampling, generator))
            for p, count in chunk:
                groups[p] += [next(completions) for _ in range(count)]
        return groups

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy each (name, tensor) into the parameter of that name, in place.

        Names are the plain HF parameter names of the engine's model (`model.named_parameters()`):
        a LoRA policy sends its merged weights under the base model's names. A tensor that already
        is the parameter (an engine sharing the learner's model) is left as it is.
        """
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in named_tensors:
                if name not in params:
                    hint = " (send the plain HF names of merged weights)" if "lora" in name else ""
                    raise EngineError(f"the engine's model has no parameter {name!r}{hint}")
                if tensor.shape != params[name].shape:
                    raise EngineError(
                        f"{name}: got shape {tuple(tensor.shape)}, "
                        f"the engine's parameter has {tuple(params[name].shape)}"
                    )
                if tensor.data_ptr() != params[name].data_ptr():
                    params[name].copy_(tensor)
        self.policy_version += 1

    def sleep(self) -> None:
        """Nothing to free: the model is the learner's or a CPU copy."""

    def wake_up(self, tags: list[str] | None = None) -> None:
        """Nothing to take back (see `sleep`)."""

    def close(self) -> None:
        """Nothing to release: the model lives in this process."""

    def _chunks(self, prompt_token_ids: list[list[int]], n: int) -> list[list[tuple[int, int]]]:
        """(prompt, copies) units of at most `batch_size` sequences in all; prompts of similar
        length share a chunk (less left padding)."""
        order = sorted(range(len(prompt_token_ids)), key=lambda p: len(prompt_token_ids[p]))
        units = [
            (p, min(self.batch_size, n - k)) for p in order for k in range(0, n, self.batch_size)
        ]
        chunks: list[list[tuple[int, int]]] = [[]]
        size = 0
        for p, count in units:
            if size + count > self.batch_size:
                chunks.append([])
                size = 0
            chunks[-1].append((p, count))
            size += count
        return [chunk for chunk in chunks if chunk]

    def _decode(
        self,
        prompts: list[list[int]],
        copies: list[int],
        sampling: SamplingParams,
        generator: torch.Generator,
    ) -> list[Completion]:
        """Prefill each prompt once, copy its KV cache `copies` times, then decode; sequences
        come back prompt by prompt. A finished sequence leaves the batch and the cache."""
        logits, cache, mask = self._prefill(prompts)
        rows = torch.repeat_interleave(torch.tensor(copies, device=self.device))
        cache.batch_select_indices(rows)
        logits, mask = logits[rows], mask[rows]
        owners = rows.tolist()  # sequence -> its prompt
        tokens: list[list[int]] = [[] for _ in owners]
        logprobs: list[list[float]] = [[] for _ in owners]
        stopped = [False] * len(owners)
        active = list(range(len(owners)))  # batch row -> sequence
        for step in range(sampling.max_new_tokens):
            next_ids, next_logprobs = next_tokens(logits[:, -1].float(), sampling, generator)
            for seq, token, logprob in zip(
                active, next_ids.tolist(), next_logprobs.tolist(), strict=True
            ):
                tokens[seq].append(token)
                logprobs[seq].append(logprob)
                stopped[seq] = token in self.eos_ids or self._hit_stop(tokens[seq], sampling.stop)
            keep = [row for row, seq in enumerate(active) if not stopped[seq]]
            if not keep or step == sampling.max_new_tokens - 1:
                break
            if len(keep) < len(active):
                index = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(index)
                mask, next_ids = mask[index], next_ids[index]
                active = [active[row] for row in keep]
            mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=-1)
            logits = self.model(
                input_ids=next_ids[:, None],
                attention_mask=mask,
                position_ids=mask.sum(-1, keepdim=True) - 1,
                past_key_values=cache,
                use_cache=True,
            ).logits
        return [
            Completion(
                token_ids=tokens[seq],
                logprobs=logprobs[seq],
                text=self._text(tokens[seq], sampling.stop),
                finish_reason="stop" if stopped[seq] else "length",
                prompt_token_ids=prompts[owners[seq]],
                policy_version=self.policy_version,
            )
            for seq in range(len(owners))
        ]

    def _prefill(self, prompts: list[list[int]]) -> tuple[torch.Tensor, Cache, torch.Tensor]:
        """Last-position logits, KV cache and attention mask of the left-padded prompts."""
        width = max(len(p) for p in prompts)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
            use_cache=True,
            logits_to_keep=1,
        )
        return out.logits, out.past_key_values, mask

    def _hit_stop(self, tokens: list[int], stop: tuple[str, ...]) -> bool:
        if not stop:
            return False
        # Every token decodes to at least one character: the last len(longest stop) tokens
        # hold any stop string the newest token completed.
        tail = self.tokenizer.decode(tokens[-max(len(s) for s in stop) :], skip_special_tokens=True)
        return any(s in tail for s in stop)

    def _text(self, tokens: list[int], stop: tuple[str, ...]) -> str:
        """The decoded text, cut right after the first stop string."""
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        cuts = [text.find(s) + len(s) for s in stop if s in text]
        return text[: min(cuts)] if cuts else text


def _eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """The tokenizer's EOS and the generation config's (one id or a list)."""
    config_eos = model.generation_config.eos_token_id if model.generation_config else None
    ids = [tokenizer.eos_token_id, *(config_eos if isinstance(config_eos, list) else [config_eos])]
    return {i for i in ids if i is not None}
