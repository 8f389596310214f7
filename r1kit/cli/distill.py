"""`r1kit distill RECIPE`: SFT a student on reasoning traces; `--resume RUN` continues a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from r1kit import durable
from r1kit.cli.app import command, console
from r1kit.recipe import RecipeError, validate
from r1kit.references import check_model_name
from r1kit.rundir import RunDir


@command("distill")
def distill(
    recipe: Annotated[Path | None, typer.Argument(help="Distill recipe YAML.")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override a field: key.sub=value.")] = [],  # noqa: B006
    resume: Annotated[
        Path | None, typer.Option(help="Continue a run from its last checkpoint.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and print the plan only.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Start afresh: delete what the run directory holds.")
    ] = False,
) -> None:
    """Distill reasoning traces into a student model as the recipe says."""
    from distill.recipe import DistillRecipe, load_distill_recipe

    if resume is not None:
        if set_ or recipe is not None:
            raise RecipeError(f"resume with `r1kit distill --resume {resume}` alone")
        saved = resume / "config.yaml"
        if not saved.is_file():
            raise RecipeError(f"--resume {resume}: no config.yaml there; is it a run directory?")
        resolved = validate(yaml.safe_load(saved.read_text()), str(saved), DistillRecipe)
    elif recipe is None:
        raise RecipeError("give a distill recipe file or --resume RUN_DIR")
    else:
        resolved = load_distill_recipe(recipe, set_)
    for field, name in (("student.name", resolved.student.name), ("teacher", resolved.teacher)):
        if name is not None:
            try:
                check_model_name(name)
            except RecipeError as err:
                raise RecipeError(str(err).replace("model.name", field, 1)) from None
    run = RunDir(resume or resolved.run_dir())
    if dry_run:
        console.print(yaml.safe_dump(resolved.model_dump(mode="json", by_alias=True)))
        return
    if resume is None and run.path.exists():
        if not overwrite:
            raise RecipeError(
                f"{run.path} already holds a run: continue it with --resume {run.path}, start it "
                "afresh with --overwrite, or pick another name with --set output.name=NAME"
            )
        durable.remove_dir(run.path)
    from distill.pipeline import run_distill  # torch and transformers: slow to import

    if resume is None:
        run.create(resolved, resolved.output.tensorboard)
    else:
        run.open(resolved.output.tensorboard)
    try:
        results = run_distill(resolved, run, resume=resume is not None)
    finally:
        run.close()
    for stage, summary in results.items():
        console.print(
            f"{stage}: held-out pass@1 {summary['pass@1']:.3f} "
            f"[{summary['ci_low']:.3f}, {summary['ci_high']:.3f}], "
            f"format {summary['format_rate']:.3f}"
        )
    console.print(f"done: {run.path}  (final model: {run.final})")
