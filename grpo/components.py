"""Everything a run is made of, built once from a validated recipe."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch
from transformers import PreTrainedTokenizerBase

from r1kit.data import PromptStream, load_data
from r1kit.learner.core import Learner
from r1kit.learner.policy import load_policy
from r1kit.models import load_model, load_tokenizer, model_dir
from r1kit.recipe import Recipe
from r1kit.tasks import recipe_correctness, recipe_rewards
from rewards.registry import RewardFn, load_reward
from rewards.scoring import RewardPool, WeightedReward
from rollout import Engine, ModelSource, open_engine

if TYPE_CHECKING:
    from r1kit.learner.ranks import LearnerGroup


@dataclass
class Components:
    tokenizer: PreTrainedTokenizerBase
    learner: Learner | LearnerGroup
    engine: Engine
    rewards: list[WeightedReward]
    reward_pool: RewardPool  # worker processes that hold each reward call to its timeout
    correctness: RewardFn  # decides "correct" for accuracy: reward value 1
    stream: PromptStream
    eval_rows: list[dict]

    def close(self) -> None:
        """Stop the processes a run holds: reward workers, engine processes or actors."""
        self.reward_pool.close()
        self.engine.close()
        self.learner.close()

    @classmethod
    def build(cls, recipe: Recipe) -> Components:
        """Load model(s), engine, rewards and data."""
        torch.manual_seed(recipe.seed)
        name = recipe.model.name
        if recipe.learner.world_size > 1:
            from r1kit.learner.ranks import LearnerGroup, start_ranks  # Ray: slow to import

            learner, tokenizer = LearnerGroup(start_ranks(recipe), recipe), load_tokenizer(name)
        else:
            policy, tokenizer = load_policy(recipe, _device())
            cfg = recipe.learner  # both the optimizer and the micro-batching settings
            learner = Learner(
                policy, cfg, cfg, recipe.train.steps, recipe.rollout.temperature, cfg.beta > 0
            )
        engine = _engine(recipe, learner, tokenizer)
        if recipe.model.lora is not None:
            engine.update_weights(learner.named_weights())
        stream, eval_rows = load_data(recipe.data, recipe.seed)
        rewards = recipe_rewards(recipe.rewards)
        pool = RewardPool(recipe.scoring.workers, warm=[r.fn for r in rewards])
        correctness = load_reward(*recipe_correctness(recipe))
        return cls(tokenizer, learner, engine, rewards, pool, correctness, stream, eval_rows)


def _engine(
    recipe: Recipe, learner: Learner | LearnerGroup, tokenizer: PreTrainedTokenizerBase
) -> Engine:
    """The rollout engine. In this process, with a one-rank learner and no LoRA, it samples
    from the policy module itself (no second copy of the weights: 513 MiB for the built-in
    model); otherwise from its own copy, which weights reach only through `update_weights`
    (merged LoRA weights, learner ranks, or other processes: vLLM, Ray workers)."""
    name, directory = recipe.model.name, model_dir(recipe.model.name)
    if recipe.model.lora is None and isinstance(learner, Learner):
        model = ModelSource.live(learner.model, tokenizer, directory)
    else:
        model = ModelSource(directory, partial(load_model, name, recipe.model.dtype, _device()))
    return open_engine(recipe.rollout.spec(recipe.ray), model, seed=recipe.seed)


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"
