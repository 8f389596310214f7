"""`r1kit generate`: sample completions from a model on a task and score them, as a table."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from r1kit.data import load_data
from r1kit.models import load_model
from r1kit.recipe import DataConfig, TemplateConfig
from r1kit.templates import encode
from rewards.registry import load_reward
from rewards.scoring import WeightedReward, score
from rollout.hf_engine import HFEngine
from rollout.types import SamplingParams

TASK_REWARDS = {"countdown": ["countdown", "format"]}  # anything else: math + format


def sample_and_score(
    model: str,
    task: str,
    n: int,
    prompts: int,
    template: str,
    max_new_tokens: int,
    temperature: float,
    seed: int,
    console: Console,
) -> None:
    policy, tokenizer = load_model(model)
    _, rows = load_data(DataConfig(source=task, eval_size=prompts), seed)
    rows = rows[:prompts]
    engine = HFEngine(policy, tokenizer)
    template_cfg = TemplateConfig(name=template)
    sampling = SamplingParams(
        n=n, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed
    )
    groups = engine.generate(encode(template_cfg, tokenizer, [r["prompt"] for r in rows]), sampling)
    names = TASK_REWARDS.get(task, ["math", "format"])
    rewards = [WeightedReward(name, load_reward(name), 1.0) for name in names]
    flat_rows = [row for row, group in zip(rows, groups, strict=True) for _ in group]
    columns = {key: [row[key] for row in flat_rows] for key in rows[0] if key != "prompt"}
    texts = [c.text for group in groups for c in group]
    scores = score(rewards, [row["prompt"] for row in flat_rows], texts, columns)

    table = Table("prompt", "answer", "completion", *names, show_lines=True)
    for i, (row, text) in enumerate(zip(flat_rows, texts, strict=True)):
        values = [f"{scores.per_reward[name][i]:.2f}" for name in names]
        table.add_row(row["prompt"][-60:], row["answer"], text[-300:], *values)
    console.print(table)
    correct = scores.per_reward[names[0]]
    console.print(
        f"accuracy ({names[0]}): {sum(v == 1 for v in correct) / len(correct):.1%} "
        f"over {len(correct)} completions; format: "
        f"{sum(v == 1 for v in scores.per_reward['format']) / len(correct):.1%}"
    )
