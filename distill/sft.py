"""SFT of the student on traces, with the GRPO learner's machinery: its optimizer and
schedule, micro-batches (left-padded, one example per row: no attention across examples),
chunked log-probs, atomic checkpoints and progress display. Resumable exactly."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from distill.examples import Example
from distill.recipe import SFTConfig
from r1kit import durable
from r1kit.data import PromptStream
from r1kit.display import Display
from r1kit.learner.batch import Batch
from r1kit.learner.checkpoint import load_checkpoint, save_checkpoint, save_model
from r1kit.learner.core import Learner
from r1kit.recipe import LearnerConfig
from r1kit.rundir import RunDir


@dataclass
class Position:
    """How far SFT has gone through its data: each epoch's order follows from seed and epoch."""

    step: int = 0

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = state["step"]


@dataclass
class Parts:
    """What a checkpoint holds (the fields `r1kit.learner.checkpoint` reads); `stream`: SFT's
    position, or on-policy's prompt stream."""

    learner: Learner
    tokenizer: PreTrainedTokenizerBase
    stream: Position | PromptStream = field(default_factory=Position)


def sft_learner(
    model: nn.Module, cfg: SFTConfig, total_steps: int, temperature: float = 1.0
) -> Learner:
    """The GRPO learner set up for SFT: same optimizer, schedule, clipping and log-probs."""
    settings = LearnerConfig(
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_steps,
        schedule=cfg.schedule,
        max_grad_norm=cfg.max_grad_norm,
        micro_batch_size=cfg.micro_batch_size,
        logprob_chunk=cfg.logprob_chunk,
        shared_prefix=False,  # every example has its own prompt
        skip_zero_advantage=False,  # SFT has no advantages
    )
    return Learner(model, settings, total_steps, temperature)


def as_batch(examples: list[Example]) -> Batch:
    """Examples as a learner batch: the targets are the 'completions', every one counted."""
    return Batch(
        prompt_ids=[e.prompt_ids for e in examples],
        completion_ids=[e.target_ids for e in examples],
        rollout_logprobs=[[0.0] * len(e.target_ids) for e in examples],
        advantages=torch.zeros(len(examples)),
        loss_mask=[True] * len(examples),
    )


def target_logprobs(learner: Learner, batch: Batch, size: int):
    """(micro-batch, log-prob of each target token [B, C]) over `batch`, `size` rows at a time;
    prompt tokens and padding have no log-prob (mask 0)."""
    for mb in batch.micro_batches(size):
        mb = mb.to(learner.device)
        yield mb, learner.forward(learner.model, mb)[0]


def sft_step(learner: Learner, examples: list[Example], micro_batch_size: int) -> dict:
    """One optimizer step of mean per-token negative log-likelihood over the targets."""
    learner.model.train()
    learner.optimizer.zero_grad(set_to_none=True)
    batch = as_batch(examples)
    tokens = batch.num_tokens()  # batch-wide normaliser: micro-batches add up to the mean
    total = 0.0
    for mb, logprobs in target_logprobs(learner, batch, micro_batch_size):
        loss = -(logprobs * mb.mask).sum() / tokens
        loss.backward()
        total += loss.item()
    grad_norm = learner.optimizer_step()
    return {
        "nll": total,
        "tokens": float(tokens),
        "grad_norm": grad_norm,
        "lr": learner.scheduler.get_last_lr()[0],
    }


def total_steps(cfg: SFTConfig, examples: int) -> int:
    """Optimizer steps of a whole SFT run: every epoch in batches (the last one may be short)."""
    return cfg.epochs * math.ceil(examples / cfg.batch_size)


def save(run: RunDir, parts, step: int, keep_last: int) -> None:
    """Checkpoint `step` atomically, keeping the newest `keep_last`."""
    save_checkpoint(run.checkpoint_dir(step), parts, step)
    run.prune_checkpoints(keep_last)


def restore(run: RunDir, parts) -> int:
    """Load the newest intact checkpoint into `parts` (none: start at 0), drop the metrics
    logged after it; return its step."""
    checkpoint, problems = run.recover_checkpoint()
    for problem in problems:
        print(problem)
    step = load_checkpoint(checkpoint, parts) if checkpoint is not None else 0
    run.discard_logs_from(step + 1)
    return step


class SFT:
    """`fit` runs every epoch of the traces through the learner, checkpointing on the way."""

    def __init__(
        self, cfg: SFTConfig, run: RunDir, parts: Parts, examples: list[Example], seed: int
    ):
        self.cfg, self.run, self.parts, self.examples, self.seed = cfg, run, parts, examples, seed
        self.steps_per_epoch = math.ceil(len(examples) / cfg.batch_size)
        self.total = total_steps(cfg, len(examples))

    def fit(self, resume: bool = False, merge_lora: bool = True) -> None:
        """Train to the last step (from the newest intact checkpoint on resume); write final/."""
        if resume:
            self.restore()
        position = self.parts.stream
        with Display(self.total, position.step, label="SFT") as display:
            while position.step < self.total:
                metrics = sft_step(
                    self.parts.learner, self.batch_at(position.step), self.cfg.micro_batch_size
                )
                position.step += 1
                metrics["epoch"] = position.step / self.steps_per_epoch
                self.run.log_metrics(position.step, metrics)
                display.update(position.step, metrics)
                if self.cfg.save_every and position.step % self.cfg.save_every == 0:
                    self.save()
        self.save_final(merge_lora)

    def batch_at(self, step: int) -> list[Example]:
        """The examples of optimizer step `step` (0-based): a slice of its epoch's shuffle."""
        epoch, index = divmod(step, self.steps_per_epoch)
        generator = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(len(self.examples), generator=generator).tolist()
        rows = order[index * self.cfg.batch_size : (index + 1) * self.cfg.batch_size]
        return [self.examples[i] for i in rows]

    def save(self) -> None:
        save(self.run, self.parts, self.parts.stream.step, self.cfg.keep_last)

    def restore(self) -> None:
        restore(self.run, self.parts)

    def save_final(self, merge_lora: bool) -> None:
        """final/: a plain HF model (LoRA merged), or with merge_lora off the peft adapter."""
        if merge_lora or not self.parts.learner.is_lora:
            save_model(self.run.final, self.parts)
            return
        with durable.replace_dir(self.run.final) as tmp:
            self.parts.learner.model.save_pretrained(tmp)
            self.parts.tokenizer.save_pretrained(tmp)
