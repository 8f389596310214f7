"""`r1kit train RECIPE`: GRPO as the recipe says; `--resume RUN` continues a run exactly."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
import yaml

from r1kit.cli.app import command, console
from r1kit.cli.runs import (
    DryRunOption,
    OverwriteOption,
    ResumeOption,
    SetOption,
    fit_until_stopped,
    hand_edits,
    make_ready,
    saved_config,
)
from r1kit.placement import describe
from r1kit.recipe import (
    RESUMABLE_FIELDS,
    Change,
    Recipe,
    RecipeError,
    apply_override,
    load_recipe,
    validate,
)
from r1kit.references import check_references
from r1kit.rundir import CONFIG, RunDir
from rollout.weight_transfer import WeightRoute, choose_route, lora_modules, native_api_present


@command("train")
def train(
    recipe: Annotated[
        Path | None, typer.Argument(help="Recipe YAML, or a built-in name (see `r1kit recipes`).")
    ] = None,
    set_: SetOption = [],  # noqa: B006
    resume: ResumeOption = None,
    dry_run: DryRunOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Train a model with GRPO as the recipe says."""
    if resume is None:
        resolved = _new_recipe(recipe, set_)
        run = RunDir(resolved.run_dir())
    else:
        run = RunDir(resume)
        resolved = _resumed_recipe(recipe, set_, run)
    check_references(resolved, cluster=not dry_run)
    if dry_run:
        _print_plan(resolved, run)
        return
    with run.lock():
        make_ready(run, resume is not None, overwrite)
        run_train(resolved, run, resume is not None)


def run_train(resolved: Recipe, run: RunDir, resume: bool, resume_with: str = "") -> None:
    """Build the parts, write the run's config (a new run, or a resume's changes) and fit;
    a stop names `resume_with` (default: this run's `r1kit train --resume`)."""
    from grpo.components import Components  # torch and transformers: slow to import
    from grpo.trainer import Trainer

    if resolved.tools.enabled or any(reward.name == "code" for reward in resolved.rewards):
        from rewards.sandbox import isolation_mode

        console.print(f"code sandbox isolation: {isolation_mode()}")
    _show_choices()
    parts = Components.build(resolved)
    if resume:
        run.write_config(resolved)  # records any changes; nothing written without
        run.open(resolved.output.report_to)
    else:
        run.create(resolved, resolved.output.report_to)
    if resolved.train.threads:
        import torch

        torch.set_num_threads(resolved.train.threads)
    trainer = Trainer(resolved, run, parts)
    where = trainer.record_placement()
    if where is not None:
        console.print(describe(where), highlight=False, soft_wrap=True)
    fit_until_stopped(
        resume_with or f"r1kit train --resume {run.path}",
        run,
        lambda: trainer.fit(resume=resume),
        lambda: f"after step {trainer.step_done} (checkpoint saved)",
    )
    console.print(f"done: {run.path}  (final model: {run.final})")


def _new_recipe(recipe: Path | None, overrides: list[str]) -> Recipe:
    if recipe is None:
        raise RecipeError("give a recipe file (see `r1kit recipes`) or --resume RUN_DIR")
    return load_recipe(recipe, overrides)


def _resumed_recipe(recipe: Path | None, overrides: list[str], run: RunDir) -> Recipe:
    """The run's config.yaml with the `--set` overrides; each field they or a hand edit of
    config.yaml change (only RESUMABLE_FIELDS may) is recorded in `changes`."""
    raw = saved_config(run)
    saved = validate(raw, source=str(run.path / CONFIG))
    if recipe is not None:
        _check_same_run(load_recipe(recipe), saved, recipe, run.path)
    edited = [key for key in hand_edits(run, saved, RESUMABLE_FIELDS) if not _recorded(saved, key)]
    keys = [override.partition("=")[0] for override in overrides]
    for key, override in zip(keys, overrides, strict=True):
        if key not in RESUMABLE_FIELDS:
            raise RecipeError(
                f"--set {key}: cannot change when resuming {run.path} (it would change what the "
                f"run has learned); these can: {', '.join(RESUMABLE_FIELDS)}"
            )
        apply_override(raw, override)
    resolved = validate(raw, source=f"{run.path / CONFIG} with --set") if overrides else saved
    step = max((number for number, _ in run.saved()), default=0)
    resolved.changes += [
        Change(step=step, field=key, value=_field(resolved, key))
        for key in dict.fromkeys(edited + keys)
    ]
    return resolved


