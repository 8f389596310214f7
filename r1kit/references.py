"""Checks that what a recipe refers to exists (rewards, the code sandbox, the model), before
anything is loaded or written."""

from __future__ import annotations

import difflib
from dataclasses import replace
from pathlib import Path

from r1kit.models import HUB_ID, MODEL_ALIASES
from r1kit.recipe import EngineConfig, RayConfig, Recipe, RecipeError, RewardConfig
from r1kit.tasks import recipe_correctness
from rewards.registry import RewardError, load_reward
from rewards.sandbox import SandboxUnavailable, isolation_mode
from rollout import RolloutSetupError, check_engine


def check_references(
    recipe: Recipe, cluster: bool = True, pending: frozenset = frozenset()
) -> None:
    """Raise RecipeError naming the field when a reward, the sandbox a code reward needs, the
    model, or the rollout engine and its Ray workers cannot be had. Without `cluster` (a dry
    run, maybe far from the cluster it plans for) Ray is neither started nor asked; a model in
    `pending` is one a pipeline's earlier stage will write."""
    check_rewards(recipe.rewards, "rewards")
    try:
        load_reward(*recipe_correctness(recipe))
    except RewardError as err:
        raise RecipeError(f"train.correctness: {err}") from None
    if recipe.model.name not in pending:
        check_model_name(recipe.model.name, recipe.output.dir)
    check_engine_section(recipe.rollout, recipe.ray, "rollout", cluster)
    if cluster:
        check_ranks(recipe)


def check_engine_section(
    config: EngineConfig, ray: RayConfig, section: str, cluster: bool = True
) -> None:
    """Raise RecipeError naming `section`'s field when its engine is not installed or its Ray
    workers cannot be placed as `ray` says. Without `cluster` Ray is neither started nor asked."""
    spec = config.spec(ray)
    try:
        check_engine(spec if cluster else replace(spec, workers=0), section)
    except RolloutSetupError as err:
        raise RecipeError(str(err)) from None


def check_rewards(rewards: list[RewardConfig], field: str) -> None:
    """Raise RecipeError naming `field.I.name` when a reward cannot be loaded, or a code
    reward has no sandbox to run in."""
    for i, reward in enumerate(rewards):
        try:
            load_reward(reward.name, reward.kwargs, reward.style)
            if reward.name == "code":
                isolation_mode()
        except (RewardError, SandboxUnavailable) as err:
            raise RecipeError(f"{field}.{i}.name: {err}") from None


def check_ranks(recipe: Recipe) -> None:
    """With learner.world_size > 1, Ray must hold every rank beside the rollout workers."""
    size, r, ray = recipe.learner.world_size, recipe.rollout, recipe.ray
    if size == 1:
        return
    from rollout.ray_pool import PoolError, connect

    try:
        resources = connect(ray.address)
    except PoolError as err:
        raise RecipeError(str(err)) from None
    for key, per_rank, per_worker in (
        ("CPU", ray.cpus_per_rank, ray.cpus_per_worker),
        ("GPU", ray.gpus_per_rank, ray.gpus_per_worker),
    ):
        needed = size * per_rank + r.workers * per_worker
        available = resources.get(key, 0.0)
        if needed > available:
            raise RecipeError(
                f"learner.world_size: {size} ranks x ray.{key.lower()}s_per_rank {per_rank:g}"
                f" + {r.workers} rollout workers x ray.{key.lower()}s_per_worker {per_worker:g}"
                f" need {needed:g} {key}s; Ray at {ray.address!r} has {available:g}"
            )


def check_model_name(name: str, runs_dir: str = "runs", field: str = "model.name") -> None:
    """A built-in alias, an existing directory or .gguf file, or something shaped like a Hub id;
    else RecipeError naming `field`. A name under `runs_dir` is a run that must exist: else
    `runs/NAME` would pass for a Hub id and fail later, far from its cause."""
    if name in MODEL_ALIASES or Path(name).is_dir():
        return
    runs = Path(runs_dir).parts
    if Path(name).parts[: len(runs)] == runs:
        raise RecipeError(
            f"{field}: run directory {name} not found; train it first "
            f"(`r1kit train RECIPE` writes {runs_dir}/NAME)"
        )
    if name.endswith(".gguf"):
        if not Path(name).is_file():
            raise RecipeError(f"{field}: GGUF file not found: {name}")
        return
    if HUB_ID.match(name) and not Path(name).parent.is_dir():
        return
    close = difflib.get_close_matches(name, MODEL_ALIASES, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise RecipeError(
        f"{field}: unknown model {name!r}{hint}; use a built-in alias "
        f"({', '.join(MODEL_ALIASES)}), a local model directory, a .gguf file or a Hub id"
    )
