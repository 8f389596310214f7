"""`r1kit eval`: evaluate a model on a task and save the results, or compare saved results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from r1kit.choices import EngineName, TemplateName
from r1kit.cli.app import command, console
from r1kit.cli.options import schema_range
from r1kit.eval_run import EvalRequest, check_folder, read_summary, resolve, run, write
from r1kit.evaluation import EvalError
from r1kit.recipe import Recipe, SamplingConfig
from r1kit.tasks import TASKS


@command("eval")
def eval_command(
    model: Annotated[
        str, typer.Option(help="Checkpoint dir, alias or Hub id.")
    ] = "smollm2-135m-instruct",
    task: Annotated[str, typer.Option(help=f"{' | '.join(TASKS)} | FILE.jsonl")] = "arithmetic",
    n: Annotated[int, typer.Option(min=1, help="Samples per problem.")] = 1,
    temperature: Annotated[
        float, typer.Option(help="0 is greedy.", **schema_range(SamplingConfig, "temperature"))
    ] = 0.0,
    max_new_tokens: Annotated[
        int | None,
        typer.Option(
            help="256, or the recipe's rollout.max_new_tokens.",
            **schema_range(SamplingConfig, "max_new_tokens"),
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first M problems.")] = None,
    engine: Annotated[EngineName, typer.Option(help="The rollout engine.")] = "hf",
    template: Annotated[TemplateName, typer.Option()] = "chat",
    recipe: Annotated[
        Path | None, typer.Option(help="Use its template, stop strings, task settings, seed.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for samples.jsonl and summary.json (with --compare: the plot)."),
    ] = None,
    data_dir: Annotated[
        str | None, typer.Option(help="Folder with gsm8k_test.jsonl and math500.jsonl.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an evaluation already in --out.")
    ] = False,
    seed: Annotated[int, typer.Option(**schema_range(Recipe, "seed"))] = 0,
    json_: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    compare: Annotated[
        bool, typer.Option("--compare", help="Compare the saved evaluations in RUNS instead.")
    ] = False,
    runs: Annotated[list[Path] | None, typer.Argument(help="With --compare: eval folders.")] = None,
) -> None:
    """Evaluate a model: pass@k, maj@k, pass@1 with a 95% CI, lengths, truncation, format."""
    if compare:
        compare_runs(runs or [], console, out)
        return
    if runs:
        raise EvalError(f"unexpected arguments {[str(r) for r in runs]}; did you mean --compare?")
    request = EvalRequest(
        model=model,
        task=task,
        n=n,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        limit=limit,
        template=template,
        recipe=recipe,
        out=out,
        data_dir=data_dir,
        seed=seed,
        engine=engine,
        overwrite=overwrite,
    )
    plan = resolve(request)
    with Progress(console=console, disable=json_, transient=True) as bar:
        done = bar.add_task(f"{plan.task.name}: sampling", total=len(plan.task.rows))
        result = run(plan, progress=lambda count: bar.advance(done, count))
    summary = write(plan, result)
    if json_:
        print(json.dumps(summary, indent=2))
        return
    title = f"{model} on {plan.task.name} (n={n}, T={temperature})"
    table = Table("metric", "value", title=title)
    for key, value in result.summary.items():
        table.add_row(key, f"{value:.4g}")
    console.print(table)
    console.print(f"wrote {plan.out}/samples.jsonl and {plan.out}/summary.json")


def compare_runs(dirs: list[Path], console: Console, out: Path | None = None) -> Path:
    """Print saved summaries side by side and bar-plot their pass@1 with its CI; the PNG goes
    to OUT/compare.png, by default beside the first folder."""
    from r1kit.plot import plot_pass_at_1  # matplotlib is slow to import

    if not dirs:
        raise EvalError("--compare needs the eval folders to compare: r1kit eval --compare A B")
    summaries = [read_summary(d) for d in dirs]
    if out is not None:
        check_folder("--out", out)
    table = Table("", *[str(d) for d in dirs])
    for key in dict.fromkeys(k for s in summaries for k in s):
        table.add_row(key, *[_cell(s.get(key)) for s in summaries])
    console.print(table)
    target = (out or dirs[0].resolve().parent) / "compare.png"
    plot_pass_at_1([d.name for d in dirs], summaries, target)
    console.print(f"wrote {target}")
    return target


def _cell(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
