"""The engine interface every rollout backend implements, and what it returns."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch


@dataclass(frozen=True)
class SamplingParams:
    """How to sample: `n` completions per prompt, at most `max_new_tokens` each."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = no top-k filtering
    max_new_tokens: int = 128
    stop: tuple[str, ...] = ()  # stop strings; the text is cut after the first one, inclusive
    seed: int | None = None

    def __post_init__(self) -> None:
        problems = [
            f"{field} must be {rule}, got {getattr(self, field)!r}"
            for field, rule, ok in (
                ("n", "at least 1", self.n >= 1),
                ("temperature", "0 (greedy) or more", self.temperature >= 0),
                ("top_p", "in (0, 1]", 0 < self.top_p <= 1),
                ("top_k", "0 (off) or more", self.top_k >= 0),
                ("max_new_tokens", "at least 1", self.max_new_tokens >= 1),
            )
            if not ok
        ]
        if isinstance(self.stop, str):
            problems.append(f"stop must be a tuple of strings, got the string {self.stop!r}")
        elif any(not s for s in self.stop):
            problems.append("stop strings must not be empty")
        if problems:
            raise ValueError("SamplingParams: " + "; ".join(problems))


ToolStatus = Literal["ok", "error", "timeout", "skipped"]  # skipped: the tool time budget was spent


@dataclass
class ToolCall:
    """One tool call inside a multi-turn completion: the code the model wrote and what came
    back to it (the observation's text, truncated as the model saw it)."""

    code: str
    output: str
    status: ToolStatus
    seconds: float = 0.0
    end: int = 0  # where the model's turn that wrote the call ends in its own text


@dataclass
class Completion:
    """One sampled completion of one prompt (with tools: a trajectory of model turns and tool
    observations, all in `token_ids`)."""

    token_ids: list[int]
    # log p(token) under the distribution the token was sampled from (after temperature,
    # before top-p/top-k truncation), one per token: the "old" log-probs of importance ratios.
    logprobs: list[float]
    text: str
    finish_reason: Literal["stop", "length"]
    prompt_token_ids: list[int] = field(default_factory=list)
    # How many weight updates the engine had taken when it sampled this completion.
    policy_version: int = 0
    # With tools, per token: True where the model wrote it, False in a tool's observation (in
    # the context, out of the loss). None: a single-turn completion, every token the model's.
    model_tokens: list[bool] | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    # With tools, the model's own text, observations left out: what rewards read, so that a
    # tool's output can never pass for the model's answer. None: `text`.
    own_text: str | None = None

    @property
    def model_text(self) -> str:
        """The text the model wrote itself (all of `text` for a single-turn completion)."""
        return self.text if self.own_text is None else self.own_text

    @property
    def model_token_count(self) -> int:
        """How many tokens the model sampled itself (observations left out): the length that
        the length and throughput metrics count."""
        return len(self.token_ids) if self.model_tokens is None else sum(self.model_tokens)


class Engine(Protocol):
    """A rollout engine: samples completions and takes new weights from the learner."""

    def generate(
        self, prompt_token_ids: list[list[int]], sampling: SamplingParams
    ) -> list[list[Completion]]:
        """Per prompt, `sampling.n` completions."""
        ...

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load new policy weights, streamed as (name, tensor) pairs."""
        ...

    def sleep(self) -> None:
        """Free the accelerator memory the engine holds while the learner trains (vLLM's sleep
        mode on GPU; a no-op where the engine has none)."""
        ...

    def wake_up(self, tags: list[str] | None = None) -> None:
        """Take back what `sleep` freed (`tags`: only those parts, e.g. ["weights"]); the engine
        also wakes by itself to generate or to load weights."""
        ...

    def close(self) -> None:
        """Release the engine's processes and memory (a no-op for an in-process engine)."""
        ...


class Pending(Protocol):
    """Completions being sampled elsewhere; `result()` waits for them."""

    def result(self) -> list[list[Completion]]:
        """Per prompt, `sampling.n` completions, as `Engine.generate` returns them."""
        ...


class SubmittingEngine(Engine, Protocol):
    """An engine in other processes (a Ray pool) that can sample while its caller works."""

    version: int  # weight updates sent so far; each Completion has the one it was sampled with

    def submit(self, prompt_token_ids: list[list[int]], sampling: SamplingParams) -> Pending:
        """Start sampling and return at once."""
        ...


class EngineDead(RuntimeError):
    """The engine's own processes died: it cannot serve again, the process holding it must go."""
