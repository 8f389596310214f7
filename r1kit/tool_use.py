"""Tool-integrated reasoning: multi-turn rollouts in which the model runs Python while it reasons.

    <think> ... <python>print(417 * 23)</python>        <- the model's turn, stopped at the tag
    <output>9591</output>                                <- the sandbox's observation
    ... so the answer is 9591 </think><answer>9591</answer>   <- the model's next turn

`ToolEngine` wraps any rollout engine (HF or vLLM, in-process or Ray workers): it samples with
the call's closing tag as a stop string, runs the calls of every sequence that stopped there at
once in the code sandbox (`rewards/sandbox.py`, the same isolation and limits as the code
reward), appends each output as observation tokens, and samples the next turn of those
sequences, up to `tools.max_turns` calls or the token budget (`rollout.max_new_tokens`, for
the whole trajectory). Sampling runs in rounds: a round's calls run concurrently, each cut at
`tools.timeout_s`, and all of a sampling call's tool time is bounded by `tools.step_budget_s`
(calls past it are skipped, and the observation says so); rounds keep trajectories
reproducible from the seed. Observation tokens are marked (`Completion.model_tokens`) so the
learner keeps them out of the loss, and rewards read only the model's own text (`own_text`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from transformers import PreTrainedTokenizerBase

from r1kit.recipe import ToolsConfig
from rewards.sandbox import Budget, ExecResult, Job, SandboxPool
from rollout.types import Completion, Engine, SamplingParams, ToolCall

TURN_SEED_STRIDE = 1_000_003  # a later turn's sampling seed: seed + turn * stride


@dataclass
class Trajectory:
    """One sequence being built turn by turn: the model's tokens and the observations."""

    prompt: list[int]
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    model_tokens: list[bool] = field(default_factory=list)
    text: str = ""
    own_text: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = "stop"
    policy_version: int | None = None

    def room(self, max_new_tokens: int) -> int:
        """Tokens left in the trajectory's budget."""
        return max_new_tokens - len(self.token_ids)

    def add_turn(self, turn: Completion) -> None:
        """Append a turn the model sampled."""
        self.token_ids += turn.token_ids
        self.logprobs += turn.logprobs
        self.model_tokens += [True] * len(turn.token_ids)
        self.text += turn.text
        self.own_text += turn.text
        self.finish_reason = turn.finish_reason
        if self.policy_version is None:  # the oldest weights that sampled any of it
            self.policy_version = turn.policy_version

    def add_call(self, call: ToolCall) -> None:
        """Record a call, ending the model's turn where its own text stands now."""
        self.calls.append(replace(call, end=len(self.own_text)))

    def add_observation(self, call: ToolCall, token_ids: list[int], text: str) -> None:
        """Append a tool's observation: in the context, not the model's (no log-probs)."""
        self.add_call(call)
        self.token_ids += token_ids
        self.logprobs += [0.0] * len(token_ids)
        self.model_tokens += [False] * len(token_ids)
        self.text += text

    def completion(self) -> Completion:
        return Completion(
            token_ids=self.token_ids,
            logprobs=self.logprobs,
            text=self.text,
            finish_reason=self.finish_reason,  # type: ignore[arg-type]
            prompt_token_ids=self.prompt,
            policy_version=self.policy_version or 0,
            model_tokens=self.model_tokens,
            tool_calls=self.calls,
            own_text=self.own_text,
        )


