"""The Learner: the policy model, its optimizer and schedule, and one GRPO optimizer step.

It computes its loss as one rank of N would: every normaliser comes from the caller
(`Normalisers`, batch-wide), so micro-batches and ranks just add up their gradients.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator

import torch
from torch import nn

from grpo.batch import Batch, MicroBatch
from grpo.loss import Normalisers, mismatch_stats, policy_loss, tis_weights
from grpo.router_loss import balance_loss
from r1kit.recipe import LearnerConfig

SUMMED_STATS = ("clip_low_count", "clip_high_count", "kl_sum", "ratio_sum", "token_count")


class Learner:
    """Holds the trainable policy; `step` is one optimizer step over a whole batch."""

    def __init__(self, model: nn.Module, cfg: LearnerConfig, total_steps: int, temperature: float):
        self.model = model
        self.cfg = cfg
        self.temperature = temperature
        self.device = next(model.parameters()).device
        self.is_lora = hasattr(model, "disable_adapter")
        # beta 0 needs no reference; with LoRA the reference is the base with adapters off.
        self.reference = None
        if cfg.beta > 0 and not self.is_lora:
            self.reference = copy.deepcopy(model).eval().requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _lr_lambda(cfg.warmup_steps, total_steps, cfg.schedule)
        )

    def step(self, batch: Batch, norm: Normalisers, store_old: bool = False) -> dict[str, float]:
        """Accumulate gradients over micro-batches, clip, take one AdamW step; return metrics.

        With `store_old`, this pass's (pre-update) log-probs are kept in `batch.old_logprobs`
        so later passes over the same batch (num_iterations > 1) have their ratio's denominator.
        """
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = dict.fromkeys(
            (*SUMMED_STATS, "loss", "entropy_sum", "aux_loss", "mismatch_kl_sum"), 0.0
        )
        old_store: list[torch.Tensor | None] = [None] * len(batch)
        for mb in batch.micro_batches(self.cfg.micro_batch_size):
            mb = mb.to(self.device)
            logprobs, entropy, aux_loss = self.forward(self.model, mb)
            # Before the first update the learner's own log-probs ARE the old policy's:
            # detached, they give ratio 1 and need no extra forward pass.
            old = mb.old_logprobs if mb.old_logprobs is not None else logprobs.detach()
            weights = None
            if self.cfg.tis.level != "none":
                weights = tis_weights(
                    old, mb.rollout_logprobs, mb.mask, self.cfg.tis.level, self.cfg.tis.cap
                )
            loss, stats = policy_loss(
                logprobs,
                old,
                mb.advantages,
                mb.mask,
                norm,
                aggregation=self.cfg.loss,
                epsilon_low=self.cfg.epsilon_low,
                epsilon_high=self.cfg.epsilon_high,
                beta=self.cfg.beta,
                ref_logprobs=self.reference_logprobs(mb) if self.cfg.beta > 0 else None,
                tis_weights=weights,
            )
            if aux_loss is not None:
                # The router's load-balancing loss is a per-forward mean: weight it by this
                # micro-batch's share of the batch so micro-batches add up to the batch mean.
                share = len(mb.rows) / norm.num_sequences
                loss = loss + self.cfg.aux_loss_coef * aux_loss * share
                totals["aux_loss"] += aux_loss.item() * share
            loss.backward()
            totals["loss"] += loss.item()
            totals["entropy_sum"] += (entropy * mb.mask).sum().item()
            totals["mismatch_kl_sum"] += (
                mismatch_stats(old, mb.rollout_logprobs, mb.mask)["kl"] * mb.mask.sum().item()
            )
            for key in SUMMED_STATS:
                totals[key] += stats[key]
            if store_old:
                for row, i in enumerate(mb.rows):
                    n = len(batch.completion_ids[i])
                    old_store[i] = old[row, old.shape[1] - n :].detach().cpu()
        if store_old:
            batch.old_logprobs = old_store
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        return _summarise(totals, grad_norm.item(), self.scheduler.get_last_lr()[0])

    def forward(
        self, model: nn.Module, mb: MicroBatch
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Per completion token: log-prob of the sampled token at the sampling temperature,
        and the entropy of that distribution; plus the MoE router's aux loss if any."""
        window = mb.targets.shape[1]
        with _autocast(self.device):
            out = model(
                input_ids=mb.input_ids,
                attention_mask=mb.attention_mask,
                position_ids=mb.position_ids,
                logits_to_keep=window + 1,
                use_cache=False,
                **({"output_router_logits": True} if _is_moe(model) else {}),
            )
        # Logits at position p predict token p+1: the last `window` targets need the
        # `window` logits before the final one.
        logits = out.logits[:, :-1].float() / self.temperature
        log_probs = torch.log_softmax(logits, dim=-1)
        logprobs = log_probs.gather(-1, mb.targets.unsqueeze(-1)).squeeze(-1)
        with torch.no_grad():  # entropy is a diagnostic: no graph for it
            entropy = -(log_probs.exp() * log_probs).sum(-1)
        return logprobs, entropy, _router_loss(model, out, mb.attention_mask)

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

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


def _summarise(totals: dict[str, float], grad_norm: float, lr: float) -> dict[str, float]:
    tokens = max(totals["token_count"], 1.0)
    metrics = {
        "loss": totals["loss"],
        "kl": totals["kl_sum"] / tokens,
        "clip_frac/low": totals["clip_low_count"] / tokens,
        "clip_frac/high": totals["clip_high_count"] / tokens,
        "ratio": totals["ratio_sum"] / tokens,
        "entropy": totals["entropy_sum"] / tokens,
        "mismatch_kl": totals["mismatch_kl_sum"] / tokens,
        "grad_norm": grad_norm,
        "lr": lr,
    }
    if totals["aux_loss"]:
        metrics["aux_loss"] = totals["aux_loss"]
    return metrics


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
