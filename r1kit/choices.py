"""Every set of allowed values, defined once: the recipe schema, the CLI and the learner use these.

(Sets that belong to a leaf package stay there, e.g. the reward styles in `rewards.registry`;
the maths' names -- losses, ratio levels, advantage and KL estimators -- are their registries'
keys, `r1kit.registry`.)
"""

from typing import Literal

from rollout.engines import EngineName, PlacementName  # noqa: F401  (rollout defines these)
from rollout.weight_transfer import WeightTransfer  # noqa: F401  (native or /dev/shm updates)

TemplateName = Literal["r1_zero", "chat", "raw"]
DType = Literal["auto", "float32", "bfloat16", "float16"]
Schedule = Literal["constant", "cosine"]
TISLevel = Literal["none", "token", "sequence"]
TrackerName = Literal["tensorboard", "wandb", "mlflow", "trackio"]  # output.report_to
SyncAction = Literal["error", "warn", "off"]  # what a failed weight-sync check does
Strategy = Literal["ddp", "fsdp"]  # how learner ranks share the model (docs/scale_out.md)
KLIn = Literal["loss", "reward"]  # where the beta KL penalty goes (docs/grpo_losses.md)
StageKind = Literal["train", "distill"]  # a pipeline stage: the command whose recipe it holds
StageOutput = Literal["final", "traces"]  # what a later stage may refer to: stages.NAME.OUTPUT
