"""A pipeline's stages resolved and run: each stage's recipe validated by its own command's
schema and reference checks (references replaced by the paths earlier stages will write),
run in this process through the functions `r1kit train` and `r1kit distill` call, and its
before/after held-out evaluation read back from its run directory."""

from __future__ import annotations

from dataclasses import dataclass

from r1kit.choices import StageKind, StageOutput
from r1kit.pipeline_recipe import PipelineRecipe, output_path, stage_hash, stage_raw, where
from r1kit.recipe import Recipe, RecipeError, Section, dotted_fields, validate
from r1kit.references import check_engine_section, check_references
from r1kit.rundir import CONFIG, RunDir, parse_config


@dataclass(frozen=True)
class Stage:
    """One stage, resolved: `recipe` is its command's validated recipe."""

    index: int
    name: str
    kind: StageKind
    recipe: Section
    run: RunDir
    label: str  # how messages name it: stages.1 (student)
    fingerprint: str  # stage_hash of `recipe`, the pipeline's directory left out

    def outputs(self) -> tuple[StageOutput, ...]:
        """What later stages may refer to: a distill stage makes traces when it generates."""
        generates = self.kind == "distill" and self.recipe.generates()
        return ("final", "traces") if generates else ("final",)


def resolve_stages(pipeline: PipelineRecipe, cluster: bool = True) -> list[Stage]:
    """Every stage validated in order, before anything runs; RecipeError naming the stage and
    field of the first mistake (its schema, a reference, a held-out split unlike the others)."""
    stages: list[Stage] = []
    pending: set[str] = set()  # the paths earlier stages will write
    for index, config in enumerate(pipeline.stages):
        label = where(pipeline, index)
        raw = stage_raw(pipeline, index, {stage.name: stage.outputs() for stage in stages})
        recipe = validate(raw, label, _schema(config.kind), frozenset(pending))
        _check(config.kind, recipe, frozenset(pending), cluster, label)
        base = str(pipeline.run_dir())
        stage = Stage(
            index,
            config.name,
            config.kind,
            recipe,
            RunDir(recipe.run_dir()),
            label,
            stage_hash(recipe, base),
        )
        stages.append(stage)
        pending |= {output_path(pipeline, stage.name, output) for output in stage.outputs()}
    _same_held_out_rows(stages)
    return stages


def run_stage(stage: Stage, resume_with: str) -> None:
    """Run (or continue, when its run directory holds a config.yaml) one stage as its command
    would; a stop signal exits 130/143 naming `resume_with`."""
    from r1kit.cli.runs import make_ready

    with stage.run.lock():
        started = (stage.run.path / CONFIG).is_file()
        make_ready(stage.run, started, overwrite=False)
        if stage.kind == "train":
            from r1kit.cli.train import run_train

            run_train(stage.recipe, stage.run, started, resume_with)
        else:
            from r1kit.cli.distill import run_distill

            run_distill(stage.recipe, stage.run, started, resume_with)


def changed_fields(stage: Stage) -> list[str]:
    """The fields of the stage's recipe that differ from the config.yaml its run was started
    with (all of them when that cannot be read)."""
    try:
        saved = parse_config((stage.run.path / CONFIG).read_text(), stage.run.path / CONFIG)
    except (OSError, RecipeError):
        return ["config.yaml (unreadable)"]
    now, then = dotted_fields(stage.recipe.model_dump(mode="json")), dotted_fields(saved)
    return [key for key in sorted(now.keys() | then.keys()) if now.get(key) != then.get(key)]


def before_after(stage: Stage) -> dict:
    """The stage's held-out evaluation summaries before and after it (None where it has none)."""
    if stage.kind == "distill":
        from distill.evaluate import summaries

        found = summaries(stage.run.path)
    else:
        found = _train_evaluations(stage.run)
    return {"stage": stage.name, "kind": stage.kind} | {
        when: found.get(when) for when in ("before", "after")
    }


def _train_evaluations(run: RunDir) -> dict[str, dict]:
    """A GRPO run's held-out evaluations at step 0 and at its last step, from metrics.jsonl."""
    evaluated = [
        (record["step"], {k.removeprefix("eval/"): v for k, v in record.items()})
        for record in run.metrics()
        if "eval/pass@1" in record
    ]
    if not evaluated:
        return {}
    found = {"after": evaluated[-1][1]}
    if evaluated[0][0] == 0:
        found["before"] = evaluated[0][1]
    return found


def _schema(kind: StageKind) -> type[Section]:
    if kind == "train":
        return Recipe
    from distill.recipe import DistillRecipe

    return DistillRecipe


def _check(kind: StageKind, recipe: Section, pending: frozenset, cluster: bool, label: str) -> None:
    """The stage's reference checks, as its command makes them, each message naming the stage."""
    try:
        if kind == "train":
            check_references(recipe, cluster, pending)
            return
        from distill.references import check_distill_references

        check_distill_references(recipe, pending)
        if recipe.generates():
            check_engine_section(recipe.generate, recipe.ray, "generate", cluster)
    except RecipeError as err:
        raise RecipeError(f"{label}: {err}") from None


def _same_held_out_rows(stages: list[Stage]) -> None:
    """Every stage evaluates on the same held-out rows (the same `data` and `seed`), so the
    summary compares like with like."""
    first = stages[0]
    for stage in stages[1:]:
        for field in ("data", "seed"):
            if _dump(stage.recipe, field) != _dump(first.recipe, field):
                raise RecipeError(
                    f"{stage.label}: {field}: differs from {first.label}'s; every stage must "
                    "hold the same data section and seed, so all are evaluated on the same "
                    "held-out rows"
                )


def _dump(recipe: Section, field: str) -> object:
    value = getattr(recipe, field)
    return value.model_dump(mode="json") if isinstance(value, Section) else value
