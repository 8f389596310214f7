"""`r1kit eval`: evaluate a model on a task and save the results, or compare saved results."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from r1kit.eval_tasks import TaskError, load_task
from r1kit.evaluation import EvalError, evaluate
from r1kit.models import ModelError, load_model
from r1kit.recipe import RecipeError, TemplateConfig, load_recipe
from rewards.registry import RewardError, load_reward
from rewards.sandbox import SandboxUnavailable
from rollout.hf_engine import HFEngine
from rollout.types import SamplingParams

USER_ERRORS = (TaskError, EvalError, ModelError, RecipeError, RewardError, SandboxUnavailable)


def eval_command(
    model: Annotated[
        str, typer.Option(help="Checkpoint dir, alias or Hub id.")
    ] = "smollm2-135m-instruct",
    task: Annotated[
        str, typer.Option(help="gsm8k | math500 | humaneval | arithmetic | countdown | FILE.jsonl")
    ] = "arithmetic",
    n: Annotated[int, typer.Option(min=1, help="Samples per problem.")] = 1,
    temperature: Annotated[float, typer.Option(min=0.0, help="0 is greedy.")] = 0.0,
    max_new_tokens: Annotated[
        int | None, typer.Option(min=1, help="256, or the recipe's rollout.max_new_tokens.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first M problems.")] = None,
    engine: Annotated[str, typer.Option(help="hf (vllm is not built yet).")] = "hf",
    template: Annotated[Literal["r1_zero", "chat", "raw"], typer.Option()] = "chat",
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
    seed: Annotated[int, typer.Option()] = 0,
    json_: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    compare: Annotated[
        bool, typer.Option("--compare", help="Compare the saved evaluations in RUNS instead.")
    ] = False,
    runs: Annotated[list[Path] | None, typer.Argument(help="With --compare: eval folders.")] = None,
) -> None:
    """Evaluate a model: pass@k, maj@k, pass@1 with a 95% CI, lengths, truncation, format."""
    console = Console()
    try:
        if compare:
            compare_runs(runs or [], console, out)
            return
        if runs:
            raise EvalError(
                f"unexpected arguments {[str(r) for r in runs]}; did you mean --compare?"
            )
        summary = run_eval(
            model, task, n, temperature, max_new_tokens, limit, template, recipe, out,
            data_dir, seed, console, quiet=json_, engine=engine,
        )  # fmt: skip
    except USER_ERRORS as err:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {err}", highlight=False)
        raise typer.Exit(2) from None
    if json_:
        print(json.dumps(summary, indent=2))


def run_eval(
    model: str,
    task: str,
    n: int,
    temperature: float,
    max_new_tokens: int | None,
    limit: int | None,
    template: str,
    recipe: Path | None,
    out: Path | None,
    data_dir: str | None,
    seed: int,
    console: Console,
    quiet: bool = False,
    engine: str = "hf",
) -> dict:
    """Evaluate `model` on `task`; write samples.jsonl and summary.json under `out`
    (default runs/eval/<model>-<task>) and return the summary."""
    check_engine(engine)
    template_cfg, data, stop, default_tokens = TemplateConfig(name=template), None, (), 256
    if recipe is not None:  # measure what the trainer's held-out evaluation measures
        loaded = load_recipe(recipe)
        template_cfg, data, stop = loaded.template, loaded.data, tuple(loaded.rollout.stop)
        seed, default_tokens = loaded.seed, loaded.rollout.max_new_tokens
    spec = load_task(task, data_dir, data, seed)
    rows = spec.rows[:limit] if limit else spec.rows
    correctness = load_reward(spec.correctness, spec.correctness_kwargs)
    policy, tokenizer = load_model(model)
    sampling = SamplingParams(
        n=n,
        temperature=temperature,
        max_new_tokens=max_new_tokens or default_tokens,
        stop=stop,
        seed=seed,
    )
    with Progress(console=console, disable=quiet, transient=True) as bar:
        done = bar.add_task(f"{spec.name}: sampling", total=len(rows))
        result = evaluate(
            HFEngine(policy, tokenizer),
            tokenizer,
            template_cfg,
            rows,
            correctness,
            sampling,
            vote=spec.vote,
            progress=lambda count: bar.advance(done, count),
        )
    settings = {"model": model, "task": spec.name, "template": template_cfg.name}
    summary = {**settings, **asdict(sampling), **result.summary}
    out = out or Path("runs/eval") / f"{Path(model).name}-{spec.name}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in result.samples))
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if not quiet:
        table = Table("metric", "value", title=f"{model} on {spec.name} (n={n}, T={temperature})")
        for key, value in result.summary.items():
            table.add_row(key, f"{value:.4g}")
        console.print(table)
        console.print(f"wrote {out}/samples.jsonl and {out}/summary.json")
    return summary


def check_engine(name: str) -> None:
    """Only the HF engine exists in this release; say so before loading anything."""
    if name == "vllm":
        raise EvalError("--engine vllm is not built yet; use --engine hf")
    if name != "hf":
        raise EvalError(f"unknown engine {name!r}; use --engine hf")


def compare_runs(dirs: list[Path], console: Console, out: Path | None = None) -> Path:
    """Print saved summaries side by side and bar-plot their pass@1 with its CI; the PNG goes
    to OUT/compare.png, by default beside the first folder."""
    if not dirs:
        raise EvalError("--compare needs the eval folders to compare: r1kit eval --compare A B")
    summaries = [read_summary(d) for d in dirs]
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


def read_summary(directory: Path) -> dict:
    """The summary.json that `r1kit eval --out DIRECTORY` wrote."""
    path = directory / "summary.json"
    if not path.is_file():
        raise EvalError(f"{path} not found: run `r1kit eval --out {directory}` first")
    return json.loads(path.read_text())


def plot_pass_at_1(names: list[str], summaries: list[dict], target: Path) -> None:
    """A bar per evaluation: pass@1 with its 95% bootstrap interval as the error bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means = [s["pass@1"] for s in summaries]
    errors = [
        [m - s["ci_low"] for m, s in zip(means, summaries, strict=True)],
        [s["ci_high"] - m for m, s in zip(means, summaries, strict=True)],
    ]
    fig, ax = plt.subplots(figsize=(1.5 + 1.6 * len(names), 4))
    ax.bar(names, means, yerr=errors, capsize=6, color="#4c72b0")
    ax.set_ylabel("pass@1 (95% CI)")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=110)
    plt.close(fig)
