"""Generation: the engine interface (`types`), the HF-transformers and vLLM engines, a registry
of them by name (`engines`), Ray rollout workers (`ray_pool`), the weight stream that updates
them, and the one door every caller opens an engine through (`door.open_engine`)."""

from rollout.door import check_engine, open_engine
from rollout.engines import EngineSpec, ModelSource, Placement, RolloutSetupError
from rollout.types import Completion, Engine, SamplingParams

__all__ = [
    "Completion",
    "Engine",
    "EngineSpec",
    "ModelSource",
    "Placement",
    "RolloutSetupError",
    "SamplingParams",
    "check_engine",
    "open_engine",
]