class ToolEngine:
    """An engine whose completions may call Python in the sandbox (see the module's doc); every
    other attribute is the wrapped engine's."""

    def __init__(self, engine: Engine, tokenizer: PreTrainedTokenizerBase, tools: ToolsConfig):
        self.engine, self.tokenizer, self.tools = engine, tokenizer, tools
        self.sandbox = SandboxPool(tools.workers)
        self.tool_seconds = 0.0  # of the current sampling call, against tools.step_budget_s

    def __getattr__(self, name: str) -> Any:  # update_weights, sleep, version, placement, ...
        return getattr(self.engine, name)

    def generate(
        self, prompt_token_ids: list[list[int]], sampling: SamplingParams
    ) -> list[list[Completion]]:
        """Per prompt, `sampling.n` trajectories, each up to `tools.max_turns` calls and
        `sampling.max_new_tokens` tokens in all."""
        sampling = replace(sampling, stop=(*sampling.stop, self.tools.call[1]))
        groups = [[Trajectory(prompt) for _ in range(sampling.n)] for prompt in prompt_token_ids]
        active = [t for group in groups for t in group]
        turns = [c for group in self.engine.generate(prompt_token_ids, sampling) for c in group]
        self.tool_seconds = 0.0
        for turn in range(1, self.tools.max_turns + 1):
            calling = self._add_turns(active, turns, sampling.max_new_tokens)
            if not calling:
                break
            self._run_calls(calling, sampling.max_new_tokens)
            active = [t for t, _ in calling if t.room(sampling.max_new_tokens) > 0]
            if not active:
                break
            turns = self._next_turns(active, sampling, turn)
        else:
            self._add_turns(active, turns, sampling.max_new_tokens, last=True)
        return [[t.completion() for t in group] for group in groups]

    def close(self) -> None:
        self.sandbox.close()
        self.engine.close()

    def _add_turns(
        self,
        trajectories: list[Trajectory],
        turns: list[Completion],
        max_new_tokens: int,
        last: bool = False,
    ) -> list[tuple[Trajectory, str]]:
        """Append each sampled turn; the trajectories that stopped at a call, with its code
        (none when `last`: a call past `tools.max_turns` ends its trajectory unrun)."""
        calling = []
        for trajectory, turn in zip(trajectories, turns, strict=True):
            trajectory.add_turn(self._cut(turn, trajectory.room(max_new_tokens)))
            code = self._code(trajectory)
            if code is not None and last:
                trajectory.add_call(ToolCall(code, "", "skipped"))
            elif code is not None:
                calling.append((trajectory, code))
        return calling

    def _code(self, trajectory: Trajectory) -> str | None:
        """The code of the call the trajectory's last turn ended with, if it did."""
        opening, closing = self.tools.call
        text = trajectory.own_text.rstrip()
        if trajectory.finish_reason != "stop" or not text.endswith(closing):
            return None
        start = text.rfind(opening, 0, len(text) - len(closing))
        return None if start < 0 else text[start + len(opening) : -len(closing)].strip()

    def _run_calls(self, calling: list[tuple[Trajectory, str]], max_new_tokens: int) -> None:
        """Run a round's calls at once in the sandbox, within the tool time left to this
        sampling call; append each observation (cut to the room left, which ends that
        trajectory)."""
        tools, start = self.tools, time.monotonic()
        left = tools.step_budget_s - self.tool_seconds
        budget = Budget(left) if left > 0 else None
        jobs = [
            Job(code, timeout_s=tools.timeout_s, memory_mb=tools.memory_mb) for _, code in calling
        ]
        runs = [self.sandbox.submit(job, budget) if budget else None for job in jobs]
        for (trajectory, code), run in zip(calling, runs, strict=True):
            call = tool_call(code, run.result(), tools) if run else skipped(code)
            text = f"\n{tools.output[0]}\n{call.output}\n{tools.output[1]}\n"
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            room = trajectory.room(max_new_tokens)
            if len(ids) >= room:  # no room to answer after it: the trajectory ends here
                ids, text = ids[:room], self.tokenizer.decode(ids[:room])
                trajectory.finish_reason = "length"
            trajectory.add_observation(call, ids, text)
        self.tool_seconds += time.monotonic() - start

    def _next_turns(
        self, trajectories: list[Trajectory], sampling: SamplingParams, turn: int
    ) -> list[Completion]:
        """One more turn of each trajectory, sampled after its observation; one call to the
        engine for all, bounded by the roomiest (each is cut to its own room after)."""
        seed = None if sampling.seed is None else sampling.seed + turn * TURN_SEED_STRIDE
        longest = max(t.room(sampling.max_new_tokens) for t in trajectories)
        contexts = [t.prompt + t.token_ids for t in trajectories]
        next_turn = replace(sampling, n=1, max_new_tokens=longest, seed=seed)
        return [group[0] for group in self.engine.generate(contexts, next_turn)]

    def _cut(self, turn: Completion, room: int) -> Completion:
        """`turn`, cut to `room` tokens (then it ends the trajectory: finish reason length)."""
        if len(turn.token_ids) <= room:
            return turn
        ids = turn.token_ids[:room]
        text = self.tokenizer.decode(ids)
        return replace(
            turn, token_ids=ids, logprobs=turn.logprobs[:room], text=text, finish_reason="length"
        )


def tool_call(code: str, result: ExecResult, tools: ToolsConfig) -> ToolCall:
    """What a call's run shows the model: its stdout, the last line of its error, or why it
    did not finish, cut to `tools.max_output_chars`."""
    if result.status == "timeout" and result.wall_s == 0.0:  # the budget ran out before it
        return skipped(code)
    if result.status == "timeout":
        return ToolCall(code, f"timed out after {tools.timeout_s:g} s", "timeout", result.wall_s)
    output = result.stdout
    if result.status != "ok":
        lines = result.stderr.strip().splitlines() or [f"exited with {result.status}"]
        output = f"{output}{lines[-1]}"
    status = "ok" if result.status == "ok" else "error"
    return ToolCall(code, _cut_text(output.strip(), tools), status, result.wall_s)


def skipped(code: str) -> ToolCall:
    """A call not run: the tool time of this sampling call was spent."""
    return ToolCall(code, "not run: the tool time of this step is spent", "skipped")


def _cut_text(text: str, tools: ToolsConfig) -> str:
    """At most `max_output_chars`, and never the observation's own closing tag (the model
    would read where the observation ends wrong)."""
    text = text.replace(tools.output[1], "")
    limit = tools.max_output_chars
    return text if len(text) <= limit else text[:limit] + " ...(cut)"
