"""Evaluate a model on a named task and save the result: what `r1kit eval` runs.

`run_eval(request)` = `resolve` (task rows, template, sampling, verifier) -> `run` (sample and
score, `r1kit.evaluation.evaluate`) -> `write` (samples.jsonl and summary.json).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from r1kit.choices import EngineName, TemplateName
from r1kit.evaluation import EvalError, EvalResult, evaluate
from r1kit.models import load_model, load_tokenizer, model_dir
from r1kit.recipe import EngineConfig, SamplingConfig, TemplateConfig, ToolsConfig, load_recipe
from r1kit.tasks import EvalTask, load_task
from r1kit.tool_use import ToolEngine
from rewards.registry import load_reward
from rollout import (
    Engine,
    ModelSource,
    RolloutSetupError,
    SamplingParams,
    check_engine,
    open_engine,
)

SUMMARY_KEYS = ("pass@1", "ci_low", "ci_high")  # what --compare tables and plots


@dataclass(frozen=True)
class EvalRequest:
    """What to evaluate and how; `recipe` supplies template, stop strings, task settings and
    seed, so the numbers match the trainer's own held-out evaluation."""

    model: str = "smollm2-135m-instruct"
    task: str = "arithmetic"
    n: int = 1
    temperature: float = 0.0
    max_new_tokens: int | None = None  # None: the recipe's rollout.max_new_tokens, else 256
    limit: int | None = None  # only the first `limit` problems
    template: TemplateName = "chat"
    recipe: Path | None = None
    out: Path | None = None  # None: runs/eval/<model>-<task>
    data_dir: str | None = None
    seed: int = 0
    engine: EngineName = "hf"
    overwrite: bool = False  # replace an evaluation already in `out`


@dataclass
class EvalPlan:
    """A request resolved into rows, a template and sampling settings."""

    request: EvalRequest
    task: EvalTask
    template: TemplateConfig
    sampling: SamplingParams
    out: Path
    tools: ToolsConfig  # the recipe's: a model trained with tools is evaluated with them


def check_folder(option: str, path: Path) -> None:
    """Refuse an output folder that is a file or lies under one, before any work is done."""
    for place in (path, *path.parents):
        if place.exists():
            if not place.is_dir():
                where = "is a file" if place == path else f"lies under {place}, which is a file"
                raise EvalError(f"{option} {path}: {where}; give a folder")
            return


def resolve(request: EvalRequest) -> EvalPlan:
    """Read the recipe (if any) and the task's rows; decide sampling and the output folder."""
    template, data, stop = TemplateConfig(name=request.template), None, []
    seed, tokens, tools = request.seed, 256, ToolsConfig()
    if request.recipe is not None:  # measure what the trainer's held-out evaluation measures
        recipe = load_recipe(request.recipe)
        template, data, stop = recipe.template, recipe.data, recipe.rollout.stop
        seed, tokens, tools = recipe.seed, recipe.rollout.max_new_tokens, recipe.tools
    task = load_task(request.task, request.data_dir, data, seed)
    if request.limit:
        task.rows = task.rows[: request.limit]
    sampling = SamplingConfig(
        temperature=request.temperature,
        max_new_tokens=request.max_new_tokens or tokens,
        stop=stop,
    ).params(request.n, seed)
    out = request.out or Path("runs/eval") / f"{Path(request.model).name}-{task.name}"
    check_folder("--out", out)
    if (out / "summary.json").exists() and not request.overwrite:
        raise EvalError(
            f"--out {out} already holds an evaluation (summary.json): replace it with "
            "--overwrite, or give another --out"
        )
    return EvalPlan(request, task, template, sampling, out, tools)


def run(plan: EvalPlan, progress: Callable[[int], None] | None = None) -> EvalResult:
    """Load the model into the requested engine and evaluate it on the plan's rows."""
    name, options = plan.task.correctness
    tokenizer = load_tokenizer(plan.request.model)
    engine = _engine(plan.request)
    if plan.tools.enabled:
        engine = ToolEngine(engine, tokenizer, plan.tools)
    try:
        return evaluate(
            engine,
            tokenizer,
            plan.template,
            plan.task.rows,
            load_reward(name, options),
            plan.sampling,
            vote=plan.task.vote,
            progress=progress,
        )
    finally:
        engine.close()


def _engine(request: EvalRequest) -> Engine:
    """The requested engine in this process, over the model (loaded here for hf)."""
    spec = EngineConfig(engine=request.engine).spec()
    try:
        check_engine(spec)
    except RolloutSetupError as err:
        raise EvalError(f"--engine {request.engine}: {err}") from None
    model = ModelSource(model_dir(request.model), partial(load_model, request.model))
    return open_engine(spec, model, seed=request.seed)


def write(plan: EvalPlan, result: EvalResult) -> dict:
    """Write samples.jsonl and summary.json under `plan.out`; return the summary."""
    settings = {"model": plan.request.model, "task": plan.task.name, "template": plan.template.name}
    summary = {**settings, **asdict(plan.sampling), **result.summary}
    plan.out.mkdir(parents=True, exist_ok=True)
    (plan.out / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in result.samples))
    (plan.out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def run_eval(request: EvalRequest, progress: Callable[[int], None] | None = None) -> dict:
    """Resolve, run and write one evaluation; return its summary."""
    plan = resolve(request)
    return write(plan, run(plan, progress))


def read_summary(directory: Path) -> dict:
    """The summary.json that `r1kit eval --out DIRECTORY` wrote."""
    path = directory / "summary.json"
    if not path.is_file():
        raise EvalError(f"{path} not found: run `r1kit eval --out {directory}` first")
    again = f"run `r1kit eval --out {directory} --overwrite` again"
    try:
        summary = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise EvalError(f"{path}:{err.lineno}: not valid JSON ({err.msg}); {again}") from None
    missing = [key for key in SUMMARY_KEYS if not isinstance(summary, dict) or key not in summary]
    if missing:
        raise EvalError(f"{path}: not an evaluation summary (no {', '.join(missing)}); {again}")
    return summary
