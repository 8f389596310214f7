"""`r1kit eval`: run an evaluation and save it, or compare saved ones (table + bar plot)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from r1kit.eval_tasks import load_task
from r1kit.evaluation import evaluate
from r1kit.models import load_model
from r1kit.recipe import TemplateConfig, load_recipe
from rewards.registry import load_reward
from rollout.hf_engine import HFEngine
from rollout.types import SamplingParams

SHOWN = ("pass@1", "ci_low", "ci_high", "mean_length", "truncation_rate", "format_rate", "problems")


def run_eval(
    model: str,
    task: str,
    n: int,
    temperature: float,
    max_new_tokens: int,
    limit: int | None,
    template: str,
    recipe: Path | None,
    out: Path | None,
    data_dir: str | None,
    seed: int,
    console: Console,
    quiet: bool = False,
) -> dict:
    """Evaluate `model` on `task`; write samples.jsonl and summary.json under `out`."""
    template_cfg, data, stop = TemplateConfig(name=template), None, ()
    if recipe is not None:
        loaded = load_recipe(recipe)
        template_cfg, data, stop = loaded.template, loaded.data, tuple(loaded.rollout.stop)
        seed = loaded.seed
    spec = load_task(task, data_dir, data, seed)
    rows = spec.rows[:limit] if limit else spec.rows
    policy, tokenizer = load_model(model)
    sampling = SamplingParams(
        n=n, temperature=temperature, max_new_tokens=max_new_tokens, stop=stop, seed=seed
    )
    result = evaluate(
        HFEngine(policy, tokenizer),
        tokenizer,
        template_cfg,
        rows,
        load_reward(spec.correctness, spec.correctness_kwargs),
        sampling,
    )
    summary = {
        "model": model,
        "task": spec.name,
        "n": n,
        "temperature": temperature,
        **result.summary,
    }
    out = out or Path("runs/eval") / f"{Path(model).name}-{spec.name}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in result.samples))
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if not quiet:
        table = Table("metric", "value", title=f"{model} on {spec.name} (n={n}, T={temperature})")
        for key, value in result.summary.items():
            table.add_row(key, f"{value:.4g}")
        console.print(table)
        console.print(f"wrote {out}/samples.jsonl and summary.json")
    return summary


def compare_runs(dirs: list[Path], console: Console) -> Path:
    """Side-by-side table of saved summaries and a bar plot of pass@1 with its CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summaries = []
    for directory in dirs:
        path = directory / "summary.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: run `r1kit eval --out {directory}` first")
        summaries.append(json.loads(path.read_text()))
    table = Table("metric", *[str(d) for d in dirs])
    for key in SHOWN:
        table.add_row(key, *[f"{s.get(key, float('nan')):.4g}" for s in summaries])
    console.print(table)
    fig, ax = plt.subplots(figsize=(1.5 + 1.6 * len(dirs), 4))
    means = [s["pass@1"] for s in summaries]
    errors = [
        [m - s["ci_low"] for m, s in zip(means, summaries, strict=True)],
        [s["ci_high"] - m for m, s in zip(means, summaries, strict=True)],
    ]
    ax.bar([d.name for d in dirs], means, yerr=errors, capsize=6, color="#4c72b0")
    ax.set_ylabel("pass@1 (95% CI)")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    target = dirs[0].parent / "compare.png"
    fig.savefig(target, dpi=110)
    plt.close(fig)
    console.print(f"wrote {target}")
    return target
