"""On-policy distillation: the student samples, the teacher scores the student's own tokens,
and the student follows the per-token advantage -(log p_student - log p_teacher), i.e. it
minimises the reverse KL to the teacher on its own samples (Agarwal et al. 2024, GKD; Thinking
Machines' on-policy distillation). The teacher's log-prob of each sampled token is all it needs.
Optionally a task reward is mixed in: each completion's group-relative advantage (GRPO's) is
added to every one of its tokens. Checkpointed like SFT and resumable exactly."""

from __future__ import annotations

import time

import torch
from torch import nn

from distill.recipe import DistillRecipe
from distill.sft import Parts, restore, save
from r1kit.advantages import group_advantages
from r1kit.display import Display
from r1kit.groups import Group, generate_groups, score_groups
from r1kit.learner.batch import Batch
from r1kit.learner.core import Learner
from r1kit.rundir import RunDir
from r1kit.tasks import recipe_rewards
from rewards.scoring import WeightedReward
from rollout.hf_engine import HFEngine
from rollout.types import Completion, SamplingParams


def as_batch(groups: list[list[Completion]], advantages: torch.Tensor) -> Batch:
    """Every prompt's samples as learner rows; `advantages`: one task advantage per sample."""
    flat = [c for group in groups for c in group]
    return Batch(
        prompt_ids=[c.prompt_token_ids for c in flat],
        completion_ids=[c.token_ids for c in flat],
        rollout_logprobs=[c.logprobs for c in flat],
        advantages=advantages,
        loss_mask=[True] * len(flat),
    )


def task_advantages(
    groups: list[Group], rewards: list[WeightedReward], weight: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """`weight` x the group-relative advantage of the rewards' weighted sum, per completion,
    and the reward statistics; zeros and nothing without rewards."""
    size = sum(len(g.completions) for g in groups)
    if not rewards:
        return torch.zeros(size), {}
    scores = score_groups(groups, rewards)
    total = torch.tensor(scores.total, dtype=torch.float)
    return weight * group_advantages(total, len(groups[0].completions)), scores.stats()


def reverse_kl_step(
    learner: Learner, teacher: nn.Module, batch: Batch, micro_batch_size: int
) -> dict[str, float]:
    """One optimizer step of the per-token policy gradient with advantage
    A_task - (log p_s - log p_t) over `batch`; returns the sampled reverse KL (mean over
    tokens of log p_s - log p_t) before the step."""
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
        advantage = mb.advantages[:, None] - gap
        loss = -(advantage * student_logprobs * mb.mask).sum() / tokens
        loss.backward()
        kl_sum += gap.sum().item()
    grad_norm = learner.optimizer_step()
    return {"reverse_kl": kl_sum / tokens, "grad_norm": grad_norm, "tokens": float(tokens)}


def fit_on_policy(
    recipe: DistillRecipe, run: RunDir, parts: Parts, teacher: nn.Module, resume: bool = False
) -> None:
    """`on_policy.steps` steps (from the newest intact checkpoint on resume): sample from the
    student as it is now, score with the teacher (and the task rewards), step."""
    cfg, learner, tokenizer, stream = recipe.on_policy, parts.learner, parts.tokenizer, parts.stream
    rewards = recipe_rewards(cfg.rewards)
    engine = HFEngine(learner.model, tokenizer)  # the student itself: no weights to sync
    start = restore(run, parts) if resume else 0
    with Display(cfg.steps, start, label="on-policy") as display:
        for step in range(start + 1, cfg.steps + 1):
            sampling = SamplingParams(
                n=cfg.samples,
                temperature=cfg.temperature,
                max_new_tokens=cfg.max_new_tokens,
                stop=tuple(cfg.stop),
                seed=recipe.seed + step,
            )
            started = time.perf_counter()
            learner.model.eval()
            rows = stream.take(cfg.prompts_per_step)
            groups = generate_groups(engine, tokenizer, recipe.template, rows, sampling)
            advantages, metrics = task_advantages(groups, rewards, cfg.reward_weight)
            batch = as_batch([g.completions for g in groups], advantages)
            metrics |= reverse_kl_step(learner, teacher, batch, recipe.sft.micro_batch_size)
            metrics["time/step"] = time.perf_counter() - started
            run.log_metrics(step, metrics)
            display.update(step, metrics)
            if recipe.sft.save_every and step % recipe.sft.save_every == 0:
                save(run, parts, step, recipe.sft.keep_last)
