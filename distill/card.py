"""The model card of a distillation run's final/ (r1kit/model_card.py): the student's base,
the teacher, the training summary and the held-out results before and after."""

from __future__ import annotations

import json

from distill.evaluate import summaries
from distill.recipe import DistillRecipe
from distill.student import teacher_model_name
from r1kit.data import hub_dataset
from r1kit.model_card import last_metric, step_minutes
from r1kit.run_card import run_card
from r1kit.rundir import RunDir


def distill_card(recipe: DistillRecipe, run: RunDir) -> str:
    """final/README.md of a distillation run, written once eval/after/ is (when asked for)."""
    student = recipe.student
    pruned = student.from_ == "teacher"
    base = teacher_model_name(recipe.teacher) if pruned else student.name
    cut = f" cut in depth (student.keep_layers: {student.keep_layers})" if pruned else ""
    # The problems are training data when the teacher writes traces for them, or on-policy
    # prompts; a given traces file is a local file.
    dataset = hub_dataset(recipe.data) if recipe.mode == "on_policy" or recipe.generates() else None
    return run_card(
        run,
        recipe,
        base,
        lambda hub_id: f"`{hub_id}`{cut}, {how(recipe)}, by r1kit.",
        dataset,
        kind="distillation",
        lora=student.lora is not None,
        adapter=recipe.mode == "sft" and student.lora is not None and not recipe.sft.merge_lora,
        summary=summary(recipe, run),
        results=[(f"{stage} distillation", r) for stage, r in summaries(run.path).items()],
    )


def how(recipe: DistillRecipe) -> str:
    """How the student learnt, in a clause."""
    if recipe.mode == "on_policy":
        return (
            f"distilled on-policy from `{recipe.teacher}`: it sampled, the teacher scored its "
            "tokens, and it minimised the reverse KL to the teacher on its own samples"
        )
    if recipe.traces is not None:
        return f"fine-tuned (SFT) on the reasoning traces of `{recipe.traces.source}`"
    return (
        f"fine-tuned (SFT) on reasoning traces that `{recipe.teacher}` wrote for "
        f"`{recipe.data.source}` problems, kept by rejection sampling"
    )


def summary(recipe: DistillRecipe, run: RunDir) -> dict[str, object]:
    """The card's training summary: the objective, its steps and its last loss."""
    records = run.metrics()
    lr = f"lr {recipe.sft.lr:g}"
    if recipe.mode == "on_policy":
        cfg = recipe.on_policy
        return {
            "method": f"on-policy distillation (reverse KL), {lr}",
            "steps": f"{cfg.steps} of {cfg.prompts_per_step} prompts x {cfg.samples} samples",
            "last reverse KL": last_metric(records, "reverse_kl"),
            "training time": step_minutes(records),
        }
    counts = json.loads((run.path / "sft.json").read_text())  # written before SFT starts
    return {
        "method": f"SFT (next-token loss on the traces), {lr}",
        "steps": f"{last_metric(records, 'step')} ({recipe.sft.epochs} epochs of "
        f"{counts['examples']} examples)",
        "last next-token loss": last_metric(records, "nll"),
    }
