"""Stage 1: K traces per problem from the teacher, scored by the filter's rewards and appended
to generated.jsonl a chunk of problems at a time (fsynced): a killed run resumes after the
last whole chunk it wrote."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from distill.recipe import DistillRecipe
from distill.student import teacher_model_name
from r1kit import durable
from r1kit.data import load_data
from r1kit.display import Display
from r1kit.groups import generate_groups, score_groups
from r1kit.models import load_model, load_tokenizer, model_dir
from r1kit.stopping import Stopper
from r1kit.tasks import recipe_rewards
from rollout import Engine, ModelSource, open_engine


def generate_traces(
    recipe: DistillRecipe, out: Path, stopper: Stopper, device: str = "cpu"
) -> list[dict]:
    """Every problem's K scored samples (one record each), generating only those not on disk.
    A stop signal cuts the chunk in flight (StopRequested): the chunks written are kept."""
    cfg = recipe.generate
    stream, _ = load_data(recipe.data, recipe.seed)  # the held-out rows stay out of the stream
    problems = stream.take(cfg.problems)
    records = durable.read_jsonl(out)
    done = len({r["problem"] for r in records})
    if done == len(problems):
        return records
    rewards = recipe_rewards(recipe.filter.rewards)
    engine, tokenizer = teacher_engine(recipe, device)
    sampling = cfg.params(cfg.samples, recipe.seed)
    try:
        with Display(len(problems), done, label="generate") as display:
            for start in range(done, len(problems), cfg.chunk):
                rows = problems[start : start + cfg.chunk]
                with stopper.interruptible():
                    groups = generate_groups(engine, tokenizer, cfg.template, rows, sampling)
                    score_groups(groups, rewards)
                chunk = [
                    {
                        "problem": start + p,
                        "prompt": group.row["prompt"],
                        "answer": group.row.get("answer"),
                        "completion": c.text,
                        "tokens": len(c.token_ids),
                        "finish_reason": c.finish_reason,
                        "rewards": {name: vals[k] for name, vals in group.per_reward.items()},
                    }
                    for p, group in enumerate(groups)
                    for k, c in enumerate(group.completions)
                ]
                durable.append_jsonl(out, chunk)  # whole problems only: the resume point
                records += chunk
                display.update(start + len(rows), {})
    finally:
        engine.close()
    return records


def teacher_engine(recipe: DistillRecipe, device: str) -> tuple[Engine, object]:
    """The teacher on the engine `generate` names (in-process, or in Ray workers placed by
    `ray`), and its tokenizer."""
    name = teacher_model_name(recipe.teacher)
    model = ModelSource(model_dir(name), partial(load_model, name, device=device))
    engine = open_engine(recipe.generate.spec(recipe.ray), model, seed=recipe.seed)
    return engine, load_tokenizer(name)
