"""What `r1kit distill` runs: load the student and the traces, evaluate, SFT, evaluate again."""

from __future__ import annotations

import json

import torch

from distill.evaluate import evaluate_student, plot_before_after
from distill.examples import make_examples
from distill.recipe import DistillRecipe
from distill.sft import SFT, Parts, sft_learner, total_steps
from distill.student import load_student
from distill.traces import TracesError, load_traces
from r1kit import durable
from r1kit.data import load_data
from r1kit.rundir import RunDir


def run_distill(recipe: DistillRecipe, run: RunDir, resume: bool = False) -> dict:
    """Every stage of the recipe, each skipped when a resumed run has finished it already;
    returns the before/after summaries."""
    torch.manual_seed(recipe.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tokenizer = load_student(recipe, device)
    traces = load_traces(recipe.traces)
    examples, too_long = make_examples(traces, tokenizer, recipe.template, recipe.sft.max_length)
    if not examples:
        raise TracesError(
            f"{recipe.traces.source}: none of its {len(traces)} traces fits in "
            f"sft.max_length={recipe.sft.max_length} tokens"
        )
    _, eval_rows = load_data(recipe.data, recipe.seed)
    results = {}
    if recipe.eval.before and not (run.path / "eval" / "before" / "summary.json").is_file():
        results["before"] = evaluate_student(
            recipe, model, tokenizer, eval_rows, run.path / "eval" / "before"
        )
    learner = sft_learner(model, recipe.sft, total_steps(recipe.sft, len(examples)))
    parts = Parts(learner, tokenizer)
    sft = SFT(recipe.sft, run, parts, examples, recipe.seed)
    durable.write_text(
        run.path / "sft.json",
        json.dumps({"traces": len(traces), "examples": len(examples), "too_long": too_long}),
    )
    sft.fit(resume=resume, merge_lora=recipe.sft.merge_lora)
    if recipe.eval.after:
        results["after"] = evaluate_student(
            recipe, learner.model, tokenizer, eval_rows, run.path / "eval" / "after"
        )
    if (run.path / "eval").is_dir():
        plot_before_after(run.path)
    return results
