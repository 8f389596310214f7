"""On-policy distillation: the student samples, the teacher scores the student's own tokens,
and the student follows the per-token advantage -(log p_student - log p_teacher), i.e. it
minimises the reverse KL to the teacher on its own samples (Agarwal et al. 2024, GKD; Thinking
Machines' on-policy distillation). The teacher's log-prob of each sampled token is all it needs.
Optionally a task reward is mixed in: each completion's group-relative advantage (GRPO's) is
added to every one of its tokens. This file is the loop (sample, score, step); the loss is
`distill.objectives.ReverseKL`, run by the learner core with each prompt's samples packed in
one row. Checkpointed like SFT and resumable exactly."""

from __future__ import annotations

import time

import torch
from torch import nn

from distill.objectives import ReverseKL
from distill.recipe import DistillRecipe
from distill.sft import Parts, save
from r1kit.advantages import group_advantages
from r1kit.display import Display
from r1kit.groups import Group, generate_groups, score_groups
from r1kit.learner.batch import to_batch
from r1kit.learner.checkpoint import resume_from
from r1kit.recipe import EngineConfig
from r1kit.rundir import RunDir
from r1kit.stopping import Stopper, StopRequested
from r1kit.tasks import recipe_rewards
from rewards.scoring import WeightedReward
from rollout import ModelSource, open_engine


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


def fit_on_policy(
    recipe: DistillRecipe,
    run: RunDir,
    parts: Parts,
    teacher: nn.Module,
    stopper: Stopper,
    resume: bool = False,
) -> None:
    """`on_policy.steps` steps (from the newest intact checkpoint on resume): sample from the
    student as it is now, score with the teacher (and the task rewards), step. A stop signal
    ends the step under way, checkpoints it and raises StopRequested."""
    cfg, learner, tokenizer, stream = recipe.on_policy, parts.learner, parts.tokenizer, parts.stream
    rewards = recipe_rewards(cfg.rewards)
    # The student itself samples, in this process: no weights to sync.
    engine = open_engine(EngineConfig().spec(), ModelSource.live(learner.model, tokenizer))
    start = (resume_from(run, parts) or 0) if resume else 0
    with Display(cfg.steps, start, label="on-policy") as display:
        for step in range(start + 1, cfg.steps + 1):
            sampling = cfg.params(cfg.samples, recipe.seed + step)
            started = time.perf_counter()
            learner.model.eval()
            rows = stream.take(cfg.prompts_per_step)
            groups = generate_groups(engine, tokenizer, recipe.template, rows, sampling)
            advantages, metrics = task_advantages(groups, rewards, cfg.reward_weight)
            batch = to_batch([c for g in groups for c in g.completions], advantages)
            norm = batch.normalisers(cfg.max_new_tokens)
            metrics |= learner.step(batch, ReverseKL(teacher), norm)
            metrics["time/step"] = time.perf_counter() - started
            run.log_metrics(step, metrics)
            display.update(step, metrics)
            due = recipe.sft.save_every and step % recipe.sft.save_every == 0
            if due or stopper.requested:
                save(run, parts, step, recipe.sft.keep_last)
            if stopper.requested:
                raise StopRequested(stopper.signum)
