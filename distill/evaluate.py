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
from r1kit.tasks import correctness_reward
from rewards.registry import load_reward
from rollout.hf_engine import HFEngine
from rollout.types import SamplingParams


def evaluate_student(
    recipe: DistillRecipe,
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    rows: list[dict],
    out: Path,
) -> dict:
    """Greedy held-out evaluation of `model` in the student's template; summary.json and
    samples.jsonl under `out`; returns the summary."""
    sampling = SamplingParams(
        n=1,
        temperature=0.0,
        max_new_tokens=recipe.eval.max_new_tokens,
        stop=tuple(recipe.eval.stop),
        seed=recipe.seed,
    )
    result = evaluate(
        HFEngine(model, tokenizer, batch_size=recipe.eval.batch_size),
        tokenizer,
        recipe.template,
        rows,
        load_reward(*correctness_reward(recipe.data.source)),
        sampling,
    )
    out.mkdir(parents=True, exist_ok=True)
    durable.rewrite_jsonl(out / "samples.jsonl", result.samples)
    durable.write_text(out / "summary.json", json.dumps(result.summary, indent=2))
    return result.summary


def plot_before_after(run_dir: Path) -> Path:
    """eval.png: the student's held-out pass@1 before and after, with 95% intervals."""
    names = [name for name in ("before", "after") if (run_dir / "eval" / name).is_dir()]
    summaries = [json.loads((run_dir / "eval" / n / "summary.json").read_text()) for n in names]
    target = run_dir / "eval.png"
    plot_pass_at_1(names, summaries, target)
    return target
