"""The pipeline recipe: named stages run one after another (`r1kit pipeline`), each a GRPO
(`train`) or distillation (`distill`) recipe, inline or a file, that may name an earlier
stage's output as `stages.<name>.final` (its model) or `stages.<name>.traces` (its traces).

This schema checks the pipeline's own shape and where every reference points; each stage's
recipe is validated by its own command's schema once the references are replaced by the
paths they will have (r1kit/cli/stages.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, field_validator, model_validator

from r1kit.choices import StageKind, StageOutput
from r1kit.recipe import (
    OutputConfig,
    RecipeError,
    Section,
    apply_override,
    find_recipe,
    read_mapping,
    validate,
)

REFERENCE = re.compile(r"stages\.([^.]+)\.([^.]+)")
STAGE_NAME = re.compile(r"[a-z][a-z0-9_]*")
# Where each output lies in a stage's run directory.
OUTPUT_PATHS: dict[StageOutput, str] = {"final": "final", "traces": "traces/traces.jsonl"}


class StageConfig(Section):
    """One stage: its kind, its recipe (a file, or the recipe itself) and `--set`-style
    overrides on top (`{learner.lr: 1e-5}`); it runs in the pipeline's directory under `name`."""

    name: str
    kind: StageKind
    recipe: str | dict[str, Any]
    set: dict[str, Any] = {}

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not STAGE_NAME.fullmatch(value):
            raise ValueError(f"stage names are lower-case words ([a-z][a-z0-9_]*), got {value!r}")
        return value


class PipelineRecipe(Section):
    description: str = ""
    stages: list[StageConfig] = Field(min_length=1)
    output: OutputConfig = OutputConfig()

    @model_validator(mode="after")
    def _unique_names(self) -> PipelineRecipe:
        names = [stage.name for stage in self.stages]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"stages: each name once, {', '.join(twice)} repeated")
        reserved = set(names) & set(PipelineRecipe.model_fields)
        if reserved:
            raise ValueError(f"stages: {', '.join(sorted(reserved))} names a pipeline field")
        return self

    def run_dir(self) -> Path:
        return Path(self.output.dir) / (self.output.name or "pipeline")


def load_pipeline(path: Path, overrides: list[str] = ()) -> PipelineRecipe:
    """Read a pipeline recipe file; see `pipeline_from`."""
    path = find_recipe(path)
    raw = read_mapping(path)
    raw.setdefault("output", {}).setdefault("name", path.stem)
    return pipeline_from(raw, str(path), path.parent, overrides)


def pipeline_from(raw: dict, source: str, base: Path, overrides: list[str] = ()) -> PipelineRecipe:
    """Apply `--set` overrides to a raw pipeline recipe (`STAGE.key=value` goes into that
    stage's `set`, anything else into the pipeline), validate it and read every stage's
    recipe file (beside `base` first), so the result holds each stage inline; RecipeError
    naming the field on a mistake."""
    stages = {s.get("name"): s for s in raw.get("stages") or [] if isinstance(s, dict)}
    for override in overrides:
        head, _, rest = override.partition(".")
        if head in stages and rest:
            key, sep, value = rest.partition("=")
            if not sep:
                raise RecipeError(f"--set expects key=value, got {override!r}")
            stages[head].setdefault("set", {})[key] = yaml.safe_load(value)
        else:
            apply_override(raw, override)
    recipe = validate(raw, source=source, schema=PipelineRecipe)
    for index, stage in enumerate(recipe.stages):
        if isinstance(stage.recipe, str):
            try:
                stage.recipe = read_mapping(_stage_file(stage.recipe, base))
            except RecipeError as err:
                raise RecipeError(f"{source}: {where(recipe, index)}: recipe: {err}") from None
    return recipe


def stage_raw(
    recipe: PipelineRecipe, index: int, makes: dict[str, tuple[StageOutput, ...]]
) -> dict:
    """Stage `index`'s recipe mapping with its overrides applied, its references replaced by
    the paths they will have, and its output placed in the pipeline's directory; a
    RecipeError naming the stage and field for a reference to anything but an output an
    earlier stage makes (`makes`: stage name -> its outputs)."""
    stage = recipe.stages[index]
    raw = json.loads(json.dumps(stage.recipe))  # a deep copy
    for key, value in stage.set.items():
        apply_override(raw, f"{key}={json.dumps(value)}")
    raw = _substitute(raw, _Place(recipe, index, makes), "")
    report_to = (raw.get("output") or {}).get("report_to", recipe.output.report_to)
    raw["output"] = {"dir": str(recipe.run_dir()), "name": stage.name, "report_to": report_to}
    return raw


def output_path(recipe: PipelineRecipe, stage: str, output: StageOutput) -> str:
    """Where stage `stage`'s `output` will be."""
    return str(recipe.run_dir() / stage / OUTPUT_PATHS[output])


def stage_hash(resolved: Section, base: str) -> str:
    """A fingerprint of a stage's resolved recipe, the pipeline's directory `base` left out
    (a resume may spell it otherwise): a stage whose recipe changed since it started is
    refused on resume."""
    text = json.dumps(resolved.model_dump(mode="json"), sort_keys=True).replace(base, "<run>")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def where(recipe: PipelineRecipe, index: int) -> str:
    """How messages name a stage: `stages.1 (student)`."""
    return f"stages.{index} ({recipe.stages[index].name})"


@dataclass(frozen=True)
class _Place:
    """The stage whose references are resolved, and what the stages before it make."""

    recipe: PipelineRecipe
    index: int
    makes: dict[str, tuple[StageOutput, ...]]


def _substitute(node: Any, place: _Place, field: str) -> Any:
    """`node` with every `stages.NAME.OUTPUT` string replaced by that output's path."""
    if isinstance(node, dict):
        return {k: _substitute(v, place, f"{field}{k}.") for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, place, f"{field}{i}.") for i, v in enumerate(node)]
    if not isinstance(node, str) or not node.startswith("stages."):
        return node
    return _resolve(node, place, field.rstrip("."))


def _resolve(reference: str, place: _Place, field: str) -> str:
    recipe, index = place.recipe, place.index
    here = f"{where(recipe, index)}: {field}"
    match = REFERENCE.fullmatch(reference)
    if match is None:
        raise RecipeError(f"{here}: {reference!r} is not a reference: use stages.NAME.OUTPUT")
    name, output = match.groups()
    earlier = [stage.name for stage in recipe.stages[:index]]
    if name not in earlier:
        later = name in {stage.name for stage in recipe.stages}
        why = "a later stage (or this one)" if later else "no such stage"
        raise RecipeError(
            f"{here}: {reference} names {why}; a stage can use the outputs of the stages "
            f"before it: {', '.join(earlier) or 'none'}"
        )
    makes = place.makes[name]
    if output not in makes:
        kind = recipe.stages[earlier.index(name)].kind
        raise RecipeError(
            f"{here}: {reference}: stage {name} ({kind}) makes no {output!r}, only "
            + ", ".join(makes)
        )
    return output_path(recipe, name, output)


def _stage_file(name: str, base: Path) -> Path:
    """A stage's recipe file: beside the pipeline recipe, else as `r1kit train` finds one."""
    beside = base / name
    return beside if beside.is_file() else find_recipe(Path(name))
