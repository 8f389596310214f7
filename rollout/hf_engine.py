"""The in-process rollout engine on Hugging Face transformers: a KV-cached sampling loop.

Unlike `model.generate`, a finished sequence leaves the batch (and the KV cache) at once, so
no compute is spent decoding padding, and every sampled token comes with its log-probability
under the sampling distribution (the "old" log-probs of GRPO's importance ratio).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rollout.types import Completion, SamplingParams


class HFEngine:
    """`generate` samples `n` completions per prompt, at most `batch_size` sequences at once."""

    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, batch_size: int = 64
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.device = next(model.parameters()).device
        self.eos_ids = _eos_ids(model, tokenizer)

    @torch.inference_mode()
    def generate(
        self, prompt_token_ids: list[list[int]], sampling: SamplingParams
    ) -> list[list[Completion]]:
        generator = torch.Generator(device=self.device)
        generator.manual_seed(sampling.seed if sampling.seed is not None else torch.seed())
        groups: list[list[Completion]] = [[] for _ in prompt_token_ids]
        for chunk in self._chunks(prompt_token_ids, sampling.n):
            prompts = [prompt_token_ids[p] for p, _ in chunk]
            copies = [count for _, count in chunk]
            for (p, _count), completions in zip(
                chunk, self._decode(prompts, copies, sampling, generator), strict=True
            ):
                groups[p] += completions
        return groups

    def _chunks(self, prompt_token_ids: list[list[int]], n: int) -> list[list[tuple[int, int]]]:
        """(prompt, copies) units of at most `batch_size` sequences; prompts of similar length
        share a chunk (less left padding)."""
        order = sorted(range(len(prompt_token_ids)), key=lambda p: len(prompt_token_ids[p]))
        units = [
            (p, min(self.batch_size, n - k)) for p in order for k in range(0, n, self.batch_size)
        ]
        chunks, current, size = [], [], 0
        for p, count in units:
            if size + count > self.batch_size:
                chunks.append(current)
                current, size = [], 0
            current.append((p, count))
            size += count
        return [*chunks, current] if current else chunks

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy each (name, tensor) into the parameter of that name, in place."""
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in named_tensors:
                if name not in params:
                    raise KeyError(f"update_weights: the engine's model has no parameter {name!r}")
                params[name].copy_(tensor)

    def _decode(
        self,
        unique: list[list[int]],
        copies: list[int],
        sampling: SamplingParams,
        generator: torch.Generator,
    ) -> list[list[Completion]]:
        """Prefill each prompt once, copy its KV cache `copies` times, then decode."""
        width = max(len(p) for p in unique)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in unique], device=self.device)
        mask = torch.tensor(
            [[0] * (width - len(p)) + [1] * len(p) for p in unique], device=self.device
        )
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
        )
        repeat = torch.tensor(
            [i for i, count in enumerate(copies) for _ in range(count)], device=self.device
        )
        cache, mask, logits = out.past_key_values, mask[repeat], out.logits[repeat]
        cache.batch_select_indices(repeat)
        prompts = [unique[i] for i in repeat.tolist()]
        tokens: list[list[int]] = [[] for _ in prompts]
        logprobs: list[list[float]] = [[] for _ in prompts]
        finish: list[str] = ["length"] * len(prompts)
        active = list(range(len(prompts)))  # batch row -> sequence index
        for step in range(sampling.max_new_tokens):
            next_ids, next_logprobs = sample(logits[:, -1].float(), sampling, generator)
            still = []
            for row, seq in enumerate(active):
                token = next_ids[row].item()
                tokens[seq].append(token)
                logprobs[seq].append(next_logprobs[row].item())
                if token in self.eos_ids or self._hit_stop(tokens[seq], sampling.stop):
                    finish[seq] = "stop"
                else:
                    still.append(row)
            if not still or step == sampling.max_new_tokens - 1:
                break
            if len(still) < len(active):  # finished rows leave the batch and the cache
                keep = torch.tensor(still, device=self.device)
                cache.batch_select_indices(keep)
                mask, next_ids = mask[keep], next_ids[keep]
                active = [active[row] for row in still]
            mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=-1)
            logits = self.model(
                input_ids=next_ids[:, None],
                attention_mask=mask,
                position_ids=mask.sum(-1, keepdim=True) - 1,
                past_key_values=cache,
                use_cache=True,
            ).logits
        completions = [
            Completion(
                tokens[i], logprobs[i], self._text(tokens[i], sampling.stop), finish[i], prompts[i]
            )
            for i in range(len(prompts))
        ]
        starts = [sum(copies[:i]) for i in range(len(copies))]
        return [
            completions[start : start + count] for start, count in zip(starts, copies, strict=True)
        ]

    def _hit_stop(self, tokens: list[int], stop: tuple[str, ...]) -> bool:
        if not stop:
            return False
        # Every token is at least one character: the last len(longest stop) tokens suffice.
        tail = self.tokenizer.decode(tokens[-max(len(s) for s in stop) :], skip_special_tokens=True)
        return any(s in tail for s in stop)

    def _text(self, tokens: list[int], stop: tuple[str, ...]) -> str:
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        cuts = [text.find(s) + len(s) for s in stop if s in text]
        return text[: min(cuts)] if cuts else text


def sample(
    logits: torch.Tensor, sampling: SamplingParams, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Next tokens and their log-probs under softmax(logits / T), before top-k/top-p
    truncation: the distribution the learner recomputes. Temperature 0 is greedy."""
    if sampling.temperature == 0:
        log_probs = torch.log_softmax(logits, dim=-1)
        tokens = log_probs.argmax(-1)
        return tokens, log_probs.gather(-1, tokens[:, None]).squeeze(-1)
    log_probs = torch.log_softmax(logits / sampling.temperature, dim=-1)
    filtered = log_probs
    if sampling.top_k > 0:
        kth = filtered.topk(min(sampling.top_k, filtered.shape[-1]), dim=-1).values[:, -1:]
        filtered = filtered.masked_fill(filtered < kth, float("-inf"))
    if sampling.top_p < 1.0:
        sorted_lp, order = filtered.sort(dim=-1, descending=True)
        # Drop a token when the tokens before it already cover top_p of the mass.
        drop = sorted_lp.exp().cumsum(-1) - sorted_lp.exp() > sampling.top_p
        filtered = filtered.scatter(-1, order, sorted_lp.masked_fill(drop, float("-inf")))
    # Inverse-CDF sampling: one uniform number per row, far cheaper than torch.multinomial
    # (or one exponential per vocabulary entry) over a 50k vocabulary.
    cdf = filtered.exp().cumsum(-1)
    u = torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device) * cdf[:, -1:]
    tokens = torch.searchsorted(cdf, u).squeeze(-1).clamp(max=cdf.shape[-1] - 1)
    return tokens, log_probs.gather(-1, tokens[:, None]).squeeze(-1)


def _eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    ids = {tokenizer.eos_token_id}
    config_eos = (
        getattr(model.generation_config, "eos_token_id", None) if model.generation_config else None
    )
    ids.update(config_eos if isinstance(config_eos, list) else [config_eos])
    return {i for i in ids if i is not None}
