"""On-policy distillation: the student samples, the teacher scores the student's own tokens,
and the student follows the per-token advantage -(log p_student - log p_teacher), i.e. it
minimises the reverse KL to the teacher on its own samples (Agarwal et al. 2024, GKD; Thinking
Machines' on-policy distillation). The teacher's log-prob of each sampled token is all it needs."""

from __future__ import annotations

import torch
from torch import nn

from distill.recipe import DistillRecipe
from grpo.batch import Batch
from grpo.display import Display
from grpo.learner import Learner
from r1kit.data import PromptStream
from r1kit.rundir import RunDir
from r1kit.templates import encode
from rollout.hf_engine import HFEngine
from rollout.types import Engine, SamplingParams


def sampled_batch(engine: Engine, prompts: list[list[int]], sampling: SamplingParams) -> Batch:
    """The student's samples of every prompt, as a learner batch."""
    groups = engine.generate(prompts, sampling)
    flat = [(p, c) for p, group in zip(prompts, groups, strict=True) for c in group]
    return Batch(
        prompt_ids=[p for p, _ in flat],
        completion_ids=[c.token_ids for _, c in flat],
        rollout_logprobs=[c.logprobs for _, c in flat],
        advantages=torch.zeros(len(flat)),
        loss_mask=[True] * len(flat),
    )


def reverse_kl_step(
    learner: Learner, teacher: nn.Module, batch: Batch, micro_batch_size: int
) -> dict[str, float]:
    """One optimizer step of the per-token reverse-KL policy gradient over `batch`; returns the
    sampled reverse KL (mean over tokens of log p_s - log p_t) before the step."""
    learner.model.train()
    learner.optimizer.zero_grad(set_to_none=True)
    tokens = max(batch.num_tokens(), 1)  # batch-wide normaliser
    kl_sum = 0.0
    for mb in batch.micro_batches(micro_batch_size):
        mb = mb.to(learner.device)
        with torch.no_grad():
            teacher_logprobs = learner.forward(teacher, mb)[0]
        student_logprobs = learner.forward(learner.model, mb)[0]
        gap = (student_logprobs.detach() - teacher_logprobs) * mb.mask
        # REINFORCE with advantage -gap per token: its gradient is that of the reverse KL.
        loss = (gap * student_logprobs * mb.mask).sum() / tokens
        loss.backward()
        kl_sum += gap.sum().item()
    grad_norm = learner.optimizer_step()
    return {"reverse_kl": kl_sum / tokens, "grad_norm": grad_norm, "tokens": float(tokens)}


def fit_on_policy(
    recipe: DistillRecipe,
    run: RunDir,
    learner: Learner,
    teacher: nn.Module,
    tokenizer,
    stream: PromptStream,
) -> None:
    """`on_policy.steps` steps: sample from the student as it is now, step on the reverse KL."""
    cfg = recipe.on_policy
    engine = HFEngine(learner.model, tokenizer)  # the student itself: no weights to sync
    with Display(cfg.steps, 0, label="on-policy") as display:
        for step in range(1, cfg.steps + 1):
            questions = [row["prompt"] for row in stream.take(cfg.prompts_per_step)]
            sampling = SamplingParams(
                n=cfg.samples,
                temperature=cfg.temperature,
                max_new_tokens=cfg.max_new_tokens,
                stop=tuple(cfg.stop),
                seed=recipe.seed + step,
            )
            learner.model.eval()
            batch = sampled_batch(engine, encode(recipe.template, tokenizer, questions), sampling)
            metrics = reverse_kl_step(learner, teacher, batch, recipe.sft.micro_batch_size)
            run.log_metrics(step, metrics)
            display.update(step, metrics)
