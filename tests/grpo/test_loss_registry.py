"""A policy loss registered in a test module trains, and the zero-advantage skip asks it."""

import math

import torch

from grpo.components import Components
from grpo.loss import register_policy_loss
from grpo.objective import PolicyGradient
from grpo.trainer import Trainer
from r1kit.learner.batch import Batch
from r1kit.recipe import LearnerConfig, validate
from r1kit.rundir import RunDir


@register_policy_loss("test_reinforce", zero_at_zero_advantage=True)
def reinforce(ratio, adv, epsilon_low, epsilon_high):
    """-r A: REINFORCE with an importance ratio and no clipping."""
    return -ratio * adv


@register_policy_loss("test_ratio_pull", zero_at_zero_advantage=False)
def ratio_pull(ratio, adv, epsilon_low, epsilon_high):
    """-r A + (r - 1)^2: a pull towards the old policy even where A is 0."""
    return -ratio * adv + (ratio - 1) ** 2


def test_a_loss_registered_in_a_test_module_trains_one_step(tiny_recipe):
    recipe = validate(
        tiny_recipe(learner={"policy_loss": "test_reinforce"}, train={"steps": 1, "save_every": 0})
    )
    run = RunDir(recipe.run_dir())
    run.create(recipe)
    parts = Components.build(recipe)
    before = [p.detach().clone() for p in parts.learner.params]
    Trainer(recipe, run, parts).fit()
    assert any(not torch.equal(a, b) for a, b in zip(before, parts.learner.params, strict=True))
    step = run.metrics()[1]
    assert all(math.isfinite(v) for v in step.values() if isinstance(v, float)), step


def test_a_loss_not_zero_at_zero_advantage_turns_the_skip_off():
    objective = PolicyGradient(LearnerConfig(policy_loss="test_ratio_pull"))
    batch = Batch(
        prompt_ids=[[1, 2]] * 3,
        completion_ids=[[3], [4, 5], [6]],
        rollout_logprobs=[[-1.0], [-1.0, -1.0], [-1.0]],
        advantages=torch.tensor([0.0, 1.0, 0.0]),
        loss_mask=[True] * 3,
    )
    assert objective.rows(batch) == [0, 1, 2]
