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
        # Sequences of similar prompt length share a chunk: less left padding.
        sequences = sorted(
            (
                (len(ids), p, ids)
                for p, ids in enumerate(prompt_token_ids)
                for _ in range(sampling.n)
            ),
            key=lambda s: s[0],
        )
        groups: list[list[Completion]] = [[] for _ in prompt_token_ids]
        for start in range(0, len(sequences), self.batch_size):
            chunk = sequences[start : start + self.batch_size]
            completions = self._decode([ids for _, _, ids in chunk], sampling, generator)
            for (_, p, _), completion in zip(chunk, completions, strict=True):
                groups[p].append(completion)
        return groups

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy each (name, tensor) into the parameter of that name, in place."""
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in named_tensors:
                if name not in params:
                    raise KeyError(f"update_weights: the engine's model has no parameter {name!r}")
                params[name].copy_(tensor)

    def _decode(
        self, prompts: list[list[int]], sampling: SamplingParams, generator: torch.Generator
    ) -> list[Completion]:
        width = max(len(p) for p in prompts)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.tensor(
            [[pad] * (width - len(p)) + p for p in prompts], device=self.device
        )
        mask = torch.tensor(
            [[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device
        )
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
        )
        cache = out.past_key_values
        tokens: list[list[int]] = [[] for _ in prompts]
        logprobs: list[list[float]] = [[] for _ in prompts]
        finish: list[str] = ["length"] * len(prompts)
        active = list(range(len(prompts)))  # batch row -> sequence index
        for step in range(sampling.max_new_tokens):
            next_ids, next_logprobs = sample(out.logits[:, -1].float(), sampling, generator)
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
            out = self.model(
                input_ids=next_ids[:, None],
                attention_mask=mask,
                position_ids=mask.sum(-1, keepdim=True) - 1,
                past_key_values=cache,
                use_cache=True,
            )
        return [
            Completion(
                tokens[i], logprobs[i], self._text(tokens[i], sampling.stop), finish[i], prompts[i]
            )
            for i in range(len(prompts))
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
    tokens = torch.multinomial(filtered.exp(), 1, generator=generator).squeeze(-1)
    return tokens, log_probs.gather(-1, tokens[:, None]).squeeze(-1)


def _eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    ids = {tokenizer.eos_token_id}
    config_eos = (
        getattr(model.generation_config, "eos_token_id", None) if model.generation_config else None
    )
    ids.update(config_eos if isinstance(config_eos, list) else [config_eos])
    return {i for i in ids if i is not None}
