"""The model card of a GRPO run's final/ (r1kit/model_card.py), from its recipe and metrics."""

from __future__ import annotations

from r1kit.data import hub_dataset
from r1kit.model_card import last_metric, step_minutes
from r1kit.recipe import Recipe
from r1kit.report import evaluations
from r1kit.run_card import run_card
from r1kit.rundir import RunDir


def grpo_card(recipe: Recipe, run: RunDir) -> str:
    """final/README.md of a GRPO run: the held-out results of its first and last evaluations
    (step 0 is the model before training)."""
    records = run.metrics()
    rewards = ", ".join(f"{r.name} x{r.weight:g}" for r in recipe.rewards)
    evals = evaluations(records)
    ends = [evals[0], evals[-1]] if len(evals) > 1 else evals  # before and after training
    return run_card(
        run,
        recipe,
        recipe.model.name,
        lambda base: (
            f"`{base}` trained with GRPO against rule-based rewards ({rewards}) on "
            f"`{recipe.data.source}`, by r1kit."
        ),
        hub_dataset(recipe.data),
        kind="grpo",
        lora=recipe.model.lora is not None,
        summary=summary(recipe, records),
        results=[(label(e["step"]), e) for e in ends],
    )


def summary(recipe: Recipe, records: list[dict]) -> dict[str, object]:
    """The card's training summary: the run's shape and its last reward."""
    train, learner = recipe.train, recipe.learner
    shape = f"{train.prompts_per_step} prompts x {recipe.rollout.group_size} completions"
    return {
        "method": f"GRPO, {learner.loss} loss, lr {learner.lr:g}, beta {learner.beta:g}"
        + (f", LoRA r={recipe.model.lora.r}" if recipe.model.lora else ""),
        "steps": f"{train.steps} of {shape}",
        "last mean reward": last_metric(records, "reward/total/mean"),
        "training time": step_minutes(records),
    }


def label(step: int) -> str:
    """The results row of the evaluation at `step`."""
    return "before training (step 0)" if step == 0 else f"after step {step}"
