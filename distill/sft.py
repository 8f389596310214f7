"""SFT of the student on traces: the loop over epochs and checkpoints. Each step is the
learner core's (r1kit/learner/core.py) with the next-token objective (distill/objectives.py):
its optimizer and schedule, micro-batches (one example per row: no attention across
examples), chunked log-probs, the MoE aux loss. Resumable exactly."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from distill.examples import Example
from distill.objectives import NextTokenNLL
from distill.recipe import SFTConfig
from r1kit import durable
from r1kit.data import PromptStream
from r1kit.display import Display
from r1kit.learner.batch import Batch, to_batch
from r1kit.learner.checkpoint import resume_from, save_checkpoint, save_model
from r1kit.learner.core import Learner
from r1kit.model_card import write_card
from r1kit.rundir import RunDir
from r1kit.stopping import Stopper, StopRequested
from rollout.types import Completion


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
    """The learner core with the `sft` section's optimizer and micro-batching settings (it
    holds both), for both modes."""
    return Learner(model, cfg, cfg, total_steps, temperature)


def as_batch(examples: list[Example]) -> Batch:
    """Examples as a learner batch: each target is the 'completion', every one counted."""
    return to_batch(
        [
            Completion(e.target_ids, [0.0] * len(e.target_ids), "", "stop", e.prompt_ids)
            for e in examples
        ]
    )


def total_steps(cfg: SFTConfig, examples: int) -> int:
    """Optimizer steps of a whole SFT run: every epoch in batches (the last one may be short)."""
    return cfg.epochs * math.ceil(examples / cfg.batch_size)


def save(run: RunDir, parts, step: int, keep_last: int) -> None:
    """Checkpoint `step` atomically, keeping the newest `keep_last`."""
    save_checkpoint(run.checkpoint_dir(step), parts, step, config=run.config)
    run.prune_checkpoints(keep_last)


class SFT:
    """`fit` runs every epoch of the traces through the learner, checkpointing on the way and
    when `stopper` has caught a stop signal."""

    def __init__(
        self,
        cfg: SFTConfig,
        run: RunDir,
        parts: Parts,
        examples: list[Example],
        seed: int,
        stopper: Stopper,
    ):
        self.cfg, self.run, self.parts, self.examples, self.seed = cfg, run, parts, examples, seed
        self.stopper = stopper
        self.steps_per_epoch = math.ceil(len(examples) / cfg.batch_size)
        self.total = total_steps(cfg, len(examples))

    def fit(self, resume: bool = False) -> None:
        """Train to the last step (from the newest intact checkpoint on resume); the caller
        writes final/ (`save_final`). A stop signal ends the step under way, checkpoints it
        and raises StopRequested."""
        if resume:
            resume_from(self.run, self.parts)
        position = self.parts.stream
        with Display(self.total, position.step, label="SFT") as display:
            while position.step < self.total:
                batch = as_batch(self.batch_at(position.step))
                norm = batch.normalisers(self.cfg.max_length)
                metrics = self.parts.learner.step(batch, NextTokenNLL(), norm)
                position.step += 1
                metrics["epoch"] = position.step / self.steps_per_epoch
                self.run.log_metrics(position.step, metrics)
                display.update(position.step, metrics)
                due = self.cfg.save_every and position.step % self.cfg.save_every == 0
                if due or self.stopper.requested:
                    self.save()
                if self.stopper.requested:
                    raise StopRequested(self.stopper.signum)

    def batch_at(self, step: int) -> list[Example]:
        """The examples of optimizer step `step` (0-based): a slice of its epoch's shuffle."""
        epoch, index = divmod(step, self.steps_per_epoch)
        generator = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(len(self.examples), generator=generator).tolist()
        rows = order[index * self.cfg.batch_size : (index + 1) * self.cfg.batch_size]
        return [self.examples[i] for i in rows]

    def save(self) -> None:
        save(self.run, self.parts, self.parts.stream.step, self.cfg.keep_last)

    def save_final(self, merge_lora: bool, card: str) -> None:
        """final/ with its card: a plain HF model (LoRA merged), or with merge_lora off the
        peft adapter."""
        if merge_lora or not self.parts.learner.is_lora:
            save_model(self.run.final, self.parts, card)
            return
        with durable.replace_dir(self.run.final) as tmp:
            self.parts.learner.model.save_pretrained(tmp)
            self.parts.tokenizer.save_pretrained(tmp)
            write_card(tmp, card)  # after peft's, which save_pretrained writes
