"""`r1kit distill RECIPE`: SFT a student on reasoning traces; `--resume RUN` continues a run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml

from r1kit.cli.app import command, console
from r1kit.cli.runs import (
    DryRunOption,
    OverwriteOption,
    ResumeOption,
    SetOption,
    fit_until_stopped,
    hand_edits,
    make_ready,
    saved_config,
)
from r1kit.recipe import RecipeError, validate
from r1kit.references import check_engine_section
from r1kit.rundir import CONFIG, RunDir

if TYPE_CHECKING:
    from distill.recipe import DistillRecipe


@command("distill")
def distill(
    recipe: Annotated[
        Path | None, typer.Argument(help="Distill recipe YAML, or a built-in name.")
    ] = None,
    set_: SetOption = [],  # noqa: B006
    resume: ResumeOption = None,
    dry_run: DryRunOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Distill reasoning traces into a student model as the recipe says."""
    from distill.recipe import DistillRecipe, load_distill_recipe
    from distill.references import check_distill_references

    if resume is not None:
        if set_ or recipe is not None:
            raise RecipeError(f"resume with `r1kit distill --resume {resume}` alone")
        run = RunDir(resume)
        resolved = validate(saved_config(run), str(run.path / CONFIG), DistillRecipe)
        hand_edits(run, resolved, allowed=())
    elif recipe is None:
        raise RecipeError("give a distill recipe file or --resume RUN_DIR")
    else:
        resolved = load_distill_recipe(recipe, set_)
        run = RunDir(resolved.run_dir())
    check_distill_references(resolved)
    if resolved.generates():
        check_engine_section(resolved.generate, resolved.ray, "generate", cluster=not dry_run)
    if dry_run:
        console.print(yaml.safe_dump(resolved.model_dump(mode="json", by_alias=True)))
        return
    with run.lock():
        make_ready(run, resume is not None, overwrite)
        run_distill(resolved, run, resume is not None)


def run_distill(resolved: DistillRecipe, run: RunDir, resume: bool, resume_with: str = "") -> None:
    """Read the inputs, write the run's config (a new run) and run every stage; a stop names
    `resume_with` (default: this run's `r1kit distill --resume`)."""
    from distill.inputs import prepare  # torch and transformers: slow to import
    from distill.pipeline import Distillation

    inputs = prepare(resolved)  # a bad input fails here, before the run directory is written
    if resume:
        run.open(resolved.output.report_to)
    else:
        run.create(resolved, resolved.output.report_to)
    job = Distillation(resolved, run, inputs)
    fit_until_stopped(
        resume_with or f"r1kit distill --resume {run.path}",
        run,
        lambda: job.fit(resume=resume),
        lambda: "at a safe point (the last checkpoint and every whole chunk of traces are kept)",
    )
    for stage, summary in job.results.items():
        console.print(
            f"{stage}: held-out pass@1 {summary['pass@1']:.3f} "
            f"[{summary['ci_low']:.3f}, {summary['ci_high']:.3f}], "
            f"format {summary['format_rate']:.3f}"
        )
    console.print(f"done: {run.path}  (final model: {run.final})")
