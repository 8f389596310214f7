"""The distill recipe: one typed schema, validated once at the front door like the GRPO one.

It reuses the GRPO recipe's sections (model, data, template, output) and adds the teacher,
where the traces come from, and the SFT settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, ValidationInfo, model_validator

from r1kit.choices import Schedule
from r1kit.recipe import (
    DATA_SUFFIXES,
    PENDING,
    DataConfig,
    EngineConfig,
    MicroBatchConfig,
    ModelConfig,
    OptimizerConfig,
    OutputConfig,
    RayConfig,
    RewardConfig,
    SamplingConfig,
    Section,
    Seed,
    TemplateConfig,
    load_recipe,
)


class StudentConfig(ModelConfig):
    """The model that learns: a given model (`name`), or the teacher cut down in depth."""

    model_config = ConfigDict(
        extra="forbid", protected_namespaces=(), serialize_by_alias=True, validate_by_name=True
    )

    from_: Literal["teacher"] | None = Field(None, alias="from")
    keep_layers: list[int] | Literal["every_other"] | None = None  # with from: teacher

    @model_validator(mode="after")
    def _pruning_needs_teacher(self) -> StudentConfig:
        if (self.from_ is None) != (self.keep_layers is None):
            raise ValueError("student.from: teacher and student.keep_layers go together")
        return self


class TracesConfig(Section):
    """An existing traces file: a `messages` column (OpenR1-Math style) or prompt/completion."""

    source: str  # a .jsonl/.json/.parquet file
    messages_column: str = "messages"
    prompt_column: str = "prompt"
    completion_column: str = "completion"

    @model_validator(mode="after")
    def _file_exists(self, info: ValidationInfo) -> TracesConfig:
        path = Path(self.source)
        if path.suffix not in DATA_SUFFIXES - {".csv"}:
            raise ValueError(f"traces.source must be a .jsonl, .json or .parquet file: {path}")
        pending = (info.context or {}).get(PENDING, ())  # a pipeline's earlier stage writes it
        if not path.is_file() and self.source not in pending:
            raise ValueError(f"traces file not found: {path}")
        return self


class GenerateConfig(SamplingConfig, EngineConfig):
    """Stage 1: K traces per problem from the teacher, in the prompt template it was trained on,
    on the engine it names (its Ray workers placed by the recipe's `ray` section)."""

    problems: int = Field(64, gt=0)  # drawn from data (the held-out rows are never drawn)
    samples: int = Field(4, gt=0)  # K traces per problem
    template: TemplateConfig = TemplateConfig()  # the teacher's (r1_zero, as GRPO trains)
    temperature: float = Field(1.0, gt=0.0)  # greedy would write one trace K times
    chunk: int = Field(16, gt=0)  # problems per engine call and per durable append

    @model_validator(mode="after")
    def _hf_decodes_a_chunk_at_once(self) -> GenerateConfig:
        # hf.batch_size unset: a chunk's sequences (chunk x samples) decode at once.
        if "batch_size" not in self.hf.model_fields_set:
            self.hf.batch_size = self.chunk * self.samples
        return self


class FilterConfig(Section):
    """Stage 2, rejection sampling: keep traces every `accept` reward scores at or above."""

    rewards: list[RewardConfig] = Field(default_factory=lambda: [RewardConfig(name="math")])
    accept: dict[str, float] = {}  # reward name -> lowest accepted value; {}: each reward >= 1
    max_per_problem: int | None = Field(1, gt=0)  # None: every accepted trace
    shortest_first: bool = True  # with max_per_problem: keep the shortest accepted traces
    deduplicate: bool = True  # the same text (whitespace aside) once per problem
    min_tokens: int = Field(1, ge=0)
    max_tokens: int | None = Field(None, gt=0)
    require_think_close: bool = True  # the reasoning must end with </think>

    @model_validator(mode="after")
    def _accept_names_rewards(self) -> FilterConfig:
        names = [r.name for r in self.rewards]
        unknown = set(self.accept) - set(names)
        if unknown:
            raise ValueError(
                f"filter.accept names {sorted(unknown)}, not in filter.rewards {names}"
            )
        return self

    def thresholds(self) -> dict[str, float]:
        return self.accept or {r.name: 1.0 for r in self.rewards}


class SFTConfig(MicroBatchConfig, OptimizerConfig):
    """The student's optimizer and micro-batching, for both modes; SFT's data settings."""

    lr: float = Field(1e-5, gt=0.0)
    schedule: Schedule = "cosine"
    micro_batch_size: int = Field(4, gt=0)  # examples per forward/backward: bounds memory
    epochs: int = Field(1, gt=0)
    batch_size: int = Field(8, gt=0)  # examples per optimizer step
    max_length: int = Field(1024, gt=0)  # longer examples (prompt + target tokens) are left out
    save_every: int = Field(10, ge=0)  # optimizer steps between checkpoints; 0: only at the end
    keep_last: int = Field(2, ge=1)
    merge_lora: bool = True  # final/: the LoRA merged into a plain model, else the adapter too


class EvalConfig(SamplingConfig):
    """The student's held-out evaluation (data.eval_size rows, greedy unless told) before and
    after, on the in-process HF engine."""

    before: bool = True
    after: bool = True
    temperature: float = Field(0.0, ge=0.0)  # 0: greedy
    batch_size: int = Field(64, gt=0)  # sequences decoded at once


class OnPolicyConfig(SamplingConfig):
    """mode on_policy: the student samples, the teacher scores its tokens (reverse KL)."""

    steps: int = Field(20, gt=0)
    prompts_per_step: int = Field(8, gt=0)
    samples: int = Field(4, gt=0)  # student samples per prompt
    temperature: float = Field(1.0, gt=0.0)  # the learner's log-probs divide by it
    max_new_tokens: int = Field(128, gt=0)
    # A task reward mixed in: reward_weight x each sample's group-relative advantage of these
    # rewards (GRPO's) is added to every one of its tokens' advantages. []: the KL alone.
    rewards: list[RewardConfig] = []
    reward_weight: float = Field(1.0, ge=0.0)


class DistillRecipe(Section):
    description: str = ""
    seed: Seed = 0
    mode: Literal["sft", "on_policy"] = "sft"
    teacher: str | None = None  # run dir, checkpoint dir, built-in alias, HF dir or Hub id
    student: StudentConfig = StudentConfig()
    traces: TracesConfig | None = None  # an existing traces file; None: generate + filter
    generate: GenerateConfig = GenerateConfig()
    ray: RayConfig = RayConfig()  # where generate's Ray workers run (generate.workers > 0)
    filter: FilterConfig = FilterConfig()
    data: DataConfig = DataConfig()  # the problems, and the held-out split for evaluation
    template: TemplateConfig = TemplateConfig(name="chat")  # the student's prompts
    sft: SFTConfig = SFTConfig()  # the optimizer settings of both modes
    on_policy: OnPolicyConfig = OnPolicyConfig()
    eval: EvalConfig = EvalConfig()
    output: OutputConfig = OutputConfig()

    @model_validator(mode="after")
    def _consistent(self) -> DistillRecipe:
        if self.mode == "on_policy" and self.teacher is None:
            raise ValueError("mode: on_policy needs a teacher to score the student's samples")
        if self.traces is None and self.teacher is None:
            raise ValueError("traces: give a traces file (traces.source) or a teacher to generate")
        if self.student.from_ == "teacher" and self.teacher is None:
            raise ValueError("student.from: teacher needs a teacher")
        if self.template.name != "chat":
            raise ValueError("template.name: the student learns in its chat template: use chat")
        return self

    def run_dir(self) -> Path:
        return Path(self.output.dir) / (self.output.name or "run")

    def generates(self) -> bool:
        """Whether the run samples traces from the teacher (the generate stage)."""
        return self.mode == "sft" and self.traces is None


def load_distill_recipe(path: str | Path, overrides: list[str] = ()) -> DistillRecipe:
    """Read, override and validate a distill recipe; RecipeError naming the field on a mistake."""
    return load_recipe(path, overrides, schema=DistillRecipe)
