"""Generation: rollout engines behind one interface (HF transformers, vLLM), in this process or
in Ray actors (`rollout.ray_pool`), and the weight stream that updates them."""

from rollout.types import Completion, Engine, SamplingParams

__all__ = ["Completion", "Engine", "SamplingParams"]