def _recorded(recipe: Recipe, key: str) -> bool:
    """Whether `changes` holds the field's value already: a `--set` on an earlier resume that
    stopped before its first checkpoint, which still holds the value before."""
    values = [change.value for change in recipe.changes if change.field == key]
    return bool(values) and values[-1] == _field(recipe, key)


def _field(recipe: Recipe, key: str) -> object:
    """The validated value of a dotted field such as `learner.lr`."""
    value = recipe
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _check_same_run(given: Recipe, saved: Recipe, path: Path, resume: Path) -> None:
    """`train RECIPE --resume RUN` only when RECIPE is the one RUN was started from."""
    ignored = {"output", "changes"}
    mine, theirs = given.model_dump(exclude=ignored), saved.model_dump(exclude=ignored)
    differ = [key for key in mine if mine[key] != theirs[key]]
    if differ:
        raise RecipeError(
            f"{path} is not the recipe of {resume} (they differ in {', '.join(differ)}); "
            f"resume with `r1kit train --resume {resume}` alone, and change what may change "
            "with --set"
        )


def _ranks(recipe: Recipe) -> str:
    size, ray = recipe.learner.world_size, recipe.ray
    if size == 1:
        return "in-process"
    device = f"{ray.gpus_per_rank:g} GPU" if ray.gpus_per_rank else f"{ray.cpus_per_rank:g} CPU"
    return (
        f"{size} ranks ({recipe.learner.strategy}) x {device} on Ray at {ray.address!r} "
        "(its resources are checked when training starts)"
    )


def _engine(recipe: Recipe) -> str:
    """The plan's engine line: where it runs, its memory share, sleep, and the weight route."""
    rollout = recipe.rollout
    place = f"{rollout.workers} Ray workers" if rollout.workers else "in-process"
    if rollout.engine != "vllm":
        return f"{rollout.engine}, {place}"
    vllm = rollout.vllm
    memory = (
        f"{vllm.gpu_memory_utilization:.0%} of the GPU"
        if vllm.gpu_memory_utilization is not None
        else f"KV cache {vllm.kv_cache_gb:g} GiB"
    )
    sleep = "sleeps while the learner trains (GPU)" if vllm.sleep_level else "stays awake"
    colocated = " (colocated with the learner)" if not rollout.workers else ""
    return f"vllm, {place}{colocated}, {memory}, {sleep}, tp {vllm.tensor_parallel_size}"


def _show_choices() -> None:
    """Print the one-line choices the engine and the parts log as they start: the weight
    route (and why), adapter-only or merged LoRA updates."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("rollout", "grpo"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)


def _weights(recipe: Recipe) -> str:
    """The plan's weights line: the route updates take on this machine, and on a GPU."""
    import torch  # here: the plan needs it only for this line

    lora = recipe.model.lora
    modules = lora_modules(lora.target_modules) if lora is not None else None
    if recipe.rollout.engine != "vllm":
        merged = WeightRoute("shm", "none" if lora is None else "merged")
        return merged.describe() if recipe.rollout.workers else "in place"
    auto, colocated = recipe.rollout.vllm.weight_transfer == "auto", not recipe.rollout.workers
    device = "cuda" if torch.cuda.is_available() else "cpu"
    here = choose_route(device, auto and native_api_present(), colocated, modules)
    gpu = choose_route("cuda", auto, colocated, modules)
    elsewhere = "" if gpu.path == here.path else f"; on a GPU: {gpu.describe()} ({gpu.reason})"
    return f"{here.describe()} ({here.reason}){elsewhere}"


def _tools(recipe: Recipe) -> str:
    """The plan's tools line: off, or what a call may do."""
    tools = recipe.tools
    if not tools.enabled:
        return "off"
    return (
        f"{tools.call[0]}code{tools.call[1]} in the code sandbox, up to {tools.max_turns} calls "
        f"per completion, {tools.timeout_s:g} s each, {tools.step_budget_s:g} s per step"
    )


def _print_plan(recipe: Recipe, run: RunDir) -> None:
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
        f"  learner    {_ranks(recipe)}\n"
        f"  engine     {_engine(recipe)}\n"
        f"  weights    {_weights(recipe)}\n"
        f"  tools      {_tools(recipe)}\n"
        f"  run dir    {run.path}",
        highlight=False,
    )
    console.print(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False), highlight=False)
