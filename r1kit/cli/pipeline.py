"""`r1kit pipeline RECIPE`: GRPO and distillation stages one after another, each in its own
run directory inside the pipeline's, every stage validated before the first runs; `--resume
RUN` continues at the stage it stopped in (inside it as that command does)."""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Annotated

import typer

from r1kit.cli.app import command, console
from r1kit.cli.runs import (
    DryRunOption,
    OverwriteOption,
    ResumeOption,
    SetOption,
    make_ready,
    saved_config,
)
from r1kit.cli.stages import Stage, before_after, changed_fields, resolve_stages, run_stage
from r1kit.pipeline_recipe import PipelineRecipe, load_pipeline, pipeline_from
from r1kit.pipeline_state import PipelineState
from r1kit.pipeline_summary import write_summary
from r1kit.recipe import RecipeError, dotted_fields
from r1kit.rundir import CONFIG, RunDir


@command("pipeline")
def pipeline(
    recipe: Annotated[
        Path | None, typer.Argument(help="Pipeline recipe YAML, or a built-in name.")
    ] = None,
    set_: SetOption = [],  # noqa: B006
    resume: ResumeOption = None,
    dry_run: DryRunOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Run GRPO and distillation stages one after another, as the pipeline recipe says."""
    resolved, run = _pipeline_recipe(recipe, set_, resume)
    stages = resolve_stages(resolved, cluster=not dry_run)
    if dry_run:
        _print_plan(resolved, stages, PipelineState(run.path) if resume else None)
        return
    with run.lock():
        make_ready(run, resume is not None, overwrite)
        state = PipelineState(run.path)
        _refuse_changed(stages, state)
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_config(resolved)
        for stage in stages:
            if not state.finished(stage.name):
                console.print(f"[bold]{stage.label}[/] {stage.kind} -> {stage.run.path}")
                state.start(stage.name, stage.fingerprint)
                began = time.monotonic()
                run_stage(stage, f"r1kit pipeline --resume {run.path}")
                state.finish(stage.name, _measured(began))
        rows = [before_after(stage) | _cost(state.stages[stage.name]) for stage in stages]
        table = write_summary(run.path, rows)
    console.print(table, highlight=False, soft_wrap=True)
    console.print(
        f"done: {run.path}  (summary.md, summary.png; final model: {stages[-1].run.final})"
    )


def _pipeline_recipe(
    recipe: Path | None, overrides: list[str], resume: Path | None
) -> tuple[PipelineRecipe, RunDir]:
    """The pipeline to run and its directory: RECIPE's, or on `--resume RUN` the one saved in
    RUN (RECIPE, when given, replaces it: stages not started yet may change)."""
    if resume is None:
        if recipe is None:
            raise RecipeError("give a pipeline recipe file or --resume RUN_DIR")
        resolved = load_pipeline(recipe, overrides)
        return resolved, RunDir(resolved.run_dir())
    run = RunDir(resume)
    if recipe is None:
        resolved = pipeline_from(saved_config(run), str(run.path / CONFIG), run.path, overrides)
    else:
        resolved = load_pipeline(recipe, overrides)
    resolved.output.dir, resolved.output.name = str(run.path.parent), run.path.name
    return resolved, run


def _measured(began: float) -> dict[str, float]:
    """A finished stage's wall time and this process's peak RSS so far (GiB)."""
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "wall_s": round(time.monotonic() - began, 1),
        "peak_rss_gib": round(peak_kib / 2**20, 2),
    }


def _cost(recorded: dict) -> dict:
    """What the stage took, as recorded when it finished (a stage resumed: its last part)."""
    return {key: recorded.get(key) for key in ("wall_s", "peak_rss_gib")}


def _refuse_changed(stages: list[Stage], state: PipelineState) -> None:
    """A stage that started (finished or not) must run with the recipe it started with."""
    for stage in stages:
        recorded = state.stages.get(stage.name)
        if recorded is not None and recorded["hash"] != stage.fingerprint:
            done = "finished" if recorded["finished"] else "started"
            fields = ", ".join(changed_fields(stage)) or "its recipe"
            raise RecipeError(
                f"{stage.label}: {done} already, and its recipe has changed since ({fields}); "
                "restore it, or start the pipeline afresh with --overwrite (only the stages "
                "not started yet may change)"
            )


def _print_plan(pipeline: PipelineRecipe, stages: list[Stage], state: PipelineState | None) -> None:
    lines = [f"[bold]plan[/] (dry run: nothing loaded, nothing written)  {pipeline.run_dir()}"]
    for stage in stages:
        status = ""
        if state is not None:
            status = "  (finished)" if state.finished(stage.name) else ""
            status = status or ("  (resumes)" if state.started(stage.name) else "")
        lines.append(f"  {stage.label:<24} {stage.kind:<8} -> {stage.run.path}{status}")
        for field, value in _references(stage, pipeline):
            lines.append(f"      {field}: {value}")
    console.print("\n".join(lines), highlight=False, soft_wrap=True)


def _references(stage: Stage, pipeline: PipelineRecipe) -> list[tuple[str, str]]:
    """The stage's fields that name an earlier stage's output (their resolved paths)."""
    base = str(pipeline.run_dir())
    flat = dotted_fields(stage.recipe.model_dump(mode="json"))
    return [
        (key, value)
        for key, value in flat.items()
        if isinstance(value, str) and value.startswith(base) and not key.startswith("output.")
    ]
