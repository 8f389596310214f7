"""The `r1kit` command: train from a recipe, list recipes, sample and score, evaluate, plot.

Every user mistake (a bad recipe, a missing file, an unknown model or reward) ends in one
clear message and exit code 2, before anything is written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console

from r1kit.recipe import Recipe, RecipeError, apply_override, load_recipe, validate

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()
errors = Console(stderr=True, soft_wrap=True)
RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"


def user_errors() -> tuple[type[Exception], ...]:
    """The exception types that mean "the user asked for something wrong" (exit 2)."""
    from r1kit.data import DataError
    from r1kit.models import ModelError
    from rewards.registry import RewardError
    from rewards.sandbox import SandboxUnavailable

    return RecipeError, DataError, ModelError, RewardError, SandboxUnavailable


def fail(message: str) -> None:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


@app.command()
def train(
    recipe: Annotated[
        Path | None, typer.Argument(help="Recipe YAML (see `r1kit recipes`).")
    ] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override a field: key.sub=value.")] = [],  # noqa: B006
    resume: Annotated[
        Path | None, typer.Option(help="Continue a run from its last checkpoint.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and print the plan only.")
    ] = False,
) -> None:
    """Train a model with GRPO as the recipe says."""
    from r1kit.checks import check_references
    from r1kit.rundir import RunDir

    try:
        resolved = _resolve_recipe(recipe, set_, resume)
        check_references(resolved)
    except user_errors() as err:
        fail(str(err))
    run = RunDir(resume or resolved.run_dir())
    if dry_run:
        _print_plan(resolved, run)
        return
    if resume is None and (run.path / "metrics.jsonl").exists():
        fail(
            f"{run.path} already holds a run: continue it with --resume {run.path}, "
            "or pick another name with --set output.name=NAME"
        )
    from grpo.components import Components
    from grpo.trainer import Trainer

    try:
        if any(reward.name == "code" for reward in resolved.rewards):
            from rewards.sandbox import isolation_mode

            console.print(f"code sandbox isolation: {isolation_mode()}")
        parts = Components.build(resolved)
    except user_errors() as err:
        fail(str(err))
    if resume is None:
        run.create(resolved, resolved.output.tensorboard)
    else:
        run.open(resolved.output.tensorboard)
    if resolved.train.threads:
        import torch

        torch.set_num_threads(resolved.train.threads)
    Trainer(resolved, run, parts).fit(resume=resume is not None)
    run.close()
    console.print(f"done: {run.path}  (final model: {run.final})")


def _resolve_recipe(recipe: Path | None, overrides: list[str], resume: Path | None) -> Recipe:
    if resume is not None:
        saved = resume / "config.yaml"
        if not saved.is_file():
            raise RecipeError(f"--resume {resume}: no config.yaml there; is it a run directory?")
        raw = yaml.safe_load(saved.read_text())
        for override in overrides:
            apply_override(raw, override)
        return validate(raw, source=str(saved))
    if recipe is None:
        raise RecipeError("give a recipe file (see `r1kit recipes`) or --resume RUN_DIR")
    return load_recipe(recipe, overrides)


def _print_plan(recipe: Recipe, run) -> None:
    batch = recipe.train.prompts_per_step * recipe.rollout.group_size
    console.print(
        f"[bold]plan[/] (dry run: nothing loaded, nothing written)\n"
        f"  model      {recipe.model.name} ({recipe.model.dtype}"
        f"{', LoRA r=' + str(recipe.model.lora.r) if recipe.model.lora else ''})\n"
        f"  data       {recipe.data.source}, held-out {recipe.data.eval_size} rows, "
        f"template {recipe.template.name}\n"
        f"  rewards    " + ", ".join(f"{r.name} x{r.weight}" for r in recipe.rewards) + "\n"
        f"  steps      {recipe.train.steps} x {recipe.train.prompts_per_step} prompts x "
        f"{recipe.rollout.group_size} completions = {batch} sequences/step, "
        f"micro-batch {recipe.learner.micro_batch_size}\n"
        f"  loss       {recipe.learner.loss}, lr {recipe.learner.lr}, beta {recipe.learner.beta}\n"
        f"  run dir    {run.path}",
        highlight=False,
    )
    console.print(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False), highlight=False)


@app.command()
def recipes() -> None:
    """List the built-in recipes with a line each."""
    from rich.table import Table

    table = Table("recipe", "what it does")
    for path in sorted(RECIPES_DIR.glob("*.yaml")):
        description = (yaml.safe_load(path.read_text()) or {}).get("description", "")
        table.add_row(
            str(path.relative_to(RECIPES_DIR.parent)),
            description.strip().splitlines()[0] if description else "",
        )
    console.print(table)


@app.command()
def generate(
    model: Annotated[
        str, typer.Option(help="Alias, HF directory, .gguf file or Hub id.")
    ] = "smollm2-135m-instruct",
    task: Annotated[
        str, typer.Option(help="arithmetic | countdown | a .jsonl file")
    ] = "arithmetic",
    n: Annotated[int, typer.Option(help="Completions per prompt.")] = 4,
    prompts: Annotated[int, typer.Option(help="How many prompts.")] = 4,
    template: Annotated[str, typer.Option(help="r1_zero | chat | raw")] = "chat",
    max_new_tokens: Annotated[int, typer.Option()] = 128,
    temperature: Annotated[float, typer.Option()] = 1.0,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Sample completions and score them: the engine and the rewards, end to end."""
    from r1kit.sample import sample_and_score

    try:
        sample_and_score(
            model, task, n, prompts, template, max_new_tokens, temperature, seed, console
        )
    except user_errors() as err:
        fail(str(err))


@app.command()
def plot(run_dir: Annotated[Path, typer.Argument(help="A run directory (runs/NAME).")]) -> None:
    """Plot a run's curves to RUN_DIR/curves.png."""
    from r1kit.plot import plot_run

    if not (run_dir / "metrics.jsonl").is_file():
        fail(f"{run_dir}: no metrics.jsonl; is it a run directory?")
    console.print(f"wrote {plot_run(run_dir)}")


def _register_eval() -> None:
    from r1kit.eval_command import eval_command

    app.command("eval")(eval_command)


_register_eval()


def main() -> None:
    app(prog_name="r1kit")


if __name__ == "__main__":
    sys.exit(main())
