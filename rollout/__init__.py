"""Generation: rollout engines behind one interface (HF transformers now, vLLM in Ray actors next)."""

from rollout.types import Completion, Engine, SamplingParams

__all__ = ["Completion", "Engine", "SamplingParams"]
