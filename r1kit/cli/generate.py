"""`r1kit generate`: sample completions from a model on a task and score them, as a table."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import typer
from rich.table import Table

from r1kit.choices import TemplateName
from r1kit.cli.app import command, console
from r1kit.cli.options import schema_range
from r1kit.groups import generate_groups, score_groups
from r1kit.models import load_model, load_tokenizer, model_dir
from r1kit.recipe import DataConfig, EngineConfig, Recipe, SamplingConfig, TemplateConfig
from r1kit.tasks import TASKS, load_task
from rewards.registry import load_reward
from rewards.scoring import WeightedReward
from rollout import ModelSource, open_engine


@command("generate")
def generate(
    model: Annotated[
        str, typer.Option(help="Alias, HF directory, .gguf file or Hub id.")
    ] = "smollm2-135m-instruct",
    task: Annotated[str, typer.Option(help=f"{' | '.join(TASKS)} | FILE.jsonl")] = "arithmetic",
    n: Annotated[int, typer.Option(min=1, help="Completions per prompt.")] = 4,
    prompts: Annotated[int, typer.Option(min=1, help="How many prompts.")] = 4,
    template: Annotated[TemplateName, typer.Option()] = "chat",
    max_new_tokens: Annotated[
        int, typer.Option(**schema_range(SamplingConfig, "max_new_tokens"))
    ] = 128,
    temperature: Annotated[
        float, typer.Option(help="0 is greedy.", **schema_range(SamplingConfig, "temperature"))
    ] = 1.0,
    seed: Annotated[int, typer.Option(**schema_range(Recipe, "seed"))] = 0,
    data_dir: Annotated[
        str | None, typer.Option(help="Folder with gsm8k_test.jsonl and math500.jsonl.")
    ] = None,
) -> None:
    """Sample completions and score them: the engine and the rewards, end to end."""
    # The rows first: a bad --task fails before a model is loaded.
    task_rows = load_task(task, data_dir, DataConfig(eval_size=prompts), seed)
    sampling = SamplingConfig(temperature=temperature, max_new_tokens=max_new_tokens)
    engine = open_engine(
        EngineConfig().spec(), ModelSource(model_dir(model), partial(load_model, model))
    )
    groups = generate_groups(
        engine,
        load_tokenizer(model),
        TemplateConfig(name=template),
        task_rows.rows[:prompts],
        sampling.params(n, seed),
    )
    correctness, options = task_rows.correctness
    judges = [
        WeightedReward(correctness, load_reward(correctness, options)),
        WeightedReward("format", load_reward("format")),
    ]
    score_groups(groups, judges)

    table = Table("prompt", "answer", "completion", correctness, "format", show_lines=True)
    for group in groups:
        for i, completion in enumerate(group.completions):
            values = [f"{group.per_reward[judge.name][i]:.2f}" for judge in judges]
            row = group.row
            table.add_row(
                row["prompt"][-60:], row.get("answer", ""), completion.text[-300:], *values
            )
    console.print(table)
    console.print(summary_line(groups, correctness))


def summary_line(groups, correctness: str) -> str:
    """Accuracy and format rate over every completion (value 1 counts)."""
    total = sum(len(group.completions) for group in groups)
    correct = sum(v == 1 for group in groups for v in group.per_reward[correctness])
    formatted = sum(v == 1 for group in groups for v in group.per_reward["format"])
    return (
        f"accuracy ({correctness}): {correct / total:.1%} over {total} completions; "
        f"format: {formatted / total:.1%}"
    )
