"""Generation: rollout engines behind one interface (HF transformers now, vLLM next)."""

from rollout.types import Completion, Engine, SamplingParams

__all__ = ["Completion", "Engine", "SamplingParams"]
