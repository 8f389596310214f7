"""Everything a run is made of, built once from a validated recipe."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

import torch
from transformers import PreTrainedTokenizerBase

from r1kit.data import PromptStream, load_data
from r1kit.learner.core import Learner
from r1kit.learner.policy import adapter_config, adapter_weights, load_policy
from r1kit.models import load_model, load_tokenizer, model_dir, resolve_dtype
from r1kit.recipe import Recipe
from r1kit.tasks import recipe_correctness, recipe_rewards
from r1kit.tool_use import ToolEngine
from rewards.registry import RewardFn, load_reward
from rewards.scoring import RewardPool, WeightedReward
from rollout import Engine, EngineSpec, ModelSource, open_engine
from rollout.weight_transfer import choose_route, lora_modules, native_api_present

if TYPE_CHECKING:
    from r1kit.learner.ranks import LearnerGroup

log = logging.getLogger(__name__)


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
    adapter_only: bool = False  # LoRA updates carry the adapter alone (vLLM applies it)

    def sync_weights(self) -> None:
        """Send the learner's current policy to the engine: the LoRA adapter alone, or the
        whole (merged) weights."""
        self.engine.update_weights(self._policy_weights())

    def _policy_weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        if self.adapter_only:
            return adapter_weights(self.learner.model)
        return self.learner.named_weights()

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
        adapter_only = _adapter_only(recipe, learner)
        engine = _engine(recipe, learner, tokenizer, adapter_only)
        stream, eval_rows = load_data(recipe.data, recipe.seed)
        rewards = recipe_rewards(recipe.rewards)
        pool = RewardPool(recipe.scoring.workers, warm=[r.fn for r in rewards])
        correctness = load_reward(*recipe_correctness(recipe))
        parts = cls(
            tokenizer, learner, engine, rewards, pool, correctness, stream, eval_rows, adapter_only
        )
        if recipe.model.lora is not None:
            parts.sync_weights()
        return parts


def _adapter_only(recipe: Recipe, learner: Learner | LearnerGroup) -> bool:
    """Whether LoRA updates send the adapter alone: a vLLM engine whose LoRA layers serve
    every target module, and a one-rank learner (ranks send merged weights). Logged."""
    lora = recipe.model.lora
    if lora is None:
        return False
    modules = lora_modules(lora.target_modules)
    route = choose_route(_device(), native_api_present(), not recipe.rollout.workers, modules)
    if recipe.rollout.engine != "vllm":
        adapter, why = False, f"the {recipe.rollout.engine} engine takes merged weights"
    elif not isinstance(learner, Learner):
        adapter, why = False, "learner ranks send merged weights"
    else:
        adapter, why = route.lora == "adapter", route.reason
    log.info("LoRA updates: %s (%s)", "adapter only" if adapter else "merged weights", why)
    return adapter


def _engine(
    recipe: Recipe,
    learner: Learner | LearnerGroup,
    tokenizer: PreTrainedTokenizerBase,
    adapter_only: bool = False,
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
    spec = rollout_spec(recipe)
    if adapter_only:  # the engine serves the base model with LoRA layers for this adapter
        spec = replace(spec, options={**spec.options, "lora": adapter_config(learner.model)})
    engine = open_engine(spec, model, seed=recipe.seed)
    return ToolEngine(engine, tokenizer, recipe.tools) if recipe.tools.enabled else engine


def rollout_spec(recipe: Recipe) -> EngineSpec:
    """The rollout engine's spec; vLLM computes in the policy's dtype (`model.dtype` as the
    learner resolves it: bfloat16 on CUDA), not its config's (float32 for the built-in model),
    so sampler and learner agree and the GPU samples at half the memory."""
    spec = recipe.rollout.spec(recipe.ray)
    if spec.kind != "vllm":
        return spec
    dtype = str(resolve_dtype(recipe.model.dtype, _device())).removeprefix("torch.")
    return replace(spec, options={**spec.options, "dtype": dtype})


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"
