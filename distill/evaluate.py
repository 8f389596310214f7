"""Held-out evaluation of the student before and after distillation, as `r1kit eval` scores
it (greedy pass@1 with a 95% interval, format rate), written to the run dir and plotted."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn
from transformers import PreTrainedTokenizerBase

from distill.recipe import DistillRecipe
from r1kit import durable
from r1kit.evaluation import evaluate
from r1kit.plot import plot_pass_at_1
from r1kit.recipe import EngineConfig, HFConfig
from r1kit.tasks import correctness_reward
from rewards.registry import load_reward
from rollout import ModelSource, open_engine


def evaluate_student(
    recipe: DistillRecipe,
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    rows: list[dict],
    out: Path,
) -> dict:
    """Held-out evaluation (greedy unless `eval.temperature`) of `model`, in this process, in
    the student's template; summary.json and samples.jsonl under `out`; returns the summary."""
    hf = EngineConfig(hf=HFConfig(batch_size=recipe.eval.batch_size))
    result = evaluate(
        open_engine(hf.spec(), ModelSource.live(model, tokenizer)),
        tokenizer,
        recipe.template,
        rows,
        load_reward(*correctness_reward(recipe.data.source)),
        recipe.eval.params(1, recipe.seed),
    )
    out.mkdir(parents=True, exist_ok=True)
    durable.rewrite_jsonl(out / "samples.jsonl", result.samples)
    durable.write_text(out / "summary.json", json.dumps(result.summary, indent=2))
    return result.summary


def summaries(run_dir: Path) -> dict[str, dict]:
    """The held-out summaries the run has written, by stage ("before", "after"), in order."""
    files = {name: run_dir / "eval" / name / "summary.json" for name in ("before", "after")}
    return {name: json.loads(file.read_text()) for name, file in files.items() if file.is_file()}


def plot_before_after(run_dir: Path) -> Path:
    """eval.png: the student's held-out pass@1 before and after, with 95% intervals."""
    stages = summaries(run_dir)
    target = run_dir / "eval.png"
    plot_pass_at_1(list(stages), list(stages.values()), target)
    return target
