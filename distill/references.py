"""Checks that what a distill recipe refers to exists (the student, the teacher, the rewards
of the filter or of on-policy distillation), before anything is loaded or written; the schema
itself checks the files it names (data, traces)."""

from __future__ import annotations

from distill.recipe import DistillRecipe
from r1kit.references import check_model_name, check_rewards


def check_distill_references(recipe: DistillRecipe, pending: frozenset = frozenset()) -> None:
    """Raise RecipeError naming the field of the first reference that cannot be had; a model
    in `pending` is one a pipeline's earlier stage will write."""
    if recipe.student.from_ is None and recipe.student.name not in pending:
        check_model_name(recipe.student.name, recipe.output.dir, "student.name")
    if recipe.teacher is not None and recipe.teacher not in pending:
        check_model_name(recipe.teacher, recipe.output.dir, "teacher")
    if recipe.mode == "on_policy":
        check_rewards(recipe.on_policy.rewards, "on_policy.rewards")
    elif recipe.traces is None:
        check_rewards(recipe.filter.rewards, "filter.rewards")
