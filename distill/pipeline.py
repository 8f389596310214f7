"""What `r1kit distill` runs: load the student and the traces, evaluate, SFT, evaluate again."""

from __future__ import annotations

import json

import torch

from distill.evaluate import evaluate_student, plot_before_after
from distill.examples import make_examples
from distill.filter import select
from distill.generate import generate_traces
from distill.on_policy import fit_on_policy
from distill.recipe import DistillRecipe, TracesConfig
from distill.sft import SFT, Parts, sft_learner, total_steps
from distill.store import write_traces
from distill.student import check_same_vocabulary, load_student, teacher_model_name
from distill.traces import TracesError, load_traces
from r1kit import durable
from r1kit.data import load_data
from r1kit.learner.checkpoint import save_model
from r1kit.models import load_model
from r1kit.rundir import RunDir


def run_distill(recipe: DistillRecipe, run: RunDir, resume: bool = False) -> dict:
    """Every stage of the recipe, each skipped when a resumed run has finished it already;
    returns the before/after summaries."""
    torch.manual_seed(recipe.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if recipe.mode == "on_policy":
        return on_policy(recipe, run, device, resume)
    traces = load_traces(recipe.traces or traces_from_teacher(recipe, run, device))
    model, tokenizer = load_student(recipe, device)
    examples, too_long = make_examples(traces, tokenizer, recipe.template, recipe.sft.max_length)
    if not examples:
        raise TracesError(
            f"{recipe.traces.source}: none of its {len(traces)} traces fits in "
            f"sft.max_length={recipe.sft.max_length} tokens"
        )
    _, eval_rows = load_data(recipe.data, recipe.seed)
    results = evaluate_before(recipe, run, model, tokenizer, eval_rows)
    learner = sft_learner(model, recipe.sft, total_steps(recipe.sft, len(examples)))
    parts = Parts(learner, tokenizer)
    sft = SFT(recipe.sft, run, parts, examples, recipe.seed)
    durable.write_text(
        run.path / "sft.json",
        json.dumps({"traces": len(traces), "examples": len(examples), "too_long": too_long}),
    )
    sft.fit(resume=resume, merge_lora=recipe.sft.merge_lora)
    return results | evaluate_after(recipe, run, learner.model, tokenizer, eval_rows)


def on_policy(recipe: DistillRecipe, run: RunDir, device: str, resume: bool) -> dict:
    """Evaluate, distill on the student's own samples scored by the teacher, evaluate."""
    teacher_name = teacher_model_name(recipe.teacher)
    teacher, teacher_tokenizer = load_model(teacher_name, recipe.student.dtype, device)
    teacher.requires_grad_(False)
    model, tokenizer = load_student(recipe, device)
    check_same_vocabulary(teacher_tokenizer, tokenizer, (teacher_name, recipe.student.name))
    stream, eval_rows = load_data(recipe.data, recipe.seed)
    results = evaluate_before(recipe, run, model, tokenizer, eval_rows)
    cfg = recipe.on_policy
    learner = sft_learner(model, recipe.sft, cfg.steps, cfg.temperature)
    parts = Parts(learner, tokenizer, stream)
    fit_on_policy(recipe, run, parts, teacher, resume)
    save_model(run.final, parts)
    return results | evaluate_after(recipe, run, model, tokenizer, eval_rows)


def evaluate_before(recipe: DistillRecipe, run: RunDir, model, tokenizer, rows) -> dict:
    """eval/before/ unless off or already written (a resumed run)."""
    if not recipe.eval.before or (run.path / "eval" / "before" / "summary.json").is_file():
        return {}
    return {
        "before": evaluate_student(recipe, model, tokenizer, rows, run.path / "eval" / "before")
    }


def evaluate_after(recipe: DistillRecipe, run: RunDir, model, tokenizer, rows) -> dict:
    """eval/after/ and the before/after plot."""
    results = {}
    if recipe.eval.after:
        results["after"] = evaluate_student(
            recipe, model, tokenizer, rows, run.path / "eval" / "after"
        )
    if (run.path / "eval").is_dir():
        plot_before_after(run.path)
    return results


def traces_from_teacher(recipe: DistillRecipe, run: RunDir, device: str) -> TracesConfig:
    """Generate (resuming what is on disk), filter, write traces/; report acceptance."""
    records = generate_traces(recipe, run.path / "generated.jsonl", device)
    kept, report = select(records, recipe.filter)
    if not kept:
        raise TracesError(
            f"the filter accepted none of the teacher's {report['generated']} traces: loosen "
            "filter.accept or the length bounds, or sample more (generate.samples)"
        )
    path = write_traces(run.path / "traces", kept, report, recipe.teacher, recipe.generate.template)
    print(
        f"traces: {report['accepted']}/{report['generated']} accepted "
        f"({report['acceptance']:.1%}), {report['kept']} kept; "
        f"{len(report['problems_without_accepted'])} of {report['problems']} problems with none"
    )
    return TracesConfig(source=str(path))
