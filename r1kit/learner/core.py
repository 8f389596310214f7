"""The Learner: the policy model, its optimizer and schedule, and the one optimizer-step
loop every objective trains through (GRPO's policy loss, SFT, on-policy distillation).

It computes its loss as one rank of N would: every normaliser comes from the caller
(`Normalisers`, batch-wide), so micro-batches and ranks just add up their gradients.
"""

from __future__ import annotations

import contextlib
import copy
import math
import warnings
from collections.abc import Iterator

import torch
from torch import nn

from r1kit.learner.batch import Batch, MicroBatch
from r1kit.learner.logprobs import token_logprobs
from r1kit.learner.normalisers import Normalisers
from r1kit.learner.objective import Objective
from r1kit.learner.prefix import additive_mask, packed_micro_batches
from r1kit.learner.router_loss import balance_loss
from r1kit.learner.stats import StepStats
from r1kit.recipe import MicroBatchConfig, OptimizerConfig


class Learner:
    """Holds the trainable policy; `step` is one optimizer step of an objective over a batch.

    `reference`: keep the initial policy for objectives that compare with it (GRPO's KL
    penalty); with LoRA it is the model with its adapters off, never a second copy.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: OptimizerConfig,
        batching: MicroBatchConfig,
        total_steps: int,
        temperature: float,
        reference: bool = False,
    ):
        self.model = model
        self.batching = batching
        self.temperature = temperature
        self.device = next(model.parameters()).device
        self.is_lora = hasattr(model, "disable_adapter")
        # The router's aux loss counts every token of every forward: it is never zero, and a
        # packed row would count a prompt once instead of once per completion.
        self.router_loss_on = _is_moe(model) and batching.aux_loss_coef > 0
        self.reference = None
        if reference and not self.is_lora:
            self.reference = self.frozen_copy(model)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.max_grad_norm = optimizer.max_grad_norm
        self.optimizer = torch.optim.AdamW(
            self.params, lr=optimizer.lr, betas=optimizer.betas, weight_decay=optimizer.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _lr_lambda(optimizer.warmup_steps, total_steps, optimizer.schedule)
        )
        self.shared_prefix = (
            batching.shared_prefix and not self.router_loss_on and self._shared_prefix_matches()
        )

    def step(self, batch: Batch, objective: Objective, norm: Normalisers) -> dict[str, float]:
        """Accumulate `objective`'s gradient over micro-batches, clip, take one AdamW step;
        return the step's metrics."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        stats = StepStats()
        rows = list(range(len(batch))) if self.router_loss_on else objective.rows(batch)
        for mb in self.micro_batches(batch, rows):
            mb = mb.to(self.device)
            logprobs, entropy, aux_loss = self.forward(self.model, mb, objective.entropy_grad)
            loss, loss_stats = objective.loss(self, mb, logprobs, entropy, norm)
            if aux_loss is not None:
                # The router's load-balancing loss is a per-forward mean: weight it by this
                # micro-batch's share of the batch so micro-batches add up to the batch mean.
                share = len(mb.rows) / norm.num_sequences
                loss = loss + self.batching.aux_loss_coef * aux_loss * share
                stats.add({"aux_loss": aux_loss.item() * share})
            loss.backward()
            stats.add({"loss": loss.item(), **loss_stats})
        objective.end(batch)
        self.last_stats = stats  # a rank's sums, which its group adds up across ranks
        grad_norm = self.optimizer_step()
        skipped = 1 - len(rows) / max(len(batch), 1)
        return stats.metrics(objective, grad_norm, self.scheduler.get_last_lr()[0], skipped)

    def optimizer_step(self) -> float:
        """Clip and apply the accumulated gradient; returns its norm before clipping."""
        # A parameter no forward reached (every sequence skipped, an unrouted expert) still
        # takes its AdamW step, as with a zero gradient: skipping changes no update.
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        # Free the gradients now, not at the next step: they would sit through generation,
        # evaluation and checkpoints (one float32 copy of the trainable weights).
        self.optimizer.zero_grad(set_to_none=True)
        return float(grad_norm)

    def micro_batches(self, batch: Batch, rows: list[int]) -> Iterator[MicroBatch]:
        """Packed where the batch has prompts in common and the model passed the probe."""
        size = self.batching.micro_batch_size
        if self.shared_prefix and batch.shares_prompts():
            return packed_micro_batches(batch, rows, size, self.batching.micro_batch_tokens)
        return batch.micro_batches(size, rows)

    def forward(
        self, model: nn.Module, mb: MicroBatch, entropy_grad: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Per completion token ([B, C], 0 where none): log-prob of the sampled token at the
        sampling temperature, and the entropy of that distribution; the policy's MoE aux loss
        if any (a reference's or a teacher's is not asked for)."""
        router = self.router_loss_on and model is self.model
        attention_mask = mb.attention_mask
        if attention_mask.dim() == 4:
            attention_mask = additive_mask(attention_mask, next(model.parameters()).dtype)
        hidden = []
        # The decoder's output (final norm included) is what the LM head turns into logits;
        # the model itself computes logits for one position only.
        hook = model.get_decoder().register_forward_hook(
            lambda module, args, out: hidden.append(out[0])
        )
        try:
            with _autocast(self.device):
                out = self.run_model(
                    model,
                    input_ids=mb.input_ids,
                    attention_mask=attention_mask,
                    position_ids=mb.position_ids,
                    logits_to_keep=1,
                    use_cache=False,
                    **({"output_router_logits": True} if router else {}),
                )
        finally:
            hook.remove()
        real = mb.source >= 0
        # index_select, not `[...]`: packed completions share their prompt's last state, and
        # the backward of advanced indexing adds those duplicates in a thread-dependent order
        # on CPU (weights differ in the last bit run to run); index_select's backward does not.
        states = hidden[0].reshape(-1, hidden[0].shape[-1]).index_select(0, mb.source[real])
        head = model.get_output_embeddings()
        flat = token_logprobs(
            states,
            mb.targets[real],
            head,
            self.temperature,
            self.batching.logprob_chunk,
            entropy_grad,
        )
        logprobs, entropy = (torch.zeros(mb.targets.shape, device=self.device) for _ in range(2))
        logprobs = logprobs.masked_scatter(real, flat[0])
        entropy = entropy.masked_scatter(real, flat[1])
        aux = _router_loss(model, out, mb.attention_mask) if router else None
        return logprobs, entropy, aux

    def run_model(self, model: nn.Module, **inputs) -> object:
        """`model(**inputs)`; a rank of a data-parallel group runs its policy through DDP."""
        return model(**inputs)

    def frozen_copy(self, model: nn.Module) -> nn.Module:
        """The reference policy: a frozen copy of the initial model."""
        return copy.deepcopy(model).eval().requires_grad_(False)

    def _shared_prefix_matches(self) -> bool:
        """Whether this model gives the same log-probs packed as plain on a tiny probe batch
        (attention that ignores a custom 4-D mask, e.g. flash-attention or some MoE, does not)."""
        generator = torch.Generator().manual_seed(0)
        vocab = self.model.get_output_embeddings().weight.shape[0]
        ids = torch.randint(vocab, (4, 6), generator=generator).tolist()
        probe = Batch(
            prompt_ids=[ids[0][:3]] * 2 + [ids[1][:2]] * 2,
            completion_ids=[ids[2][:4], ids[3][:2], ids[0][3:], ids[1][2:]],
            rollout_logprobs=[[0.0] * 4, [0.0] * 2, [0.0] * 3, [0.0] * 4],
            advantages=torch.zeros(4),
            loss_mask=[True] * 4,
        )
        rows = list(range(4))
        try:
            plain = self._probe(next(probe.micro_batches(4, rows)), rows)
            packed = self._probe(next(packed_micro_batches(probe, rows, 4)), rows)
        except (RuntimeError, ValueError, TypeError) as err:
            warnings.warn(
                f"shared_prefix off: the model fails on a probe batch ({err})", stacklevel=3
            )
            return False
        tolerance = 1e-4 if next(self.model.parameters()).dtype == torch.float32 else 5e-2
        if (plain - packed).abs().max().item() > tolerance:
            warnings.warn("shared_prefix off: the model ignores a custom 4-D mask", stacklevel=3)
            return False
        return True

    @torch.no_grad()
    def _probe(self, mb: MicroBatch, rows: list[int]) -> torch.Tensor:
        """The policy's log-probs of `mb`, its completions in the order of `rows`."""
        return self.forward(self.model, mb.to(self.device))[0][[mb.rows.index(i) for i in rows]]

    @torch.no_grad()
    def token_values(self, batch: Batch, reference: bool = False) -> dict[str, list[torch.Tensor]]:
        """Per sequence, one value per completion token, without a gradient: the policy's
        `logprobs` and `entropy` and, with `reference`, the reference's `ref_logprobs` (what an
        objective needs of the whole batch before its step: GRPO's entropy_top_q, kl_in)."""
        self.model.train()  # the step's numerics
        keys = ("logprobs", "entropy", "ref_logprobs")[: 3 if reference else 2]
        values = {key: [torch.zeros(len(ids)) for ids in batch.completion_ids] for key in keys}
        rows = [i for i in range(len(batch)) if batch.completion_ids[i]]
        for mb in self.micro_batches(batch, rows):
            mb = mb.to(self.device)
            found = self.forward(self.model, mb)[:2]
            found += (self.reference_logprobs(mb),) if reference else ()
            for row, i in enumerate(mb.rows):
                n = len(batch.completion_ids[i])
                for key, tensor in zip(keys, found, strict=True):
                    values[key][i] = tensor[row, tensor.shape[1] - n :].cpu()
        return values

    @torch.no_grad()
    def reference_logprobs(self, mb: MicroBatch) -> torch.Tensor:
        if self.reference is not None:
            return self.forward(self.reference, mb)[0]
        with self.model.disable_adapter():
            return self.forward(self.model, mb)[0]

    def named_weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        """The policy's weights under plain HF names, streamed one tensor at a time.

        With LoRA each adapted weight is W + scale * B @ A, computed on the fly: merging in
        place and unmerging would drift the frozen base weights by rounding.
        """
        lora_layers = {
            n: m for n, m in self.model.named_modules() if hasattr(m, "get_delta_weight")
        }
        for name, p in self.model.named_parameters():
            if "lora_" in name:
                continue
            owner = name.removesuffix(".base_layer.weight")
            if owner in lora_layers:
                layer = lora_layers[owner]
                yield (
                    _plain_name(name),
                    (p + layer.get_delta_weight(layer.active_adapters[0])).detach(),
                )
            else:
                yield _plain_name(name), p.detach()

    def set_lr(self, lr: float) -> None:
        """Change the base learning rate mid-run (the schedule's factor still applies): a
        resumed run's `--set learner.lr=...` reaches the restored optimizer this way."""
        self.scheduler.base_lrs = [lr] * len(self.optimizer.param_groups)
        for group, factor in zip(
            self.optimizer.param_groups, self.scheduler.lr_lambdas, strict=True
        ):
            group["initial_lr"] = lr
            group["lr"] = lr * factor(self.scheduler.last_epoch)

    def adapter_state(self) -> dict[str, torch.Tensor]:
        """The trainable parameters (a LoRA adapter), copied."""
        return {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}

    def load_weights(self, weights: dict[str, torch.Tensor]):
        """Load (some of) the model's parameters by name; returns missing and unexpected keys."""
        return self.model.load_state_dict(weights, strict=False)

    def close(self) -> None:
        """Nothing to release in-process (a LearnerGroup stops its rank actors)."""

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


def _lr_lambda(warmup: int, total: int, schedule: str):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def _plain_name(name: str) -> str:
    """peft's `base_model.model.x.base_layer.weight` -> the HF model's `x.weight`."""
    return name.removeprefix("base_model.model.").replace(".base_layer.", ".")


def _router_loss(model: nn.Module, out, attention_mask: torch.Tensor) -> torch.Tensor | None:
    """The model's own MoE aux loss (Mixtral, Qwen-MoE), else DeepSeek-V3's balance loss."""
    if getattr(out, "aux_loss", None) is not None:
        return out.aux_loss
    if getattr(out, "router_logits", None):
        return balance_loss(out.router_logits, model.config.num_experts_per_tok, attention_mask)
    return None


def _is_moe(model: nn.Module) -> bool:
    config = getattr(model, "config", None)
    return any(
        getattr(config, key, None)
        for key in ("num_experts", "n_routed_experts", "num_local_experts")
    )


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
